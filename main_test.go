package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/extapi"
	"github.com/kte-dev/kinesis-telemetry-extension/flush/flushtest"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlysub"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/lambdahosts"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/testsupport"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
	"github.com/kte-dev/kinesis-telemetry-extension/metrics/emftest"
)

// fakeRuntime is an httptest Runtime API: Extensions API and Telemetry
// subscription, with scripted /event/next answers.
type fakeRuntime struct {
	t   *testing.T
	srv *httptest.Server

	subscribeStatus int    // 200 by default
	registerStatus  int    // 200 by default
	registerBody    string // the answer's body when not empty

	next chan map[string]any // events handed to /event/next, in order

	mu           sync.Mutex
	registered   []string // Lambda-Extension-Name values
	events       []string // registered event types
	subscription map[string]any
	subscribes   int      // PUT /telemetry calls
	initErrors   []string // "<type>: <errorMessage>"
	exitErrors   []string
	nextCalls    int
	nextTimes    []time.Time // when each /event/next call arrived
	nextCalled   chan int
}

// TestMain runs the tests with Lambda's /etc/hosts (package lambdahosts),
// for those that run the built binary.
func TestMain(m *testing.M) {
	os.Exit(lambdahosts.RunTests("kte", m.Run))
}

func newFakeRuntime(t *testing.T) *fakeRuntime {
	f := &fakeRuntime{t: t, next: make(chan map[string]any, 16), nextCalled: make(chan int, 64), subscribeStatus: 200, registerStatus: 200}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRuntime) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeRuntime) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/2020-01-01/extension/register":
		var req struct{ Events []string }
		_ = json.Unmarshal(body, &req)
		f.mu.Lock()
		f.registered = append(f.registered, r.Header.Get("Lambda-Extension-Name"))
		f.events = req.Events
		f.mu.Unlock()
		if f.registerStatus != 200 {
			w.WriteHeader(f.registerStatus)
			_, _ = io.WriteString(w, `{"errorType":"Extension.Forbidden","errorMessage":"no"}`)
			return
		}
		w.Header().Set("Lambda-Extension-Identifier", "ext-id-1")
		if f.registerBody != "" {
			_, _ = io.WriteString(w, f.registerBody)
			return
		}
		_, _ = io.WriteString(w, `{"functionName":"orders-api","functionVersion":"$LATEST","handler":"bootstrap","accountId":"111122223333"}`)
	case r.Method == http.MethodPut && r.URL.Path == "/2022-07-01/telemetry":
		var sub map[string]any
		_ = json.Unmarshal(body, &sub)
		f.mu.Lock()
		f.subscription = sub
		f.subscribes++
		f.mu.Unlock()
		switch f.subscribeStatus {
		case 200:
			_, _ = io.WriteString(w, `"OK"`)
		case 202:
			w.WriteHeader(202)
			_, _ = io.WriteString(w, `{"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}`)
		default:
			w.WriteHeader(f.subscribeStatus)
			_, _ = io.WriteString(w, `{"errorType":"ValidationError","errorMessage":"bad subscription"}`)
		}
	case r.Method == http.MethodGet && r.URL.Path == "/2020-01-01/extension/event/next":
		f.mu.Lock()
		f.nextCalls++
		f.nextTimes = append(f.nextTimes, time.Now())
		n := f.nextCalls
		f.mu.Unlock()
		f.nextCalled <- n
		select {
		case ev := <-f.next:
			if _, cut := ev[cutAnswer]; cut {
				delete(ev, cutAnswer)
				f.cut(w, ev)
				return
			}
			_ = json.NewEncoder(w).Encode(ev)
		case <-r.Context().Done():
		}
	case r.Method == http.MethodPost && (r.URL.Path == "/2020-01-01/extension/init/error" || r.URL.Path == "/2020-01-01/extension/exit/error"):
		var e struct{ ErrorMessage string }
		_ = json.Unmarshal(body, &e)
		line := r.Header.Get("Lambda-Extension-Function-Error-Type") + ": " + e.ErrorMessage
		f.mu.Lock()
		if strings.HasSuffix(r.URL.Path, "init/error") {
			f.initErrors = append(f.initErrors, line)
		} else {
			f.exitErrors = append(f.exitErrors, line)
		}
		f.mu.Unlock()
		w.WriteHeader(202)
	default:
		w.WriteHeader(404)
	}
}

// cutAnswer, a key of an event handed to next, makes /event/next write half
// of that event's answer and close the connection: a Runtime API failing
// while it answers.
const cutAnswer = "kte-test-cut"

func (f *fakeRuntime) cut(w http.ResponseWriter, ev map[string]any) {
	body, _ := json.Marshal(ev)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.t.Errorf("cannot cut the answer: %v", err)
		return
	}
	defer conn.Close()
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/2])
}

func (f *fakeRuntime) invoke(requestID string, in time.Duration) {
	f.next <- map[string]any{"eventType": "INVOKE", "requestId": requestID, "deadlineMs": time.Now().Add(in).UnixMilli(),
		"invokedFunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:orders-api"}
}

func (f *fakeRuntime) shutdown(reason string, in time.Duration) {
	f.next <- map[string]any{"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": time.Now().Add(in).UnixMilli()}
}

// waitNext waits until /event/next has been called n times in total.
func (f *fakeRuntime) waitNext(n int) {
	f.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-f.nextCalled:
			if got >= n {
				return
			}
		case <-timeout:
			f.t.Fatalf("timed out waiting for /event/next call %d", n)
		}
	}
}

type harness struct {
	t       *testing.T
	rt      *fakeRuntime
	port    int
	stderr  *testsupport.SyncBuffer
	stdout  *testsupport.SyncBuffer
	code    chan int
	gcSet   chan int // what the lifecycle passed to SetGCPercent
	cancel  context.CancelFunc
	envVars map[string]string
}

// startExtension runs the whole lifecycle in-process against rt, with the
// given KTE_ variables on top of a valid base configuration.
func startExtension(t *testing.T, rt *fakeRuntime, vars map[string]string) *harness {
	t.Helper()
	return startExtensionWith(t, rt, vars, earlysub.Result{})
}

// startExtensionWith is startExtension with what package initialisation
// did (package earlysub).
func startExtensionWith(t *testing.T, rt *fakeRuntime, vars map[string]string, early earlysub.Result) *harness {
	t.Helper()
	return startExtensionTo(t, rt, vars, early, nil)
}

// startExtensionTo is startExtensionWith with the extension's stderr going
// through stderr(h.stderr) when stderr is not nil (a slow pipe).
func startExtensionTo(t *testing.T, rt *fakeRuntime, vars map[string]string, early earlysub.Result, stderr func(io.Writer) io.Writer) *harness {
	t.Helper()
	port, err := lambdasim.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rt: rt, port: port, stderr: &testsupport.SyncBuffer{}, stdout: &testsupport.SyncBuffer{}, code: make(chan int, 1), gcSet: make(chan int, 4)}
	h.envVars = map[string]string{
		"AWS_LAMBDA_RUNTIME_API":      rt.addr(),
		"AWS_REGION":                  "us-east-1",
		"AWS_LAMBDA_FUNCTION_NAME":    "orders-api",
		"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"KTE_STREAM":                  "telemetry",
		"KTE_LISTEN_PORT":             fmt.Sprint(h.port),
		"KTE_BUFFER_TIMEOUT_MS":       "25",
		"KTE_METRICS":                 "off",
	}
	for k, v := range vars {
		if v == "" {
			delete(h.envVars, k)
		} else {
			h.envVars[k] = v
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	t.Cleanup(cancel)
	lookup := func(k string) (string, bool) { v, ok := h.envVars[k]; return v, ok }
	var errOut io.Writer = h.stderr
	if stderr != nil {
		errOut = stderr(h.stderr)
	}
	go func() {
		h.code <- run(ctx, env{lookup: lookup, stdout: h.stdout, stderr: errOut, name: "kinesis-telemetry-extension", start: time.Now(),
			setGCPercent: func(p int) int { h.gcSet <- p; return 100 }, early: early})
	}()
	return h
}

func (h *harness) exitCode() int {
	h.t.Helper()
	select {
	case c := <-h.code:
		return c
	case <-time.After(15 * time.Second):
		h.t.Fatalf("extension did not exit; stderr:\n%s", h.stderr.String())
		return -1
	}
}

// post delivers a telemetry body to the extension as Lambda would.
func (h *harness) post(body string) int {
	h.t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/", h.port), "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("cannot post telemetry: %v; stderr:\n%s", err, h.stderr.String())
	}
	resp.Body.Close()
	return resp.StatusCode
}

func telemetryBody(requestID string, from, n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"time":"2026-01-01T00:00:03.140Z","type":"function","record":"%s\tINFO\tline seq=%d"}`, requestID, from+i)
	}
	b.WriteString("]")
	return b.String()
}

// kinesaliteEnv points the SDK at kinesalite with fake credentials.
func kinesaliteEnv(t *testing.T, s *kinesalite.Server) {
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", s.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// seqsIn returns the seq=N numbers found in the records.
func seqsIn(t *testing.T, recs []kinesalite.Record) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for _, r := range recs {
		var ev struct {
			Lambda struct{ Function, Account string }
			Record string
		}
		if err := json.Unmarshal(r.Data, &ev); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, r.Data)
		}
		var seq int
		if i := strings.Index(ev.Record, "seq="); i >= 0 {
			fmt.Sscanf(ev.Record[i:], "seq=%d", &seq)
			seen[seq]++
		}
		if ev.Lambda.Function != "orders-api" || ev.Lambda.Account != "111122223333" {
			t.Fatalf("unexpected enrichment; got %+v", ev.Lambda)
		}
	}
	return seen
}

func TestLifecycleDeliversAndShutsDown(t *testing.T) {
	kl := kinesalite.StartT(t)
	stream := kl.StreamT(t, "lifecycle", 2)
	kinesaliteEnv(t, kl)
	rt := newFakeRuntime(t)
	// The Kinesis client is built once, off the Init phase: after the
	// subscription, when the first /event/next request has been written.
	subscribedAtBuild := make(chan bool, 4)
	t.Cleanup(func() { newKinesisClient = batch.NewKinesisClient })
	newKinesisClient = func(ctx context.Context, cfg config.Config) (*kinesis.Client, error) {
		rt.mu.Lock()
		subscribedAtBuild <- rt.subscription != nil
		rt.mu.Unlock()
		return batch.NewKinesisClient(ctx, cfg)
	}
	h := startExtension(t, rt, map[string]string{"KTE_STREAM": stream})
	rt.waitNext(1)
	select {
	case subscribed := <-subscribedAtBuild:
		if !subscribed {
			t.Fatal("unexpected Kinesis client build before the subscription; want it after the first /event/next")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Kinesis client was not built after the first /event/next")
	}

	rt.mu.Lock()
	sub, registered, events := rt.subscription, rt.registered, rt.events
	rt.mu.Unlock()
	if len(registered) != 1 || registered[0] != "kinesis-telemetry-extension" {
		t.Fatalf("unexpected registration name; got %q", registered)
	}
	if strings.Join(events, ",") != "INVOKE,SHUTDOWN" {
		t.Fatalf("unexpected registered events; got %q", events)
	}
	buf, _ := sub["buffering"].(map[string]any)
	dest, _ := sub["destination"].(map[string]any)
	if sub["schemaVersion"] != "2022-12-13" || buf["timeoutMs"] != 25.0 || buf["maxItems"] != 1000.0 || buf["maxBytes"] != 1048576.0 {
		t.Fatalf("unexpected subscription; got %v", sub)
	}
	if want := fmt.Sprintf("http://sandbox.localdomain:%d/", h.port); dest["URI"] != want {
		t.Fatalf("unexpected destination; got %v; want %s", dest["URI"], want)
	}
	if !strings.Contains(h.stderr.String(), "kte: started") || !strings.Contains(h.stderr.String(), "init_ms=") {
		t.Fatalf("missing start-up line; stderr:\n%s", h.stderr.String())
	}

	// Invoke 1: telemetry arrives while the function runs; the extension
	// flushes and calls /event/next again.
	if got := h.post(telemetryBody("req-0", 0, 300)); got != 200 {
		t.Fatalf("unexpected status; got %d; want 200", got)
	}
	rt.invoke("req-1", 3*time.Second)
	rt.waitNext(2)
	if got := h.post(telemetryBody("req-1", 300, 200)); got != 200 {
		t.Fatalf("unexpected status; got %d; want 200", got)
	}
	rt.invoke("req-2", 3*time.Second)
	rt.waitNext(3)

	// SHUTDOWN, then the late telemetry (the last report) arrives within
	// the quiet period and must still be delivered.
	rt.shutdown("spindown", 2*time.Second)
	time.Sleep(5 * time.Millisecond)
	if got := h.post(telemetryBody("req-2", 500, 10)); got != 200 {
		t.Fatalf("unexpected status for late telemetry; got %d; want 200", got)
	}
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code; got %d; want 0; stderr:\n%s", code, h.stderr.String())
	}
	recs, err := kl.ReadAll(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	seen := seqsIn(t, recs)
	for i := range 510 {
		if seen[i] != 1 {
			t.Fatalf("event seq=%d delivered %d times; want exactly once", i, seen[i])
		}
	}
	if len(recs) != 510 {
		t.Fatalf("unexpected record count; got %d; want 510", len(recs))
	}
	out := h.stderr.String()
	if !strings.Contains(out, "KTE_SUMMARY reason=spindown received=510 ") || !strings.Contains(out, " sent=510 ") || !strings.Contains(out, " dropped_shutdown=0 ") {
		t.Fatalf("unexpected summary; stderr:\n%s", out)
	}
	if strings.Contains(out, "KTE_UNDELIVERED") {
		t.Fatalf("unexpected undelivered events; stderr:\n%s", out)
	}
	if len(subscribedAtBuild) != 0 {
		t.Fatalf("unexpected second Kinesis client build")
	}
	// The GC target changes after the first collection.
	runtime.GC()
	select {
	case p := <-h.gcSet:
		if p != gcPercent || len(h.gcSet) != 0 {
			t.Fatalf("unexpected GC setting %d (and %d more); want one SetGCPercent(%d)", p, len(h.gcSet), gcPercent)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no SetGCPercent(%d) after a collection", gcPercent)
	}
}

func TestLifecycleSubscribe202KeepsWorking(t *testing.T) {
	rt := newFakeRuntime(t)
	rt.subscribeStatus = 202
	h := startExtension(t, rt, map[string]string{"AWS_ENDPOINT_URL_KINESIS": "", "GOGC": "200"})
	rt.waitNext(1)
	rt.invoke("req-1", 2*time.Second)
	rt.waitNext(2)
	rt.shutdown("SPINDOWN", 1*time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code; got %d; want 0; stderr:\n%s", code, h.stderr.String())
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond) // time for a cleanup that must not exist
	if len(h.gcSet) != 0 {
		t.Fatalf("unexpected SetGCPercent(%d) with GOGC set in the environment", <-h.gcSet)
	}
	out := h.stderr.String()
	if !strings.Contains(out, "not supported") || !strings.Contains(out, "KTE_SUMMARY reason=spindown ") {
		t.Fatalf("missing 202 notice or summary; stderr:\n%s", out)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.initErrors) != 0 {
		t.Fatalf("unexpected init errors: %q", rt.initErrors)
	}
}

func TestLifecycleInitErrors(t *testing.T) {
	f := func(name string, setup func(*fakeRuntime), vars map[string]string, wantType string, wantInMessage ...string) {
		t.Helper()
		rt := newFakeRuntime(t)
		if setup != nil {
			setup(rt)
		}
		h := startExtension(t, rt, vars)
		if code := h.exitCode(); code != 1 {
			t.Fatalf("%s: unexpected exit code; got %d; want 1", name, code)
		}
		rt.mu.Lock()
		defer rt.mu.Unlock()
		if wantType == "" {
			if len(rt.initErrors) != 0 {
				t.Fatalf("%s: unexpected init errors %q", name, rt.initErrors)
			}
			return
		}
		if len(rt.initErrors) != 1 || !strings.HasPrefix(rt.initErrors[0], wantType+": ") {
			t.Fatalf("%s: unexpected init errors; got %q; want one of type %s", name, rt.initErrors, wantType)
		}
		for _, w := range wantInMessage {
			if !strings.Contains(rt.initErrors[0], w) {
				t.Fatalf("%s: init error %q does not mention %q", name, rt.initErrors[0], w)
			}
		}
	}
	f("subscribe refused", func(rt *fakeRuntime) { rt.subscribeStatus = 400 }, nil, "Extension.SubscribeFailed", "bad subscription")
	f("subscribe 500", func(rt *fakeRuntime) { rt.subscribeStatus = 500 }, nil, "Extension.SubscribeFailed")
	f("register refused", func(rt *fakeRuntime) { rt.registerStatus = 403 }, nil, "")
	busy, err := net.Listen("tcp", "127.0.0.1:0") // where the listener falls back when sandbox.localdomain does not resolve
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	f("telemetry port in use", nil, map[string]string{"KTE_LISTEN_PORT": port}, "Extension.ListenFailed",
		"cannot start the telemetry listener on port "+port, "address already in use")
	f("missing stream and bad values", nil, map[string]string{
		"KTE_STREAM": "", "KTE_BATCH_MAX_RECORDS": "501", "KTE_BUFFER_TIMEOUT_MS": "10", "KTE_RECORD_MAX_BYTES": "11MiB",
	}, "Extension.ConfigInvalid",
		"KTE_STREAM", `KTE_BATCH_MAX_RECORDS="501"`, "between 1 and 500", `KTE_BUFFER_TIMEOUT_MS="10"`, "between 25 and 30000", `KTE_RECORD_MAX_BYTES="11MiB"`)
}

// TestLifecycleRegisterBodyUnusable: a registration answered with the
// extension id and a body that cannot be decoded is a registration: the
// extension warns and goes on (its events carry the environment's function
// name and version).
func TestLifecycleRegisterBodyUnusable(t *testing.T) {
	rt := newFakeRuntime(t)
	rt.registerBody = "<html>bad gateway</html>"
	h := startExtension(t, rt, nil)
	rt.waitNext(1)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	if out := h.stderr.String(); !strings.Contains(out, "kte: registered, but the answer's body is unusable") || !strings.Contains(out, "cannot decode register response") {
		t.Fatalf("missing warning; stderr:\n%s", out)
	}
}

func TestLifecycleOutageWritesUndeliveredToStderr(t *testing.T) {
	// A Kinesis endpoint that never answers: the outage outlasts the
	// SHUTDOWN deadline, so every event must end up on stderr.
	hangingKinesis(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_SEND_TIMEOUT_MS": "200", "KTE_METRICS": "on"})
	rt.waitNext(1)
	if got := h.post(telemetryBody("req-0", 0, 50)); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.invoke("req-1", 600*time.Millisecond)
	rt.waitNext(2)
	start := time.Now()
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code; got %d; want 0", code)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("shutdown overran its 1s deadline: %v", took)
	}
	out := h.stderr.String()
	lines := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "KTE_UNDELIVERED reason=shutdown_deadline {") {
			lines++
		}
	}
	if lines != 50 {
		t.Fatalf("unexpected KTE_UNDELIVERED lines; got %d; want 50; stderr:\n%s", lines, out)
	}
	if !strings.Contains(out, "KTE_SUMMARY reason=spindown received=50 ") || !strings.Contains(out, " sent=0 ") || !strings.Contains(out, " dropped_shutdown=50 ") {
		t.Fatalf("unexpected summary; stderr:\n%s", out)
	}
	// The drops are visible in the metrics line too.
	doc, err := emftest.Parse([]byte(h.stdout.String()))
	if err != nil {
		t.Fatalf("invalid EMF line: %v\n%s", err, h.stdout.String())
	}
	if doc.Values["DroppedShutdown"] != 50 || doc.Values["EventsDropped"] != 50 || doc.Values["EventsSent"] != 0 ||
		doc.Values["FlushesIncomplete"] < 1 || doc.Values["CallsFailed"] < 1 || doc.Values["EventsReceived"] != 50 {
		t.Fatalf("unexpected metrics for an outage: %v", doc.Values)
	}
}

// TestSummaryBalancesWrappedRecords: with payloads stored wrapped (a
// malformed body: one record; an event over the record limit: parts; a body
// of more events than one ring block holds: parts), the summary counts the
// events received, those of the overflowing body included, says how many
// records they became, and those add up:
// records = sent + dropped_shutdown + dropped_oversize.
func TestSummaryBalancesWrappedRecords(t *testing.T) {
	hangingKinesis(t) // nothing is delivered: everything is dropped at shutdown
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_SEND_TIMEOUT_MS": "200", "KTE_BUFFER_MAX_BYTES": "1MiB"})
	rt.waitNext(1)
	if got := h.post(`this is not json`); got != 200 {
		t.Fatalf("unexpected status for a malformed body; got %d", got)
	}
	big := `[{"time":"2026-01-01T00:00:03.140Z","type":"function","record":"` + strings.Repeat("x", 1_200_000) + `"}]`
	if got := h.post(big); got != 200 {
		t.Fatalf("unexpected status for an oversize event; got %d", got)
	}
	// 50,000 small events (1.8 MB): enriched and framed, more than the
	// 8 MiB ring, so the body is stored whole as an overflow.
	const overflowEvents = 50_000
	var many strings.Builder
	many.WriteString("[")
	for i := range overflowEvents {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `{"type":"function","record":"%d"}`, i)
	}
	many.WriteString("]")
	if got := h.post(many.String()); got != 200 {
		t.Fatalf("unexpected status for an overflowing body; got %d", got)
	}
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d", code)
	}
	out := h.stderr.String()
	line := summaryOf(t, out)
	field := func(k string) int { return summaryField(t, line, k) }
	records := field("records")
	// Records: the malformed body's one, the oversize event's two parts and
	// the overflowing body's three.
	if field("received") != 1+overflowEvents || records != 6 || field("quarantined") != 2 || field("oversize_split") != 1 ||
		field("sent")+field("dropped_shutdown")+field("dropped_oversize") != records {
		t.Fatalf("unexpected summary (want received=%d records=6, records = sent + drops): %s", 1+overflowEvents, line)
	}
	// One line per record, or, for a record too long for one line, its
	// first part.
	n := 0
	for l := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(l, "KTE_UNDELIVERED reason=shutdown_deadline "); ok &&
			(strings.HasPrefix(rest, "{") || strings.HasPrefix(rest[min(len(rest), len("id=0123456789abcdef")):], " part=1/")) {
			n++
		}
	}
	if n != records {
		t.Fatalf("unexpected KTE_UNDELIVERED records: %d; want %d", n, records)
	}
}

// TestSummaryBalancesOnEveryExit: however the extension ends (SHUTDOWN,
// with Kinesis answering, failing part-way or not at all, or without a
// Kinesis client; a failed /event/next; a signal outside Lambda), it writes
// one summary line whose records add up: records = sent + dropped_shutdown
// + dropped_oversize, with one KTE_UNDELIVERED line per dropped record.
func TestSummaryBalancesOnEveryExit(t *testing.T) {
	f := func(name string, accept int, end func(*fakeRuntime, *harness), wantCode int, wantReason string, wantSent int) {
		t.Helper()
		k := stallingKinesis(t, accept)
		rt := newFakeRuntime(t)
		// Time enough for an answered call on a loaded machine: one that
		// timed out after Kinesis stored it would be counted as not sent.
		h := startExtension(t, rt, map[string]string{"KTE_BATCH_MAX_RECORDS": "10", "KTE_SEND_TIMEOUT_MS": "1000", "KTE_FLUSH_MAX_MS": "1500"})
		rt.waitNext(1)
		if got := h.post(`this is not json`); got != 200 { // one wrapped record, no event
			t.Fatalf("%s: unexpected status for a malformed body; got %d", name, got)
		}
		if got := h.post(telemetryBody("req-0", 0, 40)); got != 200 {
			t.Fatalf("%s: unexpected status; got %d", name, got)
		}
		rt.invoke("req-1", 3*time.Second)
		rt.waitNext(2)
		if got := h.post(telemetryBody("req-1", 40, 10)); got != 200 {
			t.Fatalf("%s: unexpected status; got %d", name, got)
		}
		end(rt, h)
		if code := h.exitCode(); code != wantCode {
			t.Fatalf("%s: unexpected exit code %d; want %d; stderr:\n%s", name, code, wantCode, h.stderr.String())
		}
		out := h.stderr.String()
		if n := strings.Count(out, "KTE_SUMMARY "); n != 1 {
			t.Fatalf("%s: unexpected %d summary lines; want 1; stderr:\n%s", name, n, out)
		}
		line := summaryOf(t, out)
		records, sent := summaryField(t, line, "records"), summaryField(t, line, "sent")
		dropped := summaryField(t, line, "dropped_shutdown")
		if !strings.HasPrefix(line, "KTE_SUMMARY reason="+wantReason+" ") || summaryField(t, line, "received") != 50 || records != 51 ||
			sent+dropped+summaryField(t, line, "dropped_oversize") != records {
			t.Fatalf("%s: unexpected summary (want reason=%s received=50 records=51, records = sent + drops): %s", name, wantReason, line)
		}
		if n := strings.Count(out, "KTE_UNDELIVERED reason=shutdown_deadline {"); n != dropped {
			t.Fatalf("%s: unexpected %d KTE_UNDELIVERED lines; want %d (dropped_shutdown)", name, n, dropped)
		}
		if got := k.Count(); got != sent || sent != wantSent {
			t.Fatalf("%s: Kinesis stored %d records; the summary says sent=%d; want %d", name, got, sent, wantSent)
		}
	}
	shutdown := func(rt *fakeRuntime, _ *harness) { rt.shutdown("spindown", time.Second) }
	nextFails := func(rt *fakeRuntime, _ *harness) {
		rt.next <- map[string]any{"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": time.Now().Add(time.Second).UnixMilli(), cutAnswer: true}
	}
	f("shutdown, every call answered", -1, shutdown, 0, "spindown", 51)
	f("shutdown, Kinesis stalls after one call", 1, shutdown, 0, "spindown", 10)
	f("shutdown, Kinesis never answers", 0, shutdown, 0, "spindown", 0)
	f("/event/next fails", -1, nextFails, 1, "runtime_api_error", 51)
	f("/event/next fails, Kinesis stalls after one call", 1, nextFails, 1, "runtime_api_error", 10)
	f("signal", -1, func(_ *fakeRuntime, h *harness) { h.cancel() }, 0, "signal", 51)
	t.Setenv("AWS_RETRY_MODE", "legacy") // the SDK refuses it: no Kinesis client (kept to the end of the test)
	f("shutdown, no Kinesis client", -1, shutdown, 0, "spindown", 0)
	f("/event/next fails, no Kinesis client", -1, nextFails, 1, "runtime_api_error", 0)
}

// TestSummaryAndMetricsIdentities: the units of the summary line and the
// metrics. received (EventsReceived) counts events; records, sent
// (EventsSent) and the drops count records, so with wrapped payloads the
// two differ, and
//
//	records = sent + dropped_shutdown + dropped_oversize
//	EventsDropped = DroppedShutdown + DroppedOversize + DroppedByLambda
//	              = dropped_shutdown + dropped_oversize + dropped_by_lambda
//
// summed over the run's EMF lines, with one KTE_UNDELIVERED record per
// record dropped at shutdown.
func TestSummaryAndMetricsIdentities(t *testing.T) {
	stallingKinesis(t, 1) // the first call is stored, the others never answered
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_METRICS": "on", "KTE_BATCH_MAX_RECORDS": "10",
		"KTE_SEND_TIMEOUT_MS": "1000", "KTE_FLUSH_MAX_MS": "1500", "KTE_BUFFER_MAX_BYTES": "1MiB"})
	rt.waitNext(1)
	logsDropped := `{"time":"2026-01-01T00:00:03.191Z","type":"platform.logsDropped","record":{"droppedBytes":4096,"droppedRecords":7,"reason":"Consumer seems to have fallen behind"}}`
	big := `{"time":"2026-01-01T00:00:03.140Z","type":"function","record":"` + strings.Repeat("x", 1_200_000) + `"}`
	f := func(b string) {
		t.Helper()
		if got := h.post(b); got != 200 {
			t.Fatalf("unexpected status; got %d; want 200", got)
		}
	}
	f(`this is not json`)                  // no event, one record
	f(telemetryBody("req-0", 0, 30))       // 30 events, 30 records
	f("[" + logsDropped + "," + big + "]") // 2 events, 3 records: the big one in two parts
	rt.invoke("req-1", 3*time.Second)
	rt.waitNext(2)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	line := summaryOf(t, h.stderr.String())
	field := func(k string) int { return summaryField(t, line, k) }
	received, records, sent := field("received"), field("records"), field("sent")
	shutdown, oversize, byLambda := field("dropped_shutdown"), field("dropped_oversize"), field("dropped_by_lambda")
	if received != 32 || records != 34 || sent != 10 || byLambda != 7 || records != sent+shutdown+oversize {
		t.Fatalf("unexpected summary (want received=32 records=34 sent=10 dropped_by_lambda=7, records = sent + drops): %s", line)
	}
	undelivered := 0
	for l := range strings.Lines(h.stderr.String()) {
		if rest, ok := strings.CutPrefix(l, "KTE_UNDELIVERED reason=shutdown_deadline "); ok &&
			(strings.HasPrefix(rest, "{") || strings.Contains(rest, " part=1/")) {
			undelivered++
		}
	}
	if undelivered != shutdown {
		t.Fatalf("unexpected KTE_UNDELIVERED records; got %d; want %d (dropped_shutdown)", undelivered, shutdown)
	}
	sum := map[string]float64{}
	for l := range strings.Lines(h.stdout.String()) {
		doc, err := emftest.Parse([]byte(l))
		if err != nil {
			t.Fatalf("invalid EMF line: %v\n%s", err, l)
		}
		for k, v := range doc.Values {
			sum[k] += v
		}
	}
	want := map[string]float64{
		"EventsReceived": float64(received), "EventsSent": float64(sent), "DroppedShutdown": float64(shutdown),
		"DroppedOversize": float64(oversize), "DroppedByLambda": float64(byLambda),
		"EventsDropped": float64(shutdown + oversize + byLambda),
	}
	for k, v := range want {
		if sum[k] != v {
			t.Fatalf("unexpected %s over the run; got %v; want %v (summary: %s)", k, sum[k], v, line)
		}
	}
	if sum["EventsDropped"] != sum["DroppedShutdown"]+sum["DroppedOversize"]+sum["DroppedByLambda"] {
		t.Fatalf("unexpected EventsDropped %v; want DroppedShutdown + DroppedOversize + DroppedByLambda: %v", sum["EventsDropped"], sum)
	}
}

// stallingKinesis points the SDK at a fake Kinesis endpoint that stores
// the records of the first accept PutRecords calls (every call when accept
// is negative) and holds every later call until the client gives up.
func stallingKinesis(t *testing.T, accept int) *flushtest.Kinesis {
	t.Helper()
	k := flushtest.NewKinesis(0)
	t.Cleanup(k.Close)
	u, err := url.Parse(k.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := calls.Add(1); accept >= 0 && n > int64(accept) {
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return k
}

// hangingKinesis points the SDK at a Kinesis endpoint that reads each
// request and never answers, for the test's duration.
func hangingKinesis(t *testing.T) {
	t.Helper()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client going away
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", hang.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// throttlingKinesis points the SDK at a Kinesis endpoint that refuses
// every PutRecords as a whole with ProvisionedThroughputExceededException
// (HTTP 400), for the test's duration.
func throttlingKinesis(t *testing.T) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", "ProvisionedThroughputExceededException")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for stream"}`)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// summaryField returns the value of key=N in a KTE_SUMMARY line.
func summaryField(t *testing.T, line, key string) int {
	t.Helper()
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("summary field %s=%q: %v", key, v, err)
			}
			return n
		}
	}
	t.Fatalf("summary without %s: %q", key, line)
	return 0
}

// summaryOf returns the KTE_SUMMARY line of a stderr.
func summaryOf(t *testing.T, stderr string) string {
	t.Helper()
	for l := range strings.Lines(stderr) {
		if strings.HasPrefix(l, "KTE_SUMMARY ") {
			return strings.TrimSuffix(l, "\n")
		}
	}
	t.Fatalf("no summary line; stderr:\n%s", stderr)
	return ""
}

// TestSummaryThrottledCountsRecords: the summary's throttled= and the
// RecordsThrottled metric count records, also when Kinesis throttles a
// call as a whole: each call refused here carries all 20 events.
func TestSummaryThrottledCountsRecords(t *testing.T) {
	throttlingKinesis(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_METRICS": "on", "KTE_FLUSH_MAX_MS": "300"})
	rt.waitNext(1)
	if got := h.post(telemetryBody("req-0", 0, 20)); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.invoke("req-1", 10*time.Second)
	rt.waitNext(2)
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d", code)
	}
	line := summaryOf(t, h.stderr.String())
	doc, err := emftest.Parse([]byte(h.stdout.String()))
	if err != nil {
		t.Fatalf("invalid EMF line: %v\n%s", err, h.stdout.String())
	}
	calls := doc.Values["CallsThrottled"]
	if throttled := summaryField(t, line, "throttled"); calls < 1 || float64(throttled) != 20*calls || doc.Values["RecordsThrottled"] != 20*calls {
		t.Fatalf("unexpected throttled counts for %v calls throttled as a whole, of 20 records each; want 20 records a call: %s; RecordsThrottled=%v",
			calls, line, doc.Values["RecordsThrottled"])
	}
}

// TestEarlySocket: a socket bound during package initialisation (package
// earlysub) for the configured port is the one served; one bound for
// another port, or with an invalid configuration, is closed.
func TestEarlySocket(t *testing.T) {
	// bind binds a socket as earlysub does and hands it on as a file.
	bind := func() (*os.File, int) {
		t.Helper()
		port, err := lambdasim.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		return f, port
	}
	free := func(port int) bool {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
		}
		return err == nil
	}

	// Served: the lifecycle's own bind would fail on the port it holds.
	rt := newFakeRuntime(t)
	ln, port := bind()
	h := startExtensionWith(t, rt, map[string]string{"KTE_LISTEN_PORT": strconv.Itoa(port)}, earlysub.Result{Socket: ln, Port: port})
	h.port = port
	rt.waitNext(1)
	if code := h.post(telemetryBody("req-0", 0, 3)); code != 200 {
		t.Fatalf("unexpected status %d; stderr:\n%s", code, h.stderr.String())
	}
	h.cancel()
	h.exitCode()

	// Another port: closed, the configured one bound.
	rt = newFakeRuntime(t)
	other, otherPort := bind()
	h = startExtensionWith(t, rt, nil, earlysub.Result{Socket: other, Port: otherPort})
	rt.waitNext(1)
	if !free(otherPort) {
		t.Fatalf("unexpected: port %d is still bound", otherPort)
	}
	if code := h.post(telemetryBody("req-0", 0, 3)); code != 200 {
		t.Fatalf("unexpected status %d; stderr:\n%s", code, h.stderr.String())
	}
	h.cancel()
	h.exitCode()

	// Invalid configuration: reported, the socket closed.
	rt = newFakeRuntime(t)
	ln, port = bind()
	h = startExtensionWith(t, rt, map[string]string{"KTE_LISTEN_PORT": strconv.Itoa(port), "KTE_BUFFER_TIMEOUT_MS": "10"},
		earlysub.Result{Socket: ln, Port: port})
	if code := h.exitCode(); code != 1 {
		t.Fatalf("unexpected exit code %d", code)
	}
	if !free(port) {
		t.Fatalf("unexpected: port %d is still bound", port)
	}
}

// TestInitErrorAfterEarlyNext: a failure of Init is reported to
// /init/error, unless the first /event/next went out during package
// initialisation (earlysub): Lambda then has the extension's Init as over,
// and it goes to /exit/error.
func TestInitErrorAfterEarlyNext(t *testing.T) {
	for _, early := range []bool{false, true} {
		rt := newFakeRuntime(t)
		done := make(chan struct{})
		close(done)
		x := &extension{log: slog.New(slog.DiscardHandler), api: extapi.New(rt.addr(), extapi.WithExtensionID("id-1"),
			extapi.WithNext(func() (time.Time, bool) { return time.Now(), early }, done, func() ([]byte, bool) { return nil, false }))}
		if code := x.initError(context.Background(), "Extension.Test", errors.New("broken")); code != 1 {
			t.Fatalf("unexpected exit code %d", code)
		}
		rt.mu.Lock()
		initErrors, exitErrors := len(rt.initErrors), len(rt.exitErrors)
		rt.mu.Unlock()
		if early && (initErrors != 0 || exitErrors != 1) || !early && (initErrors != 1 || exitErrors != 0) {
			t.Fatalf("early %v: unexpected %d init errors and %d exit errors", early, initErrors, exitErrors)
		}
	}
}
