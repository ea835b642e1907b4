package main

import (
	"fmt"
	"sync"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
)

// runtimeDone remembers the request ids of the platform.runtimeDone events
// the listener has seen, for the flush strategies that wait for them. It is
// written from listener handler goroutines (once per invoke) and read by the
// lifecycle goroutine.
type runtimeDone struct {
	mu   sync.Mutex
	last string
	ch   chan struct{} // closed and replaced on every runtimeDone
}

func (x *extension) onRuntimeDone(requestID []byte) {
	x.done.mu.Lock()
	x.done.last = string(requestID)
	close(x.done.ch)
	x.done.ch = make(chan struct{})
	x.done.mu.Unlock()
}

// summaryPrefix starts the one line of counters written to stderr at exit.
const summaryPrefix = "KTE_SUMMARY"

// printSummary writes the counters as one greppable line to stderr:
// KTE_SUMMARY reason=... received=... sent=... retried=... dropped_<reason>=...
func (x *extension) printSummary(reason string, res batch.FlushResult, undelivered int) {
	fmt.Fprintln(x.env.stderr, x.summaryLine(reason, res, undelivered))
}

func (x *extension) summaryLine(reason string, res batch.FlushResult, undelivered int) string {
	ls := x.lis.Stats()
	ps := x.packer.Stats()
	rs := x.ring.Stats()
	return fmt.Sprintf("%s reason=%s received=%d posts=%d sent=%d put_calls=%d retried=%d throttled=%d "+
		"dropped_shutdown=%d dropped_oversize=%d dropped_by_lambda=%d quarantined=%d oversize_split=%d "+
		"refused_full=%d refused_too_large=%d ring_high_water=%d ring_bytes=%d final_flush_ms=%d",
		summaryPrefix, reason, ls.Events, ls.Posts, ps.Events, ps.Calls, ps.Retried, ps.Throttled+ps.CallThrottled,
		undelivered, ps.Oversize, ls.LogsDroppedRecords, ls.Malformed+ls.Overflow, ls.Oversize,
		ls.RefusedFull, ls.TooLarge, rs.HighWater, rs.Size, res.Duration.Milliseconds())
}
