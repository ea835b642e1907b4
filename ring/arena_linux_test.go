//go:build linux

package ring_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// residentKiB returns how much of b is resident in memory (mincore).
func residentKiB(t *testing.T, b []byte) int {
	t.Helper()
	ps := os.Getpagesize()
	vec := make([]byte, (len(b)+ps-1)/ps)
	_, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n * ps >> 10
}

// TestOffHeapRingStaysAtTheFront: 60 KiB blocks written and drained one at
// a time through a 4 MiB off-heap ring, three laps' worth: a block that
// finds the ring empty past its first sixteenth goes back to the arena's
// beginning, so what is resident is about a sixteenth of the arena plus a
// block, not all of it (a ring whose positions sweep the whole arena has
// all of it resident after one lap: 4084 KiB measured). While the ring
// holds anything, blocks follow each other as usual.
func TestOffHeapRingStaysAtTheFront(t *testing.T) {
	const size = 4 << 20
	r, err := ring.NewOffHeap(size)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 60<<10)
	for i := range 3 * size / len(payload) {
		copy(payload, fmt.Sprintf("block %08d", i))
		if err := ringtest.Write(r, payload); err != nil {
			t.Fatal(err)
		}
		got := ringtest.Drain(r)
		if len(got) != 1 || string(got[0][:14]) != fmt.Sprintf("block %08d", i) {
			t.Fatalf("unexpected frames at block %d", i)
		}
	}
	if kib, most := residentKiB(t, r.Arena()), size/16>>10+2*len(payload)>>10; kib > most {
		t.Fatalf("unexpected resident arena %d KiB; want at most %d KiB of %d KiB", kib, most, size>>10)
	}

	// Not empty: no jump. Two blocks, the first kept unreleased.
	if err := ringtest.Write(r, []byte("one")); err != nil {
		t.Fatal(err)
	}
	h0, _, _ := r.Positions()
	if err := ringtest.Write(r, []byte("two")); err != nil {
		t.Fatal(err)
	}
	h1, _, _ := r.Positions()
	if got, want := h1-h0, uint64(ring.BlockSize(1, 3)); got != want {
		t.Fatalf("unexpected second reservation length %d with the ring not empty; want %d (no jump)", got, want)
	}
	if got := ringtest.Drain(r); len(got) != 2 || string(got[0]) != "one" || string(got[1]) != "two" {
		t.Fatalf("unexpected frames %q", got)
	}
	if hw := r.Stats().HighWater; hw > ring.BlockSize(1, 60<<10) {
		t.Fatalf("unexpected high water %d; want at most one block (%d): the pad of a jump holds nothing", hw, ring.BlockSize(1, 60<<10))
	}
}

// TestOffHeapRingDropsTheTailAtRestart: a burst that found the ring never
// empty wrote 3.5 MiB of a 4 MiB off-heap ring. Once the ring works at the
// front again, the restart's pad gives the burst's pages back, so what is
// resident follows the last cycle, not the largest burst ever.
func TestOffHeapRingDropsTheTailAtRestart(t *testing.T) {
	const size = 4 << 20
	r, err := ring.NewOffHeap(size)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 60<<10)
	write := func(n int) {
		t.Helper()
		for range n {
			if err := ringtest.Write(r, payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(3.5 * (1 << 20) / len(payload)) // the burst: never drained meanwhile
	ringtest.Drain(r)
	if kib := residentKiB(t, r.Arena()); kib < 3<<10 {
		t.Fatalf("unexpected resident arena after the burst: %d KiB; want about 3.5 MiB", kib)
	}
	write(1) // restarts at the front; its pad is the arena's last half MiB
	ringtest.Drain(r)
	write(5) // a cycle of 300 KiB, past size/16
	ringtest.Drain(r)
	write(1) // restarts: its pad covers the rest of the burst's pages
	ringtest.Drain(r)
	if kib, most := residentKiB(t, r.Arena()), 6*len(payload)>>10+64; kib > most {
		t.Fatalf("unexpected resident arena after a restart; got %d KiB; want at most %d KiB (the last cycle)", kib, most)
	}
	if st := r.Stats(); st.Restarts != 2 {
		t.Fatalf("unexpected restarts; got %d; want 2", st.Restarts)
	}
}

// TestOffHeapRingRestartsWhenDrained: the release that empties an off-heap
// ring past its first sixteenth moves it back to the arena's beginning, so
// the next block goes there even if no writer found the ring empty; not
// while a reservation is pending, and not before the sixteenth.
func TestOffHeapRingRestartsWhenDrained(t *testing.T) {
	const size = 1 << 20
	r, err := ring.NewOffHeap(size)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 20<<10)
	for range 3 { // 60 KiB: under size/16, no restart
		if err := ringtest.Write(r, payload); err != nil {
			t.Fatal(err)
		}
	}
	ringtest.Drain(r)
	if head, _, _ := r.Positions(); head%size == 0 || r.Stats().Restarts != 0 {
		t.Fatalf("unexpected restart before size/16: head %d, %d restarts", head, r.Stats().Restarts)
	}
	// Past size/16, with a reservation pending: no restart.
	for range 2 {
		if err := ringtest.Write(r, payload); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := r.Reserve(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	ringtest.Drain(r)
	if r.Stats().Restarts != 0 {
		t.Fatal("unexpected restart with a reservation pending")
	}
	pending.Append([]byte("one"))
	pending.Commit()
	if got := ringtest.Drain(r); len(got) != 1 || string(got[0]) != "one" {
		t.Fatalf("unexpected frames %q", got)
	}
	head, read, rel := r.Positions()
	if head%size != 0 || read != head || rel != head || r.Stats().Restarts != 1 {
		t.Fatalf("unexpected positions after the draining release: head %d (offset %d), read %d, release %d, %d restarts",
			head, head%size, read, rel, r.Stats().Restarts)
	}
	if err := ringtest.Write(r, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got := ringtest.Drain(r); len(got) != 1 || string(got[0]) != "two" {
		t.Fatalf("unexpected frames after the restart %q", got)
	}
	if !r.ZeroBeyondHead() {
		t.Fatal("unexpected non-zero bytes beyond head")
	}
}

// TestOffHeapRestartsKeepTheInvariant: a single writer and reader with
// random block sizes and random amounts held back, through many restarts
// with bytes in use (the pad freed later, with them): every frame arrives
// intact and in order, and after every release the bytes past head are
// zero, skipped pads included.
func TestOffHeapRestartsKeepTheInvariant(t *testing.T) {
	const size = 256 << 10
	r, err := ring.NewOffHeap(size)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	var held []ring.Frame
	written, read := 0, 0
	steps := 20000
	if testing.Short() {
		steps = 3000 // the zero check reads the arena byte by byte
	}
	for step := 0; step < steps; step++ {
		n := 8 + rng.IntN(20<<10)
		p := make([]byte, n)
		copy(p, fmt.Sprintf("%08d", written))
		if err := ringtest.Write(r, p); err == nil {
			written++
		} else if !errors.Is(err, ring.ErrFull) {
			t.Fatal(err)
		}
		for {
			f, ok := r.Next()
			if !ok {
				break
			}
			if string(f.Data[:8]) != fmt.Sprintf("%08d", read) {
				t.Fatalf("step %d: unexpected frame %q; want %08d", step, f.Data[:8], read)
			}
			read++
			held = append(held, f)
		}
		if len(held) > 0 && rng.IntN(3) == 0 {
			k := rng.IntN(len(held))
			r.Release(held[k])
			held = append(held[:0], held[k+1:]...)
			if !r.ZeroBeyondHead() {
				t.Fatalf("step %d: non-zero bytes past head after a release", step)
			}
		}
	}
	if st := r.Stats(); st.Restarts < 10 || read != written {
		t.Fatalf("unexpected run: %d restarts, %d of %d frames read (the test does not test what it says)", st.Restarts, read, written)
	}
}

// TestOffHeapDropsPagesWhenSlow: three laps of 60 KiB blocks through a
// 4 MiB off-heap ring that is never empty (one block always held), with
// the restarts at the front turned off. With page dropping on, what stays
// resident is the held blocks and about one page per release of the last
// lap; with it off, the whole arena. With the restarts on (as NewOffHeap
// has them), about the first quarter and a block: a block restarts at the
// front once a quarter of the ring and itself fit there.
func TestOffHeapDropsPagesWhenSlow(t *testing.T) {
	const size = 4 << 20
	payload := make([]byte, 60<<10)
	resident := func(dropping, front bool) int {
		r, err := ring.NewOffHeap(size)
		if err != nil {
			t.Fatal(err)
		}
		r.SetFront(front)
		if err := ringtest.Write(r, payload); err != nil {
			t.Fatal(err)
		}
		prev, ok := r.Next()
		if !ok {
			t.Fatal("no first frame")
		}
		for i := range 3 * size / len(payload) {
			r.SetDropping(dropping)
			copy(payload, fmt.Sprintf("block %08d", i))
			if err := ringtest.Write(r, payload); err != nil {
				t.Fatal(err)
			}
			f, ok := r.Next()
			if !ok || string(f.Data[:14]) != fmt.Sprintf("block %08d", i) {
				t.Fatalf("unexpected frame at block %d", i)
			}
			r.Release(prev) // the ring keeps f: never empty
			prev = f
		}
		kib := residentKiB(t, r.Arena())
		// After measuring: reading the dropped pages maps them (to the
		// zero page), which mincore counts.
		if !r.ZeroBeyondHead() {
			t.Fatal("free region not zeroed")
		}
		return kib
	}
	if kib := resident(false, false); kib < 3<<10 {
		t.Fatalf("unexpected resident arena %d KiB without dropping; want most of %d KiB (the test does not measure what it says)", kib, size>>10)
	}
	if kib := resident(true, false); kib > 512 {
		t.Fatalf("unexpected resident arena %d KiB with dropping; want at most 512 KiB of %d KiB", kib, size>>10)
	}
	if kib, most := resident(false, true), size/4>>10+3*len(payload)>>10; kib > most {
		t.Fatalf("unexpected resident arena %d KiB with restarts and never empty; want at most %d KiB of %d KiB", kib, most, size>>10)
	}
}

// TestDropDecision: pages are dropped during a window when the previous
// window's release rate makes a lap take at least 10 s.
func TestDropDecision(t *testing.T) {
	const size = 8 << 20
	r, err := ring.NewOffHeap(size)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at       time.Duration
		released uint64
		want     bool
	}{
		{0, 1000, false},                      // the first window starts: off until measured
		{500 * time.Millisecond, 1000, false}, // within the window
		{time.Second, size / 50, true},        // ~size/50 per second: a lap takes ~50 s
		{2 * time.Second, size, false},        // size per second: a lap takes 1 s
		{2500 * time.Millisecond, 0, false},   // within the window
		{3 * time.Second, size / 20, true},    // exactly 10 s a lap: slow enough
		{4 * time.Second, size/10 + 1, false}, // a little faster than 10 s a lap
		{6 * time.Second, 0, true},            // nothing released for 2 s
	}
	for i, s := range steps {
		r.MeasureRelease(s.released, t0.Add(s.at))
		if r.Dropping() != s.want {
			t.Fatalf("step %d (%v, %d bytes): unexpected dropping %v; want %v", i, s.at, s.released, r.Dropping(), s.want)
		}
	}
}
