package lambdasim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procState returns the state letter of /proc/<pid>/stat ("T" when stopped).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestFreeze: between invocations the extension process does not run (its
// heartbeat stops) and no telemetry is delivered; with NoFreeze it runs but
// still gets no telemetry while the environment is frozen.
func TestFreeze(t *testing.T) {
	for _, noFreeze := range []bool{false, true} {
		t.Run("NoFreeze="+strconv.FormatBool(noFreeze), func(t *testing.T) {
			x := newTestExt(t, "beating")
			x.Env = append(x.Env, "TESTEXT_HEARTBEAT="+x.file("heartbeat"))
			s := newSim(t, Config{Extensions: []Extension{x.Extension}, NoFreeze: noFreeze})
			startInit(t, s)
			pid := s.Processes()[0].PID
			hb := x.file("heartbeat")

			for range 2 {
				before := fileSize(t, hb)
				time.Sleep(150 * time.Millisecond)
				after := fileSize(t, hb)
				if st := procState(t, pid); noFreeze == (st == "T") {
					t.Fatalf("unexpected process state %q while frozen", st)
				}
				if !noFreeze && after != before {
					t.Fatalf("unexpected heartbeat while frozen: %d -> %d bytes", before, after)
				}
				if noFreeze && after == before {
					t.Fatalf("unexpected heartbeat with NoFreeze: %d -> %d bytes", before, after)
				}
				before = fileSize(t, hb)
				invoke(t, s, Invocation{Duration: 100 * time.Millisecond, LogLines: 5})
				if grew := fileSize(t, hb) - before; grew == 0 {
					t.Fatalf("unexpected heartbeat while thawed: %d bytes in 100ms", grew)
				}
			}
			if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
				t.Fatal(err)
			}
			// No POST started between a freeze and the next thaw (a POST's
			// mark is recorded when it ends, with At its start).
			var freezes, thaws []time.Duration
			for _, m := range s.Timeline() {
				switch m.Kind {
				case MarkFreeze:
					freezes = append(freezes, m.At)
				case MarkThaw:
					thaws = append(thaws, m.At)
				}
			}
			for _, m := range marks(s, MarkPost, "") {
				for i, f := range freezes {
					if i < len(thaws) && f <= m.At && m.At < thaws[i] {
						t.Fatalf("unexpected POST while frozen (%s to %s): %v", f, thaws[i], m)
					}
				}
			}
			if d := Compare(s.Generated(), x.received(t)); !d.OK() {
				t.Fatalf("unexpected delivery: %d missing, %d duplicated, %d unexpected", len(d.Missing), len(d.Duplicated), len(d.Unexpected))
			}
		})
	}
}

// TestShutdown: an extension that overruns the deadline is SIGKILLed at
// the deadline; one not registered for SHUTDOWN is killed at once.
func TestShutdown(t *testing.T) {
	hang := newTestExt(t, "hanger", "TESTEXT_SHUTDOWN_HANG=1")
	noShut := newTestExt(t, "invokeonly", "TESTEXT_REGISTER_EVENTS=INVOKE")
	good := newTestExt(t, "polite", "TESTEXT_SHUTDOWN_WAIT=10ms")
	s := newSim(t, Config{Extensions: []Extension{hang.Extension, noShut.Extension, good.Extension}})
	startInit(t, s)
	invoke(t, s, Invocation{LogLines: 3})
	start := time.Now()
	sr, err := s.Shutdown(testCtx(t), "timeout", time.Second)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took < time.Second || took > 10*time.Second {
		t.Fatalf("unexpected shutdown duration %s; want about 1s", took)
	}
	want := map[string]ExtensionExit{
		"hanger":     {ExitCode: -1, Signal: "killed", Killed: "shutdown deadline exceeded"},
		"invokeonly": {ExitCode: -1, Signal: "killed", Killed: "not registered for SHUTDOWN"},
		"polite":     {ExitCode: 0},
	}
	for _, e := range sr.Extensions {
		w := want[e.Name]
		if e.ExitCode != w.ExitCode || e.Signal != w.Signal || e.Killed != w.Killed {
			t.Fatalf("unexpected exit %+v; want %+v", e, w)
		}
		if e.Name == "hanger" && e.After < time.Second {
			t.Fatalf("unexpected early kill after %s", e.After)
		}
	}
	// invokeonly was killed with the SHUTDOWN dispatch, hanger at the deadline.
	kills := marks(s, MarkKill, "")
	if len(sr.Killed) != 2 || len(kills) != 2 || kills[0].Ext != "invokeonly" || kills[1].Ext != "hanger" ||
		kills[0].At > marks(s, MarkShutdown, "polite")[0].At || kills[1].At < sr.Start+time.Second {
		t.Fatalf("unexpected kills %v: %v", sr.Killed, kills)
	}
	if ev := hang.events(t); ev[len(ev)-1]["eventType"] != "SHUTDOWN" || ev[len(ev)-1]["shutdownReason"] != "timeout" {
		t.Fatalf("unexpected last event %v", ev[len(ev)-1])
	}
	if ev := noShut.events(t); ev[len(ev)-1]["eventType"] != "INVOKE" {
		t.Fatalf("unexpected SHUTDOWN to an extension not registered for it: %v", ev)
	}
	// The last platform.report arrived during the shutdown.
	reports := eventsOf(s, TypeReport)
	if m, ok := postOf(s, "polite", reports[len(reports)-1].ID); !ok || m.At < sr.Start {
		t.Fatalf("unexpected delivery of the last report: %v %v", m, ok)
	}
}

// TestInvokeTimeout: the function runs into the deadline; runtimeDone says
// "timeout", the environment is reset with SHUTDOWN "timeout", and the next
// invocation initialises a new environment.
func TestInvokeTimeout(t *testing.T) {
	x := newTestExt(t, "patient")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}, Timeout: 300 * time.Millisecond})
	startInit(t, s)
	res, err := s.Invoke(testCtx(t), Invocation{Outcome: Timeout, LogLines: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "timeout" || res.Reset == nil || res.Reset.Reason != "timeout" || res.RuntimeDone-res.Start < 300*time.Millisecond {
		t.Fatalf("unexpected result %+v", res)
	}
	rd := eventsOf(s, TypeRuntimeDone)
	if r := record(t, rd[0]); r["status"] != "timeout" || r["errorType"] != nil || rd[0].At < res.Start+300*time.Millisecond {
		t.Fatalf("unexpected runtimeDone %s", rd[0].Bytes)
	}
	if r := record(t, eventsOf(s, TypeReport)[0]); r["status"] != "timeout" {
		t.Fatalf("unexpected report %v", r)
	}
	ev := x.events(t)
	if last := ev[len(ev)-1]; last["eventType"] != "SHUTDOWN" || last["shutdownReason"] != "timeout" {
		t.Fatalf("unexpected last event %v", last)
	}
	// runtimeDone (produced at the reset) reached the extension before it exited.
	if _, ok := postOf(s, "patient", rd[0].ID); !ok {
		t.Fatal("runtimeDone of the timed-out invocation was not delivered")
	}

	res2 := invoke(t, s, Invocation{LogLines: 2})
	if res2.Init == nil || res2.Init.Phase != "invoke" || res2.Init.Generation != 2 || res2.Status != "success" {
		t.Fatalf("unexpected re-initialisation %+v", res2)
	}
	procs := s.Processes()
	if len(procs) != 2 || procs[0].Exited == 0 || procs[1].Exited != 0 || procs[1].Generation != 2 {
		t.Fatalf("unexpected processes %+v", procs)
	}
	if st := eventsOf(s, TypeInitStart); len(st) != 2 || record(t, st[1])["phase"] != "invoke" {
		t.Fatalf("unexpected initStart events %v", st)
	}
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
}

// TestCrash: the runtime exits; runtimeDone says error Runtime.ExitError,
// the logs are flushed at once, and extensions get SHUTDOWN "failure". An
// extension still at work on the INVOKE (this one waits for runtimeDone)
// is not late: the deadline has not passed.
func TestCrash(t *testing.T) {
	x := newTestExt(t, "witness", "TESTEXT_BUFFERING=1000,262144,5000", "TESTEXT_WAIT_RUNTIMEDONE=1")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}})
	startInit(t, s)
	res, err := s.Invoke(testCtx(t), Invocation{Duration: 20 * time.Millisecond, LogLines: 3, Outcome: Crash})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "error" || res.ErrorType != "Runtime.ExitError" || res.Reset == nil || res.Reset.Reason != "failure" {
		t.Fatalf("unexpected result %+v", res)
	}
	if len(res.Late) != 0 {
		t.Fatalf("unexpected late extensions after a crash %v before the deadline %v; got %v; want none",
			res.RuntimeDone, res.Deadline.Sub(s.Epoch()), res.Late)
	}
	rd := eventsOf(s, TypeRuntimeDone)[0]
	if r := record(t, rd); r["status"] != "error" || r["errorType"] != "Runtime.ExitError" {
		t.Fatalf("unexpected runtimeDone %s", rd.Bytes)
	}
	// Flushed without waiting for the 5 s timeoutMs.
	m, ok := postOf(s, "witness", rd.ID)
	if !ok || m.At-rd.At > 4*time.Second {
		t.Fatalf("unexpected delivery of runtimeDone: %v %v", m, ok)
	}
	ev := x.events(t)
	if last := ev[len(ev)-1]; last["eventType"] != "SHUTDOWN" || last["shutdownReason"] != "failure" {
		t.Fatalf("unexpected last event %v", last)
	}
}

// TestCrashFlushesRuntimeDone: the flush at a crash is asked for after
// runtimeDone is queued, so a delivery loop that looks at the queue right
// after the flush request still finds runtimeDone there and sends it at
// once, not after timeoutMs.
func TestCrashFlushesRuntimeDone(t *testing.T) {
	const timeout = time.Second
	x := newTestExt(t, "witness", fmt.Sprintf("TESTEXT_BUFFERING=1000,262144,%d", timeout.Milliseconds()), "TESTEXT_TYPES=platform")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}})
	startInit(t, s)
	s.mu.Lock()
	sub := s.subs[0]
	s.mu.Unlock()
	// What the delivery loop does when it looks at the queue right after
	// the flush request (it runs on its own goroutine, at any moment).
	sub.afterFlush = func() {
		sub.mu.Lock()
		sub.readyLocked(time.Now())
		sub.mu.Unlock()
	}
	// The function runs past timeoutMs, so the init events and
	// platform.start have gone out and the queue is empty at the crash.
	if _, err := s.Invoke(testCtx(t), Invocation{Duration: timeout + 500*time.Millisecond, Outcome: Crash}); err != nil {
		t.Fatal(err)
	}
	start, rd := eventsOf(s, TypeStart)[0], eventsOf(s, TypeRuntimeDone)[0]
	if _, ok := postOf(s, "witness", start.ID); !ok {
		t.Fatal("platform.start was not delivered")
	}
	if m, ok := postOf(s, "witness", rd.ID); !ok || m.At-rd.At > timeout/2 {
		t.Fatalf("runtimeDone not flushed: delivered %v, %s after it; timeoutMs %s", ok, m.At-rd.At, timeout)
	}
}

// TestNoReportAfterReset: after a timeout or a crash the failed request's
// platform.report is produced, unless Config.NoReportAfterReset withholds
// it; the next invocation's report comes either way.
func TestNoReportAfterReset(t *testing.T) {
	f := func(o Outcome, withhold bool) {
		t.Helper()
		x := newTestExt(t, "rep", "TESTEXT_TYPES=function")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}, Timeout: 200 * time.Millisecond, NoReportAfterReset: withhold})
		startInit(t, s)
		res, err := s.Invoke(testCtx(t), Invocation{Duration: 10 * time.Millisecond, Outcome: o})
		if err != nil {
			t.Fatal(err)
		}
		next := invoke(t, s, Invocation{Duration: 10 * time.Millisecond})
		reports := map[string]int{}
		for _, ev := range eventsOf(s, TypeReport) {
			reports[ev.RequestID]++
		}
		want := 1
		if withhold {
			want = 0
		}
		if res.Reset == nil || reports[res.RequestID] != want || reports[next.RequestID] != 1 {
			t.Fatalf("%s, NoReportAfterReset %v: unexpected reports %v for the failed request %s and the next %s (reset %v)",
				o, withhold, reports, res.RequestID, next.RequestID, res.Reset != nil)
		}
	}
	for _, o := range []Outcome{Timeout, Crash} {
		f(o, false)
		f(o, true)
	}
}

// TestExtensionOverrun: an extension still busy at the deadline times the
// invocation out and resets the environment; one that crashes does too.
func TestExtensionOverrun(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		x := newTestExt(t, "busy", "TESTEXT_WORK=1s")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}, Timeout: 200 * time.Millisecond})
		startInit(t, s)
		start := time.Now()
		res, err := s.Invoke(testCtx(t), Invocation{Duration: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "timeout" || len(res.Late) != 1 || res.Late[0] != "busy" || res.Reset == nil || res.ExtensionsDone != 0 {
			t.Fatalf("unexpected result %+v", res)
		}
		// The wait ended at the deadline; the reset then waited for the extension's exit.
		// (The deadline is taken a moment before res.Start is recorded: allow 5 ms.)
		sd, next := marks(s, MarkReset, ""), marks(s, MarkNext, "busy")
		if len(sd) != 1 || sd[0].At-res.Start < 195*time.Millisecond || sd[0].At > next[len(next)-1].At {
			t.Fatalf("unexpected reset marks %v (last /next %v)", sd, next[len(next)-1])
		}
		if e := res.Reset.Extensions[0]; e.ExitCode != 0 || time.Since(start) > 10*time.Second {
			t.Fatalf("unexpected exit %+v", e)
		}
	})
	t.Run("crash", func(t *testing.T) {
		x := newTestExt(t, "fragile", "TESTEXT_CRASH_AT_INVOKE=1")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}})
		startInit(t, s)
		res, err := s.Invoke(testCtx(t), Invocation{Duration: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "error" || res.ErrorType != "Extension.Crash" || res.Reset == nil || res.Reset.Extensions[0].ExitCode != 3 || len(res.Late) != 0 {
			t.Fatalf("unexpected result %+v", res)
		}
	})
	t.Run("exit error", func(t *testing.T) {
		x := newTestExt(t, "quitter", "TESTEXT_EXIT_ERROR=Extension.Fatal")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}})
		startInit(t, s)
		res, err := s.Invoke(testCtx(t), Invocation{Duration: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "error" || res.Reset == nil || s.Processes()[0].ExitError != "Extension.Fatal" {
			t.Fatalf("unexpected result %+v, process %+v", res, s.Processes()[0])
		}
	})
}

// TestDeliveryTiming shows what issue 9's flush strategies rely on: an
// extension that waits for its request's runtimeDone gets it during the
// invocation (within timeoutMs of the function's end), while platform.report
// arrives only once the environment is thawed for the next invocation.
func TestDeliveryTiming(t *testing.T) {
	x := newTestExt(t, "waiter", "TESTEXT_WAIT_RUNTIMEDONE=1")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}, Timeout: 10 * time.Second})
	startInit(t, s)
	var results []InvokeResult
	for range 3 {
		results = append(results, invoke(t, s, Invocation{Duration: 30 * time.Millisecond, LogLines: 5}))
	}
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
	for i, res := range results {
		var rd, rep Event
		for _, ev := range s.Generated() {
			if ev.RequestID == res.RequestID && ev.Type == TypeRuntimeDone {
				rd = ev
			}
			if ev.RequestID == res.RequestID && ev.Type == TypeReport {
				rep = ev
			}
		}
		post, ok := postOf(s, "waiter", rd.ID)
		if !ok {
			t.Fatalf("runtimeDone %d not delivered", i)
		}
		next := res.Extensions[0].Next
		if !(res.RuntimeDone <= post.At && post.At <= next) {
			t.Fatalf("invoke %d: runtimeDone at %s delivered at %s, extension /next at %s", i, res.RuntimeDone, post.At, next)
		}
		// The batch leaves timeoutMs (25 ms) after its oldest event, which
		// may be a log line from before runtimeDone.
		// (the bound only tells a delivery from a wait until the 10 s deadline).
		if res.Overhead <= 0 || res.Overhead > 5*time.Second {
			t.Fatalf("invoke %d: unexpected overhead %s; want at most about timeoutMs (25ms)", i, res.Overhead)
		}
		rp, ok := postOf(s, "waiter", rep.ID)
		if !ok || rp.At < next {
			t.Fatalf("invoke %d: report delivered at %v before the extension finished", i, rp)
		}
		if i+1 < len(results) && rp.At < results[i+1].Start {
			t.Fatalf("invoke %d: report delivered at %s while frozen (next start %s)", i, rp.At, results[i+1].Start)
		}
	}
}

// TestShutdownOnlyExtension: an extension registered only for SHUTDOWN (as
// on Lambda Managed Instances) never gets INVOKE, receives telemetry while
// the environment is thawed, and exits at SHUTDOWN with everything delivered.
func TestShutdownOnlyExtension(t *testing.T) {
	x := newTestExt(t, "background", "TESTEXT_REGISTER_EVENTS=SHUTDOWN", "TESTEXT_SHUTDOWN_WAIT=300ms")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}})
	startInit(t, s)
	for range 3 {
		res := invoke(t, s, Invocation{Duration: 40 * time.Millisecond, LogLines: 20})
		if len(res.Extensions) != 0 || res.Overhead != 0 {
			t.Fatalf("unexpected invoke result %+v", res)
		}
	}
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
	if ev := x.events(t); len(ev) != 1 || ev[0]["eventType"] != "SHUTDOWN" {
		t.Fatalf("unexpected events %v", ev)
	}
	if d := Compare(s.Generated(), x.received(t)); !d.OK() {
		t.Fatalf("unexpected delivery: %d missing, %d duplicated, %d unexpected", len(d.Missing), len(d.Duplicated), len(d.Unexpected))
	}
}
