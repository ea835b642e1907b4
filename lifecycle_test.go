package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/extapi"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlysub"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/testsupport"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
)

// TestLifecycleInvokeFlushIsBounded: with a stream that never answers, a
// flush at INVOKE gives up after KTE_FLUSH_MAX_MS, long before the invoke
// deadline, and the events stay buffered (they go to stderr at SHUTDOWN).
func TestLifecycleInvokeFlushIsBounded(t *testing.T) {
	hangingKinesis(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_FLUSH_MAX_MS": "150", "KTE_SEND_TIMEOUT_MS": "5000"})
	rt.waitNext(1)
	if got := h.post(telemetryBody("req-0", 0, 20)); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	start := time.Now()
	rt.invoke("req-1", 10*time.Second)
	rt.waitNext(2)
	if took := time.Since(start); took < 150*time.Millisecond || took > 3*time.Second {
		t.Fatalf("unexpected INVOKE to /event/next time with KTE_FLUSH_MAX_MS=150 and a 10 s deadline: %v", took)
	}
	rt.shutdown("spindown", time.Second)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d", code)
	}
	if out := h.stderr.String(); !strings.Contains(out, "KTE_SUMMARY reason=spindown received=20 ") || !strings.Contains(out, " dropped_shutdown=20 ") {
		t.Fatalf("unexpected summary; stderr:\n%s", out)
	}
}

// TestLifecycleNextAnswerCut: a SHUTDOWN whose answer is cut short is an
// error of /event/next, not a second request (which Lambda would never
// answer after SHUTDOWN: the extension would wait for its SIGKILL): the
// extension delivers what it holds, writes its summary, reports to
// /exit/error and exits 1.
func TestLifecycleNextAnswerCut(t *testing.T) {
	kl, stream, rt, h := startWithEvents(t, "cut", 20)
	rt.next <- map[string]any{"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": time.Now().Add(2 * time.Second).UnixMilli(), cutAnswer: true}
	if code := h.exitCode(); code != 1 {
		t.Fatalf("unexpected exit code %d; want 1; stderr:\n%s", code, h.stderr.String())
	}
	recs, err := kl.ReadAll(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	out := h.stderr.String()
	if len(recs) != 20 || !strings.Contains(out, "KTE_SUMMARY reason=runtime_api_error received=20 ") || !strings.Contains(out, " sent=20 ") {
		t.Fatalf("unexpected delivery after a cut answer; got %d records; stderr:\n%s", len(recs), out)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.nextCalls != 1 || len(rt.exitErrors) != 1 || !strings.HasPrefix(rt.exitErrors[0], "Extension.RuntimeAPIFailed: ") {
		t.Fatalf("unexpected %d /event/next calls and exit errors %q; want 1 and one Extension.RuntimeAPIFailed", rt.nextCalls, rt.exitErrors)
	}
}

// TestEventDeadline: an event's deadline is used when Lambda could have
// sent it; a missing, past or too distant one is replaced, with a warning
// (for INVOKE the first time only).
func TestEventDeadline(t *testing.T) {
	var log strings.Builder
	x := &extension{cfg: config.Config{FlushMax: 2 * time.Second, ShutdownMargin: 200 * time.Millisecond},
		log: slog.New(slog.NewTextHandler(&log, nil))}
	now := time.UnixMilli(1767225600000)
	ms := now.UnixMilli()
	f := func(typ extapi.EventType, deadlineMs int64, after time.Duration, warned bool) {
		t.Helper()
		log.Reset()
		ev := extapi.Event{EventType: typ, DeadlineMs: deadlineMs}
		if got := x.deadline(&ev, now); !got.Equal(now.Add(after)) {
			t.Fatalf("unexpected deadline for %s deadlineMs=%d; got now+%v; want now+%v", typ, deadlineMs, got.Sub(now), after)
		}
		want := 0
		if warned {
			want = 1
		}
		if got := strings.Count(log.String(), "kte: the event's deadline is missing"); got != want {
			t.Fatalf("unexpected warnings for %s deadlineMs=%d; got %d; want %d; log:\n%s", typ, deadlineMs, got, want, log.String())
		}
	}
	f(extapi.Shutdown, ms+1800, 1800*time.Millisecond, false)
	f(extapi.Shutdown, ms+2000, 2*time.Second, false)
	f(extapi.Shutdown, 0, shutdownFallback, true) // missing
	f(extapi.Shutdown, ms, shutdownFallback, true)
	f(extapi.Shutdown, ms-60000, shutdownFallback, true)
	f(extapi.Shutdown, ms+2001, shutdownFallback, true)
	f(extapi.Shutdown, ms+3600000, shutdownFallback, true)
	f(extapi.Shutdown, 0, shutdownFallback, true) // every SHUTDOWN warns
	f(extapi.Invoke, ms+3000, 3*time.Second, false)
	f(extapi.Invoke, ms+900000, 15*time.Minute, false)
	f(extapi.Invoke, 0, 2200*time.Millisecond, true) // KTE_FLUSH_MAX_MS for the flush, plus the margin
	f(extapi.Invoke, ms-1, 2200*time.Millisecond, false)
	f(extapi.Invoke, ms+900001, 2200*time.Millisecond, false)
}

// TestLifecycleEventsWithoutDeadline: an INVOKE and a SHUTDOWN without
// deadlineMs are handled with the fallback deadlines: the INVOKE flushes,
// the SHUTDOWN delivers what is left instead of giving up on it at once.
func TestLifecycleEventsWithoutDeadline(t *testing.T) {
	kl, stream, rt, h := startWithEvents(t, "nodeadline", 20)
	rt.next <- map[string]any{"eventType": "INVOKE", "requestId": "req-1"}
	rt.waitNext(2)
	recs, err := kl.ReadAll(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 20 {
		t.Fatalf("unexpected records after an INVOKE without deadline; got %d; want 20; stderr:\n%s", len(recs), h.stderr.String())
	}
	if got := h.post(telemetryBody("req-1", 20, 20)); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	rt.next <- map[string]any{"eventType": "SHUTDOWN", "shutdownReason": "spindown"}
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	if recs, err = kl.ReadAll(context.Background(), stream); err != nil {
		t.Fatal(err)
	}
	out := h.stderr.String()
	if len(recs) != 40 || strings.Contains(out, "KTE_UNDELIVERED") || !strings.Contains(out, "KTE_SUMMARY reason=spindown received=40 ") || !strings.Contains(out, " sent=40 ") {
		t.Fatalf("unexpected delivery at a SHUTDOWN without deadline; got %d records; stderr:\n%s", len(recs), out)
	}
	if n := strings.Count(out, "kte: the event's deadline is missing"); n != 2 {
		t.Fatalf("unexpected deadline warnings; got %d; want 2; stderr:\n%s", n, out)
	}
}

// TestLifecycleShutdownDeadlineTooFar: a SHUTDOWN deadline further away than
// Lambda's 2 s is not waited for: with a stream that never answers, the
// extension reports what it holds and exits within the fallback, before
// Lambda's SIGKILL would come.
func TestLifecycleShutdownDeadlineTooFar(t *testing.T) {
	hangingKinesis(t)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_SEND_TIMEOUT_MS": "200"})
	rt.waitNext(1)
	if got := h.post(telemetryBody("req-0", 0, 20)); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	start := time.Now()
	rt.shutdown("spindown", time.Hour)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("unexpected shutdown time %v; want within the %v fallback", took, shutdownFallback)
	}
	if out := h.stderr.String(); strings.Count(out, "KTE_UNDELIVERED reason=shutdown_deadline {") != 20 || !strings.Contains(out, " dropped_shutdown=20 ") {
		t.Fatalf("unexpected undelivered events; stderr:\n%s", out)
	}
}

// TestLifecycleShutdownLeavesTimeToWriteOut: with a stream that never
// answers and 24 MiB buffered, the final flush must stop early enough for
// every event to be written to stderr, then the summary, before the 2 s
// deadline: at 64 MiB/s (the test's stderr), writing takes 375 ms, more
// than KTE_SHUTDOWN_MARGIN_MS. The test checks when the writing began,
// which depends on the flush's end only, not on how fast the CPU writes.
//
// With a stream that refuses every call (throttling) and 48 MiB buffered,
// writing at 16 MiB/s needs 3 s, more than all of the time left: the
// flush, whose calls deliver nothing, must leave all of it, not only half.
func TestLifecycleShutdownLeavesTimeToWriteOut(t *testing.T) {
	t.Run("hanging", func(t *testing.T) {
		hangingKinesis(t)
		// The first call hangs until the flush gives up: it ends when the
		// lifecycle says, not after a failure.
		shutdownWriteOut(t, map[string]string{"KTE_SEND_TIMEOUT_MS": "5000", "KTE_RING_BYTES": "32MiB"}, 30, 64<<20)
	})
	t.Run("refusing", func(t *testing.T) {
		throttlingKinesis(t)
		shutdownWriteOut(t, map[string]string{"KTE_RING_BYTES": "64MiB"}, 60, 40<<20)
	})
}

// shutdownWriteOut posts posts POSTs of 100 events of 8 KiB, sends SHUTDOWN
// with a 2 s deadline and checks that every event was written to stderr,
// starting early enough to be written at rate bytes per second (the
// test's stderr) before the deadline minus the margin.
func shutdownWriteOut(t *testing.T, env map[string]string, posts, rate int) {
	const (
		perPost  = 100
		deadline = 2 * time.Second
		margin   = 200 * time.Millisecond // KTE_SHUTDOWN_MARGIN_MS
	)
	events := posts * perPost
	rt := newFakeRuntime(t)
	w := &slowWriter{rate: rate, mark: []byte("KTE_UNDELIVERED ")}
	h := startExtensionTo(t, rt, env, earlysub.Result{}, func(out io.Writer) io.Writer { w.w = out; return w })
	rt.waitNext(1)
	pad := strings.Repeat("x", 8<<10)
	size := 0
	for i := range posts {
		var b strings.Builder
		b.WriteString("[")
		for j := range perPost {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"time":"2026-01-01T00:00:03.140Z","type":"function","record":"req-0\tINFO\tline seq=%d %s"}`, i*perPost+j, pad)
		}
		b.WriteString("]")
		size += b.Len()
		if got := h.post(b.String()); got != 200 {
			t.Fatalf("unexpected status of POST %d; got %d; want 200", i, got)
		}
	}
	start := time.Now()
	rt.shutdown("spindown", deadline)
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d", code)
	}
	took := time.Since(start)
	out := h.stderr.String()
	if n := strings.Count(out, "KTE_UNDELIVERED reason=shutdown_deadline {"); n != events || !strings.Contains(out, " dropped_shutdown="+strconv.Itoa(events)+" ") {
		t.Fatalf("unexpected undelivered events; got %d lines; want %d and the summary", n, events)
	}
	began := w.marked.Sub(start)
	latest := deadline - margin - time.Duration(float64(size)/float64(rate)*float64(time.Second))
	t.Logf("SHUTDOWN to the first KTE_UNDELIVERED line %v, to the exit %v", began, took)
	if began > latest {
		t.Fatalf("unexpected start of the KTE_UNDELIVERED lines; got %v after SHUTDOWN; want by %v, to write %d bytes at %d MiB/s before the deadline",
			began.Round(time.Millisecond), latest.Round(time.Millisecond), size, rate>>20)
	}
}

// slowWriter is a pipe that takes rate bytes per second: a write returns
// when its bytes, queued behind those written before, have gone at that
// rate (a late wake-up does not slow the next write down). It notes when
// bytes holding mark were first written.
type slowWriter struct {
	w      io.Writer
	rate   int
	mark   []byte
	marked time.Time
	done   time.Time // when the bytes written so far are through
}

func (s *slowWriter) Write(p []byte) (int, error) {
	now := time.Now()
	if s.marked.IsZero() && bytes.Contains(p, s.mark) {
		s.marked = now
	}
	if s.done.Before(now) {
		s.done = now
	}
	s.done = s.done.Add(time.Duration(float64(len(p)) / float64(s.rate) * float64(time.Second)))
	time.Sleep(time.Until(s.done))
	return s.w.Write(p)
}

// TestLifecycleSignalFlushesLikeShutdown: SIGTERM outside Lambda (the root
// context cancelled) gets the same orderly flush as SHUTDOWN.
func TestLifecycleSignalFlushesLikeShutdown(t *testing.T) {
	kl, stream, _, h := startWithEvents(t, "signal", 40)
	h.cancel() // what signal.NotifyContext does on SIGTERM
	if code := h.exitCode(); code != 0 {
		t.Fatalf("unexpected exit code %d; stderr:\n%s", code, h.stderr.String())
	}
	recs, err := kl.ReadAll(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 40 || !strings.Contains(h.stderr.String(), "KTE_SUMMARY reason=signal received=40 ") {
		t.Fatalf("unexpected delivery on SIGTERM; got %d records; stderr:\n%s", len(recs), h.stderr.String())
	}
}

// TestBinarySignalAfterInit: the built binary registers during package
// initialisation and, once its start-up line is written, ends in order on
// SIGTERM (watchSignals): what it buffered is delivered and the summary
// gives the reason.
func TestBinarySignalAfterInit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	kl := kinesalite.StartT(t)
	stream := kl.StreamT(t, "binary-signal", 1)
	bin, err := lambdasim.Build(context.Background(), ".", t.TempDir(), "kinesis-telemetry-extension")
	if err != nil {
		t.Fatal(err)
	}
	port, err := lambdasim.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rt := newFakeRuntime(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+rt.addr(), "AWS_REGION=us-east-1",
		"AWS_LAMBDA_FUNCTION_NAME=orders-api", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "KTE_STREAM="+stream,
		"KTE_LISTEN_PORT="+strconv.Itoa(port), "KTE_METRICS=off", "AWS_ENDPOINT_URL_KINESIS="+kl.Endpoint,
		"AWS_ACCESS_KEY_ID=AKIDLOCAL", "AWS_SECRET_ACCESS_KEY=local-secret", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var stderr testsupport.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	rt.waitNext(1)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "kte: started"); {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line; stderr:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The registration was written during package initialisation
	// (earlyreg), its answer read and the subscription sent then too
	// (earlysub), once, and after its 200 the first /event/next, once: main
	// waits for its answer and does not call again.
	if !strings.Contains(stderr.String(), "registered_early=true") || !strings.Contains(stderr.String(), "subscribed_early=true") ||
		!strings.Contains(stderr.String(), "next_early=true") {
		t.Fatalf("unexpected start-up line; want registered_early=true, subscribed_early=true and next_early=true; stderr:\n%s", stderr.String())
	}
	// init_ms counts from KTE's first package's initialisation, which comes
	// before the goroutine that wrote /event/next: never negative.
	if m := regexp.MustCompile(`init_ms=([0-9.]+) `).FindStringSubmatch(stderr.String()); m == nil || m[1] == "0.00" {
		t.Fatalf("unexpected init_ms in the start-up line; stderr:\n%s", stderr.String())
	}
	rt.mu.Lock()
	subscribes, nexts := rt.subscribes, rt.nextCalls
	rt.mu.Unlock()
	if subscribes != 1 || nexts != 1 {
		t.Fatalf("unexpected %d subscriptions and %d /event/next calls; want 1 and 1", subscribes, nexts)
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/", port), "application/json", strings.NewReader(telemetryBody("req-0", 0, 30)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("unexpected end after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the binary did not exit after SIGTERM; stderr:\n%s", stderr.String())
	}
	recs, err := kl.ReadAll(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 30 || !strings.Contains(stderr.String(), "KTE_SUMMARY reason=signal received=30 ") {
		t.Fatalf("unexpected delivery on SIGTERM; got %d records; stderr:\n%s", len(recs), stderr.String())
	}
}

// TestGCPercentUnlessGOGCSetsOne: KTE's GC target applies unless GOGC sets
// one the way the Go runtime reads it ("off" or a number); an empty or
// unreadable GOGC leaves the runtime's default, so KTE's target applies.
func TestGCPercentUnlessGOGCSetsOne(t *testing.T) {
	f := func(vars map[string]string, want bool) {
		t.Helper()
		set := make(chan int, 1)
		x := &extension{env: env{
			lookup:       func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
			setGCPercent: func(p int) int { set <- p; return 100 },
		}}
		x.setGCPercent()
		timeout := time.After(5 * time.Second)
		if !want {
			timeout = time.After(100 * time.Millisecond) // time for a cleanup that must not exist
		}
		for {
			runtime.GC()
			select {
			case p := <-set:
				if !want || p != gcPercent {
					t.Fatalf("GOGC %v: unexpected SetGCPercent(%d); want it: %v", vars, p, want)
				}
				return
			case <-timeout:
				if want {
					t.Fatalf("GOGC %v: no SetGCPercent(%d) after collections", vars, gcPercent)
				}
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	f(nil, true)
	f(map[string]string{"GOGC": ""}, true)
	f(map[string]string{"GOGC": "lots"}, true)
	f(map[string]string{"GOGC": "200"}, false)
	f(map[string]string{"GOGC": "off"}, false)
	f(map[string]string{"GOGC": "-1"}, false)
}

// TestListenerEnrichesWithRegistrationFromStart: the listener serves from
// prepare on, and with the subscription sent during package initialisation
// (earlysub) a POST can come before start: it is enriched with the
// registration's identity (the account id) all the same.
func TestListenerEnrichesWithRegistrationFromStart(t *testing.T) {
	vars := map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "orders-api",
		"KTE_STREAM": "telemetry"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	cfg, err := config.Load(lookup)
	if err != nil {
		t.Fatal(err)
	}
	x := &extension{env: env{lookup: lookup, stderr: io.Discard}, log: slog.New(slog.DiscardHandler), cfg: cfg, done: newRuntimeDone(),
		reg: extapi.RegisterResponse{FunctionName: "orders-api", FunctionVersion: "7", AccountID: "111122223333"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bound := make(chan boundSocket, 1)
	bound <- boundSocket{ln: ln}
	if err := x.prepare(bound); err != nil {
		t.Fatal(err)
	}
	defer x.stopListener()
	resp, err := http.Post("http://"+ln.Addr().String()+"/", "application/json", strings.NewReader(telemetryBody("req-0", 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status %d", resp.StatusCode)
	}
	f, ok := x.ring.Next()
	if !ok {
		t.Fatal("no frame in the ring after a POST answered 200")
	}
	var ev struct{ Lambda listener.Identity }
	if err := json.Unmarshal(f.Data, &ev); err != nil {
		t.Fatalf("frame is not JSON: %v: %s", err, f.Data)
	}
	want := listener.Identity{Function: "orders-api", Version: "7", Region: "us-east-1", Account: "111122223333", Environment: x.envID}
	if ev.Lambda != want {
		t.Fatalf("unexpected enrichment before start; got %+v; want %+v", ev.Lambda, want)
	}
}

// TestSnapStartRedrawsAfterRestore: environments resumed from one SnapStart
// snapshot start with what Init drew (forced equal here): the environment
// id, the start of the wrapped-record ids and the partition key. With
// AWS_LAMBDA_INITIALIZATION_TYPE=snap-start each redraws them at its first
// event, so their records differ; without it they are what Init drew.
func TestSnapStartRedrawsAfterRestore(t *testing.T) {
	kl := kinesalite.StartT(t)
	kinesaliteEnv(t, kl)
	const snapID, snapBase = "5f1c0d2e9a7b4c3d8e6f0a1b2c3d4e5f", 0x1000
	defer func(f func() (string, uint64)) { initDraws = f }(initDraws)
	initDraws = func() (string, uint64) { return snapID, snapBase }

	type seen struct {
		environment, key string
		ids              map[string]bool
	}
	run := func(name, initType string) seen {
		t.Helper()
		stream := kl.StreamT(t, name, 1)
		rt := newFakeRuntime(t)
		h := startExtension(t, rt, map[string]string{"KTE_STREAM": stream, "KTE_RECORD_MAX_BYTES": "8KiB",
			"AWS_LAMBDA_INITIALIZATION_TYPE": initType})
		rt.waitNext(1) // the snapshot is taken here; the environment resumes with the INVOKE
		rt.invoke("req-1", 3*time.Second)
		rt.waitNext(2)
		big := `{"time":"2026-01-01T00:00:03.140Z","type":"function","record":"` + strings.Repeat("x", 20_000) + `"}`
		if got := h.post(`[` + big + `,` + big + `]`); got != 200 {
			t.Fatalf("%s: unexpected status %d", name, got)
		}
		rt.shutdown("spindown", 2*time.Second)
		if code := h.exitCode(); code != 0 {
			t.Fatalf("%s: unexpected exit code %d; stderr:\n%s", name, code, h.stderr.String())
		}
		recs, err := kl.ReadAll(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		s := seen{ids: map[string]bool{}}
		for _, r := range recs {
			var rec struct {
				Lambda struct{ Environment string }
				Kte    struct{ ID string }
			}
			if err := json.Unmarshal(r.Data, &rec); err != nil {
				t.Fatalf("%s: record is not JSON: %v", name, err)
			}
			if s.environment == "" {
				s.environment, s.key = rec.Lambda.Environment, r.PartitionKey
			}
			if rec.Lambda.Environment != s.environment || r.PartitionKey != s.key || rec.Kte.ID == "" {
				t.Fatalf("%s: unexpected record: environment %q, key %q, kte.id %q; want one environment and key, wrapped parts",
					name, rec.Lambda.Environment, r.PartitionKey, rec.Kte.ID)
			}
			s.ids[rec.Kte.ID] = true
		}
		if len(recs) < 6 || len(s.ids) != 2 || s.key != s.environment {
			t.Fatalf("%s: unexpected %d records, kte.ids %v, key %q, environment %q; want two payloads in parts, keyed by the environment",
				name, len(recs), s.ids, s.key, s.environment)
		}
		return s
	}

	plain := run("on-demand", "on-demand")
	if want := map[string]bool{fmt.Sprintf("%016x", snapBase+1): true, fmt.Sprintf("%016x", snapBase+2): true}; plain.environment != snapID ||
		!maps.Equal(plain.ids, want) {
		t.Fatalf("unexpected redraw without SnapStart: environment %q, kte.ids %v; want %q and %v", plain.environment, plain.ids, snapID, want)
	}
	a, b := run("snap-a", "snap-start"), run("snap-b", "snap-start")
	for _, s := range []seen{a, b} {
		if s.environment == snapID || len(s.environment) != len(snapID) {
			t.Fatalf("unexpected environment %q after a SnapStart restore; want a new one like %q", s.environment, snapID)
		}
		for id := range s.ids {
			if plain.ids[id] {
				t.Fatalf("unexpected kte.id %s after a SnapStart restore: the snapshot's", id)
			}
		}
	}
	if a.environment == b.environment {
		t.Fatalf("unexpected equal environment %q in two environments resumed from one snapshot", a.environment)
	}
	for id := range a.ids {
		if b.ids[id] {
			t.Fatalf("unexpected kte.id %s shared by two environments resumed from one snapshot", id)
		}
	}
}

// startWithEvents starts the extension in process against a fake Runtime
// API, shipping to a new one-shard kinesalite stream named name, and posts
// n events to it after its first /event/next.
func startWithEvents(t *testing.T, name string, n int) (*kinesalite.Server, string, *fakeRuntime, *harness) {
	t.Helper()
	kl := kinesalite.StartT(t)
	stream := kl.StreamT(t, name, 1)
	kinesaliteEnv(t, kl)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_STREAM": stream})
	rt.waitNext(1)
	if got := h.post(telemetryBody("req-0", 0, n)); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
	return kl, stream, rt, h
}

// TestLifecycleNoClientNoFlushWait: when the Kinesis client cannot be built
// (here AWS_RETRY_MODE=legacy, which the SDK refuses), nothing can ever be
// sent, so an INVOKE neither flushes nor waits for runtimeDone: the
// extension calls /event/next at once, also when the build fails while the
// flush is waiting for it. The events stay buffered and go to stderr at
// SHUTDOWN.
func TestLifecycleNoClientNoFlushWait(t *testing.T) {
	hangingKinesis(t) // should a client be built after all, it delivers nothing
	t.Setenv("AWS_RETRY_MODE", "legacy")
	t.Cleanup(func() { newKinesisClient = batch.NewKinesisClient })
	f := func(name string, vars map[string]string, release chan struct{}) {
		t.Helper()
		newKinesisClient = batch.NewKinesisClient
		if release != nil {
			newKinesisClient = func(ctx context.Context, cfg config.Config) (*kinesis.Client, error) {
				<-release
				return batch.NewKinesisClient(ctx, cfg)
			}
		}
		rt := newFakeRuntime(t)
		all := map[string]string{"KTE_FLUSH_MAX_MS": "5000"}
		maps.Copy(all, vars)
		h := startExtension(t, rt, all)
		rt.waitNext(1)
		if release == nil {
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(h.stderr.String(), "cannot build the Kinesis client"); {
				if time.Now().After(deadline) {
					t.Fatalf("%s: the Kinesis client was built; stderr:\n%s", name, h.stderr.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if got := h.post(telemetryBody("req-0", 0, 20)); got != 200 {
			t.Fatalf("%s: unexpected status %d", name, got)
		}
		start := time.Now()
		rt.invoke("req-1", 10*time.Second)
		if release != nil {
			time.Sleep(50 * time.Millisecond) // the flush is waiting for the client by now, or about to
			close(release)
		}
		rt.waitNext(2)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("%s: unexpected INVOKE to /event/next time without a Kinesis client: %v; want no flush wait (KTE_FLUSH_MAX_MS=5000)", name, took)
		}
		rt.shutdown("spindown", time.Second)
		if code := h.exitCode(); code != 0 {
			t.Fatalf("%s: unexpected exit code %d", name, code)
		}
		out := h.stderr.String()
		if n := strings.Count(out, "KTE_UNDELIVERED reason=shutdown_deadline {"); n != 20 ||
			!strings.Contains(out, "KTE_SUMMARY reason=spindown received=20 ") || !strings.Contains(out, " sent=0 ") ||
			!strings.Contains(out, " dropped_shutdown=20 ") {
			t.Fatalf("%s: unexpected %d KTE_UNDELIVERED lines or summary; want 20; stderr:\n%s", name, n, out)
		}
	}
	f("invoke, client known unbuildable", nil, nil)
	f("end, client known unbuildable", map[string]string{"KTE_FLUSH": "end"}, nil)
	f("invoke, client build fails during the flush", nil, make(chan struct{}))
}

// TestSummaryReason: a SHUTDOWN's reason is written lower-cased into the
// summary as one field, whatever Lambda sent.
func TestSummaryReason(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := summaryReason(in); got != want {
			t.Fatalf("unexpected reason= for shutdownReason %q; got %q; want %q", in, got, want)
		}
	}
	f("spindown", "spindown")
	f("SPINDOWN", "spindown")
	f("Timeout", "timeout")
	f("SandboxTerminated", "sandboxterminated")
	f("", "unknown")
	f("out of memory", "out_of_memory")
	f("a\tb\nc", "a_b_c")
}
