package lambdasim

import (
	"context"
	"testing"
	"time"
)

// While a refused batch is retried nothing takes from the queue, so only
// push can reclaim the slots of the events it drops.
func TestQueueSlotsBoundedWhileDropping(t *testing.T) {
	b := &subscriber{ctx: context.Background(), wake: make(chan struct{}, 1)}
	const limit, size, pushes = 64 << 10, 200, 100_000
	ev := make([]byte, size)
	dropped := 0
	for i := range pushes {
		d, _ := b.push(qitem{id: i, b: ev, at: time.Now()}, limit)
		dropped += len(d)
	}
	live := len(b.queue) - b.head
	if live*size > limit || dropped+live != pushes {
		t.Fatalf("unexpected queue; got %d queued (%d bytes) and %d dropped; want at most %d bytes and %d in all", live, live*size, dropped, limit, pushes)
	}
	if bound := 2*live + 4096 + 1; len(b.queue) > bound {
		t.Fatalf("unexpected queue slots for %d queued events; got %d; want at most %d", live, len(b.queue), bound)
	}
}
