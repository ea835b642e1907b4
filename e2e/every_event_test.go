package e2e

import (
	"testing"
	"time"
)

// TestEveryEventOnce runs many invocations with mixed event sizes (about
// 100 B to 20 KiB, plus a 256 KiB, a 900 KiB and a 1.5 MiB event, the last
// larger than a Kinesis record) in both log formats and checks that every
// event is in Kinesis exactly once and intact: byte for byte what the
// simulator generated once the enrichment is taken off, the oversize event
// reassembled from its wrapped parts.
func TestEveryEventOnce(t *testing.T) {
	n, lines := 60, 40
	if testing.Short() {
		n, lines = 12, 20
	}
	r := newRun(t, runOptions{env: []string{"KTE_PARTITION_KEY=random"}})
	w := Workload(n, lines, 15*time.Millisecond, 256<<10, 900<<10, 1536<<10)
	r.invoke(w)
	r.end(2 * time.Second)
	o := r.reconcile()
	r.figures(&o)

	if !o.ExactlyOnce() {
		t.Fatalf("unexpected delivery; got %s; want every event in Kinesis exactly once%s", o.Reconciliation, Describe(o.Missing, 5))
	}
	if len(o.unacked) != 0 {
		t.Fatalf("unexpected events not acknowledged by the extension; got %d; want 0:%s", len(o.unacked), Describe(o.unacked, 5))
	}
	o.checkIdentity(t, "kte-sim-function")
	shards := map[string]int{}
	for _, rec := range o.records {
		shards[rec.ShardID]++
	}
	if len(shards) != 2 {
		t.Fatalf("unexpected shards used with random partition keys; got %v; want both", shards)
	}
	if got, want := o.summary["received"], itoa(len(o.sub.Acked)); got != want {
		t.Fatalf("unexpected KTE_SUMMARY received; got %s; want %s (events acknowledged)", got, want)
	}
	if got := o.summary["oversize_split"]; got != "1" {
		t.Fatalf("unexpected KTE_SUMMARY oversize_split; got %s; want 1 (the 1.5 MiB event)", got)
	}
	if got := o.summary["dropped_shutdown"]; got != "0" {
		t.Fatalf("unexpected KTE_SUMMARY dropped_shutdown; got %s; want 0", got)
	}
}
