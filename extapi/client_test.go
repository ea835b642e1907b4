package extapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/extapi/wire"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
)

// request is what the fake Runtime API received.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// fakeAPI is an httptest Runtime API: answer decides the response, every
// request is recorded.
type fakeAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []request
	answer func(w http.ResponseWriter, r *http.Request)
}

func newFakeAPI(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("unexpected error reading request body: %v", err)
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		f.answer(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// countedServer serves handler and counts the connections made to it; addr
// is the host:port form of AWS_LAMBDA_RUNTIME_API.
func countedServer(t *testing.T, handler http.HandlerFunc) (addr string, conns func() int) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() int { return int(n.Load()) }
}

// addr is the host:port form of AWS_LAMBDA_RUNTIME_API.
func (f *fakeAPI) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fakeAPI) last(t *testing.T) request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatalf("unexpected: no request received")
	}
	return f.reqs[len(f.reqs)-1]
}

func reply(status int, body string, header ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func checkRequest(t *testing.T, got request, method, path string, header map[string]string) {
	t.Helper()
	if got.Method != method || got.Path != path {
		t.Fatalf("unexpected request; got %s %s; want %s %s", got.Method, got.Path, method, path)
	}
	for k, v := range header {
		if g := got.Header.Get(k); g != v {
			t.Fatalf("unexpected header %s; got %q; want %q", k, g, v)
		}
	}
}

// checkJSON compares a JSON body with want after decoding both.
func checkJSON(t *testing.T, body []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("unexpected invalid JSON body %q: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("BUG: invalid want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("unexpected body; got %s; want %s", body, want)
	}
}

const testID = "4c9a3d5e-1f2b-4b7e-9a61-0d7c2f8e5b13"

func TestRegister(t *testing.T) {
	api := newFakeAPI(t, reply(200, `{"functionName":"orders-api","functionVersion":"$LATEST","handler":"bootstrap","accountId":"111122223333"}`,
		HeaderExtensionIdentifier, testID, "Content-Type", "application/json"))
	c := New(api.addr())
	got, err := c.Register(context.Background(), "kinesis-telemetry-extension", []EventType{Invoke, Shutdown})
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	want := RegisterResponse{ExtensionID: testID, FunctionName: "orders-api", FunctionVersion: "$LATEST", Handler: "bootstrap", AccountID: "111122223333"}
	if got != want {
		t.Fatalf("unexpected response; got %+v; want %+v", got, want)
	}
	if c.ExtensionID() != testID {
		t.Fatalf("unexpected ExtensionID; got %q; want %q", c.ExtensionID(), testID)
	}
	r := api.last(t)
	checkRequest(t, r, "POST", PathRegister, map[string]string{
		HeaderExtensionName: "kinesis-telemetry-extension",
		HeaderAcceptFeature: "accountId",
		"Content-Type":      "application/json",
	})
	checkJSON(t, r.Body, `{"events":["INVOKE","SHUTDOWN"]}`)

	// Shutdown-only (Lambda Managed Instances).
	if _, err := c.Register(context.Background(), "x", []EventType{Shutdown}); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	checkJSON(t, api.last(t).Body, `{"events":["SHUTDOWN"]}`)
	if _, err := c.Register(context.Background(), "x", nil); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	checkJSON(t, api.last(t).Body, `{"events":[]}`)
}

// TestRegisterDialsNextConnection: while the registration's answer is on
// its way, Register dials the connection the first Next uses, so Next makes
// no connection of its own; later registrations dial no more.
func TestRegisterDialsNextConnection(t *testing.T) {
	var mu sync.Mutex
	var conns, nextFrom []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == PathNext {
			mu.Lock()
			nextFrom = append(nextFrom, r.RemoteAddr)
			mu.Unlock()
			_, _ = io.WriteString(w, `{"eventType":"INVOKE"}`)
			return
		}
		w.Header().Set(HeaderExtensionIdentifier, testID)
		_, _ = io.WriteString(w, `{}`)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns = append(conns, c.RemoteAddr().String())
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(conns)
	}
	c := New(strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	if _, err := c.Register(ctx, "kte", nil); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	// The dial is done when Register returns; the server sees it soon after.
	for deadline := time.Now().Add(5 * time.Second); len(seen()) < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := seen(); len(got) != 2 {
		t.Fatalf("unexpected connections after Register; got %v; want the registration's and Next's", got)
	}
	for range 3 {
		if _, err := c.Next(ctx); err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if _, err := c.Register(ctx, "kte", nil); err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	got := seen()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || len(nextFrom) != 3 || nextFrom[0] != got[1] || nextFrom[2] != got[1] {
		t.Fatalf("unexpected connections %v, Next's from %v; want Next on the second, dialed by Register", got, nextFrom)
	}
}

// TestRegisterEarly: a registration written during initialisation
// (package earlyreg) is the request Register would send, Register reads its
// answer, and the later calls use its connection (with Next's, dialed by
// the warm-up, no more connections are made).
func TestRegisterEarly(t *testing.T) {
	var mu sync.Mutex
	var reqs []request
	addr, conns := countedServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		mu.Unlock()
		switch r.URL.Path {
		case PathNext:
			_, _ = io.WriteString(w, `{"eventType":"INVOKE","requestId":"r1"}`)
		case PathTelemetry:
			_, _ = io.WriteString(w, `"OK"`)
		default:
			w.Header().Set(HeaderExtensionIdentifier, testID)
			_, _ = io.WriteString(w, `{"functionName":"orders-api","functionVersion":"$LATEST","handler":"bootstrap","accountId":"111122223333"}`)
		}
	})
	ctx := context.Background()
	events := []EventType{Invoke, Shutdown}
	want := RegisterResponse{ExtensionID: testID, FunctionName: "orders-api", FunctionVersion: "$LATEST", Handler: "bootstrap", AccountID: "111122223333"}

	// The request Register sends itself, for comparison.
	plain := newFakeAPI(t, reply(200, `{}`, HeaderExtensionIdentifier, testID))
	if _, err := New(plain.addr()).Register(ctx, "kinesis-telemetry-extension", events); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	sent := plain.last(t)

	early := earlyreg.Send(runtimeAPIOnly(addr), "/opt/extensions/kinesis-telemetry-extension")
	if early == nil {
		t.Fatal("unexpected: no early registration")
	}
	c := New(addr, WithRegistration(early))
	if got, err := c.Register(ctx, "kinesis-telemetry-extension", events); err != nil || got != want {
		t.Fatalf("unexpected answer %+v, %v; want %+v", got, err, want)
	}
	if _, err := c.Subscribe(ctx, testSubscription()); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if ev, err := c.Next(ctx); err != nil || ev.RequestID != "r1" {
		t.Fatalf("unexpected answer %+v, %v", ev, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 3 || conns() != 2 {
		t.Fatalf("unexpected %d requests on %d connections; want 3 (register, subscribe, next) on 2 (the early one, Next's)", len(reqs), conns())
	}
	got := reqs[0]
	checkRequest(t, got, sent.Method, sent.Path, map[string]string{
		HeaderExtensionName: sent.Header.Get(HeaderExtensionName), HeaderAcceptFeature: sent.Header.Get(HeaderAcceptFeature),
		"Content-Type": sent.Header.Get("Content-Type"), "Content-Length": sent.Header.Get("Content-Length"),
	})
	if string(got.Body) != string(sent.Body) {
		t.Fatalf("unexpected early body %s; Register sends %s", got.Body, sent.Body)
	}
}

// runtimeAPIOnly is an environment with only AWS_LAMBDA_RUNTIME_API=addr.
func runtimeAPIOnly(addr string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == "AWS_LAMBDA_RUNTIME_API" {
			return addr, true
		}
		return "", false
	}
}

// TestRegisterEarlyMismatch: an early registration for other events or
// another name is refused, not taken for this one.
func TestRegisterEarlyMismatch(t *testing.T) {
	api := newFakeAPI(t, reply(200, `{}`, HeaderExtensionIdentifier, testID))
	for _, c := range []struct {
		name   string
		events []EventType
	}{{"other", []EventType{Invoke, Shutdown}}, {"kte", []EventType{Shutdown}}} {
		early := earlyreg.Send(runtimeAPIOnly(api.addr()), "/opt/extensions/kte")
		if early == nil {
			t.Fatal("unexpected: no early registration")
		}
		_, err := New(api.addr(), WithRegistration(early)).Register(context.Background(), c.name, c.events)
		if err == nil || !strings.Contains(err.Error(), "BUG: the registration written during initialisation was for") {
			t.Fatalf("unexpected error for %q %v: %v", c.name, c.events, err)
		}
	}
}

func TestRegisterErrors(t *testing.T) {
	f := func(answer func(http.ResponseWriter, *http.Request), wantIs error, wantText string) {
		t.Helper()
		api := newFakeAPI(t, answer)
		c := New(api.addr())
		_, err := c.Register(context.Background(), "kte", []EventType{Invoke, Shutdown})
		if !errors.Is(err, wantIs) {
			t.Fatalf("unexpected error; got %v; want %v", err, wantIs)
		}
		if !strings.Contains(err.Error(), wantText) {
			t.Fatalf("unexpected message; got %q; want it to contain %q", err, wantText)
		}
		if c.ExtensionID() != "" {
			t.Fatalf("unexpected ExtensionID %q after a failed register", c.ExtensionID())
		}
	}
	f(reply(403, `{"errorType":"Extension.InvalidEventType","errorMessage":"internal extensions cannot register for SHUTDOWN"}`),
		ErrStatus, "extapi: register: status 403: Extension.InvalidEventType: internal extensions cannot register for SHUTDOWN")
	f(reply(400, `{"errorType":"Extension.RegistrationClosed","errorMessage":"registration closed"}`),
		ErrStatus, "status 400: Extension.RegistrationClosed")
	f(reply(500, `oops`), ErrStatus, `extapi: register: status 500: "oops"`)
	f(reply(200, `{"functionName":"f"}`), ErrNoIdentifier, "without Lambda-Extension-Identifier")
	f(reply(200, `{"functionName":`), ErrNoIdentifier, "without Lambda-Extension-Identifier")

	var se *StatusError
	api := newFakeAPI(t, reply(403, `{"errorType":"Extension.InvalidEventType","errorMessage":"m"}`))
	_, err := New(api.addr()).Register(context.Background(), "kte", nil)
	if !errors.As(err, &se) || se.Status != 403 || se.ErrorType != "Extension.InvalidEventType" || se.ErrorMessage != "m" || se.Op != "register" {
		t.Fatalf("unexpected error; got %#v; want a *StatusError with status 403", err)
	}
}

// TestRegisterBodyUnusable: an answer with the extension id is a
// registration, whatever its body: the id is kept, the other fields are
// empty and BodyError says why.
func TestRegisterBodyUnusable(t *testing.T) {
	f := func(body string) {
		t.Helper()
		api := newFakeAPI(t, reply(200, body, HeaderExtensionIdentifier, testID))
		c := New(api.addr())
		got, err := c.Register(context.Background(), "kte", []EventType{Invoke, Shutdown})
		if err != nil {
			t.Fatalf("body %q: unexpected error: %v", body, err)
		}
		if !errors.Is(got.BodyError, ErrBadResponse) || !strings.Contains(got.BodyError.Error(), "cannot decode register response") {
			t.Fatalf("body %q: unexpected BodyError %v; want ErrBadResponse", body, got.BodyError)
		}
		got.BodyError = nil
		if want := (RegisterResponse{ExtensionID: testID}); got != want || c.ExtensionID() != testID {
			t.Fatalf("body %q: unexpected response %+v, id %q; want %+v", body, got, c.ExtensionID(), want)
		}
	}
	f(``)
	f(`{"functionName":`)
	f(`{"functionName":"orders-api","accountId":42}`)
	f(`<html>bad gateway</html>`)
}

func TestRegisterUnreachable(t *testing.T) {
	api := newFakeAPI(t, reply(200, ""))
	addr := api.addr()
	api.srv.Close()
	_, err := New(addr).Register(context.Background(), "kte", nil)
	if err == nil || !strings.HasPrefix(err.Error(), `extapi: cannot register "kte": `) {
		t.Fatalf("unexpected error; got %v; want cannot register", err)
	}
}

func TestNext(t *testing.T) {
	events := []string{
		`{"eventType":"INVOKE","deadlineMs":1767225603000,"requestId":"0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90",
		  "invokedFunctionArn":"arn:aws:lambda:eu-west-1:111122223333:function:orders-api",
		  "tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-6771c3a0-3b2f1e0d9c8b7a6f5e4d3c2b;Parent=1a2b3c4d5e6f7a8b;Sampled=0"}}`,
		`{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":1767229201800}`,
	}
	var n atomic.Int32
	api := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(HeaderEventIdentifier, "e")
		_, _ = io.WriteString(w, events[n.Add(1)-1])
	})
	c := New(api.addr(), WithExtensionID(testID))
	ev, err := c.Next(context.Background())
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	want := Event{
		EventType: Invoke, DeadlineMs: 1767225603000, RequestID: "0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90",
		InvokedFunctionARN: "arn:aws:lambda:eu-west-1:111122223333:function:orders-api",
		Tracing:            Tracing{Type: "X-Amzn-Trace-Id", Value: "Root=1-6771c3a0-3b2f1e0d9c8b7a6f5e4d3c2b;Parent=1a2b3c4d5e6f7a8b;Sampled=0"},
	}
	if ev != want {
		t.Fatalf("unexpected event;\ngot  %+v\nwant %+v", ev, want)
	}
	checkRequest(t, api.last(t), "GET", PathNext, map[string]string{HeaderExtensionIdentifier: testID})

	// The reused decode target must not leak INVOKE fields into SHUTDOWN.
	ev, err = c.Next(context.Background())
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	want = Event{EventType: Shutdown, ShutdownReason: "spindown", DeadlineMs: 1767229201800}
	if ev != want {
		t.Fatalf("unexpected event;\ngot  %+v\nwant %+v", ev, want)
	}
	if !ev.ShutdownReasonIs(ShutdownSpindown) || !ev.ShutdownReasonIs("SPINDOWN") || ev.ShutdownReasonIs(ShutdownTimeout) {
		t.Fatalf("unexpected ShutdownReasonIs results for %q", ev.ShutdownReason)
	}
	if got := ev.Deadline(); !got.Equal(time.UnixMilli(1767229201800)) {
		t.Fatalf("unexpected deadline; got %v", got)
	}
}

func TestNextErrors(t *testing.T) {
	f := func(answer func(http.ResponseWriter, *http.Request), wantIs error, wantText string) {
		t.Helper()
		api := newFakeAPI(t, answer)
		_, err := New(api.addr(), WithExtensionID(testID)).Next(context.Background())
		if !errors.Is(err, wantIs) {
			t.Fatalf("unexpected error; got %v; want %v", err, wantIs)
		}
		if !strings.Contains(err.Error(), wantText) {
			t.Fatalf("unexpected message; got %q; want it to contain %q", err, wantText)
		}
	}
	f(reply(403, `{"errorType":"Extension.InvalidExtensionIdentifier","errorMessage":"bad id"}`), ErrStatus, "extapi: next: status 403: Extension.InvalidExtensionIdentifier: bad id")
	f(reply(500, `{"errorType":"Extension.Unknown","errorMessage":"internal"}`), ErrStatus, "status 500")
	f(reply(200, ``), ErrBadResponse, "cannot decode next event")
	f(reply(200, `{"deadlineMs":1}`), ErrBadResponse, "without eventType")
	f(reply(200, `{"eventType":"INVOKE","requestId":`+`"`+strings.Repeat("x", maxResponseBytes)+`"}`), ErrBadResponse, "over 1048576 bytes")

	_, err := New("127.0.0.1:1").Next(context.Background())
	if !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("unexpected error; got %v; want ErrNotRegistered", err)
	}
}

func TestNextContextCancel(t *testing.T) {
	release := make(chan struct{})
	api := newFakeAPI(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	c := New(api.addr(), WithExtensionID(testID))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Next(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("unexpected error; got %v; want context.Canceled", err)
	}
	if !strings.HasPrefix(err.Error(), "extapi: cannot get next event: ") {
		t.Fatalf("unexpected message %q", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("unexpected delay before Next returned: %v", d)
	}
}

// TestNextWithWritten: the callback runs once the request is written, while
// the answer is still pending (the fake API answers only after it ran), and
// once only, also when the idle connection is reused.
func TestNextWithWritten(t *testing.T) {
	written := make(chan struct{}, 4)
	api := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-written:
		case <-time.After(5 * time.Second):
			w.WriteHeader(500)
			return
		}
		_, _ = io.WriteString(w, `{"eventType":"INVOKE","requestId":"r","deadlineMs":5}`)
	})
	c := New(api.addr(), WithExtensionID(testID))
	for range 2 {
		var n atomic.Int32
		ev, err := c.NextWith(context.Background(), func() { n.Add(1); written <- struct{}{} })
		if err != nil || ev.RequestID != "r" {
			t.Fatalf("unexpected answer %+v, %v; want the event, sent after the callback", ev, err)
		}
		if n.Load() != 1 {
			t.Fatalf("unexpected callback calls %d; want 1", n.Load())
		}
	}
	written <- struct{}{} // a plain Next has no callback
	if _, err := c.Next(context.Background()); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// TestNextNoClientTimeout checks that Next waits for a slow answer with the
// default client and even with a short call timeout (which binds only the
// other calls).
func TestNextNoClientTimeout(t *testing.T) {
	const delay = 300 * time.Millisecond
	api := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(delay)
		_, _ = io.WriteString(w, `{"eventType":"INVOKE","requestId":"r","deadlineMs":5}`)
	})
	for _, c := range []*Client{
		New(api.addr(), WithExtensionID(testID)),
		New(api.addr(), WithExtensionID(testID), WithCallTimeout(50*time.Millisecond)),
	} {
		start := time.Now()
		ev, err := c.Next(context.Background())
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if ev.RequestID != "r" {
			t.Fatalf("unexpected request id; got %q; want %q", ev.RequestID, "r")
		}
		if d := time.Since(start); d < delay {
			t.Fatalf("unexpected early answer after %v; want ≥ %v", d, delay)
		}
	}
}

func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	api := newFakeAPI(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	c := New(api.addr(), WithCallTimeout(50*time.Millisecond))
	_, err := c.Register(context.Background(), "kte", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected error; got %v; want context.DeadlineExceeded", err)
	}
	c = New(api.addr(), WithCallTimeout(50*time.Millisecond), WithExtensionID(testID))
	_, err = c.Subscribe(context.Background(), testSubscription())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected error; got %v; want context.DeadlineExceeded", err)
	}
	err = c.InitError(context.Background(), "Extension.Test", errors.New("x"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected error; got %v; want context.DeadlineExceeded", err)
	}
}

func TestReportErrors(t *testing.T) {
	f := func(call func(*Client) error, path string) {
		t.Helper()
		api := newFakeAPI(t, reply(202, `{"status":"OK"}`))
		if err := call(New(api.addr(), WithExtensionID(testID))); err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		r := api.last(t)
		checkRequest(t, r, "POST", path, map[string]string{
			HeaderExtensionIdentifier: testID,
			HeaderFunctionErrorType:   "Extension.ConfigInvalid",
			"Content-Type":            "application/json",
		})
		checkJSON(t, r.Body, `{"errorMessage":"KTE_STREAM is not set: must be a stream name\nKTE_FLUSH=\"x\": must be one of invoke","errorType":"Extension.ConfigInvalid","stackTrace":[]}`)
	}
	cause := errors.Join(errors.New("KTE_STREAM is not set: must be a stream name"), errors.New(`KTE_FLUSH="x": must be one of invoke`))
	f(func(c *Client) error { return c.InitError(context.Background(), "Extension.ConfigInvalid", cause) }, PathInitError)
	f(func(c *Client) error { return c.ExitError(context.Background(), "Extension.ConfigInvalid", cause) }, PathExitError)

	// Failures are returned with the status and the body's error.
	api := newFakeAPI(t, reply(403, `{"errorType":"Extension.InvalidExtensionIdentifier","errorMessage":"unknown id"}`))
	err := New(api.addr(), WithExtensionID(testID)).ExitError(context.Background(), "Extension.Crash", errors.New("boom"))
	if !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "extapi: exit error: status 403: Extension.InvalidExtensionIdentifier: unknown id") {
		t.Fatalf("unexpected error; got %v", err)
	}
	// Before registration the id header is omitted, not sent empty.
	api = newFakeAPI(t, reply(202, ``))
	if err := New(api.addr()).InitError(context.Background(), "Extension.RegisterFailed", errors.New("x")); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if _, ok := api.last(t).Header[HeaderExtensionIdentifier]; ok {
		t.Fatalf("unexpected %s header before registration", HeaderExtensionIdentifier)
	}
}

func testSubscription() Subscription {
	return Subscription{
		SchemaVersion: "2022-12-13",
		Types:         []string{"platform", "function", "extension"},
		MaxItems:      1000,
		MaxBytes:      1 << 20,
		TimeoutMs:     100,
		URI:           "http://sandbox.localdomain:4243/telemetry",
	}
}

func TestSubscribe(t *testing.T) {
	api := newFakeAPI(t, reply(200, `"OK"`))
	c := New(api.addr(), WithExtensionID(testID))
	res, err := c.Subscribe(context.Background(), testSubscription())
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if res != (SubscribeResult{Status: 200, Body: `"OK"`}) {
		t.Fatalf("unexpected result %+v", res)
	}
	r := api.last(t)
	checkRequest(t, r, "PUT", PathTelemetry, map[string]string{HeaderExtensionIdentifier: testID, "Content-Type": "application/json"})
	checkJSON(t, r.Body, `{"schemaVersion":"2022-12-13","types":["platform","function","extension"],
		"buffering":{"maxItems":1000,"maxBytes":1048576,"timeoutMs":100},
		"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243/telemetry"}}`)
}

func TestSubscribeNotSupported(t *testing.T) {
	// What the AWS emulator's classic mode answers.
	api := newFakeAPI(t, reply(202, `{"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}`))
	_, err := New(api.addr(), WithExtensionID(testID)).Subscribe(context.Background(), testSubscription())
	if !errors.Is(err, ErrTelemetryNotSupported) {
		t.Fatalf("unexpected error; got %v; want ErrTelemetryNotSupported", err)
	}
	if errors.Is(err, ErrStatus) {
		t.Fatalf("unexpected ErrStatus in %v", err)
	}
	if !strings.Contains(err.Error(), "Telemetry.NotSupported: Telemetry API is not supported") {
		t.Fatalf("unexpected message %q", err)
	}
}

func TestSubscribeErrors(t *testing.T) {
	f := func(status int, body, wantText string) {
		t.Helper()
		api := newFakeAPI(t, reply(status, body))
		_, err := New(api.addr(), WithExtensionID(testID)).Subscribe(context.Background(), testSubscription())
		if !errors.Is(err, ErrStatus) || errors.Is(err, ErrTelemetryNotSupported) {
			t.Fatalf("unexpected error; got %v; want ErrStatus", err)
		}
		if !strings.Contains(err.Error(), wantText) {
			t.Fatalf("unexpected message; got %q; want it to contain %q", err, wantText)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != status {
			t.Fatalf("unexpected error %#v; want a *StatusError with status %d", err, status)
		}
	}
	f(400, `{"errorType":"ValidationError","errorMessage":"buffering.timeoutMs must be >= 25"}`, "extapi: subscribe: status 400: ValidationError: buffering.timeoutMs must be >= 25")
	f(403, `{"errorType":"Telemetry.SubscriptionClosed","errorMessage":"closed"}`, "status 403: Telemetry.SubscriptionClosed: closed")
	f(500, `{"errorType":"Telemetry.Failure","errorMessage":"internal"}`, "status 500: Telemetry.Failure: internal")
	f(502, strings.Repeat("z", 5000), `status 502: "zzz`)

	if _, err := New("127.0.0.1:1").Subscribe(context.Background(), testSubscription()); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("unexpected error; got %v; want ErrNotRegistered", err)
	}
	s := testSubscription()
	s.Types = nil
	if _, err := New("127.0.0.1:1", WithExtensionID(testID)).Subscribe(context.Background(), s); err == nil || !strings.Contains(err.Error(), "types and URI are required") {
		t.Fatalf("unexpected error; got %v; want a required-field error", err)
	}
}

func TestStatusErrorBodyTruncated(t *testing.T) {
	e := statusError("x", 500, []byte(strings.Repeat("a", 5000)))
	if len(e.Body) != maxErrorBodyBytes {
		t.Fatalf("unexpected body length; got %d; want %d", len(e.Body), maxErrorBodyBytes)
	}
}

// TestConnectionsReused runs every call through success and failure
// answers, many times: the calls keep their connections (one for Next, at
// most one more for the rest, since they come one at a time here).
func TestConnectionsReused(t *testing.T) {
	var status atomic.Int32
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set(HeaderExtensionIdentifier, testID)
		w.WriteHeader(int(status.Load()))
		if r.URL.Path == PathNext {
			_, _ = io.WriteString(w, `{"eventType":"INVOKE"}`)
			return
		}
		_, _ = io.WriteString(w, `{"errorType":"E","errorMessage":"m"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	for range 4 {
		for _, s := range []int{200, 202, 400, 403, 500} {
			status.Store(int32(s))
			_, _ = c.Register(ctx, "kte", nil)
			c.id = testID
			_, _ = c.Next(ctx)
			_, _ = c.Subscribe(ctx, testSubscription())
			_ = c.InitError(ctx, "E.R", errors.New("x"))
			_ = c.ExitError(ctx, "E.R", errors.New("x"))
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("unexpected connections for 100 calls; got %d; want 2", n)
	}
}

// TestResponseTooLarge: an answer over maxResponseBytes is an error, not a
// truncated event.
func TestResponseTooLarge(t *testing.T) {
	api := newFakeAPI(t, reply(200, `{"eventType":"INVOKE","requestId":"`+strings.Repeat("a", maxResponseBytes)+`"}`))
	_, err := New(api.addr(), WithExtensionID(testID)).Next(context.Background())
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "over 1048576 bytes") {
		t.Fatalf("unexpected error; got %v; want ErrBadResponse, over 1048576 bytes", err)
	}
}

// rawAPI is a Runtime API on a bare TCP socket, for answers an HTTP server
// would not write: the i-th request (counted across connections) gets
// answers[i] as it is, after which the connection is closed if the answer
// says so; requests past the answers are held unanswered, as Lambda holds
// /event/next after SHUTDOWN.
type rawAPI struct {
	addr   string
	mu     sync.Mutex
	reqs   []string // "METHOD path", in order
	closed chan int // the index of each answer after which a connection was closed
}

type rawAnswer struct {
	text  string
	close bool
}

func newRawAPI(t *testing.T, answers ...rawAnswer) *rawAPI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &rawAPI{addr: ln.Addr().String(), closed: make(chan int, len(answers))}
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
	})
	serve := func(conn net.Conn) {
		defer conn.Close()
		br := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			a.mu.Lock()
			i := len(a.reqs)
			a.reqs = append(a.reqs, req.Method+" "+req.URL.Path)
			a.mu.Unlock()
			if i >= len(answers) {
				<-done
				return
			}
			_, _ = io.WriteString(conn, answers[i].text)
			if answers[i].close {
				_ = conn.Close()
				a.closed <- i
				return
			}
		}
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(conn)
		}
	}()
	return a
}

func (a *rawAPI) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

// rawReply is an HTTP/1.1 answer framed by Content-Length.
func rawReply(status int, body string, header ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", status, http.StatusText(status), len(body))
	for i := 0; i+1 < len(header); i += 2 {
		b.WriteString(header[i] + ": " + header[i+1] + "\r\n")
	}
	return b.String() + "\r\n" + body
}

// TestNextAnswerBroken: once Lambda has answered /event/next, the event is
// taken. An answer cut short (the connection closed in its header or its
// body), one that is not HTTP, or none on a connection dialed for the call
// is an error, and no second /event/next goes out: it would return the
// following event in the lost one's place, or, after a SHUTDOWN, never
// return.
func TestNextAnswerBroken(t *testing.T) {
	invoke := rawReply(200, `{"eventType":"INVOKE","requestId":"r1","deadlineMs":1767225603000}`)
	shutdown := rawReply(200, `{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":1767225605000}`)
	f := func(name, answer string) {
		t.Helper()
		api := newRawAPI(t, rawAnswer{answer, true}, rawAnswer{shutdown, false})
		ev, err := New(api.addr, WithExtensionID(testID)).Next(context.Background())
		if err == nil {
			t.Fatalf("%s: unexpected event %+v; want an error", name, ev)
		}
		if reqs := api.requests(); len(reqs) != 1 {
			t.Fatalf("%s: unexpected requests %q; want one /event/next", name, reqs)
		}
	}
	f("cut in the body", invoke[:len(invoke)-10])
	f("cut in the header", invoke[:20])
	f("not HTTP", "garbage\r\n\r\n")
	f("closed without an answer", "")
}

// TestSubscribeAnswerBroken: a subscription whose answer is broken is an
// error, sent once (fasthttp would send a PUT again by itself).
func TestSubscribeAnswerBroken(t *testing.T) {
	f := func(name, answer string) {
		t.Helper()
		api := newRawAPI(t, rawAnswer{answer, true}, rawAnswer{rawReply(200, `"OK"`), false})
		if res, err := New(api.addr, WithExtensionID(testID)).Subscribe(context.Background(), testSubscription()); err == nil {
			t.Fatalf("%s: unexpected result %+v; want an error", name, res)
		}
		if reqs := api.requests(); len(reqs) != 1 {
			t.Fatalf("%s: unexpected requests %q; want one PUT", name, reqs)
		}
	}
	ok := rawReply(200, `"OK"`)
	f("cut in the body", ok[:len(ok)-2])
	f("not HTTP", "garbage\r\n\r\n")
	f("closed without an answer", "")
}

// TestIdleConnectionClosed: a Runtime API that closes each connection
// after its answer without saying so: every call, made after that close,
// finds its idle connection closed, sends the request again on a new one
// and succeeds, each request arriving once.
func TestIdleConnectionClosed(t *testing.T) {
	register := rawReply(200, `{"functionName":"orders-api"}`, HeaderExtensionIdentifier, testID)
	next := rawReply(200, `{"eventType":"INVOKE","requestId":"r1","deadlineMs":1767225603000}`)
	var answers []rawAnswer
	var want []string
	for range 3 {
		answers = append(answers, rawAnswer{register, true}, rawAnswer{next, true}, rawAnswer{rawReply(200, `"OK"`), true},
			rawAnswer{rawReply(202, ``), true})
		want = append(want, "POST "+PathRegister, "GET "+PathNext, "PUT "+PathTelemetry, "POST "+PathExitError)
	}
	api := newRawAPI(t, answers...)
	c := New(api.addr)
	ctx := context.Background()
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", name, err)
		}
		select {
		case <-api.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the server did not close the connection", name)
		}
	}
	for range 3 {
		_, err := c.Register(ctx, "kte", []EventType{Invoke, Shutdown})
		step("register", err)
		_, err = c.Next(ctx)
		step("next", err)
		_, err = c.Subscribe(ctx, testSubscription())
		step("subscribe", err)
		step("exit error", c.ExitError(ctx, "Extension.Test", errors.New("x")))
	}
	if got := api.requests(); !slices.Equal(got, want) {
		t.Fatalf("unexpected requests;\ngot  %q\nwant %q", got, want)
	}
}

func TestNewAddress(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := New(in).urlNext; got != want {
			t.Fatalf("unexpected URL for %q; got %q; want %q", in, got, want)
		}
	}
	f("127.0.0.1:9001", "http://127.0.0.1:9001/2020-01-01/extension/event/next")
	f("http://127.0.0.1:9001", "http://127.0.0.1:9001/2020-01-01/extension/event/next")
	f("[::1]:9001", "http://[::1]:9001/2020-01-01/extension/event/next")
}

// TestDefaultTransport checks that the default HTTP client has no timeout
// and no proxy: an HTTP_PROXY configured for the function must not catch
// Runtime API calls. (Go skips proxies for loopback addresses anyway, so a
// test through a real proxy could not fail here; the Runtime API in Lambda
// is not on loopback.)
func TestDefaultTransport(t *testing.T) {
	c := New("127.0.0.1:9001")
	for _, hc := range []*fasthttp.HostClient{c.hc.HostClient, c.next.HostClient} {
		if hc.ReadTimeout != 0 || hc.WriteTimeout != 0 {
			t.Fatalf("unexpected timeouts %v, %v; want none", hc.ReadTimeout, hc.WriteTimeout)
		}
		if hc.MaxIdleConnDuration < 24*time.Hour {
			t.Fatalf("unexpected idle connection lifetime %v; want the environment's", hc.MaxIdleConnDuration)
		}
		if hc.Dial == nil || hc.Addr != "127.0.0.1:9001" {
			t.Fatalf("unexpected dial settings: %q, dial set %v", hc.Addr, hc.Dial != nil)
		}
	}
	if c.next.MaxConns != 1 {
		t.Fatalf("unexpected connections for Next; got %d; want 1", c.next.MaxConns)
	}
}

// TestRegisterEarlyAnswerRead: Register parses the answer package earlysub
// read (earlyreg.Registration.ReadAnswer) without the connection when it is
// whole, and reads the rest from the connection when it could not be read
// whole (a chunked answer, which ReadAnswer does not take).
func TestRegisterEarlyAnswerRead(t *testing.T) {
	want := RegisterResponse{ExtensionID: testID, FunctionName: "orders-api"}
	for _, chunked := range []bool{false, true} {
		api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderExtensionIdentifier, testID)
			_, _ = io.WriteString(w, `{"functionName":`)
			if chunked {
				w.(http.Flusher).Flush()
			}
			_, _ = io.WriteString(w, `"orders-api"}`)
		})
		early := earlyreg.Send(runtimeAPIOnly(api.addr()), "/opt/extensions/kte")
		if early == nil {
			t.Fatal("unexpected: no early registration")
		}
		status, id, ok := early.ReadAnswer()
		if ok == chunked || len(early.Answer) == 0 {
			t.Fatalf("chunked %v: unexpected ReadAnswer %d %q %v with %d bytes read", chunked, status, id, ok, len(early.Answer))
		}
		if !chunked {
			if status != 200 || id != testID {
				t.Fatalf("unexpected status %d, id %q", status, id)
			}
			_ = early.Conn.Close()
			early.Conn = nil // as after a failed Exchange: the answer alone
		}
		c := New(api.addr(), WithRegistration(early))
		if got, err := c.Register(context.Background(), "kte", []EventType{Invoke, Shutdown}); err != nil || got != want {
			t.Fatalf("chunked %v: unexpected answer %+v, %v; want %+v", chunked, got, err, want)
		}
	}
}

// TestRegisterEarlyConnectionFailed: an answer read in part on a
// connection that then failed is an error, not a wait.
func TestRegisterEarlyConnectionFailed(t *testing.T) {
	early := &earlyreg.Registration{Name: "kte", Events: []string{"INVOKE", "SHUTDOWN"}, Answer: []byte("HTTP/1.1 200 OK\r\n")}
	_, err := New("127.0.0.1:1", WithRegistration(early)).Register(context.Background(), "kte", []EventType{Invoke, Shutdown})
	if err == nil || !strings.Contains(err.Error(), "the connection of the registration written during initialisation failed") {
		t.Fatalf("unexpected error %v", err)
	}
}

// TestSubscribeEarly: Subscribe returns what the answer to the same
// subscription sent during initialisation says (package earlysub), without
// sending it again, and sends its own for any other.
func TestSubscribeEarly(t *testing.T) {
	sent := wire.AppendSubscribeBody(nil, testSubscription())
	ok := []byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\"OK\"")
	const nsBody = `{"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}`
	notSupported := []byte("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(nsBody)) + "\r\n\r\n" + nsBody)

	api := newFakeAPI(t, reply(200, `"sent"`))
	c := New(api.addr(), WithExtensionID(testID), WithSubscription(sent, func() ([]byte, bool) { return ok, true }))
	res, err := c.Subscribe(context.Background(), testSubscription())
	if err != nil || res != (SubscribeResult{Status: 200, Body: `"OK"`}) || !c.SubscribedEarly() {
		t.Fatalf("unexpected result %+v, %v, early %v", res, err, c.SubscribedEarly())
	}
	if n := api.count(); n != 0 {
		t.Fatalf("unexpected %d requests; want none", n)
	}
	// Used once: a second call sends.
	if res, err := c.Subscribe(context.Background(), testSubscription()); err != nil || res.Body != `"sent"` {
		t.Fatalf("unexpected second result %+v, %v", res, err)
	}

	c = New(api.addr(), WithExtensionID(testID), WithSubscription(sent, func() ([]byte, bool) { return notSupported, true }))
	if _, err := c.Subscribe(context.Background(), testSubscription()); !errors.Is(err, ErrTelemetryNotSupported) {
		t.Fatalf("unexpected error %v; want ErrTelemetryNotSupported", err)
	}

	other := testSubscription()
	other.URI = "http://sandbox.localdomain:4244/telemetry"
	c = New(api.addr(), WithExtensionID(testID), WithSubscription(sent, func() ([]byte, bool) { return ok, true }))
	before := api.count()
	if res, err := c.Subscribe(context.Background(), other); err != nil || res.Body != `"sent"` || c.SubscribedEarly() {
		t.Fatalf("unexpected result for another subscription %+v, %v, early %v", res, err, c.SubscribedEarly())
	}
	if n := api.count() - before; n != 1 {
		t.Fatalf("unexpected %d requests; want 1", n)
	}
}

// TestSubscriptionInFlight: while the subscription sent on the early
// registration's connection (package earlysub) is on its way, Register
// parses the answer already read and leaves the connection alone;
// Subscribe waits for the subscription's answer and then hands the
// connection to the client's other calls: register, subscribe and an
// init error on it, Next on its own, two connections in all. When that
// answer is not read in time (earlyreg's Exchange gives up after its
// timeout, the request sent), Subscribe reads the rest of it from the
// connection instead of subscribing again.
func TestSubscriptionInFlight(t *testing.T) {
	for _, slow := range []bool{false, true} {
		var mu sync.Mutex
		var paths []string
		addr, conns := countedServer(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			mu.Lock()
			paths = append(paths, r.URL.Path)
			mu.Unlock()
			switch {
			case r.URL.Path == PathNext:
				_, _ = io.WriteString(w, `{"eventType":"INVOKE","requestId":"r1"}`)
				return
			case r.URL.Path == PathTelemetry && slow:
				time.Sleep(150 * time.Millisecond)
			}
			answerControl(w, r)
		})
		ctx := context.Background()

		early, body, req := earlyRegistration(t, addr)
		release, done := make(chan struct{}), make(chan struct{})
		var answer []byte
		var complete bool
		go func() {
			defer close(done)
			<-release // Register runs before the subscription is sent
			if !slow {
				answer, complete = early.Exchange(req)
			} else if early.Send(req) {
				answer = []byte{} // what Exchange returns when its time is up first
			}
		}()
		c := New(addr, WithRegistration(early), WithSubscription(body, func() ([]byte, bool) { <-done; return answer, complete }))
		if got, err := c.Register(ctx, "kte", []EventType{Invoke, Shutdown}); err != nil || got.FunctionName != "orders-api" {
			t.Fatalf("slow %v: unexpected answer %+v, %v", slow, got, err)
		}
		close(release)
		if res, err := c.Subscribe(ctx, testSubscription()); err != nil || res.Body != `"OK"` || !c.SubscribedEarly() {
			t.Fatalf("slow %v: unexpected result %+v, %v, early %v", slow, res, err, c.SubscribedEarly())
		}
		if ev, err := c.Next(ctx); err != nil || ev.RequestID != "r1" {
			t.Fatalf("slow %v: unexpected event %+v, %v", slow, ev, err)
		}
		if err := c.InitError(ctx, "Extension.Test", errors.New("x")); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if want := []string{PathRegister, PathTelemetry, PathNext, PathInitError}; !slices.Equal(paths, want) || conns() != 2 {
			t.Fatalf("slow %v: unexpected requests %v on %d connections; want %v on 2 (one subscription)", slow, paths, conns(), want)
		}
		mu.Unlock()
	}
}

// TestNextEarly: when package earlysub wrote the first /event/next after
// its subscription (WithNext), Subscribe leaves the connection to Next,
// whose first call reports the request written at once and returns that
// request's answer, read during initialisation or, when it is not framed
// by Content-Length (chunked), read from the connection; the connection
// then serves the client's other calls: register, subscribe, the early
// /event/next and an exit error on it, the next /event/next on Next's own,
// two connections in all.
func TestNextEarly(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		var mu sync.Mutex
		var paths []string
		release := make(chan struct{})
		addr, conns := countedServer(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			mu.Lock()
			paths = append(paths, r.URL.Path)
			n := len(paths)
			mu.Unlock()
			switch r.URL.Path {
			case PathNext:
				if n == 3 { // the early one
					<-release
					_, _ = io.WriteString(w, `{"eventType":"INVOKE",`)
					if chunked {
						w.(http.Flusher).Flush()
					}
					_, _ = io.WriteString(w, `"requestId":"r1"}`)
					return
				}
				_, _ = io.WriteString(w, `{"eventType":"INVOKE","requestId":"r2"}`)
			default:
				answerControl(w, r)
			}
		})
		ctx := context.Background()
		c, sentAt := newEarlyNextClient(t, addr)
		if _, err := c.Register(ctx, "kte", []EventType{Invoke, Shutdown}); err != nil {
			t.Fatal(err)
		}
		if res, err := c.Subscribe(ctx, testSubscription()); err != nil || res.Body != `"OK"` || !c.SubscribedEarly() {
			t.Fatalf("unexpected result %+v, %v, early %v", res, err, c.SubscribedEarly())
		}
		if at, ok := c.NextSentEarly(); !ok || !at.Equal(sentAt()) {
			t.Fatalf("unexpected NextSentEarly %v %v", at, ok)
		}
		written := make(chan struct{})
		go func() {
			<-written // before the answer: the request went out during initialisation
			close(release)
		}()
		ev, err := c.NextWith(ctx, func() { close(written) })
		if err != nil || ev.RequestID != "r1" {
			t.Fatalf("chunked %v: unexpected event %+v, %v", chunked, ev, err)
		}
		if ev, err := c.Next(ctx); err != nil || ev.RequestID != "r2" {
			t.Fatalf("unexpected second event %+v, %v", ev, err)
		}
		if err := c.ExitError(ctx, "Extension.Test", errors.New("x")); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if want := []string{PathRegister, PathTelemetry, PathNext, PathNext, PathExitError}; !slices.Equal(paths, want) || conns() != 2 {
			t.Fatalf("chunked %v: unexpected requests %v on %d connections; want %v on 2", chunked, paths, conns(), want)
		}
		mu.Unlock()
	}
}

// newEarlyNextClient does what package earlysub does against the Runtime
// API at addr: the registration, its answer, the subscription and then the
// first /event/next on the same connection, its answer awaited; it returns
// a client given all of it, and when /event/next was written.
func newEarlyNextClient(t *testing.T, addr string) (*Client, func() time.Time) {
	t.Helper()
	early, body, subReq := earlyRegistration(t, addr)
	nextReq := []byte("GET " + PathNext + " HTTP/1.1\r\nHost: " + addr + "\r\n" + HeaderExtensionIdentifier + ": " + testID + "\r\n\r\n")
	subDone, nextDone := make(chan struct{}), make(chan struct{})
	var subAnswer, nextAnswer []byte
	var subComplete, complete, sent bool
	var at time.Time
	go func() {
		subAnswer, subComplete = early.Exchange(subReq)
		if sent = early.Send(nextReq); sent {
			at = time.Now()
		}
		close(subDone)
		nextAnswer, complete = early.Await()
		close(nextDone)
	}()
	c := New(addr, WithRegistration(early),
		WithSubscription(body, func() ([]byte, bool) { <-subDone; return subAnswer, subComplete }),
		WithNext(func() (time.Time, bool) { <-subDone; return at, sent }, nextDone,
			func() ([]byte, bool) { <-nextDone; return nextAnswer, complete }))
	t.Cleanup(func() {
		<-subDone
		if early.Conn != nil {
			// Close would not end the read Await may be blocked in.
			_ = syscall.Shutdown(int(early.Conn.Fd()), syscall.SHUT_RDWR)
		}
		<-nextDone
		if early.Conn != nil {
			early.Conn.Close()
		}
	})
	return c, func() time.Time { <-subDone; return at }
}

// TestNextEarlyCanceled: the first Next, waiting for the answer to the
// /event/next written early, ends when its ctx does, and so does the read
// of that answer (which no answer ends here); the connection is closed.
func TestNextEarlyCanceled(t *testing.T) {
	addr, _ := countedServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathNext {
			<-r.Context().Done()
			return
		}
		answerControl(w, r)
	})
	c, _ := newEarlyNextClient(t, addr)
	if _, err := c.Register(context.Background(), "kte", []EventType{Invoke, Shutdown}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(context.Background(), testSubscription()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.NextWith(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected error %v; want the ctx's", err)
	}
	select {
	case <-c.earlyNext.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the read of the early /event/next's answer still blocks 5s after Next returned")
	}
	if c.earlyConn != nil {
		t.Fatal("unexpected: the early connection is still held")
	}
}

// answerControl answers a Runtime API call other than /event/next: the
// registration with testID, the subscription "OK", an error report 202.
func answerControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathTelemetry:
		_, _ = io.WriteString(w, `"OK"`)
	case PathInitError, PathExitError:
		w.WriteHeader(202)
	default:
		w.Header().Set(HeaderExtensionIdentifier, testID)
		_, _ = io.WriteString(w, `{"functionName":"orders-api"}`)
	}
}

// earlyRegistration does what package earlyreg and earlysub do against the
// Runtime API at addr before the subscription: the registration written
// and its answer read. It returns it, the subscription's body and its
// request as earlysub writes it.
func earlyRegistration(t *testing.T, addr string) (early *earlyreg.Registration, body, req []byte) {
	t.Helper()
	early = earlyreg.Send(runtimeAPIOnly(addr), "/opt/extensions/kte")
	if early == nil {
		t.Fatal("unexpected: no early registration")
	}
	if status, id, ok := early.ReadAnswer(); !ok || status != 200 || id != testID {
		t.Fatalf("unexpected answer %d %q %v", status, id, ok)
	}
	body = wire.AppendSubscribeBody(nil, testSubscription())
	req = append([]byte("PUT "+PathTelemetry+" HTTP/1.1\r\nHost: "+addr+"\r\n"+HeaderExtensionIdentifier+": "+testID+
		"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	return early, body, req
}
