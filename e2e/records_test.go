package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

const testPrefix = `{"lambda":{"function":"f}","version":"$LATEST","region":"us-east-1","account":"1","environment":"e"},`

func TestParseRecord(t *testing.T) {
	f := func(data, wantEvent string, wantLambda bool) {
		t.Helper()
		r, err := ParseRecord([]byte(data))
		if err != nil {
			t.Fatalf("unexpected error for %q: %v", data, err)
		}
		if string(r.Event) != wantEvent {
			t.Fatalf("unexpected event for %q; got %q; want %q", data, r.Event, wantEvent)
		}
		if (r.Lambda != nil) != wantLambda {
			t.Fatalf("unexpected lambda for %q; got %v; want present=%v", data, r.Lambda, wantLambda)
		}
		if wantLambda && r.Lambda.Function != "f}" {
			t.Fatalf("unexpected function; got %q; want %q", r.Lambda.Function, "f}")
		}
	}
	f(`{"time":"t","type":"function","record":"x"}`, `{"time":"t","type":"function","record":"x"}`, false)
	f(testPrefix+`"time":"t","type":"function","record":"x"}`, `{"time":"t","type":"function","record":"x"}`, true)
	f(testPrefix+` "time" : 1 }`, `{ "time" : 1 }`, true)
	f(testPrefix[:len(testPrefix)-1]+`}`, `{}`, true)
	f(testPrefix[:len(testPrefix)-1]+" \n}", "{ \n}", true)

	bad := func(data string) {
		t.Helper()
		if _, err := ParseRecord([]byte(data)); err == nil {
			t.Fatalf("unexpected success for %q", data)
		}
	}
	bad(``)
	bad(`[]`)
	bad(`{"lambda":{"function":`)
	bad(testPrefix[:len(testPrefix)-1] + `x`)
	bad(`{"kte":{"quarantine":"oversize","id":"1","part":1,"parts":1}}`)
	bad(`{"kte":{"quarantine":"oversize","id":"1","part":1,"parts":1},"body_base64":"!!"}`)
}

// wrap builds the wrapped records of payload cut into parts of at most n
// bytes, as the listener writes them.
func wrap(kind, id string, payload []byte, n int, b64 bool) [][]byte {
	var out [][]byte
	parts := (len(payload) + n - 1) / n
	for i := 0; i < parts; i++ {
		chunk := payload[i*n : min(len(payload), (i+1)*n)]
		body := fmt.Sprintf(`"body":%q`, chunk)
		if b64 {
			body = `"body_base64":"` + base64.StdEncoding.EncodeToString(chunk) + `"`
		}
		out = append(out, fmt.Appendf(nil, `%s"kte":{"quarantine":%q,"reason":"r","id":%q,"part":%d,"parts":%d,"offset":%d,"bytes":%d},%s}`,
			testPrefix, kind, id, i+1, parts, i*n, len(payload), body))
	}
	return out
}

func TestEventsReassemble(t *testing.T) {
	big := []byte(`{"time":"t","type":"function","record":"` + strings.Repeat("abc", 1000) + `"}`)
	body := []byte(`[{"a":1},{"b":[2,3]}]`)
	f := func(raw [][]byte, want ...string) {
		t.Helper()
		got, _, err := Events(raw)
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("unexpected events; got %d %q; want %d", len(got), got, len(want))
		}
		for i := range want {
			if string(got[i]) != want[i] {
				t.Fatalf("unexpected event %d; got %.80q; want %.80q", i, got[i], want[i])
			}
		}
	}
	parts := wrap("oversize", "00000000000000a1", big, 700, false)
	f(parts, string(big))
	// Any order, duplicated parts, mixed with plain events.
	mixed := [][]byte{parts[3], []byte(`{"x":1}`), parts[0], parts[2], parts[1], parts[4], parts[0]}
	f(mixed, `{"x":1}`, string(big))
	f(wrap("oversize", "00000000000000a2", big, 500, true), string(big))
	f(wrap("malformed", "00000000000000a3", body, 5, false), `{"a":1}`, `{"b":[2,3]}`)
	f(wrap("malformed", "00000000000000a4", []byte(`[{"a":`), 4, true), `[{"a":`)

	// A missing part is an error: the event is lost.
	if _, _, err := Events(append(parts[:1:1], parts[2:]...)); err == nil {
		t.Fatalf("unexpected success with a missing part")
	}
	// Two payloads under one id are an error, even when every part number
	// is there once the copies are dropped.
	other := bytes.ToUpper(big)
	for i, p := range wrap("oversize", "00000000000000a1", other, 700, false) {
		if _, _, err := Events(append(slices.Clone(parts), p)); err == nil {
			t.Fatalf("unexpected success with part %d of another payload under the same id", i+1)
		}
	}
	// A corrupted offset is an error.
	bad := bytes.Replace(parts[1], []byte(`"offset":700`), []byte(`"offset":701`), 1)
	if _, _, err := Events([][]byte{parts[0], bad, parts[2], parts[3], parts[4]}); err == nil {
		t.Fatalf("unexpected success with a bad offset")
	}
}

func TestReconcile(t *testing.T) {
	gen := []lambdasim.Event{
		{ID: 0, Type: "function", Bytes: []byte(`{"a":1}`)},
		{ID: 1, Type: "function", Bytes: []byte(`{"a":1}`)}, // identical bytes, a distinct event
		{ID: 2, Type: "platform.report", Bytes: []byte(`{"r":2}`)},
		{ID: 3, Type: "extension", Bytes: []byte(`{"e":3}`)},
	}
	keep := func(ev lambdasim.Event) bool { return ev.Type != "extension" }
	b := func(s ...string) [][]byte {
		var out [][]byte
		for _, x := range s {
			out = append(out, []byte(x))
		}
		return out
	}
	f := func(kinesis, stderr [][]byte, wantInK, wantOnE, wantMissing, wantDup, wantUnexpected int, wantOnce bool) {
		t.Helper()
		r := Reconcile(gen, keep, kinesis, stderr)
		if r.InKinesis != wantInK || r.OnStderr != wantOnE || len(r.Missing) != wantMissing || r.Duplicates != wantDup ||
			len(r.Unexpected) != wantUnexpected || r.ExactlyOnce() != wantOnce || r.Expected != 3 || r.Excluded["extension"] != 1 {
			t.Fatalf("unexpected reconciliation; got %s once=%v; want in Kinesis %d, on stderr %d, missing %d, duplicates %d, unexpected %d, once=%v",
				r, r.ExactlyOnce(), wantInK, wantOnE, wantMissing, wantDup, wantUnexpected, wantOnce)
		}
	}
	f(b(`{"a":1}`, `{"r":2}`, `{"a":1}`), nil, 3, 0, 0, 0, 0, true)
	f(b(`{"a":1}`, `{"r":2}`), nil, 2, 0, 1, 0, 0, false)                       // one copy of two identical events
	f(b(`{"a":1}`, `{"r":2}`), b(`{"a":1}`), 2, 1, 0, 0, 0, false)              // the other on stderr: OK, not once
	f(b(`{"a":1}`, `{"r":2}`, `{"a":1}`, `{"r":2}`), nil, 3, 0, 0, 1, 0, false) // a duplicate
	f(b(`{"a":1}`, `{"a":1}`, `{"r":2}`, `{"e":3}`), nil, 3, 0, 0, 0, 0, true)  // excluded but shipped: fine
	f(b(`{"a":1}`, `{"a":1}`, `{"r":2}`, `{"z":9}`), nil, 3, 0, 0, 0, 1, false) // unknown record
	f(nil, b(`{"a":1}`, `{"r":2}`, `{"a":1}`), 0, 3, 0, 0, 0, false)
}
