package listener_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// Sink keeps benchmark results alive.
var Sink atomic.Uint64

// benchBodies are the benchmark inputs: bodies of 1 to 10000 events cycling
// through sampleEvents, and bodies of Lambda's two maxBytes bounds.
func benchBodies() []struct {
	name string
	body []byte
} {
	var out []struct {
		name string
		body []byte
	}
	for _, n := range []int{1, 100, 1000, 10000} {
		out = append(out, struct {
			name string
			body []byte
		}{fmt.Sprintf("events_%d", n), body(false, genEvents(n)...)})
	}
	for _, kib := range []int{256, 1024} {
		out = append(out, struct {
			name string
			body []byte
		}{fmt.Sprintf("bytes_%dKiB", kib), genBody(kib << 10)})
	}
	return out
}

func BenchmarkSplitArray(b *testing.B) {
	for _, bb := range benchBodies() {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			var dst []listener.Event
			for b.Loop() {
				var err error
				if dst, err = listener.SplitArray(bb.body, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
			Sink.Add(uint64(len(dst)))
		})
	}
}

// BenchmarkJSONRawMessage is the baseline: encoding/json splitting the same
// bodies into a reused []json.RawMessage.
func BenchmarkJSONRawMessage(b *testing.B) {
	for _, bb := range benchBodies() {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			var dst []json.RawMessage
			for b.Loop() {
				dst = dst[:0]
				if err := json.Unmarshal(bb.body, &dst); err != nil {
					b.Fatal(err)
				}
			}
			Sink.Add(uint64(len(dst)))
		})
	}
}

// BenchmarkHandler runs the whole handler on a request already read: split,
// enrich, reserve, copy, commit, plus the reader's Next/Release.
func BenchmarkHandler(b *testing.B) {
	for _, enrich := range []bool{true, false} {
		r, err := ring.New(16 << 20)
		if err != nil {
			b.Fatal(err)
		}
		l, err := listener.New(r, listener.Options{Enrich: enrich, Identity: testIdentity})
		if err != nil {
			b.Fatal(err)
		}
		for _, bb := range benchBodies() {
			b.Run(fmt.Sprintf("enrich_%v/%s", enrich, bb.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(bb.body)))
				ctx := &fasthttp.RequestCtx{}
				ctx.Request.Header.SetMethod(fasthttp.MethodPost)
				ctx.Request.SetRequestURI("/telemetry")
				ctx.Request.SetBody(bb.body)
				for b.Loop() {
					l.Handle(ctx)
					if ctx.Response.StatusCode() != fasthttp.StatusOK {
						b.Fatalf("unexpected status %d", ctx.Response.StatusCode())
					}
					ringtest.ReleaseAll(r)
				}
			})
		}
	}
}
