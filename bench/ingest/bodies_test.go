package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestBodies(t *testing.T) {
	f := func(b Body, minEvents, maxEvents, minBytes, maxBytes int) {
		t.Helper()
		var events []map[string]any
		if err := json.Unmarshal(b.Data, &events); err != nil {
			t.Fatalf("%s: unexpected error decoding the body: %v", b.Name, err)
		}
		if len(events) != b.Events {
			t.Fatalf("%s: unexpected events; got %d; want %d", b.Name, len(events), b.Events)
		}
		if b.Events < minEvents || b.Events > maxEvents {
			t.Fatalf("%s: unexpected events; got %d; want %d..%d", b.Name, b.Events, minEvents, maxEvents)
		}
		if n := len(b.Data); n < minBytes || n > maxBytes {
			t.Fatalf("%s: unexpected size; got %d; want %d..%d", b.Name, n, minBytes, maxBytes)
		}
		for i, ev := range events {
			if _, ok := ev["time"].(string); !ok {
				t.Fatalf("%s: event %d has no time: %v", b.Name, i, ev)
			}
			if _, ok := ev["type"].(string); !ok {
				t.Fatalf("%s: event %d has no type: %v", b.Name, i, ev)
			}
			if ev["record"] == nil {
				t.Fatalf("%s: event %d has no record: %v", b.Name, i, ev)
			}
		}
	}
	bodies := Bodies()
	if len(bodies) != 5 {
		t.Fatalf("unexpected bodies; got %d; want 5", len(bodies))
	}
	f(bodies[0], 1, 1, 150, 500)
	f(bodies[1], 100, 100, 30_000, 45_000)
	f(bodies[2], 1000, 1000, 300_000, 450_000)
	f(bodies[3], 240, 256, 250<<10, 256<<10)
	f(bodies[4], 990, 1024, 1000<<10, 1<<20)

	// Deterministic: the same bytes every time.
	again := Bodies()
	for i := range bodies {
		if !bytes.Equal(bodies[i].Data, again[i].Data) {
			t.Fatalf("%s: unexpected difference between two calls", bodies[i].Name)
		}
	}
}
