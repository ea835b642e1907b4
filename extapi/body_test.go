package extapi

import (
	"bytes"
	stdjson "encoding/json"
	"reflect"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/extapi/wire"
)

func decoded(t *testing.T, b []byte) (v refSubscribe) {
	t.Helper()
	if err := stdjson.Unmarshal(b, &v); err != nil {
		t.Fatalf("BUG: %v", err)
	}
	return v
}

// The shapes the Runtime API expects, encoded by encoding/json as the
// reference for the hand-written bodies.
type (
	refRegister struct {
		Events []EventType `json:"events"`
	}
	refSubscribe struct {
		SchemaVersion string   `json:"schemaVersion"`
		Types         []string `json:"types"`
		Buffering     struct {
			MaxItems  int `json:"maxItems"`
			MaxBytes  int `json:"maxBytes"`
			TimeoutMs int `json:"timeoutMs"`
		} `json:"buffering"`
		Destination struct {
			Protocol string `json:"protocol"`
			URI      string `json:"URI"`
		} `json:"destination"`
	}
)

// TestRequestBodies checks the hand-written register and subscribe bodies
// byte for byte against encoding/json (HTML escaping off, which is all it
// would add), including strings that need escaping and invalid UTF-8. The
// one difference allowed is U+2028/U+2029, which encoding/json escapes and
// jsonesc writes as they are (both valid JSON): those bodies must decode to
// the same value.
func TestRequestBodies(t *testing.T) {
	encode := func(v any) []byte {
		var b bytes.Buffer
		e := stdjson.NewEncoder(&b)
		e.SetEscapeHTML(false)
		if err := e.Encode(v); err != nil {
			t.Fatalf("BUG: %v", err)
		}
		return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	}
	for _, events := range [][]EventType{nil, {}, {Shutdown}, {Invoke, Shutdown}, {"A\"B\\C\n\x01é\xff"}} {
		got := appendRegisterBody(nil, events)
		want := encode(refRegister{Events: events})
		if events == nil {
			want = []byte(`{"events":[]}`) // an empty list, never null
		}
		if !bytes.Equal(got, want) {
			t.Errorf("register body for %q: got %s; want %s", events, got, want)
		}
	}
	for _, s := range []Subscription{
		testSubscription(),
		{SchemaVersion: "2025-01-29", Types: []string{"platform"}, MaxItems: 25, MaxBytes: 262144, TimeoutMs: 25, URI: "http://127.0.0.1:4243/"},
		{SchemaVersion: "\"\\\t\u2028", Types: []string{"a<b>&c", "\x00\x1f\x7f", "\xc3\x28"}, MaxItems: -1, MaxBytes: 1<<31 - 1, URI: "http://h/p?q=\"x\"&y=é"},
	} {
		var ref refSubscribe
		ref.SchemaVersion, ref.Types = s.SchemaVersion, s.Types
		ref.Buffering.MaxItems, ref.Buffering.MaxBytes, ref.Buffering.TimeoutMs = s.MaxItems, s.MaxBytes, s.TimeoutMs
		ref.Destination.Protocol, ref.Destination.URI = "HTTP", s.URI
		got, want := wire.AppendSubscribeBody(nil, s), encode(ref)
		if bytes.Equal(got, want) {
			continue
		}
		var back refSubscribe
		if !bytes.Contains(want, []byte(`\u202`)) || stdjson.Unmarshal(got, &back) != nil || !reflect.DeepEqual(back, decoded(t, want)) {
			t.Errorf("subscribe body for %+v:\ngot  %s\nwant %s", s, got, want)
		}
	}
}
