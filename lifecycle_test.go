package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
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

// TestLifecycleSignalFlushesLikeShutdown: SIGTERM outside Lambda (the root
// context cancelled) gets the same orderly flush as SHUTDOWN.
func TestLifecycleSignalFlushesLikeShutdown(t *testing.T) {
	kl := kinesalite.StartT(t)
	stream := kl.StreamT(t, "signal", 1)
	kinesaliteEnv(t, kl)
	rt := newFakeRuntime(t)
	h := startExtension(t, rt, map[string]string{"KTE_STREAM": stream})
	rt.waitNext(1)
	if got := h.post(telemetryBody("req-0", 0, 40)); got != 200 {
		t.Fatalf("unexpected status; got %d", got)
	}
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
