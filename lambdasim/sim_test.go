package lambdasim

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLifecycle runs two extensions (the test extension and the floor)
// through Init, invocations with both log formats and mixed sizes, and
// Shutdown, and checks the protocol, the timeline and exactly-once delivery.
func TestLifecycle(t *testing.T) {
	x := newTestExt(t, "recorder", "TESTEXT_LOG=1")
	floor := extAs(t, floorextBin, "floor")
	s := newSim(t, Config{
		Extensions:   []Extension{x.Extension, {Path: floor}},
		FunctionName: "orders",
		Timeout:      2 * time.Second,
	})
	ir := startInit(t, s)
	if ir.Generation != 1 || ir.Phase != "init" || ir.Duration <= 0 {
		t.Fatalf("unexpected init result %+v", ir)
	}

	invs := []Invocation{
		{Duration: 30 * time.Millisecond, LogLines: 20, LogFormat: LogText, LineSizes: []int{200, 1000, 5000}},
		{Duration: 10 * time.Millisecond, LogLines: 5, LogFormat: LogJSON, LineSizes: []int{300, 64 << 10}},
		{Duration: 0, LogLines: 3, LogFormat: LogJSON},
	}
	var results []InvokeResult
	for _, inv := range invs {
		res := invoke(t, s, inv)
		if res.Status != "success" || res.Reset != nil || len(res.Late) != 0 {
			t.Fatalf("unexpected invoke result %+v", res)
		}
		if res.RuntimeDone < res.Start+inv.Duration || res.ExtensionsDone < res.RuntimeDone || res.Overhead != res.ExtensionsDone-res.RuntimeDone {
			t.Fatalf("unexpected invoke times %+v", res)
		}
		results = append(results, res)
	}
	sr, err := s.Shutdown(testCtx(t), "", 0)
	if err != nil {
		t.Fatalf("unexpected Shutdown error: %v", err)
	}
	if sr.Reason != "spindown" || len(sr.Killed) != 0 || sr.Undelivered != 0 || len(sr.Extensions) != 2 {
		t.Fatalf("unexpected shutdown result %+v", sr)
	}
	for _, e := range sr.Extensions {
		if e.ExitCode != 0 || e.After <= 0 {
			t.Fatalf("unexpected exit %+v", e)
		}
	}

	// Registration and the events the extension received.
	lines := x.lines(t)
	if len(lines) < 2 || !bytes.HasPrefix(lines[0], []byte("register 200 ")) ||
		!bytes.Contains(lines[0], []byte(`"functionName":"orders","functionVersion":"$LATEST","handler":"bootstrap","accountId":"123456789012"`)) {
		t.Fatalf("unexpected registration line %q", lines[0])
	}
	if string(lines[1]) != `subscribe 200 "OK"` {
		t.Fatalf("unexpected subscription line %q", lines[1])
	}
	evs := x.events(t)
	if len(evs) != 4 {
		t.Fatalf("unexpected number of events; got %d; want 4: %v", len(evs), evs)
	}
	for i, res := range results {
		ev := evs[i]
		if ev["eventType"] != "INVOKE" || ev["requestId"] != res.RequestID ||
			ev["invokedFunctionArn"] != "arn:aws:lambda:us-east-1:123456789012:function:orders" ||
			int64(ev["deadlineMs"].(float64)) != res.Deadline.UnixMilli() {
			t.Fatalf("unexpected INVOKE %v; want request %s deadline %d", ev, res.RequestID, res.Deadline.UnixMilli())
		}
		tr, _ := ev["tracing"].(map[string]any)
		if tr["type"] != "X-Amzn-Trace-Id" || !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`).MatchString(tr["value"].(string)) {
			t.Fatalf("unexpected tracing %v", tr)
		}
		if d := res.Deadline.Sub(s.Epoch().Add(res.Start)); d < 2*time.Second-time.Millisecond || d > 2*time.Second+time.Millisecond {
			t.Fatalf("unexpected deadline %s after the start", d)
		}
	}
	if ev := evs[3]; ev["eventType"] != "SHUTDOWN" || ev["shutdownReason"] != "spindown" || int64(ev["deadlineMs"].(float64)) != sr.Deadline.UnixMilli() {
		t.Fatalf("unexpected SHUTDOWN %v", ev)
	}

	// Every generated event arrived exactly once, byte for byte, and nothing is pending.
	gen := s.Generated()
	if d := Compare(gen, x.received(t)); !d.OK() {
		t.Fatalf("unexpected delivery: %d missing (%v), %d duplicated, %d unexpected (%q)", len(d.Missing), d.Missing, len(d.Duplicated), len(d.Unexpected), d.Unexpected)
	}
	st, ok := s.Subscriber("recorder")
	if !ok || len(st.Acked) != len(gen) || len(st.Pending) != 0 || len(st.Dropped) != 0 || st.FailedPosts != 0 {
		t.Fatalf("unexpected subscriber stats %+v (generated %d)", st, len(gen))
	}
	if st.SchemaVersion != "2022-12-13" || st.MaxItems != 1000 || st.MaxBytes != 262144 || st.Timeout != 25*time.Millisecond {
		t.Fatalf("unexpected subscription %+v", st)
	}

	// The event mix, in order: init events, then per invoke start, lines, runtimeDone, report.
	wantTypes := []string{TypeInitStart, TypeTelemetrySubscription, TypeInitRuntimeDone, TypeExtension, TypeExtension, TypeInitReport}
	var got []string
	for _, ev := range gen {
		if ev.Type != TypeExtensionLog && len(got) < len(wantTypes) {
			got = append(got, ev.Type)
		}
	}
	if !slices.Equal(got, wantTypes) {
		t.Fatalf("unexpected init events; got %v; want %v", got, wantTypes)
	}
	timeRE := regexp.MustCompile(`^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","type":"`)
	for i, ev := range gen {
		if ev.ID != i || !timeRE.Match(ev.Bytes) || !json.Valid(ev.Bytes) {
			t.Fatalf("unexpected event %d: %s", i, ev.Bytes)
		}
	}
	for n, res := range results {
		var types []string
		lines := 0
		for _, ev := range gen {
			if ev.RequestID != res.RequestID {
				continue
			}
			if ev.Type == TypeFunction {
				lines++
				if !bytes.Contains(ev.Bytes, []byte(res.RequestID)) {
					t.Fatalf("unexpected function line without the request id: %s", ev.Bytes)
				}
				continue
			}
			types = append(types, ev.Type)
		}
		if want := []string{TypeStart, TypeRuntimeDone, TypeReport}; !slices.Equal(types, want) || lines != invs[n].LogLines {
			t.Fatalf("unexpected events of invoke %d: %v and %d lines; want %v and %d", n, types, lines, want, invs[n].LogLines)
		}
	}
	reports := eventsOf(s, TypeReport)
	if m := record(t, reports[0])["metrics"].(map[string]any); m["initDurationMs"] == nil || m["memorySizeMB"].(float64) != 128 || m["maxMemoryUsedMB"].(float64) <= 32 {
		t.Fatalf("unexpected first report metrics %v", m)
	}
	if m := record(t, reports[1])["metrics"].(map[string]any); m["initDurationMs"] != nil {
		t.Fatalf("unexpected initDurationMs in a warm report: %v", m)
	}
	extLogs := eventsOf(s, TypeExtensionLog)
	if len(extLogs) != 3 || extLogs[0].Source != "recorder" || !bytes.Contains(extLogs[0].Bytes, []byte(`"record":"testext: INVOKE `+results[0].RequestID+`"`)) {
		t.Fatalf("unexpected extension logs %v", extLogs)
	}

	// Sizes of the padded lines are exact.
	for _, ev := range eventsOf(s, TypeFunction)[:3] {
		if n := len(ev.Bytes); n != 200 && n != 1000 && n != 5000 {
			t.Fatalf("unexpected line size %d: %s", n, ev.Bytes)
		}
	}

	// Timeline per invoke: thaw < INVOKE (both) < runtimeDone <= extensionsDone < freeze,
	// and the report of invoke N is delivered only after INVOKE N+1 (or at SHUTDOWN).
	shutdownAt := marks(s, MarkShutdown, "recorder")[0].At
	for n, res := range results {
		invokes := 0
		for _, m := range marks(s, MarkInvoke, "") {
			if m.RequestID == res.RequestID {
				invokes++
				if m.At < res.Start || m.At > res.RuntimeDone {
					t.Fatalf("unexpected INVOKE mark %v for %+v", m, res)
				}
			}
		}
		if invokes != 2 {
			t.Fatalf("unexpected INVOKE marks for invoke %d: %d", n, invokes)
		}
		rep := reports[n]
		post, ok := postOf(s, "recorder", rep.ID)
		if !ok {
			t.Fatalf("report %d was not delivered", n)
		}
		next := shutdownAt
		if n+1 < len(results) {
			next = results[n+1].Start
		}
		if post.At < next {
			t.Fatalf("report of invoke %d delivered at %s, before the environment thawed again at %s", n, post.At, next)
		}
	}
	procs := s.Processes()
	if len(procs) != 2 {
		t.Fatalf("unexpected processes %+v", procs)
	}
	for _, p := range procs {
		if p.FirstNext <= 0 || p.Registered <= 0 || p.Registered > p.FirstNext || p.PeakRSS < 1<<20 || p.Exited == 0 || p.ExitCode != 0 || p.CPU <= 0 {
			t.Fatalf("unexpected process stats %+v", p)
		}
	}
	if procs[0].Subscribed <= procs[0].Registered || procs[0].Subscribed > procs[0].FirstNext || procs[1].Subscribed != 0 {
		t.Fatalf("unexpected subscription times %+v", procs)
	}
}

// TestRegistration checks the register endpoint's answers and that
// registration and subscription close after Init.
func TestRegistration(t *testing.T) {
	t.Run("wrong name", func(t *testing.T) {
		x := newTestExt(t, "named", "TESTEXT_NAME=other")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}})
		ctx := testCtx(t)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := s.Init(ctx)
		if !errors.Is(err, ErrInitFailed) {
			t.Fatalf("unexpected Init error; got %v; want %v", err, ErrInitFailed)
		}
		l := x.lines(t)
		if len(l) == 0 || !bytes.HasPrefix(l[0], []byte("register 403 ")) || !bytes.Contains(l[0], []byte(errTypeInvalidName)) {
			t.Fatalf("unexpected registration %q", l)
		}
		ir := eventsOf(s, TypeInitReport)
		if len(ir) != 1 || record(t, ir[0])["status"] != "error" || record(t, ir[0])["errorType"] != "Extension.Crash" {
			t.Fatalf("unexpected initReport %v", ir)
		}
	})

	t.Run("closed after init", func(t *testing.T) {
		x := newTestExt(t, "closer")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}})
		startInit(t, s)
		id := string(waitFile(t, x.file("id")))
		f := func(method, path string, hdr map[string]string, body string, wantStatus int, wantType string) {
			t.Helper()
			status, b := do(t, method, "http://"+s.RuntimeAPI()+path, hdr, body)
			if status != wantStatus || !strings.Contains(string(b), wantType) {
				t.Fatalf("unexpected answer to %s %s; got %d %s; want %d %s", method, path, status, b, wantStatus, wantType)
			}
		}
		reg := "/2020-01-01/extension/register"
		f("POST", reg, map[string]string{headerName: "closer"}, `{"events":["INVOKE"]}`, 403, errTypeRegistrationClose)
		f("PUT", "/2022-07-01/telemetry", map[string]string{headerIdentifier: id}, `{}`, 403, errTypeSubscriptionClose)
		f("GET", "/2020-01-01/extension/event/next", nil, "", 403, errTypeMissingIdentifier)
		f("GET", "/2020-01-01/extension/event/next", map[string]string{headerIdentifier: "nope"}, "", 403, errTypeInvalidIdentifier)
		f("GET", "/2020-01-01/extension/event/next", map[string]string{headerIdentifier: newUUID()}, "", 403, errTypeUnknownIdentifier)
		// The extension is blocked in /event/next (frozen): a second call is refused.
		f("GET", "/2020-01-01/extension/event/next", map[string]string{headerIdentifier: id}, "", 403, errTypeInvalidState)
		f("POST", "/2020-01-01/extension/exit/error", map[string]string{headerIdentifier: id}, "", 403, errTypeMissingHeader)
		invoke(t, s, Invocation{})
		if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bad requests during init", func(t *testing.T) {
		x := newTestExt(t, "holder", "TESTEXT_HOLD="+t.TempDir()+"/go")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}})
		if err := s.Start(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		waitFile(t, x.file("id"))
		f := func(hdr map[string]string, body string, wantStatus int, wantType string) {
			t.Helper()
			status, b := do(t, "POST", "http://"+s.RuntimeAPI()+"/2020-01-01/extension/register", hdr, body)
			if status != wantStatus || !strings.Contains(string(b), wantType) {
				t.Fatalf("unexpected register answer; got %d %s; want %d %s", status, b, wantStatus, wantType)
			}
		}
		f(nil, `{"events":["INVOKE"]}`, 403, errTypeInvalidName)
		f(map[string]string{headerName: "stranger"}, `{"events":["INVOKE"]}`, 403, errTypeInvalidName)
		f(map[string]string{headerName: "holder"}, `{"events":["INVOKE"]}`, 403, errTypeInvalidState)
		f(map[string]string{headerName: "holder"}, `{"events":["INVOKE","FOO"]}`, 403, errTypeInvalidEventType)
		f(map[string]string{headerName: "holder"}, `{"events":`, 403, errTypeInvalidRequest)
	})
}

// TestFaults injects register and subscribe failures.
func TestFaults(t *testing.T) {
	t.Run("register", func(t *testing.T) {
		x := newTestExt(t, "faulty")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}, Faults: func(c Call) *Fault {
			if c.Endpoint == "register" && c.Ext == "faulty" && c.N == 1 {
				return &Fault{Status: 500, ErrorType: "Extension.Injected", ErrorMessage: "injected"}
			}
			return nil
		}})
		ctx := testCtx(t)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Init(ctx); !errors.Is(err, ErrInitFailed) {
			t.Fatalf("unexpected Init error; got %v; want %v", err, ErrInitFailed)
		}
		if l := x.lines(t); len(l) == 0 || !bytes.HasPrefix(l[0], []byte(`register 500  {"errorMessage":"injected","errorType":"Extension.Injected"}`)) {
			t.Fatalf("unexpected registration %q", l)
		}
	})
	t.Run("subscribe", func(t *testing.T) {
		x := newTestExt(t, "faulty")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}, Faults: func(c Call) *Fault {
			if c.Endpoint == "telemetry" {
				return &Fault{Status: 500, ErrorType: "Telemetry.Injected"}
			}
			return nil
		}})
		startInit(t, s)
		invoke(t, s, Invocation{LogLines: 2})
		if l := x.lines(t); len(l) < 2 || !bytes.HasPrefix(l[1], []byte(`subscribe 500 {"errorMessage":"","errorType":"Telemetry.Injected"}`)) {
			t.Fatalf("unexpected subscription %q", l)
		}
		if subs := s.Subscribers(); len(subs) != 0 {
			t.Fatalf("unexpected subscribers %+v", subs)
		}
	})
}

// TestTelemetryNotSupported: the 202 mode of RIE's classic emulator.
func TestTelemetryNotSupported(t *testing.T) {
	x := newTestExt(t, "local")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}, TelemetryNotSupported: true})
	startInit(t, s)
	res := invoke(t, s, Invocation{Duration: 5 * time.Millisecond, LogLines: 10})
	if res.Status != "success" {
		t.Fatalf("unexpected invoke %+v", res)
	}
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
	l := x.lines(t)
	if len(l) < 2 || string(l[1]) != `subscribe 202 {"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}` {
		t.Fatalf("unexpected subscription %q", l)
	}
	if n := len(marks(s, MarkPost, "")); n != 0 || len(s.Subscribers()) != 0 || len(x.received(t)) != 0 {
		t.Fatalf("unexpected deliveries in 202 mode: %d POSTs", n)
	}
	if evs := x.events(t); len(evs) != 2 || evs[0]["eventType"] != "INVOKE" || evs[1]["eventType"] != "SHUTDOWN" {
		t.Fatalf("unexpected events %v", evs)
	}
}

// TestInitFailures: init/error, an extension that never calls /event/next,
// and a missing executable.
func TestInitFailures(t *testing.T) {
	t.Run("init error", func(t *testing.T) {
		x := newTestExt(t, "broken", "TESTEXT_INIT_ERROR=Extension.ConfigInvalid")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}})
		ctx := testCtx(t)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Init(ctx); !errors.Is(err, ErrInitFailed) || !strings.Contains(err.Error(), "Extension.InitError") {
			t.Fatalf("unexpected Init error %v", err)
		}
		p := s.Processes()[0]
		if p.InitError != "Extension.ConfigInvalid" || p.ExitCode != 1 {
			t.Fatalf("unexpected process %+v", p)
		}
		ext := eventsOf(s, TypeExtension)
		if len(ext) != 1 || record(t, ext[0])["state"] != "InitError" || record(t, ext[0])["errorType"] != "Extension.ConfigInvalid" {
			t.Fatalf("unexpected platform.extension %v", ext)
		}
		if len(marks(s, MarkInitError, "broken")) != 1 {
			t.Fatal("missing initError mark")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		x := newTestExt(t, "sleepy", "TESTEXT_NO_NEXT=1", "TESTEXT_REGISTER_EVENTS=INVOKE")
		s := newSim(t, Config{Extensions: []Extension{x.Extension}, InitTimeout: 300 * time.Millisecond})
		ctx := testCtx(t)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ir, err := s.Init(ctx)
		if !errors.Is(err, ErrInitTimeout) {
			t.Fatalf("unexpected Init error; got %v; want %v", err, ErrInitTimeout)
		}
		if ir.Duration < 300*time.Millisecond || time.Since(start) > 10*time.Second {
			t.Fatalf("unexpected init duration %s (waited %s)", ir.Duration, time.Since(start))
		}
		if p := s.Processes()[0]; p.Killed != "not registered for SHUTDOWN" || p.Signal != "killed" {
			t.Fatalf("unexpected process %+v", p)
		}
		rep := eventsOf(s, TypeInitReport)
		if len(rep) != 1 || record(t, rep[0])["status"] != "timeout" {
			t.Fatalf("unexpected initReport %v", rep)
		}
		// Invoke re-initialises (phase "invoke"), and fails again the same way.
		res, err := s.Invoke(ctx, Invocation{})
		if !errors.Is(err, ErrInitTimeout) || res.Init == nil || res.Init.Phase != "invoke" || res.Init.Generation != 2 {
			t.Fatalf("unexpected re-init %+v: %v", res.Init, err)
		}
	})
	t.Run("launch error", func(t *testing.T) {
		s := newSim(t, Config{Extensions: []Extension{{Path: t.TempDir() + "/missing"}}})
		ctx := testCtx(t)
		if err := s.Start(ctx); err == nil {
			t.Fatal("unexpected Start success")
		}
		if _, err := s.Init(ctx); !errors.Is(err, ErrInitFailed) || !strings.Contains(err.Error(), "Extension.LaunchError") {
			t.Fatalf("unexpected Init error %v", err)
		}
	})
}

// TestStateErrors checks the lifecycle order.
func TestStateErrors(t *testing.T) {
	s := newSim(t, Config{Extensions: []Extension{{Path: extAs(t, floorextBin, "floor")}}})
	ctx := testCtx(t)
	if _, err := s.Invoke(ctx, Invocation{}); !errors.Is(err, ErrState) {
		t.Fatalf("unexpected Invoke before Start; got %v; want %v", err, ErrState)
	}
	if _, err := s.Init(ctx); !errors.Is(err, ErrState) {
		t.Fatalf("unexpected Init before Start; got %v; want %v", err, ErrState)
	}
	startInit(t, s)
	if err := s.Start(ctx); !errors.Is(err, ErrState) {
		t.Fatalf("unexpected second Start; got %v; want %v", err, ErrState)
	}
	if _, err := s.Shutdown(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invoke(ctx, Invocation{}); !errors.Is(err, ErrState) {
		t.Fatalf("unexpected Invoke after Shutdown; got %v; want %v", err, ErrState)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invoke(ctx, Invocation{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("unexpected Invoke after Close; got %v; want %v", err, ErrClosed)
	}
	if _, err := New(Config{Extensions: []Extension{{Path: "/a/x"}, {Path: "/b/x"}}}); err == nil {
		t.Fatal("unexpected success with two extensions of the same name")
	}
}
