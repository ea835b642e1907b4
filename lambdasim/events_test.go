package lambdasim

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAppendFunctionLine(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	req := "0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90"
	f := func(format LogFormat, size, wantLen int) {
		t.Helper()
		b := appendFunctionLine(nil, ts, req, 40, 3, 7, format, size)
		if len(b) != wantLen {
			t.Fatalf("unexpected length for %s size %d; got %d; want %d: %s", format, size, len(b), wantLen, b)
		}
		var ev struct {
			Time   string          `json:"time"`
			Type   string          `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("unexpected invalid JSON %s: %v", b, err)
		}
		if ev.Time != "2026-01-02T03:04:05.678Z" || ev.Type != "function" {
			t.Fatalf("unexpected envelope %s", b)
		}
		if format == LogText {
			var rec string
			if err := json.Unmarshal(ev.Record, &rec); err != nil {
				t.Fatalf("unexpected text record %s: %v", ev.Record, err)
			}
			want := "2026-01-02T03:04:05.678Z\t" + req + "\tINFO\tseq=40 invoke=3 line=7"
			if !strings.HasPrefix(rec, want) || !strings.HasSuffix(rec, "\n") {
				t.Fatalf("unexpected text record %q; want prefix %q and a newline", rec, want)
			}
			return
		}
		var rec map[string]string
		if err := json.Unmarshal(ev.Record, &rec); err != nil {
			t.Fatalf("unexpected JSON record %s: %v", ev.Record, err)
		}
		if rec["timestamp"] != "2026-01-02T03:04:05.678Z" || rec["level"] != "INFO" || rec["requestId"] != req || !strings.HasPrefix(rec["message"], "seq=40 invoke=3 line=7") {
			t.Fatalf("unexpected JSON record %v", rec)
		}
	}
	textMin := len(appendFunctionLine(nil, ts, req, 40, 3, 7, LogText, 0))
	jsonMin := len(appendFunctionLine(nil, ts, req, 40, 3, 7, LogJSON, 0))
	f(LogText, 0, textMin)
	f(LogText, textMin-1, textMin)
	f(LogText, textMin+1, textMin+1)
	f(LogText, 1000, 1000)
	f(LogText, 300<<10, 300<<10)
	f(LogJSON, 0, jsonMin)
	f(LogJSON, jsonMin+1, jsonMin+1)
	f(LogJSON, 4096, 4096)
}

func TestCompare(t *testing.T) {
	ev := func(id int, b string) Event { return Event{ID: id, Bytes: []byte(b)} }
	want := []Event{ev(0, "a"), ev(1, "b"), ev(2, "same"), ev(3, "same")}
	f := func(got []string, missing, dup, unexpected int) {
		t.Helper()
		var g [][]byte
		for _, s := range got {
			g = append(g, []byte(s))
		}
		d := Compare(want, g)
		if len(d.Missing) != missing || len(d.Duplicated) != dup || len(d.Unexpected) != unexpected || d.OK() != (missing+dup+unexpected == 0) {
			t.Fatalf("unexpected diff for %q; got %d missing, %d duplicated, %d unexpected; want %d, %d, %d",
				got, len(d.Missing), len(d.Duplicated), len(d.Unexpected), missing, dup, unexpected)
		}
	}
	f([]string{"a", "b", "same", "same"}, 0, 0, 0)
	f([]string{"same", "b", "same", "a"}, 0, 0, 0)
	f([]string{"a", "b", "same"}, 1, 0, 0)
	f([]string{"a", "b", "same", "same", "same"}, 0, 1, 0)
	f([]string{"a", "a", "b", "same", "same", "c"}, 0, 1, 1)
	f(nil, 4, 0, 0)
}

func TestIsUUID(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := isUUID(s); got != want {
			t.Fatalf("unexpected isUUID(%q); got %v; want %v", s, got, want)
		}
	}
	f(newUUID(), true)
	f("4c9a3d5e-1f2b-4b7e-9a61-0d7c2f8e5b13", true)
	f("4C9A3D5E-1F2B-4B7E-9A61-0D7C2F8E5B13", true)
	f("4c9a3d5e-1f2b-4b7e-9a61-0d7c2f8e5b1", false)
	f("4c9a3d5e_1f2b-4b7e-9a61-0d7c2f8e5b13", false)
	f("4c9a3d5e-1f2b-4b7e-9a61-0d7c2f8e5b1g", false)
	f("", false)
}

func TestDeliveryTarget(t *testing.T) {
	f := func(uri, want string) {
		t.Helper()
		got, err := deliveryTarget(uri)
		if err != nil && want != "" || err == nil && got != want {
			t.Fatalf("unexpected target for %q; got %q, %v; want %q", uri, got, err, want)
		}
	}
	f("http://sandbox.localdomain:4243/telemetry", "http://127.0.0.1:4243/telemetry")
	f("http://sandbox:4243", "http://127.0.0.1:4243/")
	f("http://sandbox.localdomain:8080/a/b?c=d", "http://127.0.0.1:8080/a/b?c=d")
	f("http://sandbox.localdomain:9001/", "")
	f("http://127.0.0.1:4243/", "")
	f("http://sandbox.localdomain:0/", "")
	f("sandbox.localdomain:4243", "")
}

func TestPlatformRecords(t *testing.T) {
	f := func(v any, want string) {
		t.Helper()
		if got := string(mustRecord(v)); got != want {
			t.Fatalf("unexpected record; got %s; want %s", got, want)
		}
	}
	f(reportRecord{RequestID: "r", Status: "success", Metrics: reportMetrics{
		DurationMs: msOf(41870 * time.Microsecond), BilledDurationMs: 42, MemorySizeMB: 512, MaxMemoryUsedMB: 61,
	}, Tracing: traceContext{Type: "X-Amzn-Trace-Id", Value: "Root=1"}},
		`{"requestId":"r","status":"success","metrics":{"durationMs":41.87,"billedDurationMs":42,"memorySizeMB":512,"maxMemoryUsedMB":61},"tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1"}}`)
	f(logsDroppedRecord{DroppedBytes: 4096, DroppedRecords: 12, Reason: "r"}, `{"droppedBytes":4096,"droppedRecords":12,"reason":"r"}`)
	f(span{Name: "responseLatency", Start: stamp(time.Date(2022, 8, 2, 12, 1, 23, 521_000_000, time.UTC)), DurationMs: 23.02},
		`{"name":"responseLatency","start":"2022-08-02T12:01:23.521Z","durationMs":23.02}`)
}

// Every microsecond count renders as its exact decimal number of ms.
func TestMsRendering(t *testing.T) {
	for us := range int64(200_000) {
		want := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%d.%03d", us/1000, us%1000), "0"), ".")
		if got := string(mustRecord(msOf(time.Duration(us) * time.Microsecond))); got != want {
			t.Fatalf("unexpected rendering of %d µs; got %s; want %s", us, got, want)
		}
	}
}
