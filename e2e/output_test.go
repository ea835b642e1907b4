package e2e

import (
	"strings"
	"testing"
)

// TestOutputUndelivered: whole KTE_UNDELIVERED events and events written
// in parts (interleaved with other lines) come back as events, with one
// reason count per event.
func TestOutputUndelivered(t *testing.T) {
	var o Output
	_, _ = o.Write([]byte(strings.Join([]string{
		`[ext] KTE_UNDELIVERED reason=shutdown_deadline {"a":1}`,
		`[ext] KTE_UNDELIVERED reason=shutdown_deadline id=00000000000000a1 part=1/3 {"b":"x`,
		`[ext] some log line`,
		`[ext] KTE_UNDELIVERED reason=oversize id=00000000000000a2 part=1/2 {"c":`,
		`[ext] KTE_UNDELIVERED reason=shutdown_deadline id=00000000000000a1 part=2/3 y z`,
		`[ext] KTE_UNDELIVERED reason=oversize id=00000000000000a2 part=2/2 2}`,
		`[ext] KTE_UNDELIVERED reason=shutdown_deadline id=00000000000000a1 part=3/3 "}`,
		`[other] KTE_UNDELIVERED reason=shutdown_deadline {"d":3}`,
		``,
	}, "\n")))
	events, reasons := o.Undelivered("ext")
	want := []string{`{"a":1}`, `{"c":2}`, `{"b":"xy z"}`}
	if len(events) != len(want) {
		t.Fatalf("unexpected events; got %q; want %q", events, want)
	}
	for i := range want {
		if string(events[i]) != want[i] {
			t.Fatalf("unexpected event %d; got %q; want %q", i, events[i], want[i])
		}
	}
	if len(reasons) != 2 || reasons["shutdown_deadline"] != 2 || reasons["oversize"] != 1 {
		t.Fatalf("unexpected reasons; got %v; want 2 shutdown_deadline, 1 oversize", reasons)
	}
}
