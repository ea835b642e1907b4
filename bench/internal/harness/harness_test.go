package harness

import (
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOutput(t *testing.T) {
	var o Output
	for _, p := range []string{"[a] one\n[a] t", "wo\n", "\n[b] three", ""} {
		if n, err := o.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("unexpected write result; got %d, %v; want %d, nil", n, err, len(p))
		}
	}
	if got, want := strings.Join(o.Lines(), "|"), "[a] one|[a] two|"; got != want {
		t.Fatalf("unexpected lines; got %q; want %q", got, want)
	}
}

func TestReadRSS(t *testing.T) {
	r, err := ReadRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r.Total <= 0 || r.Anon <= 0 || r.HWM < r.Total || r.Anon+r.File > r.Total+1<<20 {
		t.Fatalf("unexpected resident set of this process: %+v", r)
	}
	if _, err := ReadRSS(-1); err == nil {
		t.Fatal("unexpected success for pid -1")
	}
}

func TestPeakRSS(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan RSS, 1)
	go func() { done <- PeakRSS(os.Getpid(), time.Millisecond, stop) }()
	// Touch 64 MiB so that the peak moves.
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	p := <-done
	if p.HWM < 64<<20 || p.Total < 64<<20 {
		t.Fatalf("unexpected peak; got %+v; want at least 64 MiB", p)
	}
	_ = b[len(b)-1]
}

// TestPeakRSSMedian holds 64 MiB for a short part of the sampling only:
// the peak and the high-water mark see it, the median does not.
func TestPeakRSSMedian(t *testing.T) {
	// Another test's garbage (TestPeakRSS's 64 MiB) going back to the kernel
	// while this one samples would lower the level under the mapping.
	debug.FreeOSMemory()
	before, err := ReadRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan RSS, 1)
	go func() { done <- PeakRSS(os.Getpid(), time.Millisecond, stop) }()
	// Long quiet periods around the mapping's short life, so that the
	// samples taken while it is touched page by page (slow on a busy
	// machine) stay a small share.
	time.Sleep(150 * time.Millisecond)
	b, err := syscall.Mmap(-1, 0, 64<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	time.Sleep(10 * time.Millisecond)
	if err := syscall.Munmap(b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	p := <-done
	// The mapping sits on the process's level; 8 MiB of slack for the
	// rest of the process moving meanwhile.
	if p.HWM < p.Total || p.Total < before.Total+56<<20 {
		t.Fatalf("unexpected peak; got %+v; want at least 56 MiB over %d, the resident set before", p, before.Total)
	}
	if p.Median <= 0 || p.Median > before.Total+32<<20 {
		t.Fatalf("unexpected median %d; want about %d, the resident set without the 64 MiB", p.Median, before.Total)
	}
}
