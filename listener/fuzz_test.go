package listener_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/listener"
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
