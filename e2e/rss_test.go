package e2e

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

var rssSink []byte

// TestWatchRSS shows why the tests measure VmHWM: a small child started
// while this process holds 96 MiB reports at least that as ru_maxrss, while
// its own VmHWM stays small.
func TestWatchRSS(t *testing.T) {
	rssSink = make([]byte, 96<<20)
	for i := 0; i < len(rssSink); i += 4096 {
		rssSink[i] = 1
	}
	defer func() { rssSink = nil }()
	cmd := exec.Command("sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start sleep: %v", err)
	}
	w := WatchRSS(cmd.Process.Pid, time.Millisecond)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	peak := w.Stop()
	maxrss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	if peak <= 0 || peak > 16<<20 {
		t.Fatalf("unexpected VmHWM of sleep; got %d bytes; want between 1 byte and 16 MiB", peak)
	}
	t.Logf("sleep: VmHWM %d KiB, ru_maxrss %d KiB", peak>>10, maxrss>>10)
	if maxrss < 96<<20 {
		t.Logf("ru_maxrss does not include the parent here (kernel differs); the watch is still right")
	}
}
