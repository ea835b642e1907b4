package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/e2e"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

func TestIndent(t *testing.T) {
	f := func(in string, maxStr int, elide, want string) {
		t.Helper()
		got := indent([]byte(in), 2, maxStr, elide)
		if got != want {
			t.Fatalf("unexpected indent of %s;\ngot\n%s\nwant\n%s", in, got, want)
		}
	}
	f(`{"b":1,"a":[1,{"c":"xyz"}],"e":{},"f":[]}`, 10, "",
		"  {\n    \"b\": 1,\n    \"a\": [\n      1,\n      {\n        \"c\": \"xyz\"\n      }\n    ],\n    \"e\": {},\n    \"f\": []\n  }")
	f(`{"lambda":{"x":[1,2]},"s":"abcdef"}`, 3, "lambda",
		"  {\n    \"lambda\": {…},\n    \"s\": \"abc… (3 more bytes)\"\n  }")
	f(`{"a":`, 3, "", `  {"a`)
}

func TestSamples(t *testing.T) {
	long := `{"type":"function","record":"` + strings.Repeat("x", 1200) + `"}`
	raw := [][]byte{
		[]byte(`{"type":"function","record":"short"}`),
		[]byte(`{"type":"platform.report","record":{}}`),
		[]byte(long),
		[]byte(`{"type":"function","record":{"message":"m"}}`),
	}
	got := samples(raw)
	if len(got) != 3 || string(got[0]) != string(raw[1]) || string(got[1]) != long || string(got[2]) != string(raw[3]) {
		t.Fatalf("unexpected samples; got %q", got)
	}
}

func TestReportVerdict(t *testing.T) {
	f := func(name string, change func(r *result), wantCode int, wantOut ...string) {
		t.Helper()
		r := result{
			rec:      e2e.Reconciliation{Expected: 10, InKinesis: 10, Excluded: map[string]int{}},
			shutdown: lambdasim.ShutdownResult{Extensions: []lambdasim.ExtensionExit{{Name: "kte"}}},
		}
		change(&r)
		var out strings.Builder
		if code := report(&out, &r); code != wantCode {
			t.Errorf("%s: unexpected exit code; got %d; want %d; output:\n%s", name, code, wantCode, out.String())
			return
		}
		for _, w := range wantOut {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", name, w, out.String())
				return
			}
		}
		if strings.Contains(out.String(), "map[") {
			t.Errorf("%s: output shows a Go map:\n%s", name, out.String())
		}
	}
	f("all in Kinesis", func(*result) {}, 0, "OK: every event is in Kinesis", "after SHUTDOWN (deadline 2s)")
	f("duplicates", func(r *result) { r.rec.Duplicates = 3 }, 0,
		"OK: every event is in Kinesis", "plus 3 duplicate record(s) (delivery is at least once)")
	f("only on stderr", func(r *result) {
		r.rec.InKinesis, r.rec.OnStderr = 7, 3
		r.undelivered = map[string]int{"shutdown_deadline": 3}
	}, 1, "FAIL: only 7 of 10 expected event(s) are in Kinesis",
		"written to stderr     3 event(s) as KTE_UNDELIVERED (by reason: shutdown_deadline 3)")
	f("on stderr and in Kinesis", func(r *result) {
		r.rec.OnStderr, r.rec.InBoth = 2, 2
		r.undelivered = map[string]int{"shutdown_deadline": 1, "oversize": 1}
	}, 1, "FAIL: the extension gave up on 2 event(s)", "(by reason: oversize 1, shutdown_deadline 1)")
	f("missing", func(r *result) {
		r.rec.InKinesis = 9
		r.rec.Missing = []lambdasim.Event{{Type: "function"}}
	}, 1, "FAIL: 1 event(s) missing")
	f("extension exit code", func(r *result) { r.shutdown.Extensions[0].ExitCode = 1 }, 1, "FAIL: the extension ended with exit code 1")
	f("extension killed", func(r *result) { r.shutdown.Extensions[0].Killed = "deadline" }, 1, "killed: deadline")
	f("invocation failed", func(r *result) {
		r.invokes = []lambdasim.InvokeResult{{Status: "timeout"}}
	}, 1, "FAIL: 1 invocation(s) failed")
}

func TestRunStopped(t *testing.T) {
	f := func(ctx context.Context, limit, want string) {
		t.Helper()
		// Nothing listens on port 1: the first request fails, on the
		// context's error since that comes first.
		var stdout, stderr strings.Builder
		args := []string{"-extension", os.Args[0], "-kinesalite", "http://127.0.0.1:1", "-limit", limit}
		if code := run(ctx, args, &stdout, &stderr); code != 1 {
			t.Fatalf("unexpected exit code; got %d; want 1; stderr: %s", code, stderr.String())
		}
		if got := stderr.String(); got != want {
			t.Fatalf("unexpected message; got %q; want %q", got, want)
		}
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	f(canceled, "1m", "kte-demo: interrupted\n")
	f(context.Background(), "1ns", "kte-demo: gave up after -limit 1ns, before the demo finished\n")
}
