package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/faultproxy"
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
//
// Requests carry at most 1 MiB of records, so that room in the ring comes
// back before the whole ring is delivered. Uncapped, the first call at
// SHUTDOWN carried the whole ring (about 1.8 MB): under -race with two CPU
// hogs kinesalite took about 0.5 s for it, Lambda's retries were refused
// meanwhile (at 0, 0.16 and 0.42 s), the next came after a 0.4 s backoff,
// at 0.87 s, and the extension stopped listening at 0.9 s (its cap, half
// of the time left) with Lambda still holding 20-45 events. Capped, a retry
// finds room by 0.42 s, and the extension exits within 0.75 s; the ring
// still overflows (2 refused POSTs on an idle machine, 3-4 on a busy one).
func TestShutdownFullRing(t *testing.T) {
	const ringBytes = 2 << 20
	r := newRun(t, runOptions{env: []string{"KTE_RING_BYTES=2MiB", "KTE_BUFFER_MAX_BYTES=256KiB", "KTE_ENRICH=false",
		"KTE_BATCH_MAX_BYTES=1MiB"}})
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

// TestShutdownSlowStream leaves more at SHUTDOWN than a slow stream can take
// before the deadline: the last invocation logs about 1.6 MB (100 lines of
// 16 KiB), buffered until SHUTDOWN (KTE_FLUSH=invoke), and the fault proxy
// delays every PutRecords call by 600 ms with requests capped at 256 KiB, so
// the final flush can send only part of it in the 2 s deadline. The rest
// must be on stderr as KTE_UNDELIVERED lines: every event generated before
// SHUTDOWN in Kinesis or on stderr (a call cut short at the deadline may
// leave an event in both), both parts non-empty, the extension exiting 0
// before the deadline.
func TestShutdownSlowStream(t *testing.T) {
	var p *faultproxy.Server
	r := newRun(t, runOptions{
		endpoint: func(k string) string {
			var err error
			if p, err = faultproxy.Start(k, faultproxy.Faults{Delay: 1, DelayTime: 600 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p.URL
		},
		env: []string{"KTE_BATCH_MAX_BYTES=256KiB", "KTE_RECORD_MAX_BYTES=256KiB"},
	})
	w := Workload(2, 10, 10*time.Millisecond)
	w = append(w, lambdasim.Invocation{Duration: 100 * time.Millisecond, LogLines: 100, LineSizes: []int{16 << 10}})
	r.invoke(w)
	r.end(2 * time.Second)
	o := r.reconcile()
	r.figures(&o)
	t.Logf("proxy: %+v", p.Stats())

	if !o.OK() || len(o.unacked) != 0 {
		t.Fatalf("unexpected loss; got %s, %d never acknowledged; want every event in Kinesis or on stderr%s", o.Reconciliation, len(o.unacked), Describe(o.Missing, 3))
	}
	if o.OnStderr == 0 || o.InKinesis == 0 {
		t.Fatalf("unexpected split; got %d in Kinesis and %d on stderr; want both (the test does not test what it says)", o.InKinesis, o.OnStderr)
	}
	if o.reasons["shutdown_deadline"] != o.undelivered {
		t.Fatalf("unexpected KTE_UNDELIVERED reasons; got %v; want all %d shutdown_deadline", o.reasons, o.undelivered)
	}
	if got, want := o.summary["dropped_shutdown"], strconv.Itoa(o.undelivered); got != want {
		t.Fatalf("unexpected KTE_SUMMARY dropped_shutdown; got %s; want %s", got, want)
	}
}
