//go:build unix

package ring_test

import (
	"runtime"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// TestOffHeapArenaIsNotHeap: NewOffHeap's arena is not counted by the Go
// heap (so the GC does not pace itself by it), New's is; both are usable.
func TestOffHeapArenaIsNotHeap(t *testing.T) {
	const size = 64 << 20
	heapGrowth := func(newRing func(int) (*ring.Ring, error)) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := newRing(size)
		if err != nil {
			t.Fatal(err)
		}
		if err := ringtest.Write(r, frame(1, 100), frame(2, 200)); err != nil {
			t.Fatal(err)
		}
		if got := ringtest.Drain(r); len(got) != 2 || string(got[1]) != string(frame(2, 200)) {
			t.Fatalf("unexpected frames %q", got)
		}
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(r)
		return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	}
	if g := heapGrowth(ring.New); g < size/2 {
		t.Fatalf("unexpected heap growth %d with New; want at least the arena's %d (the test does not measure what it says)", g, size)
	}
	if g := heapGrowth(ring.NewOffHeap); g >= size/8 {
		t.Fatalf("unexpected heap growth %d with NewOffHeap; want far below the arena's %d", g, size)
	}
}
