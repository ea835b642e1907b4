//go:build !race

package listener_test

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// newRequest returns a prepared POST of b to /telemetry, as fasthttp hands
// it to the handler once the request is read.
func newRequest(b []byte) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI("/telemetry")
	ctx.Request.SetBody(b)
	return ctx
}

// handleAllocs returns the allocations of one Handle of a POST of b,
// answered 200, with the ring emptied after each (101 runs: one warm-up).
func handleAllocs(l *listener.Listener, r *ring.Ring, b []byte) float64 {
	ctx := newRequest(b)
	return testing.AllocsPerRun(100, func() {
		l.Handle(ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			panic("unexpected status " + ctx.Response.String())
		}
		ringtest.ReleaseAll(r)
	})
}

func TestAllocsHandlerEnriched(t *testing.T) {
	r := newRing(t, 8<<20)
	runtimeDone := 0
	l, err := listener.New(r, listener.Options{
		Enrich: true, Identity: testIdentity,
		OnRuntimeDone: func([]byte) { runtimeDone++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	f := func(name string, b []byte, wantFrames int) {
		t.Helper()
		before := l.Stats().Frames
		if n := handleAllocs(l, r, b); n != 0 {
			t.Fatalf("unexpected allocations for %s; got %v; want 0", name, n)
		}
		if got := l.Stats().Frames - before; got != uint64(101*wantFrames) {
			t.Fatalf("unexpected frames for %s; got %d; want %d", name, got, 101*wantFrames)
		}
	}
	f("1 event", body(false, sampleEvents[4]), 1)
	f("every type", body(true, sampleEvents...), len(sampleEvents))
	f("1000 events", body(false, genEvents(1000)...), 1000)
	f("256 KiB", genBody(256<<10), len(mustSplit(t, genBody(256<<10))))
	if runtimeDone == 0 {
		t.Fatalf("unexpected: OnRuntimeDone never ran")
	}
	f("empty array", []byte(" [ ] "), 0)
}

// TestAllocsHandlerMalformed: a body that is not a JSON array of objects is
// stored whole, wrapped, with the splitter's error as kte.reason, and costs
// no allocation either: bad input is not a way to make the listener
// allocate. (The warning it logs is rate-limited: AllocsPerRun's warm-up
// run logs it, the measured ones do not.)
func TestAllocsHandlerMalformed(t *testing.T) {
	r := newRing(t, 8<<20)
	l, err := listener.New(r, listener.Options{Enrich: true, Identity: testIdentity})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{
		`[{"type":"function","record":"cut`,
		`{"type":"function"}`,
		`[{"type":"function"}, 42]`,
		`[{"type":"function","record":tru}]`,
		`[{"type":"function"}] trailing`,
		"",
	} {
		before := l.Stats()
		if n := handleAllocs(l, r, []byte(b)); n != 0 {
			t.Fatalf("unexpected allocations for malformed body %q; got %v; want 0", b, n)
		}
		if got := l.Stats().Malformed - before.Malformed; got != 101 {
			t.Fatalf("unexpected malformed count for %q; got %d; want 101", b, got)
		}
	}
}

// TestAllocsHandlerOversizeParts: an event larger than a frame is stored
// in parts (wrapped, plain or base64) with no allocation per event either
// (DESIGN invariant 4), enriched or not.
func TestAllocsHandlerOversizeParts(t *testing.T) {
	for _, enrich := range []bool{false, true} {
		o := smallFrameOptions(enrich)
		r := newRing(t, 8<<20)
		l, err := listener.New(r, o)
		if err != nil {
			t.Fatal(err)
		}
		f := func(name string, b []byte, wantOversize int) {
			t.Helper()
			before := l.Stats()
			if n := handleAllocs(l, r, b); n != 0 {
				t.Fatalf("unexpected allocations for %s (enrich %v); got %v; want 0", name, enrich, n)
			}
			after := l.Stats()
			if got := after.Oversize - before.Oversize; got != uint64(101*wantOversize) || after.Frames-before.Frames <= 2*got {
				t.Fatalf("unexpected stats for %s (enrich %v); got %d oversize events in %d frames; want %d in parts",
					name, enrich, got, after.Frames-before.Frames, 101*wantOversize)
			}
		}
		big := func(record string) string {
			return `{"time":"2026-01-01T00:00:00.000Z","type":"function","record":"` + record + `"}`
		}
		text := big(strings.Repeat(`log line with \"quotes\" é✓ `, 400))
		raw := big(strings.Repeat("\xff\xfe raw bytes ", 900)) // not UTF-8: parts in base64
		f("1 oversize event", body(false, text), 1)
		f("between events", body(true, sampleEvents[3], text, sampleEvents[9]), 1)
		f("base64", body(false, raw), 1)
		f("3 oversize of 103", body(false, append(genEvents(100), text, raw, text)...), 3)
	}
}

func TestAllocsSplitArray(t *testing.T) {
	b := body(true, genEvents(1000)...)
	dst := make([]listener.Event, 0, 1000)
	n := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = listener.SplitArray(b, dst[:0]); err != nil || len(dst) != 1000 {
			panic("unexpected split result")
		}
	})
	if n != 0 {
		t.Fatalf("unexpected allocations; got %v; want 0", n)
	}
}

func mustSplit(t *testing.T, b []byte) []listener.Event {
	t.Helper()
	events, err := listener.SplitArray(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return events
}
