package lambdasim

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSubscribeValidation sends subscription bodies from the test (with the
// identifier of an extension held in Init) and checks each violation of the
// documented limits gets 400 ValidationError, and the boundaries pass.
func TestSubscribeValidation(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.RequestURI())
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(sink.Close)
	port := sink.Listener.Addr().(*net.TCPAddr).Port

	hold := t.TempDir() + "/go"
	x := newTestExt(t, "validator", "TESTEXT_SUBSCRIBE=0", "TESTEXT_HOLD="+hold)
	s := newSim(t, Config{Extensions: []Extension{x.Extension}})
	ctx := testCtx(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	id := string(waitFile(t, x.file("id")))
	url := "http://" + s.RuntimeAPI() + "/2022-07-01/telemetry"
	uri := fmt.Sprintf("http://sandbox.localdomain:%d/in?x=1", port)

	body := func(mod func(m map[string]any)) string {
		m := map[string]any{
			"schemaVersion": "2022-12-13",
			"types":         []any{"platform", "function"},
			"buffering":     map[string]any{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
			"destination":   map[string]any{"protocol": "HTTP", "URI": uri},
		}
		if mod != nil {
			mod(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	buffering := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m["buffering"].(map[string]any)[k] = v }
	}
	destination := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m["destination"].(map[string]any)[k] = v }
	}
	set := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m[k] = v }
	}
	del := func(k string) func(map[string]any) {
		return func(m map[string]any) { delete(m, k) }
	}
	f := func(name, body string, wantStatus int, wantMsg string) {
		t.Helper()
		status, b := do(t, "PUT", url, map[string]string{headerIdentifier: id, "Content-Type": "application/json"}, body)
		if status != wantStatus {
			t.Fatalf("%s: unexpected status; got %d %s; want %d", name, status, b, wantStatus)
		}
		if wantStatus == 400 {
			var e struct{ ErrorType, ErrorMessage string }
			if err := json.Unmarshal(b, &e); err != nil || e.ErrorType != "ValidationError" || !strings.Contains(e.ErrorMessage, wantMsg) {
				t.Fatalf("%s: unexpected answer %s; want ValidationError mentioning %q", name, b, wantMsg)
			}
		} else if wantStatus == 200 && string(b) != `"OK"` {
			t.Fatalf("%s: unexpected body %s", name, b)
		}
	}
	f("not JSON", `{"schemaVersion":`, 400, "JSON")
	f("array", `[]`, 400, "JSON")
	f("no schema", body(del("schemaVersion")), 400, "schemaVersion")
	f("old schema", body(set("schemaVersion", "2021-01-01")), 400, "schemaVersion")
	f("numeric schema", body(set("schemaVersion", 2022)), 400, "schemaVersion")
	f("no types", body(del("types")), 400, "types")
	f("empty types", body(set("types", []any{})), 400, "types")
	f("unknown type", body(set("types", []any{"platform", "logs"})), 400, "logs")
	f("types not strings", body(set("types", []any{1})), 400, "types")
	f("no destination", body(del("destination")), 400, "destination")
	f("HTTPS protocol", body(destination("protocol", "HTTPS")), 400, "protocol")
	f("TCP protocol", body(destination("protocol", "TCP")), 400, "TCP")
	f("no URI", body(destination("URI", "")), 400, "URI")
	f("https URI", body(destination("URI", fmt.Sprintf("https://sandbox.localdomain:%d", port))), 400, "scheme")
	f("localhost URI", body(destination("URI", fmt.Sprintf("http://localhost:%d", port))), 400, "host")
	f("no port", body(destination("URI", "http://sandbox.localdomain/")), 400, "port")
	f("port 9001", body(destination("URI", "http://sandbox.localdomain:9001/")), 400, "9001")
	f("port 70000", body(destination("URI", "http://sandbox.localdomain:70000/")), 400, "port")
	f("maxItems 999", body(buffering("maxItems", 999)), 400, "maxItems")
	f("maxItems 10001", body(buffering("maxItems", 10001)), 400, "maxItems")
	f("maxItems 1000.5", body(buffering("maxItems", 1000.5)), 400, "maxItems")
	f("maxItems string", body(buffering("maxItems", "1000")), 400, "maxItems")
	f("maxBytes 262143", body(buffering("maxBytes", 262143)), 400, "maxBytes")
	f("maxBytes 1048577", body(buffering("maxBytes", 1048577)), 400, "maxBytes")
	f("timeoutMs 24", body(buffering("timeoutMs", 24)), 400, "timeoutMs")
	f("timeoutMs 30001", body(buffering("timeoutMs", 30001)), 400, "timeoutMs")
	f("buffering not object", body(set("buffering", 5)), 400, "buffering")
	if n := len(s.Subscribers()); n != 0 {
		t.Fatalf("unexpected subscribers after rejected requests: %d", n)
	}

	f("maximum limits", body(func(m map[string]any) {
		m["schemaVersion"] = "2025-01-29"
		m["buffering"] = map[string]any{"maxItems": 10000, "maxBytes": 1048576, "timeoutMs": 30000}
	}), 200, "")
	f("defaults, host sandbox, old schema", body(func(m map[string]any) {
		delete(m, "buffering")
		m["schemaVersion"] = "2022-07-01"
		m["destination"].(map[string]any)["URI"] = fmt.Sprintf("http://sandbox:%d/in?x=1", port)
	}), 200, "")
	st, ok := s.Subscriber("validator")
	if !ok || st.SchemaVersion != "2022-07-01" || st.MaxItems != 10000 || st.MaxBytes != 262144 || st.Timeout != time.Second || !slices.Equal(st.Types, []string{"platform", "function"}) {
		t.Fatalf("unexpected subscription %+v", st)
	}
	// A later subscription replaces the settings (timeoutMs 25 delivers before the test ends).
	f("minimum limits", body(nil), 200, "")
	if st, _ := s.Subscriber("validator"); st.Timeout != 25*time.Millisecond || st.MaxItems != 1000 {
		t.Fatalf("unexpected subscription %+v", st)
	}
	status, b := do(t, "PUT", url, map[string]string{}, body(nil))
	if status != 403 || !strings.Contains(string(b), errTypeMissingIdentifier) {
		t.Fatalf("unexpected answer without identifier: %d %s", status, b)
	}

	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	invoke(t, s, Invocation{LogLines: 1})
	if _, err := s.Shutdown(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	// Deliveries went to 127.0.0.1 at the URI's port and path.
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[0] != "/in?x=1" {
		t.Fatalf("unexpected delivery paths %q", paths)
	}
}

// TestRetryWithBackoff: the extension answers 500 twice; the same batch is
// retried with a growing backoff and delivered once.
func TestRetryWithBackoff(t *testing.T) {
	x := newTestExt(t, "flaky", "TESTEXT_FAIL_POSTS=2")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}, RetryMin: 40 * time.Millisecond})
	startInit(t, s)
	invoke(t, s, Invocation{Duration: 150 * time.Millisecond, LogLines: 10})
	invoke(t, s, Invocation{LogLines: 10})
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
	posts := marks(s, MarkPost, "flaky")
	if len(posts) < 3 {
		t.Fatalf("unexpected POSTs %v", posts)
	}
	if posts[0].Status != 500 || posts[1].Status != 500 || posts[2].Status != 200 {
		t.Fatalf("unexpected statuses %d %d %d", posts[0].Status, posts[1].Status, posts[2].Status)
	}
	if !slices.Equal(posts[0].Events, posts[1].Events) || !slices.Equal(posts[1].Events, posts[2].Events) || posts[1].Detail != "retry" {
		t.Fatalf("unexpected retried batches %v", posts[:3])
	}
	end := func(m Mark) time.Duration { return m.At + m.Latency }
	if g1, g2 := posts[1].At-end(posts[0]), posts[2].At-end(posts[1]); g1 < 40*time.Millisecond || g2 < 80*time.Millisecond {
		t.Fatalf("unexpected backoff %s then %s; want at least 40ms then 80ms", g1, g2)
	}
	st, _ := s.Subscriber("flaky")
	if st.Retries != 2 || st.FailedPosts != 2 || len(st.Pending) != 0 {
		t.Fatalf("unexpected stats %+v", st)
	}
	if d := Compare(s.Generated(), x.received(t)); !d.OK() {
		t.Fatalf("unexpected delivery: %d missing, %d duplicated, %d unexpected", len(d.Missing), len(d.Duplicated), len(d.Unexpected))
	}
}

// TestConnectionErrorRetried: a subscriber whose listener is gone gets
// connection errors, retried until it exits; the events stay undelivered.
func TestConnectionErrorRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	hold := t.TempDir() + "/go"
	x := newTestExt(t, "deaf", "TESTEXT_SUBSCRIBE=0", "TESTEXT_HOLD="+hold, "TESTEXT_SHUTDOWN_WAIT=300ms")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}, RetryMin: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond})
	ctx := testCtx(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	id := string(waitFile(t, x.file("id")))
	status, b := do(t, "PUT", "http://"+s.RuntimeAPI()+"/2022-07-01/telemetry", map[string]string{headerIdentifier: id},
		fmt.Sprintf(`{"schemaVersion":"2025-01-29","types":["platform"],"buffering":{"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:%d"}}`, port))
	if status != 200 {
		t.Fatalf("unexpected subscribe answer %d %s", status, b)
	}
	_ = os.WriteFile(hold, nil, 0o644)
	if _, err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	sr, err := s.Shutdown(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	posts := marks(s, MarkPost, "deaf")
	if len(posts) < 3 || posts[0].Status != 0 || posts[0].Err == "" {
		t.Fatalf("unexpected POSTs %v", posts)
	}
	st, _ := s.Subscriber("deaf")
	if len(st.Acked) != 0 || len(st.Pending) == 0 || sr.Undelivered != len(st.Pending) {
		t.Fatalf("unexpected stats %+v and undelivered %d", st, sr.Undelivered)
	}
}

// TestLogsDropped: a slow subscriber with a small queue bound loses the
// oldest events and is told with platform.logsDropped.
func TestLogsDropped(t *testing.T) {
	x := newTestExt(t, "slow", "TESTEXT_POST_DELAY=150ms", "TESTEXT_SHUTDOWN_WAIT=500ms")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}, SubscriberBufferBytes: 64 << 10})
	startInit(t, s)
	invoke(t, s, Invocation{Duration: 50 * time.Millisecond, LogLines: 2000, LineSizes: []int{200}})
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Subscriber("slow")
	if len(st.Dropped) == 0 {
		t.Fatalf("unexpected stats: nothing dropped: %+v", st)
	}
	// One logsDropped per overflow, counting exactly what that overflow dropped.
	dropped := eventsOf(s, TypeLogsDropped)
	overflows := marks(s, MarkLogsDropped, "slow")
	if len(dropped) != len(overflows) {
		t.Fatalf("unexpected logsDropped count %d for %d overflows", len(dropped), len(overflows))
	}
	total := 0
	for i, ev := range dropped {
		r, m := record(t, ev), overflows[i]
		size := 0
		for _, d := range s.Events(m.Events) {
			size += len(d.Bytes)
		}
		if ev.Source != "slow" || r["reason"] != LogsDroppedReason || int(r["droppedRecords"].(float64)) != len(m.Events) ||
			int(r["droppedBytes"].(float64)) != m.Bytes || size != m.Bytes {
			t.Fatalf("unexpected logsDropped %s for overflow %v (%d bytes)", ev.Bytes, m, size)
		}
		total += len(m.Events)
	}
	if total != len(st.Dropped) {
		t.Fatalf("unexpected droppedRecords total; got %d; want %d", total, len(st.Dropped))
	}
	// Every generated event is exactly one of: acknowledged, dropped, pending.
	seen := map[int]int{}
	for _, l := range [][]int{st.Acked, st.Dropped, st.Pending} {
		for _, id := range l {
			seen[id]++
		}
	}
	for _, ev := range s.Generated() {
		if seen[ev.ID] != 1 {
			t.Fatalf("unexpected accounting of event %d (%s): %d", ev.ID, ev.Type, seen[ev.ID])
		}
	}
	if d := Compare(s.Events(st.Acked), x.received(t)); !d.OK() {
		t.Fatalf("unexpected delivery: %d missing, %d duplicated, %d unexpected", len(d.Missing), len(d.Duplicated), len(d.Unexpected))
	}
	// The first logsDropped reached the extension.
	if _, ok := postOf(s, "slow", dropped[0].ID); !ok {
		t.Fatal("logsDropped was not delivered")
	}
	for _, m := range marks(s, MarkPost, "slow") {
		if m.Bytes > 2*262144+2 {
			t.Fatalf("unexpected body size %d", m.Bytes)
		}
	}
}

// TestBatching: POSTs honour maxItems and maxBytes (TestBatchingTimeout
// checks timeoutMs).
func TestBatching(t *testing.T) {
	x := newTestExt(t, "batcher", "TESTEXT_BUFFERING=1000,262144,200", "TESTEXT_TYPES=function", "TESTEXT_SHUTDOWN_WAIT=400ms")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}})
	startInit(t, s)
	// 2500 small lines at once: two full batches of 1000 items right away, the rest after timeoutMs.
	invoke(t, s, Invocation{Duration: 400 * time.Millisecond, LogLines: 2500})
	// 100 lines of 10 KiB: batches close once they reach 256 KiB.
	invoke(t, s, Invocation{Duration: 400 * time.Millisecond, LogLines: 100, LineSizes: []int{10 << 10}})
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
	posts := marks(s, MarkPost, "batcher")
	sizes := []int{}
	for _, p := range posts {
		sizes = append(sizes, len(p.Events))
		if len(p.Events) > 1000 {
			t.Fatalf("unexpected batch of %d events", len(p.Events))
		}
		if p.Bytes > 262144+(10<<10)+2+len(p.Events) {
			t.Fatalf("unexpected batch of %d bytes", p.Bytes)
		}
	}
	if !slices.Contains(sizes, 1000) || !slices.Contains(sizes, 26) {
		t.Fatalf("unexpected batch sizes %v; want full batches of 1000 and 256 KiB batches of 26 lines", sizes)
	}
	if d := Compare(eventsOf(s, TypeFunction), x.received(t)); !d.OK() {
		t.Fatalf("unexpected delivery: %d missing, %d duplicated, %d unexpected", len(d.Missing), len(d.Duplicated), len(d.Unexpected))
	}
}

// TestBatchingTimeout: with events trickling in, a partial batch goes out
// timeoutMs after the oldest queued event, not after the newest.
func TestBatchingTimeout(t *testing.T) {
	x := newTestExt(t, "trickle", "TESTEXT_BUFFERING=1000,262144,200", "TESTEXT_TYPES=function", "TESTEXT_SHUTDOWN_WAIT=400ms")
	s := newSim(t, Config{Extensions: []Extension{x.Extension}})
	startInit(t, s)
	// A line every 20 ms for 400 ms: counted from the newest line,
	// timeoutMs would hold every line until about 200 ms after the last.
	invoke(t, s, Invocation{Duration: 400 * time.Millisecond, LogLines: 20})
	if _, err := s.Shutdown(testCtx(t), "", 0); err != nil {
		t.Fatal(err)
	}
	lines := eventsOf(s, TypeFunction)
	if len(lines) != 20 {
		t.Fatalf("unexpected function lines; got %d; want 20", len(lines))
	}
	first := lines[0]
	p, ok := postOf(s, "trickle", first.ID)
	if !ok {
		t.Fatal("the first line was not delivered")
	}
	wait := p.At - first.At
	if len(p.Events) >= len(lines) || wait < 190*time.Millisecond || wait > 200*time.Millisecond+slow(150*time.Millisecond) {
		t.Fatalf("unexpected first POST: %d of %d lines, %s after the first; want a partial batch about 200ms after it",
			len(p.Events), len(lines), wait)
	}
	if d := Compare(lines, x.received(t)); !d.OK() {
		t.Fatalf("unexpected delivery: %d missing, %d duplicated, %d unexpected", len(d.Missing), len(d.Duplicated), len(d.Unexpected))
	}
}
