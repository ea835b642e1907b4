// Command testext is a small Lambda extension for the simulator's tests: it
// registers, subscribes to the Telemetry API with a listener on 127.0.0.1,
// records every POST body it accepts, and loops on /event/next. Its
// behaviour is set by environment variables (all optional):
//
//	TESTEXT_OUT              append each accepted POST body, one per line
//	TESTEXT_EVENTS_OUT       append "register <status> <id>", "subscribe <status> <body>",
//	                         "event <body>" lines
//	TESTEXT_ID_OUT           write the Lambda-Extension-Identifier
//	TESTEXT_HOLD             wait until this file exists before the first /event/next
//	TESTEXT_REGISTER_EVENTS  events to register for (default "INVOKE,SHUTDOWN")
//	TESTEXT_NAME             Lambda-Extension-Name (default: the executable's file name)
//	TESTEXT_SUBSCRIBE=0      do not subscribe
//	TESTEXT_TYPES            subscription types (default "platform,function,extension")
//	TESTEXT_SCHEMA           schemaVersion (default "2022-12-13")
//	TESTEXT_BUFFERING        "maxItems,maxBytes,timeoutMs" (default "1000,262144,25")
//	TESTEXT_FAIL_POSTS=N     answer 500 to the first N POSTs (without recording them)
//	TESTEXT_POST_DELAY       sleep this long in the POST handler
//	TESTEXT_HEARTBEAT        append one byte to this file every 2 ms
//	TESTEXT_WORK             sleep this long after INVOKE before /event/next
//	TESTEXT_WAIT_RUNTIMEDONE=1  after INVOKE, wait for that request's platform.runtimeDone
//	                         (until 20 ms before deadlineMs) before /event/next
//	TESTEXT_SHUTDOWN_WAIT    after SHUTDOWN, wait for the last invocation's platform.report
//	                         (if subscribed to platform), then until no POST came for this
//	                         long (default 100ms), within deadlineMs-100ms, then exit
//	TESTEXT_SHUTDOWN_HANG=1  never exit after SHUTDOWN
//	TESTEXT_SHUTDOWN_FAIL=1  exit 1 instead of 0 after SHUTDOWN (once done waiting)
//	TESTEXT_INIT_ERROR       report this error type to /init/error after registering, exit 1
//	TESTEXT_EXIT_ERROR       report this error type to /exit/error at the first INVOKE, exit 1
//	TESTEXT_CRASH_AT_INVOKE=1   exit 3 at the first INVOKE
//	TESTEXT_NO_NEXT=1        never call /event/next
//	TESTEXT_LOG=1            print one stdout line per INVOKE ("testext: INVOKE <requestId>")
//	TESTEXT_LAST_LINE=1      print one stdout line as it ends after SHUTDOWN ("testext: SHUTDOWN done")
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testext:", err)
		os.Exit(1)
	}
}

type recorder struct {
	mu sync.Mutex
	f  *os.File
}

func openRecorder(env string) (*recorder, error) {
	path := os.Getenv(env)
	if path == "" {
		return &recorder{}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &recorder{f: f}, nil
}

func (r *recorder) line(parts ...[]byte) {
	if r.f == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := bytes.Join(parts, []byte{' '})
	b = append(b, '\n')
	_, _ = r.f.Write(b)
}

// telemetry receives the Telemetry API's POSTs.
type telemetry struct {
	out      *recorder
	delay    time.Duration
	mu       sync.Mutex
	failLeft int
	done     map[string]bool // requestIds whose platform.runtimeDone arrived
	reported map[string]bool // requestIds whose platform.report arrived
	lastPost time.Time
	changed  chan struct{}
}

func (t *telemetry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if t.delay > 0 {
		time.Sleep(t.delay)
	}
	t.mu.Lock()
	if t.failLeft > 0 {
		t.failLeft--
		t.mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	t.mu.Unlock()
	t.out.line(body)
	var events []struct {
		Type   string `json:"type"`
		Record struct {
			RequestID string `json:"requestId"`
		} `json:"record"`
	}
	_ = json.Unmarshal(body, &events)
	t.mu.Lock()
	for _, ev := range events {
		switch ev.Type {
		case "platform.runtimeDone":
			t.done[ev.Record.RequestID] = true
		case "platform.report":
			t.reported[ev.Record.RequestID] = true
		}
	}
	t.lastPost = time.Now()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// waitRuntimeDone waits until runtimeDone for reqID arrived or until.
func (t *telemetry) waitRuntimeDone(reqID string, until time.Time) {
	t.waitFor(func() bool { return t.done[reqID] }, until)
}

// waitQuiet waits, after SHUTDOWN, for the report of the last invocation
// (when subscribed to platform events), then until no POST came for quiet.
func (t *telemetry) waitQuiet(lastReq string, platform bool, quiet time.Duration, until time.Time) {
	start := time.Now()
	if platform && lastReq != "" {
		t.waitFor(func() bool { return t.reported[lastReq] }, until)
	}
	t.waitFor(func() bool {
		last := t.lastPost
		if start.After(last) {
			last = start
		}
		return time.Since(last) >= quiet
	}, until)
}

// waitFor waits until cond (called with t.mu held) holds or until; it
// re-checks on every POST and every 5 ms.
func (t *telemetry) waitFor(cond func() bool, until time.Time) {
	for {
		t.mu.Lock()
		ok, ch := cond(), t.changed
		t.mu.Unlock()
		if ok {
			return
		}
		d := time.Until(until)
		if d <= 0 {
			return
		}
		select {
		case <-ch:
		case <-time.After(min(d, 5*time.Millisecond)):
		}
	}
}

func duration(env string, def time.Duration) time.Duration {
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testext: %s=%q: %v\n", env, v, err)
		os.Exit(2)
	}
	return d
}

func envOr(env, def string) string {
	if v, ok := os.LookupEnv(env); ok {
		return v
	}
	return def
}

func run() error {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API")
	events, err := openRecorder("TESTEXT_EVENTS_OUT")
	if err != nil {
		return err
	}
	out, err := openRecorder("TESTEXT_OUT")
	if err != nil {
		return err
	}
	if hb := os.Getenv("TESTEXT_HEARTBEAT"); hb != "" {
		f, err := os.OpenFile(hb, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		go func() {
			for range time.Tick(2 * time.Millisecond) {
				_, _ = f.Write([]byte{'.'})
			}
		}()
	}

	// 1. Register.
	name := envOr("TESTEXT_NAME", filepath.Base(os.Args[0]))
	var evs []string
	for e := range strings.SplitSeq(envOr("TESTEXT_REGISTER_EVENTS", "INVOKE,SHUTDOWN"), ",") {
		if e != "" {
			evs = append(evs, e)
		}
	}
	regBody, _ := json.Marshal(map[string][]string{"events": evs})
	req, _ := http.NewRequest(http.MethodPost, api+"/2020-01-01/extension/register", bytes.NewReader(regBody))
	req.Header.Set("Lambda-Extension-Name", name)
	req.Header.Set("Lambda-Extension-Accept-Feature", "accountId")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot register: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	id := resp.Header.Get("Lambda-Extension-Identifier")
	events.line([]byte("register"), []byte(strconv.Itoa(resp.StatusCode)), []byte(id), b)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("register: %d %s", resp.StatusCode, b)
	}
	if p := os.Getenv("TESTEXT_ID_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(id), 0o644); err != nil {
			return err
		}
	}
	call := func(method, path, errType string, body []byte) (int, []byte, error) {
		req, _ := http.NewRequest(method, api+path, bytes.NewReader(body))
		req.Header.Set("Lambda-Extension-Identifier", id)
		if errType != "" {
			req.Header.Set("Lambda-Extension-Function-Error-Type", errType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	if t := os.Getenv("TESTEXT_INIT_ERROR"); t != "" {
		_, _, _ = call(http.MethodPost, "/2020-01-01/extension/init/error", t, []byte(`{"errorMessage":"testext init error","errorType":"`+t+`"}`))
		os.Exit(1)
	}

	// 2. Listen and subscribe.
	tel := &telemetry{out: out, delay: duration("TESTEXT_POST_DELAY", 0), done: map[string]bool{}, reported: map[string]bool{}, changed: make(chan struct{})}
	subscribed := os.Getenv("TESTEXT_SUBSCRIBE") != "0"
	types := envOr("TESTEXT_TYPES", "platform,function,extension")
	tel.failLeft, _ = strconv.Atoi(os.Getenv("TESTEXT_FAIL_POSTS"))
	if subscribed {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go func() { _ = http.Serve(ln, tel) }()
		port := ln.Addr().(*net.TCPAddr).Port
		var buffering [3]int
		for i, f := range strings.SplitN(envOr("TESTEXT_BUFFERING", "1000,262144,25"), ",", 3) {
			buffering[i], _ = strconv.Atoi(f)
		}
		sub, _ := json.Marshal(map[string]any{
			"schemaVersion": envOr("TESTEXT_SCHEMA", "2022-12-13"),
			"types":         strings.Split(types, ","),
			"buffering":     map[string]int{"maxItems": buffering[0], "maxBytes": buffering[1], "timeoutMs": buffering[2]},
			"destination":   map[string]string{"protocol": "HTTP", "URI": fmt.Sprintf("http://%s:%d/telemetry", envOr("TESTEXT_HOST", "sandbox.localdomain"), port)},
		})
		status, b, err := call(http.MethodPut, "/2022-07-01/telemetry", "", sub)
		if err != nil {
			return fmt.Errorf("cannot subscribe: %w", err)
		}
		events.line([]byte("subscribe"), []byte(strconv.Itoa(status)), b)
		subscribed = status == http.StatusOK
	}

	if hold := os.Getenv("TESTEXT_HOLD"); hold != "" {
		for {
			if _, err := os.Stat(hold); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if os.Getenv("TESTEXT_NO_NEXT") == "1" {
		select {}
	}

	// 3. Loop on /event/next.
	work := duration("TESTEXT_WORK", 0)
	lastReq := ""
	for n := 1; ; n++ {
		status, b, err := call(http.MethodGet, "/2020-01-01/extension/event/next", "", nil)
		if err != nil {
			return fmt.Errorf("cannot get next event: %w", err)
		}
		events.line([]byte("event"), b)
		if status != http.StatusOK {
			return fmt.Errorf("next: %d %s", status, b)
		}
		var ev struct {
			EventType  string `json:"eventType"`
			RequestID  string `json:"requestId"`
			DeadlineMs int64  `json:"deadlineMs"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("cannot decode event %s: %w", b, err)
		}
		switch ev.EventType {
		case "INVOKE":
			lastReq = ev.RequestID
			if os.Getenv("TESTEXT_LOG") == "1" {
				fmt.Printf("testext: INVOKE %s\n", ev.RequestID)
			}
			if n == 1 && os.Getenv("TESTEXT_CRASH_AT_INVOKE") == "1" {
				os.Exit(3)
			}
			if t := os.Getenv("TESTEXT_EXIT_ERROR"); t != "" {
				_, _, _ = call(http.MethodPost, "/2020-01-01/extension/exit/error", t, nil)
				os.Exit(1)
			}
			if work > 0 {
				time.Sleep(work)
			}
			if os.Getenv("TESTEXT_WAIT_RUNTIMEDONE") == "1" {
				tel.waitRuntimeDone(ev.RequestID, time.UnixMilli(ev.DeadlineMs).Add(-20*time.Millisecond))
			}
		case "SHUTDOWN":
			if os.Getenv("TESTEXT_SHUTDOWN_HANG") == "1" {
				select {}
			}
			platform := subscribed && strings.Contains(types, "platform")
			tel.waitQuiet(lastReq, platform, duration("TESTEXT_SHUTDOWN_WAIT", 100*time.Millisecond),
				time.UnixMilli(ev.DeadlineMs).Add(-100*time.Millisecond))
			if os.Getenv("TESTEXT_SHUTDOWN_FAIL") == "1" {
				return errors.New("failing at SHUTDOWN (TESTEXT_SHUTDOWN_FAIL=1)")
			}
			if os.Getenv("TESTEXT_LAST_LINE") == "1" {
				fmt.Println("testext: SHUTDOWN done")
			}
			return nil
		}
	}
}
