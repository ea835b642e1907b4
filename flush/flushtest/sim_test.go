package flushtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/flush"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/testsupport"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// The real extension binary in the simulator, under each KTE_FLUSH
// strategy: when its PutRecords calls happen relative to INVOKE,
// runtimeDone and /event/next, on the simulator's timeline.

var extBin string

func TestMain(m *testing.M) {
	os.Exit(testsupport.Main(m, "flushtest-", func(ctx context.Context, dir string) error {
		var err error
		extBin, err = lambdasim.Build(ctx, "github.com/kte-dev/kinesis-telemetry-extension", dir, ExtensionName)
		return err
	}))
}

// run runs sc and checks what holds under every strategy: every event the
// extension acknowledged reached Kinesis exactly once, and no PutRecords was
// in flight outside an invocation's window (INVOKE to /event/next) or
// SHUTDOWN.
func run(t *testing.T, sc Scenario) *Result {
	t.Helper()
	out := &testsupport.SyncBuffer{}
	sc.Binary, sc.Output = extBin, out
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port, err := lambdasim.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(ctx, sc, port)
	if err != nil {
		t.Fatalf("%s: %v\nextension output:\n%s", sc.Flush, err, out.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("extension output:\n%s", out.String())
			for _, m := range r.Sim.Timeline() {
				t.Log(m)
			}
			for _, c := range r.Calls {
				t.Logf("PutRecords %d records at %v..%v", len(c.Records), c.At.Sub(r.Sim.Epoch()), c.Done.Sub(r.Sim.Epoch()))
			}
		}
	})
	var got [][]byte
	for _, c := range r.Calls {
		got = append(got, c.Records...)
	}
	st, _ := r.Sim.Subscriber(ExtensionName)
	if len(st.Acked) == 0 {
		t.Fatalf("%s: the extension acknowledged nothing", sc.Flush)
	}
	if d := lambdasim.Compare(r.Sim.Events(st.Acked), got); !d.OK() {
		t.Fatalf("%s: not exactly once: %d missing, %d duplicated, %d unexpected", sc.Flush, len(d.Missing), len(d.Duplicated), len(d.Unexpected))
	}
	for _, c := range r.Calls {
		at, done := c.At.Sub(r.Sim.Epoch()), c.Done.Sub(r.Sim.Epoch())
		if w := r.WindowOf(at); w == -2 || w != r.WindowOf(done) {
			t.Fatalf("%s: PutRecords from %v to %v is not inside one invocation window or SHUTDOWN", sc.Flush, at, done)
		}
	}
	return r
}

// windowsOf returns the window each event of the invocation was sent
// in (see Result.WindowOf).
func windowsOf(t *testing.T, r *Result, evs []lambdasim.Event) []int {
	t.Helper()
	out := make([]int, len(evs))
	for i, ev := range evs {
		at, ok := r.Sent[ev.ID]
		if !ok {
			t.Fatalf("event %d (%s) never sent", ev.ID, ev.Type)
		}
		out[i] = r.WindowOf(at)
	}
	return out
}

// checkNextInvoke checks that invocation i's log lines and runtimeDone
// were sent at the next INVOKE, as invoke-style delivery does: in window i+1
// (SHUTDOWN after the last invocation). The end of an invocation reaches
// the extension just after the next thaw, and the flush at INVOKE waits for
// it (for runtimeDone, at most KTE_BUFFER_TIMEOUT_MS + 30 ms = 55 ms). When
// it came later than that (a loaded machine), it goes one INVOKE later.
func checkNextInvoke(t *testing.T, r *Result, i int) {
	t.Helper()
	n := len(r.Invokes)
	res := r.Invokes[i]
	next := -1 // SHUTDOWN
	if i+1 < n {
		next = i + 1
	}
	late := -1
	if i+2 < n {
		late = i + 2
	}
	rd := r.EventsOf(res.RequestID, lambdasim.TypeRuntimeDone)
	if len(rd) != 1 {
		t.Fatalf("invoke %d: %d runtimeDone events", i, len(rd))
	}
	post, ok := r.Sim.Delivery(ExtensionName, rd[0].ID)
	if !ok {
		t.Fatalf("invoke %d: runtimeDone never reached the extension", i)
	}
	inTime := next < 0 || post.At <= r.Invokes[next].Start+40*time.Millisecond
	for j, w := range windowsOf(t, r, r.EventsOf(res.RequestID, lambdasim.TypeFunction, lambdasim.TypeRuntimeDone)) {
		if w != next && (inTime || w != late) {
			t.Fatalf("invoke %d: event %d sent in window %d; want %d (runtimeDone POSTed at %v, in time: %v)", i, j, w, next, post.At, inTime)
		}
	}
}

func workload(n int, d time.Duration, lines int) []lambdasim.Invocation {
	out := make([]lambdasim.Invocation, n)
	for i := range out {
		out[i] = lambdasim.Invocation{Duration: d, LogLines: lines}
	}
	return out
}

func TestSimInvoke(t *testing.T) {
	t.Parallel()
	r := run(t, Scenario{Flush: "invoke", Invocations: workload(4, 150*time.Millisecond, 6), Every: 300 * time.Millisecond})
	for i, res := range r.Invokes {
		checkNextInvoke(t, r, i)
		// No waiting for runtimeDone: the extension is done before the
		// function (150 ms), even after waiting for the previous tail (at most
		// 55 ms).
		if ext := res.Extensions[0]; ext.Next >= res.RuntimeDone {
			t.Fatalf("invoke %d: the extension took %v, the function %v; want a prompt /event/next", i, ext.Next-ext.Invoked, res.RuntimeDone-res.Start)
		}
	}
}

func TestSimEnd(t *testing.T) {
	t.Parallel()
	r := run(t, Scenario{Flush: "end", Invocations: workload(4, 60*time.Millisecond, 6), Every: 150 * time.Millisecond})
	for i, res := range r.Invokes {
		rd := r.EventsOf(res.RequestID, lambdasim.TypeRuntimeDone)
		if len(rd) != 1 {
			t.Fatalf("invoke %d: %d runtimeDone events", i, len(rd))
		}
		post, ok := r.Sim.Delivery(ExtensionName, rd[0].ID)
		if !ok {
			t.Fatalf("invoke %d: runtimeDone not delivered to the extension", i)
		}
		_, next := r.Window(i)
		// Everything of the invocation is in Kinesis before its
		// /event/next, and was sent once runtimeDone had arrived.
		for _, ev := range r.EventsOf(res.RequestID, lambdasim.TypeFunction, lambdasim.TypeRuntimeDone, lambdasim.TypeStart) {
			if d, ok := r.Delivered[ev.ID]; !ok || d > next {
				t.Fatalf("invoke %d: %s event delivered at %v (%v), after /event/next at %v", i, ev.Type, d, ok, next)
			}
		}
		for _, ev := range r.EventsOf(res.RequestID, lambdasim.TypeFunction) {
			if s, ok := r.Sent[ev.ID]; !ok || s < post.At {
				t.Fatalf("invoke %d: log line sent at %v, before runtimeDone's POST at %v", i, s, post.At)
			}
		}
		if !(post.At <= next && res.RuntimeDone <= post.At) {
			t.Fatalf("invoke %d: runtimeDone at %v, POSTed at %v, /event/next at %v", i, res.RuntimeDone, post.At, next)
		}
		// Its platform.report is produced after the extension finished: it
		// goes with the next invocation's delivery, or at SHUTDOWN.
		for _, w := range windowsOf(t, r, r.EventsOf(res.RequestID, lambdasim.TypeReport)) {
			if !(w == i+1 || w == -1 && i == len(r.Invokes)-1) {
				t.Fatalf("invoke %d: report sent in window %d; want %d", i, w, i+1)
			}
		}
		if res.Overhead <= 0 || res.Overhead > time.Second {
			t.Fatalf("invoke %d: unexpected overhead %v", i, res.Overhead)
		}
	}
}

func TestSimPeriodic(t *testing.T) {
	t.Parallel()
	const period = time.Second // the shortest KTE_FLUSH=periodic allows
	n, minFlushes := 9, 2      // over 2.4 s: at 0 (maybe empty), 1.2 s, 2.4 s
	if testing.Short() {
		n, minFlushes = 5, 1 // over 1.2 s
	}
	r := run(t, Scenario{Flush: "periodic:1s", Invocations: workload(n, 30*time.Millisecond, 3), Every: 300 * time.Millisecond})
	flushed := map[int]bool{}
	for _, c := range r.Calls {
		if w := r.WindowOf(c.At.Sub(r.Sim.Epoch())); w >= 0 {
			flushed[w] = true
		}
	}
	// The first INVOKE always flushes, though it may find nothing to send
	// (the init telemetry reaches the extension just after the thaw); the
	// period counts from it. Later, each invocation holds telemetry of the
	// previous ones, so a flush shows as PutRecords calls.
	// The extension's clock and the simulator's differ by the INVOKE's
	// trip: a few ms, more on a loaded machine.
	const tol = 150 * time.Millisecond
	last := r.Invokes[0].Start
	for i := 1; i < len(r.Invokes); i++ {
		since := r.Invokes[i].Start - last
		switch {
		case flushed[i] && since < period-tol:
			t.Fatalf("invoke %d: delivery %v after the previous one; want at least %v", i, since, period)
		case !flushed[i] && since > period+tol:
			t.Fatalf("invoke %d: no delivery %v after the previous one; want one after %v", i, since, period)
		}
		if flushed[i] {
			last = r.Invokes[i].Start
		}
	}
	if n := len(flushed); n < minFlushes || n > 3 {
		t.Fatalf("unexpected number of delivering invocations over %v; got %d (%v)", r.Invokes[len(r.Invokes)-1].Start-r.Invokes[0].Start, n, flushed)
	}
}

func TestSimAuto(t *testing.T) {
	t.Parallel()
	n := flush.AutoWindow + 3
	// 30 ms functions every 100 ms: gaps far below AutoFastGap.
	r := run(t, Scenario{Flush: "auto", Invocations: workload(n, 30*time.Millisecond, 2), Every: 100 * time.Millisecond})
	for i, res := range r.Invokes {
		_, next := r.Window(i)
		logs := r.EventsOf(res.RequestID, lambdasim.TypeFunction)
		if i < flush.AutoWindow {
			// Fewer than AutoWindow gaps known: end style, everything
			// delivered before /event/next.
			for _, ev := range logs {
				if d, ok := r.Delivered[ev.ID]; !ok || d > next {
					t.Fatalf("invoke %d (end style): log delivered at %v (%v), after /event/next at %v", i, d, ok, next)
				}
			}
			continue
		}
		// Then invoke style: delivery at the next INVOKE.
		checkNextInvoke(t, r, i)
	}
}

// TestSimEndTimeoutAndCrash: runtimeDone comes only at the deadline (a
// timeout) or early (a crash). After a timeout the extension has called
// /event/next before the deadline; after a crash it has delivered the
// invocation's telemetry right after runtimeDone, before its SHUTDOWN.
//
// The extension stops waiting at the deadline minus KTE_SHUTDOWN_MARGIN_MS
// minus endFlushReserve (250 ms); a margin of 500 ms leaves the test 750 ms
// of slack for a loaded machine.
func TestSimEndTimeoutAndCrash(t *testing.T) {
	t.Parallel()
	const timeout = 1500 * time.Millisecond
	f := func(outcome lambdasim.Outcome, d time.Duration) *Result {
		t.Helper()
		invs := []lambdasim.Invocation{{Duration: 20 * time.Millisecond, LogLines: 2}, {Duration: d, LogLines: 4, Outcome: outcome}}
		r := run(t, Scenario{Flush: "end", Env: []string{"KTE_FLUSH_END_MAX_WAIT_MS=60000", "KTE_SHUTDOWN_MARGIN_MS=500"},
			Timeout: timeout, Invocations: invs})
		res := r.Invokes[1]
		if res.Reset == nil {
			t.Fatalf("%s: want a reset", outcome)
		}
		for _, x := range res.Reset.Extensions {
			if x.ExitCode != 0 || x.Killed != "" {
				t.Fatalf("%s: extension ended %+v after the reset", outcome, x)
			}
		}
		return r
	}

	r := f(lambdasim.Timeout, timeout)
	res := r.Invokes[1]
	from, next := r.Window(1)
	deadline := res.Deadline.Sub(r.Sim.Epoch())
	if len(res.Late) != 0 || res.Extensions[0].Next == 0 || next >= deadline {
		t.Fatalf("timeout: /event/next at %v (late %v); want before the deadline %v", next, res.Late, deadline)
	}
	// It did wait (for a runtimeDone that came only at the deadline).
	if want := deadline - 500*time.Millisecond - 250*time.Millisecond - from - 5*time.Millisecond; next-from < want {
		t.Fatalf("timeout: /event/next %v after INVOKE; want a wait of about %v", next-from, want)
	}

	// A crash resets the environment at runtimeDone, without waiting for
	// the extensions; SHUTDOWN reaches the extension at its /event/next.
	r = f(lambdasim.Crash, 50*time.Millisecond)
	res = r.Invokes[1]
	var shutdown time.Duration
	for _, m := range r.Sim.Timeline() {
		if m.Kind == lambdasim.MarkShutdown && m.Ext == ExtensionName {
			shutdown = m.At
		}
	}
	for _, ev := range r.EventsOf(res.RequestID, lambdasim.TypeFunction) {
		// Without runtimeDone it would have waited until about 750 ms.
		if s, ok := r.Sent[ev.ID]; !ok || s > shutdown || s-res.RuntimeDone > 500*time.Millisecond {
			t.Fatalf("crash: log line sent at %v; runtimeDone at %v, SHUTDOWN at %v", s, res.RuntimeDone, shutdown)
		}
	}
}
