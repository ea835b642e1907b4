package e2e

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// RSSWatch follows a process's peak resident set (VmHWM in
// /proc/<pid>/status) until it exits.
//
// Why not rusage: a process started by os/exec is created with
// CLONE_VM|CLONE_VFORK, and at exec Linux folds the parent's high-water RSS
// into the child's ru_maxrss, so ru_maxrss after exit reports at least the
// parent's peak (a test binary or the demo), not the extension's. VmHWM
// belongs to the memory map created by exec, so it is the process's own.
// It is a high-water mark, so sampling often enough near the end (the watch
// samples every interval until the process is gone) gives the peak.
//
// An RSSWatch is safe for concurrent use.
type RSSWatch struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	peak int64
}

// WatchRSS starts sampling pid every interval (default 5 ms).
func WatchRSS(pid int, interval time.Duration) *RSSWatch {
	if interval <= 0 {
		interval = 5 * time.Millisecond
	}
	w := &RSSWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if !w.sample() {
				return
			}
			select {
			case <-w.stop:
				w.sample()
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// sample reads VmHWM once; false when the process is gone.
func (w *RSSWatch) sample() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(w.pid) + "/status")
	if err != nil {
		return false
	}
	i := bytes.Index(b, []byte("\nVmHWM:"))
	if i < 0 {
		return false // a zombie has no memory map left
	}
	f := bytes.Fields(b[i+len("\nVmHWM:"):])
	if len(f) < 2 {
		return false
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return false
	}
	w.mu.Lock()
	w.peak = max(w.peak, kb<<10)
	w.mu.Unlock()
	return true
}

// Peak returns the largest VmHWM seen so far, in bytes.
func (w *RSSWatch) Peak() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// Stop ends the sampling (after one last sample) and returns Peak.
func (w *RSSWatch) Stop() int64 {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.Peak()
}
