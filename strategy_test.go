package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/flush"
	"github.com/kte-dev/kinesis-telemetry-extension/flush/flushtest"
	"github.com/kte-dev/kinesis-telemetry-extension/metrics/emftest"
)

// Tests of KTE_FLUSH against the httptest Runtime API: when delivery
// happens relative to INVOKE, runtimeDone and /event/next.

// fakeKinesisEnv starts a fake Kinesis endpoint and points the SDK at it.
func fakeKinesisEnv(t *testing.T) *flushtest.Kinesis {
	t.Helper()
	k := flushtest.NewKinesis(0)
	t.Cleanup(k.Close)
	for _, kv := range k.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	return k
}

// logLines returns n function log events for requestID, seq=from..from+n-1.
func logLines(requestID string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"time":"2026-01-01T00:00:03.140Z","type":"function","record":"%s\tINFO\tline seq=%d"}`, requestID, from+i)
	}
	return out
}

func runtimeDoneEvent(requestID string) string {
	return `{"time":"2026-01-01T00:00:03.190Z","type":"platform.runtimeDone","record":{"requestId":"` + requestID + `","status":"success"}}`
}

func body(events ...[]string) string {
	var all []string
	for _, e := range events {
		all = append(all, e...)
	}
	return "[" + strings.Join(all, ",") + "]"
}

// delivered returns the seq=N numbers of the records the fake received
// before t (by when they were answered), with their counts.
func delivered(k *flushtest.Kinesis, before time.Time) map[int]int {
	seen := map[int]int{}
	for _, c := range k.Calls() {
		if !c.Done.Before(before) {
			continue
		}
		for _, r := range c.Records {
			if i := bytes.Index(r, []byte("seq=")); i >= 0 {
				j := i + 4
				for j < len(r) && r[j] >= '0' && r[j] <= '9' {
					j++
				}
				n, _ := strconv.Atoi(string(r[i+4 : j]))
				seen[n]++
			}
		}
	}
	return seen
}

// wantSeqs fails unless got holds exactly seqs from..to-1, once each.
func wantSeqs(t *testing.T, what string, got map[int]int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("%s: unexpected delivered seqs; got %v; want %d..%d", what, got, from, to-1)
	}
	for i := from; i < to; i++ {
		if got[i] != 1 {
			t.Fatalf("%s: seq=%d delivered %d times; want once; got %v", what, i, got[i], got)
		}
	}
}

func (f *fakeRuntime) nextAt(n int) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextTimes[n-1]
}

func (f *fakeRuntime) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextCalls
}

func TestFlushInvokeDeliversAtInvoke(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "invoke"})
	rt.waitNext(1)

	// Telemetry that arrives between invocations stays buffered: the
	// packer is paused, so nothing can be in flight at a freeze.
	if got := h.post(body(logLines("req-0", 0, 10))); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := k.Count(); n != 0 {
		t.Fatalf("unexpected delivery before INVOKE: %d records", n)
	}
	invoked := time.Now()
	rt.invoke("req-1", 3*time.Second)
	rt.waitNext(2)
	next := rt.nextAt(2)
	wantSeqs(t, "at INVOKE 1", delivered(k, next), 0, 10)
	for _, c := range k.Calls() {
		if c.At.Before(invoked) {
			t.Fatalf("PutRecords at %v, before INVOKE at %v", c.At, invoked)
		}
	}
	// The function's own telemetry (and its runtimeDone) arrives after
	// /event/next: it waits for the next INVOKE.
	if got := h.post(body(logLines("req-1", 10, 5), []string{runtimeDoneEvent("req-1")})); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	time.Sleep(100 * time.Millisecond)
	wantSeqs(t, "before INVOKE 2", delivered(k, time.Now()), 0, 10)
	rt.invoke("req-2", 3*time.Second)
	rt.waitNext(3)
	wantSeqs(t, "at INVOKE 2", delivered(k, rt.nextAt(3)), 0, 15)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

func TestFlushEndWaitsForRuntimeDone(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "end", "KTE_FLUSH_END_MAX_WAIT_MS": "5000"})
	rt.waitNext(1)

	rt.invoke("req-1", 5*time.Second)
	// The function logs; the extension keeps working on the invocation.
	if got := h.post(body(logLines("req-1", 0, 10))); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	// A runtimeDone of another request does not end the wait.
	if got := h.post(body([]string{runtimeDoneEvent("req-0")})); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	time.Sleep(200 * time.Millisecond)
	if n := rt.calls(); n != 1 {
		t.Fatalf("unexpected /event/next before runtimeDone: %d calls", n)
	}
	if n := k.Count(); n != 0 {
		t.Fatalf("unexpected delivery before runtimeDone (no full batch): %d records", n)
	}
	done := time.Now()
	if got := h.post(body(logLines("req-1", 10, 5), []string{runtimeDoneEvent("req-1")})); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.waitNext(2)
	next := rt.nextAt(2)
	// Everything of the invocation is in Kinesis before /event/next, and
	// was sent after runtimeDone arrived.
	wantSeqs(t, "end of invoke 1", delivered(k, next), 0, 15)
	for _, c := range k.Calls() {
		if c.At.Before(done) {
			t.Fatalf("PutRecords at %v, before runtimeDone at %v", c.At, done)
		}
	}
	if wait := next.Sub(done); wait > time.Second {
		t.Fatalf("/event/next %v after runtimeDone; want promptly", wait)
	}

	// A runtimeDone that arrives before the lifecycle starts waiting (a
	// very short function) is remembered.
	rt.invoke("req-2", 5*time.Second)
	if got := h.post(body(logLines("req-2", 15, 3), []string{runtimeDoneEvent("req-2")})); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.waitNext(3)
	wantSeqs(t, "end of invoke 2", delivered(k, rt.nextAt(3)), 0, 18)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

// TestFlushEndNeverPastDeadline: runtimeDone never comes (the function
// timed out or crashed, or its telemetry was lost); the wait ends in time
// for the flush to finish before the deadline minus the margin.
func TestFlushEndNeverPastDeadline(t *testing.T) {
	f := func(deadline time.Duration, maxWait string, wantMin, wantMax time.Duration) {
		t.Helper()
		k := fakeKinesisEnv(t)
		rt := newFakeRuntime(t)
		h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "end", "KTE_FLUSH_END_MAX_WAIT_MS": maxWait, "KTE_SHUTDOWN_MARGIN_MS": "100"})
		rt.waitNext(1)
		if got := h.post(body(logLines("req-0", 0, 7))); got != 200 {
			t.Fatalf("unexpected status; got %d", got)
		}
		start := time.Now()
		rt.invoke("req-1", deadline)
		rt.waitNext(2)
		took := rt.nextAt(2).Sub(start)
		if took < wantMin || took > wantMax {
			t.Fatalf("deadline %v, max wait %s: /event/next after %v; want between %v and %v", deadline, maxWait, took, wantMin, wantMax)
		}
		// What was buffered was still delivered before /event/next.
		wantSeqs(t, fmt.Sprint("invoke with deadline ", deadline), delivered(k, rt.nextAt(2)), 0, 7)
		rt.shutdown("timeout", time.Second)
		if code := h.exitCode(); code != 0 {
			t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
		}
	}
	// deadlineMs has millisecond resolution; allow that much early. The
	// wait ends at deadline - margin (100 ms) - endFlushReserve (250 ms).
	const slack = 150 * time.Millisecond // scheduling on a loaded machine
	f(800*time.Millisecond, "60000", 800*time.Millisecond-100*time.Millisecond-endFlushReserve-time.Millisecond, 700*time.Millisecond)
	// KTE_FLUSH_END_MAX_WAIT_MS bounds it when the deadline is far.
	f(10*time.Second, "150", 150*time.Millisecond, 150*time.Millisecond+slack)
	// A deadline already too close to wait at all: flush and go.
	f(200*time.Millisecond, "60000", 0, 100*time.Millisecond+slack/3) // 100 ms: deadline - margin
}

func TestFlushPeriodic(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "periodic:1s", "KTE_BATCH_MAX_RECORDS": "20"})
	rt.waitNext(1)
	post := func(events []string) {
		t.Helper()
		if got := h.post(body(events)); got != 200 {
			t.Fatalf("unexpected status; got %d", got)
		}
	}

	post(logLines("req-0", 0, 5))
	rt.invoke("req-1", 3*time.Second) // the first INVOKE always flushes
	rt.waitNext(2)
	wantSeqs(t, "first INVOKE", delivered(k, rt.nextAt(2)), 0, 5)

	post(logLines("req-1", 5, 5))
	rt.invoke("req-2", 3*time.Second) // within the period: nothing sent
	rt.waitNext(3)
	time.Sleep(50 * time.Millisecond)
	wantSeqs(t, "INVOKE within the period", delivered(k, time.Now()), 0, 5)

	post(logLines("req-2", 10, 25)) // now more than a full batch (20)
	rt.invoke("req-3", 3*time.Second)
	rt.waitNext(4)
	wantSeqs(t, "INVOKE with a full batch", delivered(k, rt.nextAt(4)), 0, 35)

	post(logLines("req-3", 35, 5))
	rt.invoke("req-4", 3*time.Second) // the full batch restarted the period
	rt.waitNext(5)
	time.Sleep(50 * time.Millisecond)
	wantSeqs(t, "INVOKE after a full-batch flush", delivered(k, time.Now()), 0, 35)

	// The period counts from the full-batch flush, done by /event/next 4.
	time.Sleep(time.Until(rt.nextAt(4).Add(1100 * time.Millisecond)))
	rt.invoke("req-5", 3*time.Second) // the period has passed
	rt.waitNext(6)
	wantSeqs(t, "INVOKE after the period", delivered(k, rt.nextAt(6)), 0, 40)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

func TestFlushAutoSwitchesToInvokeStyle(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "auto", "KTE_FLUSH_END_MAX_WAIT_MS": "5000"})
	rt.waitNext(1)
	seq := 0
	// Frequent invocations: the first AutoWindow wait for their runtimeDone
	// (end style) ...
	for i := 1; i <= flush.AutoWindow; i++ {
		req := fmt.Sprint("req-", i)
		rt.invoke(req, 5*time.Second)
		if got := h.post(body(logLines(req, seq, 3))); got != 200 {
			t.Fatalf("unexpected status; got %d", got)
		}
		seq += 3
		time.Sleep(20 * time.Millisecond)
		if n := rt.calls(); n != i {
			t.Fatalf("invoke %d: /event/next before runtimeDone (%d calls)", i, n)
		}
		if got := h.post(body([]string{runtimeDoneEvent(req)})); got != 200 {
			t.Fatalf("unexpected status; got %d", got)
		}
		rt.waitNext(i + 1)
		wantSeqs(t, "end-style invoke", delivered(k, rt.nextAt(i+1)), 0, seq)
	}
	// ... then, with AutoWindow gaps far under AutoFastGap, invoke style:
	// /event/next without waiting for runtimeDone, delivery at the next
	// INVOKE.
	req := fmt.Sprint("req-", flush.AutoWindow+1)
	start := time.Now()
	rt.invoke(req, 5*time.Second)
	rt.waitNext(flush.AutoWindow + 2)
	if took := rt.nextAt(flush.AutoWindow + 2).Sub(start); took > time.Second {
		t.Fatalf("auto still waited %v for runtimeDone after %d quick invocations", took, flush.AutoWindow)
	}
	if got := h.post(body(logLines(req, seq, 3), []string{runtimeDoneEvent(req)})); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	time.Sleep(50 * time.Millisecond)
	wantSeqs(t, "after invoke-style invoke", delivered(k, time.Now()), 0, seq)
	rt.invoke("req-last", 5*time.Second)
	rt.waitNext(flush.AutoWindow + 3)
	wantSeqs(t, "at the next INVOKE", delivered(k, rt.nextAt(flush.AutoWindow+3)), 0, seq+3)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

func TestMetricsEMFAtShutdown(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{
		"KTE_METRICS": "true", "KTE_METRICS_NAMESPACE": "KTE/Test", "KTE_METRICS_DIMENSIONS": "function,version,stream",
	})
	rt.waitNext(1)
	dropped := `{"time":"2026-01-01T00:00:03.191Z","type":"platform.logsDropped","record":{"droppedBytes":4096,"droppedRecords":12,"reason":"Consumer seems to have fallen behind"}}`
	if got := h.post(body(logLines("req-0", 0, 30), []string{dropped})); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.invoke("req-1", 3*time.Second)
	rt.waitNext(2)
	if got := h.post(body(logLines("req-1", 30, 10))); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.invoke("req-2", 3*time.Second)
	rt.waitNext(3)
	// Less than a minute since start: no line at the INVOKEs.
	if out := h.stdout.String(); out != "" {
		t.Fatalf("unexpected metrics before a minute has passed: %q", out)
	}
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	out := h.stdout.String()
	ls := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(ls) != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("unexpected stdout; want one EMF line; got %q", out)
	}
	doc, err := emftest.Parse([]byte(ls[0]))
	if err != nil {
		t.Fatalf("invalid EMF line: %v\n%s", err, ls[0])
	}
	if d := time.Since(time.UnixMilli(doc.Timestamp)); d < 0 || d > 10*time.Second {
		t.Fatalf("unexpected Timestamp %d (%v ago)", doc.Timestamp, d)
	}
	if doc.Namespace != "KTE/Test" || fmt.Sprint(doc.Dimensions) != "[[FunctionName FunctionVersion StreamName]]" {
		t.Fatalf("unexpected namespace or dimensions: %q %v", doc.Namespace, doc.Dimensions)
	}
	if doc.DimValues["FunctionName"] != "orders-api" || doc.DimValues["FunctionVersion"] != "$LATEST" || doc.DimValues["StreamName"] != "telemetry" {
		t.Fatalf("unexpected dimension values: %v", doc.DimValues)
	}
	if len(doc.Metrics) != len(metricDefs) {
		t.Fatalf("unexpected number of metrics; got %d; want %d", len(doc.Metrics), len(metricDefs))
	}
	want := map[string]float64{
		"EventsReceived": 41, "EventsSent": 41, "EventsDropped": 12, "DroppedByLambda": 12,
		"DroppedByLambdaBytes": 4096, "DroppedShutdown": 0, "EventsBuffered": 0, "Flushes": 3,
		"FlushesIncomplete": 0, "RefusedFull": 0, "EndWaitExpired": 0,
	}
	for name, v := range want {
		if doc.Values[name] != v {
			t.Fatalf("unexpected %s; got %v; want %v\n%s", name, doc.Values[name], v, ls[0])
		}
	}
	if doc.Values["PutRecordsCalls"] < 2 || doc.Values["BytesSent"] <= 0 || doc.Values["RingHighWaterBytes"] <= 0 ||
		doc.Values["FlushLatencyMax"] < doc.Values["FlushLatencyAvg"] || doc.Values["FlushLatencyMax"] <= 0 {
		t.Fatalf("implausible metrics: %v", doc.Values)
	}
	if string(doc.Root["FlushStrategy"]) != `"invoke"` {
		t.Fatalf("unexpected FlushStrategy; got %s", doc.Root["FlushStrategy"])
	}
	if got := len(delivered(k, time.Now())); got != 40 {
		t.Fatalf("unexpected delivered log lines; got %d; want 40", got)
	}
}

func TestMetricsOff(t *testing.T) {
	fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_METRICS": "false"})
	rt.waitNext(1)
	rt.invoke("req-1", 3*time.Second)
	rt.waitNext(2)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d", code)
	}
	if out := h.stdout.String(); out != "" {
		t.Fatalf("unexpected stdout with KTE_METRICS=false: %q", out)
	}
}

// TestMetricsCountCallsCutByTheFlushDeadline: a PutRecords call that the
// flush's deadline cuts short (KTE_SEND_TIMEOUT_MS longer than the flush)
// failed, and CallsFailed counts it: against a stream that never answers,
// every call made is a failed one.
func TestMetricsCountCallsCutByTheFlushDeadline(t *testing.T) {
	hangingKinesis(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_METRICS": "on", "KTE_FLUSH_MAX_MS": "150", "KTE_SEND_TIMEOUT_MS": "5000"})
	rt.waitNext(1)
	if got := h.post(body(logLines("req-0", 0, 20))); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.invoke("req-1", 10*time.Second)
	rt.waitNext(2)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	doc, err := emftest.Parse([]byte(h.stdout.String()))
	if err != nil {
		t.Fatalf("invalid EMF line: %v\n%s", err, h.stdout.String())
	}
	v := doc.Values
	if v["PutRecordsCalls"] < 1 || v["CallsFailed"] != v["PutRecordsCalls"] || v["CallsThrottled"] != 0 || v["CallsRejected"] != 0 ||
		v["EventsSent"] != 0 || v["DroppedShutdown"] != 20 {
		t.Fatalf("unexpected metrics for calls cut by the flush deadline; want CallsFailed = PutRecordsCalls >= 1: %v", v)
	}
}

// TestFlushInvokeCatchesPreviousTail: the end of invocation N (its last log
// lines and runtimeDone) usually reaches the extension just after the thaw
// for N+1; the invoke-style flush waits for it briefly (at most
// KTE_BUFFER_TIMEOUT_MS + quietSlack) instead of leaving it for N+2.
func TestFlushInvokeCatchesPreviousTail(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "invoke", "KTE_BUFFER_TIMEOUT_MS": "100"})
	rt.waitNext(1)
	post := func(events ...[]string) {
		t.Helper()
		if got := h.post(body(events...)); got != 200 {
			t.Fatalf("unexpected status; got %d", got)
		}
	}
	rt.invoke("req-1", 3*time.Second)
	rt.waitNext(2)
	post(logLines("req-1", 0, 5), []string{runtimeDoneEvent("req-1")}) // before the freeze
	rt.invoke("req-2", 3*time.Second)
	rt.waitNext(3)
	wantSeqs(t, "INVOKE 2", delivered(k, rt.nextAt(3)), 0, 5)

	// req-2's tail arrives 40 ms after INVOKE 3: still in this flush.
	start := time.Now()
	rt.invoke("req-3", 3*time.Second)
	time.Sleep(40 * time.Millisecond)
	post(logLines("req-2", 5, 5), []string{runtimeDoneEvent("req-2")})
	rt.waitNext(4)
	wantSeqs(t, "INVOKE 3", delivered(k, rt.nextAt(4)), 0, 10)
	if took := rt.nextAt(4).Sub(start); took < 40*time.Millisecond {
		t.Fatalf("/event/next after %v, before the tail arrived", took)
	}

	// req-3's tail never comes: the wait ends after 100 + 30 ms.
	post(logLines("req-3", 10, 2))
	start = time.Now()
	rt.invoke("req-4", 3*time.Second)
	rt.waitNext(5)
	if took := rt.nextAt(5).Sub(start); took < 130*time.Millisecond || took > 600*time.Millisecond {
		t.Fatalf("/event/next after %v; want about 130ms", took)
	}
	wantSeqs(t, "INVOKE 4", delivered(k, rt.nextAt(5)), 0, 12)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

// TestFlushInvokeTailWaitIsBounded: with a long KTE_BUFFER_TIMEOUT_MS
// Lambda holds the previous invocation's tail that long; the invoke-style
// flush still catches a tail that comes soon, but waits at most
// prevTailMaxWait + quietSlack for one that does not (the old wait lasted
// the buffer timeout, up to the deadline: billed time at every INVOKE), and
// the extension says so at start.
func TestFlushInvokeTailWaitIsBounded(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	// KTE_FLUSH_MAX_MS and the deadlines are long, so that only the bound
	// on the wait itself can end it in time.
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "invoke", "KTE_BUFFER_TIMEOUT_MS": "30000", "KTE_FLUSH_MAX_MS": "60000"})
	rt.waitNext(1)
	rt.invoke("req-1", 10*time.Second)
	rt.waitNext(2)

	// req-1's tail arrives 40 ms after INVOKE 2: still in this flush.
	rt.invoke("req-2", 10*time.Second)
	time.Sleep(40 * time.Millisecond)
	if got := h.post(body(logLines("req-1", 0, 5), []string{runtimeDoneEvent("req-1")})); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.waitNext(3)
	wantSeqs(t, "INVOKE 2", delivered(k, rt.nextAt(3)), 0, 5)

	// req-2's tail is held by Lambda for up to 30 s: INVOKE 3 does not wait
	// for it (130 ms), nor anywhere near its deadline.
	rt.invoke("req-3", 120*time.Second)
	select {
	case <-rt.nextCalled:
	case <-time.After(3 * time.Second):
		t.Fatalf("no /event/next within 3s of an INVOKE with KTE_BUFFER_TIMEOUT_MS=30000; want after about 130ms")
	}
	if out := h.stderr.String(); !strings.Contains(out, "lower KTE_BUFFER_TIMEOUT_MS to 100 or less") {
		t.Fatalf("no advice on KTE_BUFFER_TIMEOUT_MS at start; stderr:\n%s", out)
	}
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

// TestFlushInvokeNoTailWaitWithoutPlatform: without platform events no
// runtimeDone ever comes, so the invoke-style flush does not wait for one.
func TestFlushInvokeNoTailWaitWithoutPlatform(t *testing.T) {
	fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "invoke", "KTE_TYPES": "function,extension", "KTE_BUFFER_TIMEOUT_MS": "600"})
	rt.waitNext(1)
	rt.invoke("req-1", 3*time.Second)
	rt.waitNext(2)
	start := time.Now()
	rt.invoke("req-2", 3*time.Second) // would wait 630 ms for req-1's runtimeDone
	rt.waitNext(3)
	if took := rt.nextAt(3).Sub(start); took > 300*time.Millisecond {
		t.Fatalf("/event/next after %v; want no wait for a runtimeDone that cannot come", took)
	}
	rt.shutdown("spindown", 3*time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

// TestFlushEndNoWaitWithoutTelemetry: where the Telemetry API is not
// supported (a local emulator answers the subscription 202) no runtimeDone
// ever comes, so end does not wait KTE_FLUSH_END_MAX_WAIT_MS for one at every
// INVOKE. (Without platform in KTE_TYPES, config refuses end and auto.)
func TestFlushEndNoWaitWithoutTelemetry(t *testing.T) {
	fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	rt.subscribeStatus = 202
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH": "end", "KTE_FLUSH_END_MAX_WAIT_MS": "1500"})
	rt.waitNext(1)
	for i := 2; i <= 3; i++ {
		start := time.Now()
		rt.invoke(fmt.Sprint("req-", i), 5*time.Second)
		rt.waitNext(i)
		if took := rt.nextAt(i).Sub(start); took > 500*time.Millisecond {
			t.Fatalf("invoke %d: /event/next after %v; want no wait for a runtimeDone that cannot come", i, took)
		}
	}
	rt.shutdown("spindown", 3*time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
}

// TestFlushEndAdvisesShortBufferTimeout: end waits, billed, for a
// runtimeDone that Lambda holds up to KTE_BUFFER_TIMEOUT_MS; the extension
// says so once at start unless the timeout is already the minimum.
func TestFlushEndAdvisesShortBufferTimeout(t *testing.T) {
	const advice = "set KTE_BUFFER_TIMEOUT_MS=25, the minimum"
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{"KTE_FLUSH": "end", "KTE_BUFFER_TIMEOUT_MS": "100"}, true},
		{map[string]string{"KTE_FLUSH": "end", "KTE_BUFFER_TIMEOUT_MS": "25"}, false},
		{map[string]string{"KTE_FLUSH": "invoke", "KTE_BUFFER_TIMEOUT_MS": "100"}, false},
	} {
		fakeKinesisEnv(t)
		rt := newFakeRuntime(t)
		h := startExtension(t, rt, tc.env)
		rt.waitNext(1)
		rt.shutdown("spindown", time.Second)
		if code := h.exitCode(); code != 0 {
			t.Fatalf("%v: unexpected exit code %d; stderr:\n%s", tc.env, code, h.stderr.String())
		}
		if got := strings.Count(h.stderr.String(), advice); got != map[bool]int{false: 0, true: 1}[tc.want] {
			t.Fatalf("%v: the advice appears %d times; want it: %v; stderr:\n%s", tc.env, got, tc.want, h.stderr.String())
		}
	}
}

// TestShutdownNearDeadlineExitsInTime: SHUTDOWN with little time left,
// while Lambda's keep-alive connection to the listener is open: the
// extension delivers, reports and exits before the deadline (stopping the
// listener does not wait for fasthttp's 100 ms check of open connections).
// Every event is delivered or on stderr: with -race on a busy machine the
// 40 ms the flush gets can pass before the Kinesis client is built or its
// call answered, and the events then go to stderr, as they should.
func TestShutdownNearDeadlineExitsInTime(t *testing.T) {
	k := fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_SHUTDOWN_MARGIN_MS": "0"})
	rt.waitNext(1)
	if got := h.post(body(logLines("req-0", 0, 5))); got != 200 { // keeps its connection open
		t.Fatalf("unexpected status; got %d", got)
	}
	deadline := time.Now().Add(80 * time.Millisecond).Truncate(time.Millisecond)
	rt.next <- map[string]any{"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline.UnixMilli()}
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	// Lambda kills the process at the deadline; allow the time from the
	// exit to this check on a loaded machine (the old code was ~50 ms late;
	// -race under two CPU hogs once took 11 ms).
	if late := time.Since(deadline); late > 20*time.Millisecond {
		t.Fatalf("exited %v after the SHUTDOWN deadline; stderr:\n%s", late, h.stderr.String())
	}
	// Nothing lost: what the summary counts as sent is in Kinesis, the rest
	// on stderr. A call cut short at the deadline may have been stored
	// all the same, so Kinesis may hold more than sent= (at least once).
	out := h.stderr.String()
	line := summaryOf(t, out)
	sent, dropped := summaryField(t, line, "sent"), summaryField(t, line, "dropped_shutdown")
	stored, undelivered := k.Count(), strings.Count(out, "KTE_UNDELIVERED reason=shutdown_deadline {")
	if sent+dropped != 5 || undelivered != dropped || stored < sent || stored > 5 {
		t.Fatalf("unexpected delivery; got sent=%d dropped_shutdown=%d, %d records in Kinesis and %d on stderr; want 5 sent or dropped, each dropped on stderr, each sent in Kinesis; stderr:\n%s",
			sent, dropped, stored, undelivered, out)
	}
	if sent != 5 {
		t.Logf("%d of 5 events delivered before the deadline (%d stored), the rest on stderr", sent, stored)
	}
}

// TestMetricsTickerUnderManagedInstances: with no INVOKE events (Managed
// Instances register SHUTDOWN only), the EMF line comes from a ticker, and
// once more at SHUTDOWN; each line carries the change since the previous
// one, so the lines add up to the totals.
func TestMetricsTickerUnderManagedInstances(t *testing.T) {
	defer func(d time.Duration) { lmiMetricsInterval = d }(lmiMetricsInterval)
	lmiMetricsInterval = 150 * time.Millisecond
	fakeKinesisEnv(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_METRICS": "true", "AWS_LAMBDA_MAX_CONCURRENCY": "4"})
	rt.waitNext(1)
	if got := h.post(body(logLines("req-0", 0, 20))); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	lines := func() []string {
		out := strings.TrimSuffix(h.stdout.String(), "\n")
		if out == "" {
			return nil
		}
		return strings.Split(out, "\n")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(lines()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ls := lines()
	if len(ls) < 2 {
		t.Fatalf("unexpected EMF lines before SHUTDOWN; got %d; want at least 2 at a 150 ms interval; stderr:\n%s", len(ls), h.stderr.String())
	}
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	all := lines()
	if len(all) <= len(ls) {
		t.Fatalf("unexpected EMF lines; got %d after SHUTDOWN, %d before; want one more at SHUTDOWN", len(all), len(ls))
	}
	sum := 0.0
	for i, l := range all {
		doc, err := emftest.Parse([]byte(l))
		if err != nil {
			t.Fatalf("line %d is not EMF: %v\n%s", i, err, l)
		}
		got := doc.Values["EventsReceived"]
		if got < 0 {
			t.Fatalf("unexpected EventsReceived %v in line %d; want a change, never negative", got, i)
		}
		if string(doc.Root["FlushStrategy"]) != `"continuous"` {
			t.Fatalf("unexpected FlushStrategy %s under Managed Instances", doc.Root["FlushStrategy"])
		}
		sum += got
	}
	if sum != 20 {
		t.Fatalf("unexpected EventsReceived over %d lines: %v; want 20", len(all), sum)
	}
}
