package listener_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// FuzzSplitArray checks SplitArray against encoding/json: a body that
// json.Unmarshal accepts into []json.RawMessage, and that is an array of
// objects, must split into exactly the same elements with the same "type"
// and "record" members; every other body must be reported malformed. Like
// encoding/json, SplitArray accepts invalid UTF-8 inside strings, so the
// comparison needs no exception for it.
func FuzzSplitArray(f *testing.F) {
	for _, e := range sampleEvents {
		f.Add([]byte("[" + e + "]"))
	}
	all := body(false, sampleEvents...)
	f.Add(all)
	f.Add(body(true, sampleEvents...))
	f.Add(all[:len(all)/2])
	f.Add(all[len(all)/2:])
	f.Add(all[:len(all)-1])
	for _, s := range []string{
		`[]`, " [ ] ", `[{}]`, `[{ }]`, `[{},{}]`, `null`, `{}`, `[1]`, `[{},]`, `[{"a":1,}]`, `[{}]x`,
		`[{"type":"platform\u002eruntimeDone","record":{"request\u0049d":"a\"b"}}]`,
		`[{"type":"function","type":7,"record":"\ud800\udc00 \ud800 [{]}"}]`,
		`[{"a":-0.0e-0,"b":1E+9,"c":[true,false,null],"d":{"e":[[],{}]}}]`,
		"[{\"x\":\"\xff\xfe\"}]",
		`[{"a":"\u00e9\u2713\uD83D\uDE80\\\/\b\f\n\r\t"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		events := checkSplit(t, b)
		for _, ev := range events {
			if raw := b[ev.TypeStart:ev.TypeEnd]; len(raw) > 0 {
				var want string
				if err := json.Unmarshal([]byte(`"`+string(raw)+`"`), &want); err != nil {
					t.Fatalf("type %q is not a JSON string body: %v", raw, err)
				}
				if got, ok := listener.Unescape(raw); !ok || string(got) != want {
					t.Fatalf("unexpected unescaped type; got %q; want %q", got, want)
				}
			}
			rec := b[ev.RecordStart:ev.RecordEnd]
			var m map[string]json.RawMessage
			if len(rec) == 0 || rec[0] != '{' || json.Unmarshal(rec, &m) != nil {
				continue
			}
			got := listener.Member(rec, "requestId")
			if want, ok := m["requestId"]; !ok && got != nil || ok && !bytes.Equal(got, bytes.TrimSpace(want)) {
				t.Fatalf("unexpected requestId member of %q; got %q; want %q", rec, got, want)
			}
		}
	})
}

// FuzzHandler runs the handler on arbitrary bodies with the smallest frame
// limit New accepts, so that wrapped records are split often. Every body
// must be answered 200 and stored without loss: a valid array as its
// events (byte-exact, or reassembled from oversize parts), anything else as
// one malformed payload that reassembles to the body. Every frame is valid
// JSON within the limit, and valid UTF-8 unless it is a plain event whose
// bytes Lambda sent as they are (the README's documented pass-through: the
// splitter does not check the text inside strings); wrapped records always
// are.
func FuzzHandler(f *testing.F) {
	f.Add(body(false, sampleEvents...))
	f.Add(body(true, sampleEvents[:3]...))
	f.Add([]byte(`[{"type":"function","record":"` + strings.Repeat(`é✓\"\\ `, 1200) + `"}]`))
	f.Add([]byte(strings.Repeat("\xff\"\\\n🚀", 1500)))
	f.Add([]byte("[{\"type\":\"x\xff\",\"record\":\"" + strings.Repeat("\xfe", 6000) + "\"}]"))
	f.Add([]byte(`[{"a":1},]`))
	f.Add([]byte(` [ ] `))
	for _, enrich := range []bool{false, true} {
		o := smallFrameOptions(enrich)
		r, err := ring.New(4 << 20)
		if err != nil {
			f.Fatal(err)
		}
		l, err := listener.New(r, o)
		if err != nil {
			f.Fatal(err)
		}
		handlers = append(handlers, fuzzHandler{l: l, r: r, o: o})
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, h := range handlers {
			h.check(t, b)
		}
	})
}

var (
	mu       sync.Mutex
	handlers []fuzzHandler
)

type fuzzHandler struct {
	l *listener.Listener
	r *ring.Ring
	o listener.Options
}

func (h fuzzHandler) check(t *testing.T, b []byte) {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI("/telemetry")
	ctx.Request.SetBody(b)
	h.l.Handle(ctx)
	if code := ctx.Response.StatusCode(); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", code)
	}
	frames := ringtest.Drain(h.r)
	for _, fr := range frames {
		if len(fr) > h.o.MaxFrameBytes || !json.Valid(fr) {
			t.Fatalf("unexpected frame (%d bytes, limit %d, valid %v): %.200q", len(fr), h.o.MaxFrameBytes, json.Valid(fr), fr)
		}
	}
	// UTF-8: reassemble checks every wrapped record; a plain event's frame
	// is checked against the event Lambda sent.
	pre := []byte("{")
	if h.o.Enrich {
		pre = listener.AppendPrefix(nil, testIdentity)
	}
	elems, ok := oracle(b)
	if !ok {
		w, payload := reassemble(t, frames, h.o.MaxFrameBytes)
		if w.KTE.Quarantine != listener.QuarantineMalformed || !bytes.Equal(payload, b) {
			t.Fatalf("unexpected quarantine of a malformed body: %+v", w.KTE)
		}
		return
	}
	for _, e := range elems {
		if len(frames) == 0 {
			t.Fatalf("unexpected end of frames before event %.100q", e)
		}
		var w wrapped
		if json.Unmarshal(frames[0], &w) == nil && w.KTE.Quarantine == listener.QuarantineOversize {
			n := w.KTE.Parts
			if n > len(frames) {
				t.Fatalf("unexpected parts count %d with %d frames left", n, len(frames))
			}
			_, payload := reassemble(t, frames[:n], h.o.MaxFrameBytes)
			if !bytes.Equal(payload, e) {
				t.Fatalf("unexpected oversize payload; got %.100q; want %.100q", payload, e)
			}
			frames = frames[n:]
			continue
		}
		// The event after its '{', behind the prefix; without its ',' when
		// the object is empty (white space inside it is kept).
		want := append(bytes.Clone(pre), e[1:]...)
		if h.o.Enrich && bytes.TrimLeft(e[1:], " \t\r\n")[0] == '}' {
			want = append(bytes.Clone(pre[:len(pre)-1]), e[1:]...)
		}
		if !bytes.Equal(frames[0], want) {
			t.Fatalf("unexpected frame; got %.200q; want %.200q", frames[0], want)
		}
		if !utf8.Valid(frames[0]) && utf8.Valid(e) {
			t.Fatalf("unexpected frame that is not valid UTF-8 for an event that is: %.200q", frames[0])
		}
		frames = frames[1:]
	}
	if len(frames) != 0 {
		t.Fatalf("unexpected %d extra frames", len(frames))
	}
}
