package listener_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/testsupport"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

var testIdentity = listener.Identity{
	Function:    `orders-"api"`,
	Version:     "$LATEST",
	Region:      "eu-west-1",
	Account:     "111122223333",
	Environment: "env-é✓\x01",
}

func newRing(t testing.TB, size int) *ring.Ring {
	t.Helper()
	r, err := ring.New(size)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct{ testsupport.SyncBuffer }

func (l *logBuffer) lines() []string {
	s := strings.TrimSpace(l.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// server is a Listener on an in-memory listener with a client for it.
type server struct {
	l   *listener.Listener
	r   *ring.Ring
	c   *fasthttp.Client
	log *logBuffer
}

func startInmem(t *testing.T, r *ring.Ring, o listener.Options) *server {
	t.Helper()
	logs := &logBuffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	l, err := listener.New(r, o)
	if err != nil {
		t.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	if err := l.StartOn(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Errorf("unexpected shutdown error: %v", err)
		}
	})
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	return &server{l: l, r: r, c: c, log: logs}
}

func (s *server) do(t *testing.T, method, path string, b []byte) (int, *fasthttp.Response) {
	t.Helper()
	return do(t, s.c, "http://sandbox.localdomain", method, path, b)
}

func do(t *testing.T, c *fasthttp.Client, base, method, path string, b []byte) (int, *fasthttp.Response) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), &fasthttp.Response{}
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI(base + path)
	req.Header.SetMethod(method)
	req.Header.SetContentType("application/json")
	req.SetBody(b)
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("cannot %s %s: %v", method, path, err)
	}
	return resp.StatusCode(), resp
}

func (s *server) post(t *testing.T, b []byte) int {
	t.Helper()
	code, _ := s.do(t, fasthttp.MethodPost, "/telemetry", b)
	return code
}

func checkStats(t *testing.T, got, want listener.Stats) {
	t.Helper()
	if got != want {
		t.Fatalf("unexpected stats;\ngot  %+v;\nwant %+v", got, want)
	}
}

func TestPostEventsByteExact(t *testing.T) {
	s := startInmem(t, newRing(t, 16<<20), listener.Options{MaxBodyBytes: 3 << 20})
	var want listener.Stats
	f := func(b []byte) {
		t.Helper()
		elems, ok := oracle(b)
		if !ok {
			t.Fatalf("bad test body %q", b)
		}
		if code := s.post(t, b); code != fasthttp.StatusOK {
			t.Fatalf("unexpected status; got %d; want 200", code)
		}
		frames := ringtest.Drain(s.r)
		if len(frames) != len(elems) {
			t.Fatalf("unexpected frame count; got %d; want %d", len(frames), len(elems))
		}
		for i := range frames {
			if !bytes.Equal(frames[i], elems[i]) {
				t.Fatalf("unexpected frame %d; got %q; want %q", i, frames[i], elems[i])
			}
		}
		want.Posts++
		want.Accepted++
		want.Events += uint64(len(elems))
		want.Frames += uint64(len(elems))
		want.BodyBytes += uint64(len(b))
		for _, e := range elems {
			want.FrameBytes += uint64(len(e))
			if bytes.Contains(e, []byte(`"type":"platform.logsDropped"`)) {
				want.LogsDroppedEvents++
				want.LogsDroppedRecords += 12
				want.LogsDroppedBytes += 4096
			}
		}
		checkStats(t, s.l.Stats(), want)
	}
	f(body(false, sampleEvents[4]))
	f(body(true, sampleEvents[0]))
	f([]byte(" [ {} , { \n } ]\n"))
	f(body(true, sampleEvents...))
	f(body(false, genEvents(1000)...))
	f(body(false, genEvents(10000)...))
	if lines := s.log.lines(); len(lines) != 0 {
		t.Fatalf("unexpected log lines on the success path: %q", lines)
	}
}

func TestEnrichment(t *testing.T) {
	s := startInmem(t, newRing(t, 4<<20), listener.Options{Enrich: true, Identity: testIdentity})
	events := append([]string{`{}`, "{ \n\t}", `{"a":{}}`}, sampleEvents...)
	b := body(true, events...)
	if code := s.post(t, b); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", code)
	}
	frames := ringtest.Drain(s.r)
	elems, _ := oracle(b)
	if len(frames) != len(elems) {
		t.Fatalf("unexpected frame count; got %d; want %d", len(frames), len(elems))
	}
	prefix := listener.AppendPrefix(nil, testIdentity)
	wantLambda := map[string]any{
		"function": testIdentity.Function, "version": testIdentity.Version, "region": testIdentity.Region,
		"account": testIdentity.Account, "environment": testIdentity.Environment,
	}
	for i, fr := range frames {
		want := append(bytes.Clone(prefix), elems[i][1:]...)
		if i < 2 { // empty objects: no ',' after the prefix; their white space kept
			want = append(bytes.Clone(prefix[:len(prefix)-1]), elems[i][1:]...)
		}
		if !bytes.Equal(fr, want) {
			t.Fatalf("unexpected enriched frame %d; got %q; want %q", i, fr, want)
		}
		var got, orig map[string]any
		if err := json.Unmarshal(fr, &got); err != nil {
			t.Fatalf("enriched frame %d is not valid JSON: %v: %q", i, err, fr)
		}
		if err := json.Unmarshal(elems[i], &orig); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got["lambda"], wantLambda) {
			t.Fatalf("unexpected lambda object; got %v; want %v", got["lambda"], wantLambda)
		}
		delete(got, "lambda")
		if !reflect.DeepEqual(got, orig) {
			t.Fatalf("unexpected event after enrichment; got %v; want %v", got, orig)
		}
	}

	// SetIdentity takes effect for the next POST.
	id2 := listener.Identity{Function: "f2", Version: "3", Region: "us-east-1", Account: "1", Environment: "e2"}
	if err := s.l.SetIdentity(id2); err != nil {
		t.Fatal(err)
	}
	s.post(t, body(false, sampleEvents[7]))
	frames = ringtest.Drain(s.r)
	want := string(listener.AppendPrefix(nil, id2)) + sampleEvents[7][1:]
	if len(frames) != 1 || string(frames[0]) != want {
		t.Fatalf("unexpected frame after SetIdentity; got %q; want %q", frames, want)
	}
	long := listener.Identity{Function: strings.Repeat("x", 600)}
	if err := s.l.SetIdentity(long); !errors.Is(err, listener.ErrPrefixTooLong) {
		t.Fatalf("unexpected SetIdentity error; got %v; want ErrPrefixTooLong", err)
	}
}

func TestEmptyArray(t *testing.T) {
	s := startInmem(t, newRing(t, 2<<20), listener.Options{Enrich: true})
	for _, b := range []string{`[]`, " [ \n\t] \r\n", "[\n]"} {
		if code := s.post(t, []byte(b)); code != fasthttp.StatusOK {
			t.Fatalf("unexpected status for %q; got %d; want 200", b, code)
		}
	}
	if frames := ringtest.Drain(s.r); len(frames) != 0 {
		t.Fatalf("unexpected frames for empty arrays: %q", frames)
	}
	checkStats(t, s.l.Stats(), listener.Stats{Posts: 3, Accepted: 3})
}

// wrapped is the JSON form of a quarantine or oversize record.
type wrapped struct {
	Lambda map[string]string `json:"lambda"`
	KTE    struct {
		Quarantine string `json:"quarantine"`
		Reason     string `json:"reason"`
		Type       string `json:"type"`
		ID         string `json:"id"`
		Part       int    `json:"part"`
		Parts      int    `json:"parts"`
		Offset     int    `json:"offset"`
		Bytes      int    `json:"bytes"`
	} `json:"kte"`
	Body   *string `json:"body"`
	Body64 *string `json:"body_base64"`
}

// reassemble decodes the wrapped records of one payload, checks their
// numbering and sizes, and returns the first record and the payload. Every
// wrapped record must be valid UTF-8, whatever its payload: that is what
// body_base64 is for.
func reassemble(t *testing.T, frames [][]byte, maxFrame int) (wrapped, []byte) {
	t.Helper()
	var first wrapped
	var payload []byte
	for i, fr := range frames {
		if len(fr) > maxFrame {
			t.Fatalf("unexpected wrapped record of %d bytes; want at most %d", len(fr), maxFrame)
		}
		if !utf8.Valid(fr) {
			t.Fatalf("unexpected wrapped record %d that is not valid UTF-8: %.300q", i, fr)
		}
		var w wrapped
		dec := json.NewDecoder(bytes.NewReader(fr))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&w); err != nil {
			t.Fatalf("wrapped record %d is not valid JSON of the documented form: %v: %.300q", i, err, fr)
		}
		if i == 0 {
			first = w
		}
		k := w.KTE
		if k.Quarantine != first.KTE.Quarantine || k.ID != first.KTE.ID || len(k.ID) != 16 || k.Parts != len(frames) ||
			k.Part != i+1 || k.Offset != len(payload) || k.Bytes != first.KTE.Bytes || k.Reason != first.KTE.Reason {
			t.Fatalf("unexpected kte object in part %d of %d: %+v (first %+v, %d bytes so far)", i+1, len(frames), k, first.KTE, len(payload))
		}
		switch {
		case w.Body != nil && w.Body64 == nil && first.Body != nil:
			payload = append(payload, *w.Body...)
		case w.Body64 != nil && w.Body == nil && first.Body64 != nil:
			p, err := base64.StdEncoding.DecodeString(*w.Body64)
			if err != nil {
				t.Fatalf("bad body_base64 in part %d: %v", i+1, err)
			}
			payload = append(payload, p...)
		default:
			t.Fatalf("unexpected payload fields in part %d: body %v, body_base64 %v", i+1, w.Body != nil, w.Body64 != nil)
		}
	}
	if len(payload) != first.KTE.Bytes {
		t.Fatalf("unexpected payload length; got %d; want %d", len(payload), first.KTE.Bytes)
	}
	return first, payload
}

func TestMalformedBodiesQuarantined(t *testing.T) {
	for _, enrich := range []bool{false, true} {
		t.Run(fmt.Sprintf("enrich=%v", enrich), func(t *testing.T) {
			s := startInmem(t, newRing(t, 4<<20), listener.Options{Enrich: enrich, Identity: testIdentity})
			whole := body(false, sampleEvents...)
			f := func(b []byte, wantErr error, wantBase64 bool) {
				t.Helper()
				if code := s.post(t, b); code != fasthttp.StatusOK {
					t.Fatalf("unexpected status for %q; got %d; want 200", b, code)
				}
				frames := ringtest.Drain(s.r)
				if len(frames) != 1 {
					t.Fatalf("unexpected frame count; got %d; want 1", len(frames))
				}
				w, payload := reassemble(t, frames, listener.DefaultMaxFrameBytes)
				if !bytes.Equal(payload, b) {
					t.Fatalf("unexpected quarantined payload; got %q; want %q", payload, b)
				}
				_, err := listener.SplitArray(b, nil)
				if w.KTE.Quarantine != listener.QuarantineMalformed || w.KTE.Reason != err.Error() || !errors.Is(err, wantErr) {
					t.Fatalf("unexpected marker; got %+v; want malformed with reason %q (%v)", w.KTE, err, wantErr)
				}
				if (w.Body64 != nil) != wantBase64 {
					t.Fatalf("unexpected encoding; got base64 %v; want %v", w.Body64 != nil, wantBase64)
				}
				if (w.Lambda != nil) != enrich || enrich && w.Lambda["function"] != testIdentity.Function {
					t.Fatalf("unexpected lambda object with enrich=%v: %v", enrich, w.Lambda)
				}
			}
			f(whole[:len(whole)/2], listener.ErrMalformed, false) // a record cut across two POSTs
			f(whole[len(whole)/2:], listener.ErrNotArray, false)
			f([]byte(`{"type":"function","record":"not in an array"}`), listener.ErrNotArray, false)
			f([]byte(`[{"a":1},2,"three"]`), listener.ErrNotObject, false)
			f([]byte(`[{"a":1},]`), listener.ErrNotObject, false)
			f([]byte(""), listener.ErrMalformed, false)
			f([]byte("[{\"a\":\"\xff\xfe\" x]"), listener.ErrMalformed, true)                // invalid UTF-8
			f([]byte(`["\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"`), listener.ErrNotObject, true) // escaping would be longer

			st := s.l.Stats()
			if st.Malformed != 8 || st.Accepted != 8 || st.Frames != 8 || st.Events != 0 {
				t.Fatalf("unexpected stats: %+v", st)
			}
			// Eight malformed bodies within LogEvery: one log line.
			if lines := s.log.lines(); len(lines) != 1 || !strings.Contains(lines[0], "quarantined") {
				t.Fatalf("unexpected log lines; got %q; want one", lines)
			}
		})
	}
}

func TestLogLinesRateLimited(t *testing.T) {
	s := startInmem(t, newRing(t, 2<<20), listener.Options{LogEvery: 50 * time.Millisecond})
	for range 3 {
		s.post(t, []byte("nope"))
	}
	time.Sleep(60 * time.Millisecond)
	s.post(t, []byte("nope again"))
	lines := s.log.lines()
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed=2") {
		t.Fatalf("unexpected log lines; got %q; want two, the second with suppressed=2", lines)
	}
}

// TestServerLogRateLimited: fasthttp's own lines about connections it
// cannot serve (here, requests that are not HTTP) are rate-limited like the
// listener's, and none is written for a body over the limit, which the
// listener answers 413, counts and logs itself.
func TestServerLogRateLimited(t *testing.T) {
	s := startInmem(t, newRing(t, 2<<20), listener.Options{MaxBodyBytes: 16 << 10, LogEvery: 500 * time.Millisecond})
	// send writes req on a new connection and reads until the server
	// closes it; fasthttp logs before it closes.
	send := func(req string) {
		t.Helper()
		c, err := s.c.Dial("")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, c)
	}
	const garbage = "GARBAGE\r\n\r\n"
	for range 5 {
		send(garbage)
		send("POST /telemetry HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n")
	}
	time.Sleep(600 * time.Millisecond)
	send(garbage)
	var server, tooLarge []string
	for _, l := range s.log.lines() {
		switch {
		case strings.Contains(l, "telemetry server:"):
			server = append(server, l)
		case strings.Contains(l, "answered 413"):
			tooLarge = append(tooLarge, l)
		default:
			t.Fatalf("unexpected log line %q", l)
		}
	}
	if len(server) != 2 || !strings.Contains(server[0], "suppressed=0") || !strings.Contains(server[1], "suppressed=4") ||
		strings.Contains(strings.Join(server, "\n"), "body size") {
		t.Fatalf("unexpected fasthttp lines; got %q; want two about the garbage, the second with suppressed=4, none about the body size", server)
	}
	if len(tooLarge) != 1 || s.l.Stats().TooLarge != 5 {
		t.Fatalf("unexpected 413 lines %q and count %d; want one line, 5 counted", tooLarge, s.l.Stats().TooLarge)
	}
}

// smallFrameOptions returns options with the smallest MaxFrameBytes New
// accepts, so that tests can produce multi-part records cheaply.
func smallFrameOptions(enrich bool) listener.Options {
	return listener.Options{
		Enrich:        enrich,
		Identity:      testIdentity,
		MaxFrameBytes: listener.MaxHeaderLen(listener.DefaultMaxPrefixBytes) + 2 + 1024,
		MaxBodyBytes:  256 << 10,
	}
}

func TestMalformedBodyInParts(t *testing.T) {
	for _, enrich := range []bool{false, true} {
		o := smallFrameOptions(enrich)
		s := startInmem(t, newRing(t, 4<<20), o)
		f := func(b []byte, wantBase64 bool) {
			t.Helper()
			if code := s.post(t, b); code != fasthttp.StatusOK {
				t.Fatalf("unexpected status; got %d; want 200", code)
			}
			frames := ringtest.Drain(s.r)
			if len(frames) < 2 {
				t.Fatalf("unexpected frame count; got %d; want several parts", len(frames))
			}
			w, payload := reassemble(t, frames, o.MaxFrameBytes)
			if !bytes.Equal(payload, b) || (w.Body64 != nil) != wantBase64 {
				t.Fatalf("unexpected reassembled body (base64 %v, want %v); got %d bytes; want %d", w.Body64 != nil, wantBase64, len(payload), len(b))
			}
		}
		whole := body(true, genEvents(200)...)
		f(whole[:len(whole)-3], false)
		bad := bytes.Clone(whole[:20000])
		bad[10000] = 0xff
		f(bad, true)
		// Multi-byte characters and escapes must never be cut between parts.
		f([]byte(strings.Repeat("é✓🚀\"\\\n", 3000)), false)
	}
}

func TestOversizeEventInParts(t *testing.T) {
	for _, enrich := range []bool{false, true} {
		o := smallFrameOptions(enrich)
		s := startInmem(t, newRing(t, 4<<20), o)
		f := func(big string, wantBase64 bool, wantType ...string) {
			t.Helper()
			typ := "function"
			if len(wantType) > 0 {
				typ = wantType[0]
			}
			events := []string{sampleEvents[3], big, sampleEvents[9]}
			b := body(true, events...)
			if code := s.post(t, b); code != fasthttp.StatusOK {
				t.Fatalf("unexpected status; got %d; want 200", code)
			}
			frames := ringtest.Drain(s.r)
			if len(frames) < 4 {
				t.Fatalf("unexpected frame count; got %d; want the parts between two events", len(frames))
			}
			prefix := []byte("{")
			if enrich {
				prefix = listener.AppendPrefix(nil, testIdentity)
			}
			first, last := frames[0], frames[len(frames)-1]
			if !bytes.Equal(first, append(bytes.Clone(prefix), sampleEvents[3][1:]...)) ||
				!bytes.Equal(last, append(bytes.Clone(prefix), sampleEvents[9][1:]...)) {
				t.Fatalf("unexpected events around the parts: %.100q ... %.100q", first, last)
			}
			w, payload := reassemble(t, frames[1:len(frames)-1], o.MaxFrameBytes)
			if string(payload) != big {
				t.Fatalf("unexpected reassembled event; got %.200q; want %.200q", payload, big)
			}
			if w.KTE.Quarantine != listener.QuarantineOversize || w.KTE.Type != typ || (w.Body64 != nil) != wantBase64 {
				t.Fatalf("unexpected marker; got %+v, base64 %v", w.KTE, w.Body64 != nil)
			}
		}
		f(`{"time":"2026-01-01T00:00:00.000Z","type":"function","record":"`+strings.Repeat(`big log line with \"quotes\" é✓ `, 400)+`"}`, false)
		f(`{"time":"2026-01-01T00:00:00.000Z","type":"function","record":"`+strings.Repeat("\xff\xfe raw bytes ", 900)+`"}`, true)
		f(`{"type":"function","record":"`+strings.Repeat(`\"`, 6000)+`"}`, true)
		// A type the listener does not know is given as the event spells it
		// (escapes and all: it decodes the same); one too long, or none, is left out.
		long := `{"time":"2026-01-01T00:00:00.000Z","record":"` + strings.Repeat("y", 6000) + `"`
		f(long+`,"type":"platform.newThing"}`, false, "platform.newThing")
		f(long+`,"type":"platform.new\u0054hing\"s"}`, false, `platform.newThing"s`)
		f(long+`,"type":"`+strings.Repeat("t", 65)+`"}`, false, "")
		f(long+`}`, false, "")
		// So is one that is not valid UTF-8: the records must be (the
		// payload goes in body_base64 for the same reason).
		f(long+",\"type\":\"custom.\xff\xfe\"}", true, "")
		f(long+`,"type":"custom.été"}`, false, "custom.été")

		// Exactly at the limit: a plain frame; one byte more: parts.
		pre := 1
		if enrich {
			pre = len(listener.AppendPrefix(nil, testIdentity))
		}
		head := `{"type":"function","record":"`
		fit := head + strings.Repeat("x", o.MaxFrameBytes-pre+1-len(head)-2) + `"}`
		s.post(t, body(false, fit))
		if frames := ringtest.Drain(s.r); len(frames) != 1 || len(frames[0]) != o.MaxFrameBytes {
			t.Fatalf("unexpected frames for an event at the limit: %d frames", len(frames))
		}
		over := head + strings.Repeat("x", o.MaxFrameBytes-pre+2-len(head)-2) + `"}`
		s.post(t, body(false, over))
		if frames := ringtest.Drain(s.r); len(frames) != 2 {
			t.Fatalf("unexpected frames for an event one byte over the limit; got %d; want 2 parts", len(frames))
		}
		st := s.l.Stats()
		if st.Oversize != 10 || st.Events != 9*3+2 {
			t.Fatalf("unexpected stats: %+v", st)
		}
	}
}

func TestOverflowQuarantined(t *testing.T) {
	// Many empty events whose frame headers and prefixes outgrow the ring's
	// largest block, although the body itself is small.
	o := smallFrameOptions(true)
	o.MaxBodyBytes = 32 << 10
	size := 1 << 14
	for 2*listener.MaxQuarantineBlock(o.MaxBodyBytes, o.MaxFrameBytes, listener.DefaultMaxPrefixBytes) > size {
		size *= 2
	}
	var ids []string
	o.OnRuntimeDone = func(id []byte) { ids = append(ids, string(id)) } // one POST at a time here
	s := startInmem(t, newRing(t, size), o)
	// Its runtimeDone and logsDropped still count: the events are valid,
	// only stored whole.
	b := []byte("[" + strings.Repeat("{},", 10000) +
		`{"type":"platform.runtimeDone","record":{"requestId":"r1","status":"success"}},` +
		`{"type":"platform.logsDropped","record":{"droppedRecords":5,"droppedBytes":9}}]`)
	if code := s.post(t, b); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", code)
	}
	frames := ringtest.Drain(s.r)
	w, payload := reassemble(t, frames, o.MaxFrameBytes)
	if w.KTE.Quarantine != listener.QuarantineOverflow || !bytes.Equal(payload, b) {
		t.Fatalf("unexpected overflow record: %+v", w.KTE)
	}
	// Its events count as received, as they would had they fitted; the
	// records are the wrapped ones.
	st := s.l.Stats()
	if st.Overflow != 1 || st.Accepted != 1 || st.Events != 10002 || st.Frames != uint64(len(frames)) {
		t.Fatalf("unexpected stats (want Events 10002, the body's events, and Frames %d): %+v", len(frames), st)
	}
	if len(ids) != 1 || ids[0] != "r1" || st.LogsDroppedEvents != 1 || st.LogsDroppedRecords != 5 || st.LogsDroppedBytes != 9 {
		t.Fatalf("unexpected runtimeDone ids %q and logsDropped counters %+v for an overflowing POST", ids, st)
	}
}

// TestWrappedBodiesCountedWhenStored: a body stored wrapped (malformed, or
// valid but too many events for one ring block) that is answered 503 for
// want of ring room is posted again by Lambda. Malformed and Overflow count
// it once, when it is stored, not at each 503.
func TestWrappedBodiesCountedWhenStored(t *testing.T) {
	o := smallFrameOptions(true)
	o.MaxBodyBytes = 32 << 10
	o.FullWait = 5 * time.Millisecond
	size := 1 << 14
	for 2*listener.MaxQuarantineBlock(o.MaxBodyBytes, o.MaxFrameBytes, listener.DefaultMaxPrefixBytes) > size {
		size *= 2
	}
	r := newRing(t, size)
	s := startInmem(t, r, o)
	f := func(b []byte, kind string, count func(listener.Stats) uint64) {
		t.Helper()
		filler := fillRing(t, r)
		for range 3 {
			if code := s.post(t, b); code != fasthttp.StatusServiceUnavailable {
				t.Fatalf("unexpected status for a %s body with a full ring; got %d; want 503", kind, code)
			}
		}
		refused := count(s.l.Stats())
		r.Release(filler)
		if code := s.post(t, b); code != fasthttp.StatusOK {
			t.Fatalf("unexpected status for a %s body once the ring has room; got %d; want 200", kind, code)
		}
		w, payload := reassemble(t, ringtest.Drain(r), o.MaxFrameBytes)
		if w.KTE.Quarantine != kind || !bytes.Equal(payload, b) {
			t.Fatalf("unexpected wrapped record for a %s body: %+v", kind, w.KTE)
		}
		if stored := count(s.l.Stats()); refused != 0 || stored != 1 {
			t.Fatalf("unexpected %s count after three 503s and a 200; got %d then %d; want 0 then 1", kind, refused, stored)
		}
	}
	// Both bodies are larger than the room fillRing leaves.
	f([]byte(`[{"type":"function","record":"`+strings.Repeat("x", 4096)), listener.QuarantineMalformed,
		func(st listener.Stats) uint64 { return st.Malformed })
	f([]byte("["+strings.Repeat("{},", 10000)+"{}]"), listener.QuarantineOverflow,
		func(st listener.Stats) uint64 { return st.Overflow })
	if st := s.l.Stats(); st.Posts != 8 || st.RefusedFull != 6 || st.Accepted != 2 || st.Malformed != 1 || st.Overflow != 1 {
		t.Fatalf("unexpected stats: %+v", st)
	}
}

func TestMethodAndPath(t *testing.T) {
	s := startInmem(t, newRing(t, 2<<20), listener.Options{})
	f := func(method, path string, want int) {
		t.Helper()
		code, resp := s.do(t, method, path, body(false, sampleEvents[4]))
		if code != want {
			t.Fatalf("unexpected status for %s %s; got %d; want %d", method, path, code, want)
		}
		if want == fasthttp.StatusMethodNotAllowed && string(resp.Header.Peek("Allow")) != "POST" {
			t.Fatalf("unexpected Allow header; got %q; want POST", resp.Header.Peek("Allow"))
		}
		if len(resp.Header.Peek("Server")) != 0 || len(resp.Header.Peek("Date")) != 0 {
			t.Fatalf("unexpected default headers: %s", resp.Header.String())
		}
	}
	f(fasthttp.MethodGet, "/telemetry", fasthttp.StatusMethodNotAllowed)
	f(fasthttp.MethodPut, "/telemetry", fasthttp.StatusMethodNotAllowed)
	f(fasthttp.MethodPost, "/", fasthttp.StatusNotFound)
	f(fasthttp.MethodPost, "/telemetry/x", fasthttp.StatusNotFound)
	f(fasthttp.MethodGet, "/other", fasthttp.StatusNotFound)
	f(fasthttp.MethodPost, "/telemetry?x=1", fasthttp.StatusOK)
	if frames := ringtest.Drain(s.r); len(frames) != 1 {
		t.Fatalf("unexpected frames; got %d; want 1", len(frames))
	}
	checkStats(t, s.l.Stats(), listener.Stats{BadRequests: 5, Posts: 1, Accepted: 1, Events: 1, Frames: 1,
		BodyBytes: uint64(len(body(false, sampleEvents[4]))), FrameBytes: uint64(len(sampleEvents[4]))})
}

func TestBodyTooLarge(t *testing.T) {
	s := startInmem(t, newRing(t, 2<<20), listener.Options{MaxBodyBytes: 16 << 10})
	// fasthttp answers 413 after the headers and closes the connection
	// without reading the body, so a client still writing it would see
	// the connection closed instead of the answer. A buffer larger than the
	// request makes the client write it all at once, before the server reads.
	s.c.WriteBufferSize = 64 << 10
	b := genBody(16<<10 + 1)
	if code := s.post(t, b); code != fasthttp.StatusRequestEntityTooLarge {
		t.Fatalf("unexpected status; got %d; want 413", code)
	}
	ok := genBody(15 << 10)
	if code := s.post(t, ok); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status below the limit; got %d; want 200", code)
	}
	ringtest.Drain(s.r)
	if st := s.l.Stats(); st.TooLarge != 1 || st.Posts != 1 || st.Accepted != 1 {
		t.Fatalf("unexpected stats: %+v", st)
	}
}

// fillRing commits 1 KiB blocks until the ring is full, reads them all and
// returns the last, for a later Release.
func fillRing(t *testing.T, r *ring.Ring) ring.Frame {
	t.Helper()
	for {
		w, err := r.Reserve(1, 1024)
		if errors.Is(err, ring.ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Frame(1024)
		w.Commit()
	}
	var last ring.Frame
	for {
		f, ok := r.Next()
		if !ok {
			return last
		}
		last = f
	}
}

func TestRingFullThenRecovers(t *testing.T) {
	r := newRing(t, 2<<20)
	s := startInmem(t, r, listener.Options{FullWait: 30 * time.Millisecond})
	filler := fillRing(t, r)
	b := body(false, genEvents(50)...)

	start := time.Now()
	if code := s.post(t, b); code != fasthttp.StatusServiceUnavailable {
		t.Fatalf("unexpected status with a full ring; got %d; want 503", code)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("unexpected wait before 503; got %v; want at least 30ms", d)
	}
	if st := s.l.Stats(); st.RefusedFull != 1 || st.Accepted != 0 || st.Events != 0 || st.Posts != 1 {
		t.Fatalf("unexpected stats after 503: %+v", st)
	}
	if _, ok := r.Next(); ok {
		t.Fatalf("unexpected frame in the ring after 503")
	}
	if !s.l.RetryPending() {
		t.Fatalf("unexpected RetryPending false after a 503")
	}

	// The next POST wakes the reader, which releases the fillers while the
	// handler waits: the POST succeeds.
	s2 := startInmem(t, r, listener.Options{FullWait: 3 * time.Second})
	select { // the first POST woke the reader
	case <-r.Wait():
	case <-time.After(time.Second):
		t.Fatalf("unexpected: a POST refused with 503 did not wake the reader")
	}
	released := make(chan struct{})
	go func() {
		<-r.Wait()
		r.Release(filler)
		close(released)
	}()
	if code := s2.post(t, b); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status after the reader released; got %d; want 200", code)
	}
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatalf("unexpected: the reader was never woken")
	}
	elems, _ := oracle(b)
	frames := ringtest.Drain(r)
	if len(frames) != len(elems) || !bytes.Equal(frames[0], elems[0]) || !bytes.Equal(frames[49], elems[49]) {
		t.Fatalf("unexpected frames after recovery; got %d; want %d", len(frames), len(elems))
	}
	if st := s2.l.Stats(); st.RefusedFull != 0 || st.Events != 50 {
		t.Fatalf("unexpected stats after recovery: %+v", st)
	}
	if s2.l.RetryPending() {
		t.Fatalf("unexpected RetryPending on a listener that refused nothing")
	}
	// The retry that Lambda sends after the 503 is accepted: nothing pending.
	if code := s.post(t, []byte("[]")); code != fasthttp.StatusOK || s.l.RetryPending() {
		t.Fatalf("unexpected status %d or RetryPending %v after an accepted POST", code, s.l.RetryPending())
	}
}

// TestRetryPendingWhileWaiting: a POST waiting for ring room counts as
// pending before its answer (it may yet be refused), and LastPost is its
// answer's time, so that SHUTDOWN's quiet period, counted from LastPost, cannot
// end while it waits or before Lambda's next POST can follow it.
func TestRetryPendingWhileWaiting(t *testing.T) {
	r := newRing(t, 2<<20)
	const wait = 200 * time.Millisecond
	s := startInmem(t, r, listener.Options{FullWait: wait})
	fillRing(t, r)
	b := body(false, genEvents(5)...)

	start := time.Now()
	codes := make(chan int, 1)
	go func() { codes <- s.post(t, b) }()
	for s.l.Stats().Posts == 0 {
		time.Sleep(time.Millisecond)
	}
	if lp := s.l.LastPost(); !lp.IsZero() {
		t.Fatalf("unexpected LastPost %v before the first answer", lp)
	}
	select {
	case code := <-codes:
		t.Fatalf("unexpected answer %d before FullWait; the test does not test what it says", code)
	default:
	}
	if !s.l.RetryPending() {
		t.Fatalf("unexpected RetryPending false while a POST waits for ring room")
	}
	if code := <-codes; code != fasthttp.StatusServiceUnavailable {
		t.Fatalf("unexpected status with a full ring; got %d; want 503", code)
	}
	if !s.l.RetryPending() {
		t.Fatalf("unexpected RetryPending false after a 503")
	}
	if lp := s.l.LastPost(); lp.Sub(start) < wait {
		t.Fatalf("unexpected LastPost %v after the POST was sent; want the answer's time, at least %v later", lp.Sub(start), wait)
	}
}

func TestRuntimeDoneAndLogsDropped(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	s := startInmem(t, newRing(t, 2<<20), listener.Options{OnRuntimeDone: func(id []byte) {
		mu.Lock()
		ids = append(ids, string(id))
		mu.Unlock()
	}})
	b := body(true,
		sampleEvents[9],
		`{"type":"platform.runtimeDone","record":{"status":"success","request\u0049d":"esc\u0061ped-\"id\""}}`,
		`{"type":"platform.runtimeDone","record":"not an object"}`,
		`{"type":"platform.runtimeDone"}`,
		sampleEvents[17],
		`{"type":"platform.logsDropped","record":{"droppedBytes":1.5e3,"droppedRecords":3,"reason":"x"}}`,
		`{"type":"platform.logsDropped","record":{"droppedBytes":-1,"droppedRecords":"many"}}`,
	)
	if code := s.post(t, b); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", code)
	}
	want := []string{"0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90", `escaped-"id"`}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("unexpected runtimeDone request ids; got %q; want %q", ids, want)
	}
	st := s.l.Stats()
	if st.LogsDroppedEvents != 3 || st.LogsDroppedRecords != 15 || st.LogsDroppedBytes != 4096+1500 {
		t.Fatalf("unexpected logsDropped counters: %+v", st)
	}
}

func TestLastPost(t *testing.T) {
	s := startInmem(t, newRing(t, 2<<20), listener.Options{})
	if !s.l.LastPost().IsZero() {
		t.Fatalf("unexpected LastPost before any POST: %v", s.l.LastPost())
	}
	before := time.Now()
	s.post(t, []byte("[]"))
	if lp := s.l.LastPost(); lp.Before(before) || lp.After(time.Now()) {
		t.Fatalf("unexpected LastPost; got %v; want between %v and now", lp, before)
	}
	lp := s.l.LastPost()
	s.do(t, fasthttp.MethodGet, "/telemetry", nil)
	if s.l.LastPost() != lp {
		t.Fatalf("unexpected LastPost change on a GET")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	f := func(r *ring.Ring, o listener.Options, want string) {
		t.Helper()
		_, err := listener.New(r, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("unexpected error; got %v; want one containing %q", err, want)
		}
	}
	f(newRing(t, 2<<20), listener.Options{MaxBodyBytes: 1 << 20}, "cannot hold a wrapped body")
	f(newRing(t, 4<<20), listener.Options{MaxFrameBytes: 2000}, "MaxFrameBytes")
	f(newRing(t, 4<<20), listener.Options{Path: "telemetry"}, "must start with '/'")
	f(newRing(t, 4<<20), listener.Options{Port: 70000}, "out of range")
	f(newRing(t, 4<<20), listener.Options{Enrich: true, Identity: listener.Identity{Function: strings.Repeat("é", 300)}}, "prefix")
	if _, err := listener.New(newRing(t, 8<<20), listener.Options{MaxBodyBytes: 2*1<<20 + 64<<10}); err != nil {
		t.Fatalf("unexpected error for an 8 MiB ring and the largest Lambda body: %v", err)
	}
}

// startTCP starts a listener on a real loopback socket.
func startTCP(t *testing.T, r *ring.Ring, o listener.Options) (*listener.Listener, string) {
	t.Helper()
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	o.Port = 0
	l, err := listener.New(r, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Errorf("unexpected shutdown error: %v", err)
		}
	})
	return l, "http://" + l.Addr().String()
}

func TestLoopbackSocket(t *testing.T) {
	r := newRing(t, 2<<20)
	l, base := startTCP(t, r, listener.Options{MaxBodyBytes: 16 << 10})
	c := &fasthttp.Client{}
	b := body(false, sampleEvents...)
	if code, _ := do(t, c, base, fasthttp.MethodPost, "/telemetry", b); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", code)
	}
	elems, _ := oracle(b)
	frames := ringtest.Drain(r)
	if len(frames) != len(elems) || !bytes.Equal(frames[len(frames)-1], elems[len(elems)-1]) {
		t.Fatalf("unexpected frames; got %d; want %d", len(frames), len(elems))
	}

	// Too large, with a body: 413 and counted.
	if code, _ := do(t, c, base, fasthttp.MethodPost, "/telemetry", genBody(16<<10+1)); code != fasthttp.StatusRequestEntityTooLarge {
		t.Fatalf("unexpected status; got %d; want 413", code)
	}
	// Too large by Content-Length alone: refused before the body is read.
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /telemetry HTTP/1.1\r\nHost: sandbox.localdomain\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 3<<20)
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("cannot read the response: %v", err)
	}
	if resp.StatusCode() != fasthttp.StatusRequestEntityTooLarge {
		t.Fatalf("unexpected status; got %d; want 413", resp.StatusCode())
	}
	if st := l.Stats(); st.TooLarge != 2 || st.Accepted != 1 {
		t.Fatalf("unexpected stats: %+v", st)
	}
	if frames := ringtest.Drain(r); len(frames) != 0 {
		t.Fatalf("unexpected frames after 413: %d", len(frames))
	}
}

func TestStartAddresses(t *testing.T) {
	f := func(host string, wantIP string, wantLog bool) {
		t.Helper()
		logs := &logBuffer{}
		l, err := listener.New(newRing(t, 4<<20), listener.Options{Host: host, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Start(); err != nil {
			t.Fatalf("cannot start on %q: %v", host, err)
		}
		defer l.Shutdown(context.Background())
		addr := l.Addr().(*net.TCPAddr)
		if addr.IP.String() != wantIP || addr.Port == 0 {
			t.Fatalf("unexpected address for %q; got %v; want %s and a port", host, addr, wantIP)
		}
		if lines := logs.lines(); (len(lines) == 1) != wantLog || wantLog && !strings.Contains(lines[0], "does not resolve") {
			t.Fatalf("unexpected log lines for %q: %q", host, lines)
		}
		if err := l.Start(); !errors.Is(err, listener.ErrStarted) {
			t.Fatalf("unexpected second Start error; got %v; want ErrStarted", err)
		}
	}
	f("127.0.0.1", "127.0.0.1", false)
	f("kte-test.invalid", "127.0.0.1", true)
	f("localhost", "127.0.0.1", false)

	for _, host := range []string{"0.0.0.0", "::"} {
		l, err := listener.New(newRing(t, 4<<20), listener.Options{Host: host})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Start(); err == nil || !strings.Contains(err.Error(), "all interfaces") {
			l.Shutdown(context.Background())
			t.Fatalf("unexpected Start result on %q; got %v; want a refusal", host, err)
		}
	}
}

// TestStartReturnsBeforeAccept: Start returns before the server's first
// Accept (the lifecycle subscribes meanwhile). A POST sent at once waits in
// the backlog and is served, and a Shutdown right after Start still finds
// the server and stops it.
func TestStartReturnsBeforeAccept(t *testing.T) {
	for i := range 20 {
		r := newRing(t, 4<<20)
		l, err := listener.New(r, listener.Options{Host: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if i%2 == 0 {
			code, _ := do(t, &fasthttp.Client{}, "http://"+addr, fasthttp.MethodPost, "/telemetry", []byte(`[{"type":"function","record":"x"}]`))
			if code != fasthttp.StatusOK {
				t.Fatalf("run %d: unexpected answer to a POST right after Start; got %d; want 200", i, code)
			}
			if st := r.Stats(); st.FramesWritten != 1 {
				t.Fatalf("run %d: unexpected frames in the ring; got %d; want 1", i, st.FramesWritten)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = l.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("run %d: unexpected Shutdown error: %v", i, err)
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("run %d: unexpected successful dial after Shutdown", i)
		}
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	r := newRing(t, 2<<20)
	l, base := startTCP(t, r, listener.Options{FullWait: 300 * time.Millisecond})
	filler := fillRing(t, r)
	defer r.Release(filler)

	type result struct {
		code int
		at   time.Time
	}
	res := make(chan result, 1)
	go func() {
		req, resp := fasthttp.AcquireRequest(), &fasthttp.Response{}
		req.SetRequestURI(base + "/telemetry")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetBody(genBody(8 << 10))
		if err := (&fasthttp.Client{}).Do(req, resp); err != nil {
			res <- result{code: -1, at: time.Now()}
			return
		}
		res <- result{code: resp.StatusCode(), at: time.Now()}
	}()
	// Wait until the handler is in its full-ring wait.
	for l.Stats().Posts == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("unexpected shutdown error: %v", err)
	}
	done := time.Now()
	got := <-res
	// The client reads the answer a moment after the server wrote it, which
	// may be after Shutdown returned: allow that moment, not a second request.
	if got.code != fasthttp.StatusServiceUnavailable || got.at.After(done.Add(100*time.Millisecond)) {
		t.Fatalf("unexpected in-flight result; got status %d at %v; want 503 by the time Shutdown returned at %v", got.code, got.at, done)
	}
	if d := done.Sub(start); d < 200*time.Millisecond {
		t.Fatalf("unexpected Shutdown duration %v: it did not wait for the in-flight request", d)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Fatalf("unexpected successful dial after Shutdown")
	}
}

// TestShutdownDoesNotWaitForOpenConnections: Lambda's client keeps its
// connection open; fasthttp looks at open connections only every 100 ms,
// and at SHUTDOWN that time belongs to the final flush. Shutdown returns
// once nothing can be stored any more, with the socket closed, and a POST
// that completes on an open connection afterwards is answered 503 without
// touching the ring.
func TestShutdownDoesNotWaitForOpenConnections(t *testing.T) {
	r := newRing(t, 2<<20)
	l, base := startTCP(t, r, listener.Options{})
	if code, _ := do(t, &fasthttp.Client{}, base, fasthttp.MethodPost, "/telemetry", body(false, sampleEvents...)); code != fasthttp.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", code)
	}
	// A POST whose body is half sent when Shutdown begins.
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	late := body(false, sampleEvents...)
	fmt.Fprintf(conn, "POST /telemetry HTTP/1.1\r\nHost: sandbox.localdomain\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(late))
	if _, err := conn.Write(late[:len(late)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("unexpected shutdown error: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond { // before: until the connection closed (5 s here)
		t.Fatalf("Shutdown took %v with connections open; want it back once nothing can be stored", d)
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatalf("unexpected successful dial after Shutdown")
	}
	if _, err := conn.Write(late[len(late)/2:]); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("cannot read the answer to the late POST: %v", err)
	}
	if resp.StatusCode() != fasthttp.StatusServiceUnavailable {
		t.Fatalf("unexpected answer to a POST completed after Shutdown; got %d; want 503", resp.StatusCode())
	}
	if frames := ringtest.Drain(r); len(frames) != len(sampleEvents) {
		t.Fatalf("unexpected frames in the ring; got %d; want the first POST's %d only", len(frames), len(sampleEvents))
	}
}

func TestConcurrentPostsAndSetIdentity(t *testing.T) {
	posters, posts := 8, 40
	if testing.Short() {
		posts = 10
	}
	r := newRing(t, 4<<20)
	s := startInmem(t, r, listener.Options{Enrich: true, Identity: testIdentity, FullWait: 10 * time.Second})
	ids := []listener.Identity{testIdentity, {Function: "other", Environment: "e2"}}
	prefixes := [][]byte{listener.AppendPrefix(nil, ids[0]), listener.AppendPrefix(nil, ids[1])}

	var stop atomic.Bool
	seen := make(map[string]int)
	readerDone := make(chan struct{})
	go func() { // the single reader
		defer close(readerDone)
		for {
			frames := ringtest.Drain(r)
			for _, fr := range frames {
				var p []byte
				for _, pre := range prefixes {
					if bytes.HasPrefix(fr, pre) {
						p = pre
					}
				}
				if p == nil || !json.Valid(fr) {
					t.Errorf("unexpected frame: %.200q", fr)
					return
				}
				seen["{"+string(fr[len(p):])]++
			}
			if len(frames) == 0 {
				if stop.Load() {
					return
				}
				select {
				case <-r.Wait():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			if err := s.l.SetIdentity(ids[i%2]); err != nil {
				t.Error(err)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var want []string
	var pw sync.WaitGroup
	for g := range posters {
		events := genEvents(posters * posts * 5)[g*posts*5 : (g+1)*posts*5]
		want = append(want, events...)
		pw.Add(1)
		go func() {
			defer pw.Done()
			for p := range posts {
				if code := s.post(t, body(p%2 == 0, events[p*5:(p+1)*5]...)); code != fasthttp.StatusOK {
					t.Errorf("unexpected status; got %d; want 200", code)
				}
			}
		}()
	}
	pw.Wait()
	stop.Store(true)
	wg.Wait()
	<-readerDone
	if len(seen) != len(want) {
		t.Fatalf("unexpected number of distinct events; got %d; want %d", len(seen), len(want))
	}
	for _, e := range want {
		if seen[e] != 1 {
			t.Fatalf("unexpected count for event %.80q; got %d; want 1", e, seen[e])
		}
	}
}

// TestConcurrentPostsPartsAndRedraws posts from several goroutines POSTs
// with an event larger than a frame (stored in parts) and, one in five,
// malformed bodies (stored whole, in parts), while another goroutine sets
// the identity and redraws the wrapped-payload ids, as a SnapStart restore
// does (run it with -race). Every POST must be stored once, each under one
// identity (the handler loads it once per POST), and every wrapped payload
// must have an id of its own, its parts in order.
func TestConcurrentPostsPartsAndRedraws(t *testing.T) {
	posters, posts := 6, 30
	if testing.Short() {
		posts = 8
	}
	r := newRing(t, 8<<20)
	o := smallFrameOptions(true)
	o.FullWait = 10 * time.Second
	s := startInmem(t, r, o)
	// Two identities of one length: a POST written under both would not
	// fail any size check, only this test.
	other := testIdentity
	other.Environment = "env-é✓\x02"
	ids := []listener.Identity{testIdentity, other}
	prefixes := [][]byte{listener.AppendPrefix(nil, ids[0]), listener.AppendPrefix(nil, ids[1])}

	var stop atomic.Bool
	var flips atomic.Uint64 // identity changes made so far
	var frames [][]byte     // the reader's, handed over by readerDone
	readerDone := make(chan struct{})
	go func() { // the single reader
		defer close(readerDone)
		for {
			got := ringtest.Drain(r)
			frames = append(frames, got...)
			if len(got) == 0 {
				if stop.Load() {
					if got = ringtest.Drain(r); len(got) == 0 {
						return
					}
					frames = append(frames, got...)
					continue
				}
				select {
				case <-r.Wait():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1); !stop.Load(); i++ {
			if err := s.l.SetIdentity(ids[i%2]); err != nil {
				t.Error(err)
			}
			s.l.RedrawIDs(i * 0x9e3779b97f4a7c15)
			flips.Add(1)
			runtime.Gosched()
		}
	}()
	var pw sync.WaitGroup
	for g := range posters {
		pw.Add(1)
		go func() {
			defer pw.Done()
			seen := flips.Load()
			for p := range posts {
				// At least one change of identity between two POSTs of a
				// poster, so that both identities are seen however the
				// goroutines are scheduled; the changes still race with
				// the POSTs of the others.
				for wait := time.Now().Add(time.Second); flips.Load() == seen && time.Now().Before(wait); {
					runtime.Gosched()
				}
				seen = flips.Load()
				mark := func(i int) string { return fmt.Sprintf(`"mark":"g%d-p%d-%d"`, g, p, i) }
				b := body(p%2 == 0,
					`{"type":"function",`+mark(0)+`,"record":"small"}`,
					`{"type":"function",`+mark(1)+`,"record":"`+strings.Repeat("big ", 2000+g*10+p)+`"}`,
					`{"type":"platform.start",`+mark(2)+`,"record":{}}`)
				if p%5 == 4 {
					b = b[:len(b)-3] // cut: malformed, quarantined whole
				}
				if code := s.post(t, b); code != fasthttp.StatusOK {
					t.Errorf("unexpected status; got %d; want 200", code)
				}
			}
		}()
	}
	pw.Wait()
	stop.Store(true)
	wg.Wait()
	<-readerDone

	// POST by POST: the identities its frames carry, and what arrived.
	type post struct {
		identities map[int]bool
		events     [3]int
		bodies     int // malformed bodies
	}
	got := map[string]*post{}
	markOf := func(b []byte) (string, int) {
		i := bytes.Index(b, []byte(`"mark":"g`))
		if i < 0 {
			t.Fatalf("unexpected payload without a mark: %.200q", b)
		}
		m := b[i+len(`"mark":"`):]
		m = m[:bytes.IndexByte(m, '"')]
		k := bytes.LastIndexByte(m, '-')
		p := got[string(m[:k])]
		if p == nil {
			p = &post{identities: map[int]bool{}}
			got[string(m[:k])] = p
		}
		return string(m[:k]), int(m[k+1] - '0')
	}
	identity := func(fr []byte) int {
		for i, pre := range prefixes {
			if bytes.HasPrefix(fr, pre) {
				return i
			}
		}
		t.Fatalf("unexpected frame without a known identity: %.200q", fr)
		return -1
	}
	payloadIDs := map[string]bool{}
	for i := 0; i < len(frames); {
		fr := frames[i]
		who := identity(fr)
		if !bytes.HasPrefix(fr[len(prefixes[who]):], []byte(`"kte":`)) {
			key, n := markOf(fr)
			got[key].identities[who] = true
			got[key].events[n]++
			i++
			continue
		}
		var w wrapped
		if err := json.Unmarshal(fr, &w); err != nil {
			t.Fatalf("unexpected wrapped record: %v: %.200q", err, fr)
		}
		if i+w.KTE.Parts > len(frames) {
			t.Fatalf("unexpected end of the ring inside wrapped payload %s", w.KTE.ID)
		}
		group := frames[i : i+w.KTE.Parts]
		for _, part := range group {
			if identity(part) != who {
				t.Fatalf("unexpected identities inside wrapped payload %s", w.KTE.ID)
			}
		}
		_, payload := reassemble(t, group, o.MaxFrameBytes)
		if payloadIDs[w.KTE.ID] {
			t.Fatalf("unexpected id %s given to two wrapped payloads", w.KTE.ID)
		}
		payloadIDs[w.KTE.ID] = true
		key, n := markOf(payload)
		got[key].identities[who] = true
		if w.KTE.Quarantine == listener.QuarantineMalformed {
			got[key].bodies++
		} else {
			got[key].events[n]++
		}
		i += len(group)
	}
	for g := range posters {
		for p := range posts {
			key := fmt.Sprintf("g%d-p%d", g, p)
			want := post{events: [3]int{1, 1, 1}}
			if p%5 == 4 {
				want = post{bodies: 1}
			}
			gp := got[key]
			if gp == nil || len(gp.identities) != 1 || gp.events != want.events || gp.bodies != want.bodies {
				t.Fatalf("unexpected POST %s in the ring; got %+v; want events %v and %d malformed bodies, under one identity", key, gp, want.events, want.bodies)
			}
		}
	}
	if len(got) != posters*posts {
		t.Fatalf("unexpected POSTs in the ring; got %d; want %d", len(got), posters*posts)
	}
	under := map[int]int{}
	for _, gp := range got {
		for who := range gp.identities {
			under[who]++
		}
	}
	if len(under) != 2 || len(payloadIDs) != posters*posts {
		t.Fatalf("unexpected POSTs under identities %v and %d wrapped payloads; want both identities and %d payloads (the test does not test what it says)",
			under, len(payloadIDs), posters*posts)
	}
	t.Logf("%d POSTs in %d frames, %d wrapped payloads; POSTs per identity %v", len(got), len(frames), len(payloadIDs), under)
}
