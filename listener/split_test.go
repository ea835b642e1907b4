package listener_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/listener"
)

// oracle splits body with encoding/json: ok is true only when body is a JSON
// array whose elements are all objects; elems are the elements' bytes,
// whitespace trimmed.
func oracle(body []byte) (elems [][]byte, ok bool) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, false
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		return nil, false // e.g. "null", which Unmarshal accepts as a nil slice
	}
	for _, r := range raws {
		r = bytes.TrimSpace(r)
		if len(r) == 0 || r[0] != '{' {
			return nil, false
		}
		elems = append(elems, r)
	}
	return elems, true
}

// checkSplit runs SplitArray on body and compares it with the oracle, the
// "type" and "record" members included.
func checkSplit(t *testing.T, body []byte) []listener.Event {
	t.Helper()
	prefix := []listener.Event{{Start: -1}}
	events, err := listener.SplitArray(body, prefix)
	want, ok := oracle(body)
	if !ok {
		if err == nil {
			t.Fatalf("unexpected success on a body encoding/json rejects (or not an array of objects): %q", body)
		}
		if !errors.Is(err, listener.ErrMalformed) && !errors.Is(err, listener.ErrNotArray) && !errors.Is(err, listener.ErrNotObject) {
			t.Fatalf("unexpected error kind; got %v; want one of the sentinels", err)
		}
		if len(events) != 1 || events[0].Start != -1 {
			t.Fatalf("unexpected dst after an error; got %d events; want dst unchanged (1)", len(events))
		}
		return nil
	}
	if err != nil {
		t.Fatalf("unexpected error on a body encoding/json accepts: %v; body %q", err, body)
	}
	if events[0].Start != -1 {
		t.Fatalf("unexpected dst: SplitArray overwrote the existing element")
	}
	events = events[1:]
	if len(events) != len(want) {
		t.Fatalf("unexpected number of events; got %d; want %d; body %q", len(events), len(want), body)
	}
	for i, ev := range events {
		if got := body[ev.Start:ev.End]; !bytes.Equal(got, want[i]) {
			t.Fatalf("unexpected event %d; got %q; want %q", i, got, want[i])
		}
		checkMembers(t, body, ev, want[i])
	}
	return events
}

// checkMembers compares the event's "type" and "record" with what
// encoding/json finds in elem (duplicate keys: the last wins in both).
func checkMembers(t *testing.T, body []byte, ev listener.Event, elem []byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(elem, &m); err != nil {
		t.Fatalf("cannot unmarshal element %q: %v", elem, err)
	}
	var wantType string
	typeIsString := false
	if raw, ok := m["type"]; ok && json.Unmarshal(raw, &wantType) == nil {
		typeIsString = true
	}
	gotRaw := body[ev.TypeStart:ev.TypeEnd]
	if !typeIsString {
		if ev.Type != listener.TypeNone || len(gotRaw) != 0 {
			t.Fatalf("unexpected type for %q; got %v %q; want TypeNone", elem, ev.Type, gotRaw)
		}
	} else {
		var got string
		if err := json.Unmarshal([]byte(`"`+string(gotRaw)+`"`), &got); err != nil || got != wantType {
			t.Fatalf("unexpected raw type for %q; got %q (%v); want %q", elem, gotRaw, err, wantType)
		}
		switch want := ev.Type.String(); {
		case ev.Type == listener.TypeOther:
			for ty := listener.TypeFunction; ty.String() != ""; ty++ {
				if ty.String() == wantType {
					t.Fatalf("unexpected TypeOther for known type %q", wantType)
				}
			}
		case want != wantType:
			t.Fatalf("unexpected type; got %v; want %q", ev.Type, wantType)
		}
	}
	rec := body[ev.RecordStart:ev.RecordEnd]
	if wantRec, ok := m["record"]; ok {
		if !bytes.Equal(rec, bytes.TrimSpace(wantRec)) {
			t.Fatalf("unexpected record; got %q; want %q", rec, wantRec)
		}
	} else if len(rec) != 0 {
		t.Fatalf("unexpected record %q in %q; want none", rec, elem)
	}
}

func TestSplitArrayValid(t *testing.T) {
	f := func(body string, wantN int) {
		t.Helper()
		if events := checkSplit(t, []byte(body)); len(events) != wantN {
			t.Fatalf("unexpected number of events in %q; got %d; want %d", body, len(events), wantN)
		}
	}
	f(`[]`, 0)
	f(" \t\r\n[ \n ] \n", 0)
	f(`[{}]`, 1)
	f(`[ { } , {"a":1} ]`, 2)
	f("[\n{\"type\" : \"function\" , \"record\" : \"x\"}\n,\n{ \"type\":\"extension\",\"record\":{ } }\n]", 2)
	f(`[{"a":[[[[{"b":[]}]]]],"c":{"d":{"e":{}}},"f":[1,-0,0.5,-1e3,2E+2,3e-0,true,false,null,""]}]`, 1)
	f(`[{"s":"[{\"]}\\\"\/\b\f\n\r\t\u00e9\uD83D\uDE00\ud800x\uDC00"}]`, 1)
	f(`[{"raw":"héllo ✓ 🚀"}]`, 1)
	f("[{\"invalid utf-8 is accepted like encoding/json\":\"\xff\xfe\xc3\"}]", 1)
	f(`[{"type":"platform.report","type":"function"}]`, 1)
	f(`[{"type":"platform\u002eruntimeDone","record":{"requestId":"x"}}]`, 1)
	f(`[{"typ\u0065":"function"}]`, 1)
	f(`[{"type":42,"record":null}]`, 1)
	f(`[{"type":"function","type":42}]`, 1)
	f(`[{"type":"platform.somethingNew","record":[1,2]}]`, 1)
	f(`[{"TYPE":"function"}]`, 1)
	f(string(body(true, sampleEvents...)), len(sampleEvents))
	f(string(body(false, sampleEvents...)), len(sampleEvents))
}

func TestSplitArrayMalformed(t *testing.T) {
	f := func(body string, want error) {
		t.Helper()
		checkSplit(t, []byte(body))
		_, err := listener.SplitArray([]byte(body), nil)
		if !errors.Is(err, want) {
			t.Fatalf("unexpected error for %q; got %v; want %v", body, err, want)
		}
		var se *listener.SyntaxError
		if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(body) || se.Msg == "" {
			t.Fatalf("unexpected error detail for %q; got %#v", body, err)
		}
	}
	f(``, listener.ErrMalformed)
	f(`   `, listener.ErrMalformed)
	f(`null`, listener.ErrNotArray)
	f(`{"type":"function"}`, listener.ErrNotArray)
	f(`"[]"`, listener.ErrNotArray)
	f("\xef\xbb\xbf[]", listener.ErrNotArray) // a BOM: encoding/json rejects it too
	f(`[1]`, listener.ErrNotObject)
	f(`[{}, "x"]`, listener.ErrNotObject)
	f(`[null]`, listener.ErrNotObject)
	f(`[[{}]]`, listener.ErrNotObject)
	f(`[`, listener.ErrMalformed)
	f(`[{}`, listener.ErrMalformed)
	f(`[{},]`, listener.ErrNotObject)
	f(`[{"a":1,}]`, listener.ErrMalformed)
	f(`[{"a":[1,]}]`, listener.ErrMalformed)
	f(`[{"a":1}]x`, listener.ErrMalformed)
	f(`[{}][]`, listener.ErrMalformed)
	f(`[{} {}]`, listener.ErrMalformed)
	f(`[{"a" 1}]`, listener.ErrMalformed)
	f(`[{a:1}]`, listener.ErrMalformed)
	f(`[{'a':1}]`, listener.ErrMalformed)
	f(`[{"a":01}]`, listener.ErrMalformed)
	f(`[{"a":1.}]`, listener.ErrMalformed)
	f(`[{"a":.5}]`, listener.ErrMalformed)
	f(`[{"a":1e}]`, listener.ErrMalformed)
	f(`[{"a":+1}]`, listener.ErrMalformed)
	f(`[{"a":-}]`, listener.ErrMalformed)
	f(`[{"a":NaN}]`, listener.ErrMalformed)
	f(`[{"a":tru}]`, listener.ErrMalformed)
	f(`[{"a":nul}]`, listener.ErrMalformed)
	f(`[{"a":True}]`, listener.ErrMalformed)
	f(`[{"a":"x\q"}]`, listener.ErrMalformed)
	f(`[{"a":"x\u12g4"}]`, listener.ErrMalformed)
	f(`[{"a":"x\u12"}]`, listener.ErrMalformed)
	f("[{\"a\":\"tab\there\"}]", listener.ErrMalformed)
	f("[{\"a\":\"nul\x00\"}]", listener.ErrMalformed)
	f(`[{"a":"unterminated}]`, listener.ErrMalformed)
	f(`[{"a":"x\`, listener.ErrMalformed)
	f(`[{"a":{"b":[}]}]`, listener.ErrMalformed)
	f(`[{"a":{"b":]}}]`, listener.ErrMalformed)
	f(`[{"a":[1 2]}]`, listener.ErrMalformed)
	f(`[{"a":{"b":1 "c":2}}]`, listener.ErrMalformed)
	f("[{}]\x00", listener.ErrMalformed)
	f("[{}\v]", listener.ErrMalformed)
	// A record cut across two POSTs, as Lambda has been seen to do.
	whole := string(body(false, sampleEvents[:5]...))
	f(whole[:len(whole)/2], listener.ErrMalformed)
	f(whole[len(whole)/2:], listener.ErrNotArray)
}

// TestSplitArrayDepth checks the nesting limit against encoding/json's.
func TestSplitArrayDepth(t *testing.T) {
	f := func(depth int) {
		t.Helper()
		// depth counts the top-level array and the event object.
		inner := depth - 2
		b := "[{\"a\":" + strings.Repeat("[", inner) + strings.Repeat("]", inner) + "}]"
		checkSplit(t, []byte(b))
	}
	for _, d := range []int{3, 100, 9999, 10000, 10001, 10002, 20000} {
		f(d)
	}
	// Depth check on the last of many events and inside objects too.
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	checkSplit(t, []byte("[{},"+deep(9999)+"]"))
	checkSplit(t, []byte("[{},"+deep(10000)+"]"))
}

func TestSplitArrayTypes(t *testing.T) {
	f := func(event string, want listener.Type, wantRaw string) {
		t.Helper()
		b := []byte("[" + event + "]")
		events, err := listener.SplitArray(b, nil)
		if err != nil || len(events) != 1 {
			t.Fatalf("unexpected result for %s; got %d events, %v", event, len(events), err)
		}
		ev := events[0]
		if ev.Type != want || string(b[ev.TypeStart:ev.TypeEnd]) != wantRaw {
			t.Fatalf("unexpected type for %s; got %v %q; want %v %q", event, ev.Type, b[ev.TypeStart:ev.TypeEnd], want, wantRaw)
		}
	}
	wantTypes := []listener.Type{
		listener.TypePlatformInitStart, listener.TypePlatformInitRuntimeDone, listener.TypePlatformInitReport,
		listener.TypePlatformStart, listener.TypeFunction, listener.TypeFunction, listener.TypeFunction,
		listener.TypeExtension, listener.TypeExtension, listener.TypePlatformRuntimeDone,
		listener.TypePlatformReport, listener.TypePlatformReport, listener.TypePlatformRestoreStart,
		listener.TypePlatformRestoreRuntimeDone, listener.TypePlatformRestoreReport, listener.TypePlatformExtension,
		listener.TypePlatformTelemetrySubscription, listener.TypePlatformLogsDropped,
	}
	for i, e := range sampleEvents {
		f(e, wantTypes[i], wantTypes[i].String())
	}
	f(`{}`, listener.TypeNone, "")
	f(`{"record":"x"}`, listener.TypeNone, "")
	f(`{"type":null}`, listener.TypeNone, "")
	f(`{"type":"function","type":{"x":1}}`, listener.TypeNone, "")
	f(`{"type":{"x":1},"type":"function"}`, listener.TypeFunction, "function")
	f(`{"type":"platform.fault"}`, listener.TypeOther, "platform.fault")
	f(`{"type":"Function"}`, listener.TypeOther, "Function")
	f(`{"type":""}`, listener.TypeOther, "")
	f(`{"type":"platform\u002eruntimeDone"}`, listener.TypePlatformRuntimeDone, `platform\u002eruntimeDone`)
	f(`{"t\u0079pe":"function"}`, listener.TypeFunction, "function")
	f(`{"type\u0000":"function"}`, listener.TypeNone, "")
	f(`{"nested":{"type":"function"}}`, listener.TypeNone, "")
	f(`{"record":{"type":"function"},"type":"extension"}`, listener.TypeExtension, "extension")
}

func TestSplitArrayAppends(t *testing.T) {
	dst := make([]listener.Event, 0, 64)
	b := body(false, sampleEvents...)
	for range 3 {
		var err error
		if dst, err = listener.SplitArray(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	if len(dst) != 3*len(sampleEvents) {
		t.Fatalf("unexpected length; got %d; want %d", len(dst), 3*len(sampleEvents))
	}
	before := len(dst)
	dst, err := listener.SplitArray(b[:len(b)-1], dst)
	if err == nil || len(dst) != before {
		t.Fatalf("unexpected result for a cut body; got %d events, %v; want %d and an error", len(dst), err, before)
	}
}

func TestMember(t *testing.T) {
	f := func(obj, key, want string) {
		t.Helper()
		if got := listener.Member([]byte(obj), key); string(got) != want {
			t.Fatalf("unexpected member %q of %s; got %q; want %q", key, obj, got, want)
		}
	}
	f(`{"requestId":"abc","status":"success"}`, "requestId", `"abc"`)
	f(`{ "a" : [1,{"requestId":"no"}] , "requestId" : "yes" }`, "requestId", `"yes"`)
	f(`{"requestId":"a","requestId":"b"}`, "requestId", `"b"`)
	f(`{"request\u0049d":"esc"}`, "requestId", `"esc"`)
	f(`{"droppedBytes":4096,"droppedRecords":12}`, "droppedRecords", `12`)
	f(`{}`, "requestId", ``)
	f(`{"x":{"requestId":"deep"}}`, "requestId", ``)
	f(`"a string"`, "requestId", ``)
}

func TestUnescapeMatchesEncodingJSON(t *testing.T) {
	f := func(raw string) {
		t.Helper()
		var want string
		if err := json.Unmarshal([]byte(`"`+raw+`"`), &want); err != nil {
			t.Fatalf("bad test string %q: %v", raw, err)
		}
		got, ok := listener.Unescape([]byte(raw))
		if !ok || string(got) != want {
			t.Fatalf("unexpected unescape of %q; got %q (%v); want %q", raw, got, ok, want)
		}
	}
	f(``)
	f(`plain`)
	f(`\"\\\/\b\f\n\r\t`)
	f(`\u0041\u00e9\u6771\uD83D\uDE00`)
	f(`\ud800`)
	f(`\ud800x`)
	f(`\ud800\u0041`)
	f(`\udc00\ud800`)
	f(`\ud83d\ude00\ude00`)
	f("h\xe9llo \xff\xfe ✓")
	f(`\u0000`)
}

func TestAppendEscapedRoundTrips(t *testing.T) {
	f := func(s string) {
		t.Helper()
		enc := listener.AppendEscaped(nil, []byte(s))
		n, valid := listener.EscapedLen([]byte(s))
		if n != len(enc) {
			t.Fatalf("unexpected escaped length of %q; got %d; want %d", s, n, len(enc))
		}
		var got string
		if err := json.Unmarshal([]byte(`"`+string(enc)+`"`), &got); err != nil {
			t.Fatalf("escaped %q is not a JSON string: %v", enc, err)
		}
		if valid && got != s {
			t.Fatalf("unexpected round trip; got %q; want %q", got, s)
		}
		if !valid && got != strings.ToValidUTF8(s, "\uFFFD") && !strings.Contains(got, "\uFFFD") {
			t.Fatalf("unexpected replacement of invalid UTF-8 in %q; got %q", s, got)
		}
	}
	f("")
	f("plain ascii")
	f("quote \" backslash \\ slash / [brackets] {braces}")
	f("\x00\x01\x1f\x7f\n\r\t\b\f")
	f("héllo ✓ 🚀 \u2028\u2029")
	f("bad \xff utf-8 \xc3")
}
