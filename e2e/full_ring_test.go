package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// TestShutdownFullRing fills the ring before SHUTDOWN: the last invocation
// logs about 3.3 MB (200 lines of 16 KiB) into a 2 MiB ring (the smallest
// the buffering settings allow, enrichment off), so the listener refuses
// deliveries (503) and Lambda holds the rest, retrying with backoff, while
// the environment is frozen. At SHUTDOWN everything generated before it fits
// in the 2 s deadline against kinesalite (about 5 MB/s here): the test
// asserts that every event is in Kinesis, exactly once and byte for byte
// (enrichment is off, so the records are Lambda's bytes), that nothing went
// to stderr, and that the extension exited 0 before the deadline.
func TestShutdownFullRing(t *testing.T) {
	const ringBytes = 2 << 20
	r := newRun(t, runOptions{env: []string{"KTE_RING_BYTES=2MiB", "KTE_BUFFER_MAX_BYTES=256KiB", "KTE_ENRICH=false"}})
	w := Workload(3, 20, 10*time.Millisecond)
	w = append(w, lambdasim.Invocation{Duration: 200 * time.Millisecond, LogLines: 200, LineSizes: []int{16 << 10}})
	r.invoke(w)
	time.Sleep(200 * time.Millisecond) // frozen until SHUTDOWN
	r.end(2 * time.Second)
	o := r.reconcile()
	r.figures(&o)

	hw, _ := strconv.Atoi(o.summary["ring_high_water"])
	refused, _ := strconv.Atoi(o.summary["refused_full"])
	if hw < ringBytes*3/4 || refused == 0 {
		t.Fatalf("unexpected ring use; got high water %d of %d bytes and %d refused POSTs; want a full ring (the test does not test what it says)", hw, ringBytes, refused)
	}
	if len(o.ids) != 0 {
		t.Fatalf("unexpected enrichment with KTE_ENRICH=false; got %v", o.ids)
	}
	if !o.ExactlyOnce() || len(o.unacked) != 0 {
		t.Fatalf("unexpected delivery at SHUTDOWN with a full ring; got %s, %d never acknowledged (Lambda still held them when the extension exited %s after SHUTDOWN, deadline 2s); "+
			"want every event in Kinesis exactly once within the deadline%s", o.Reconciliation, len(o.unacked), r.exitAfter(), Describe(o.Missing, 3))
	}
}
