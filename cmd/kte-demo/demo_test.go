package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/e2e"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// TestDemo runs the demo as `make demo` does, but small, against a
// kinesalite it starts itself, and checks what the demo printed against the
// stream read back independently.
func TestDemo(t *testing.T) {
	k := kinesalite.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The extension, built as the Makefile builds it (the import path
	// works from this package's folder, "." would not).
	ext, err := lambdasim.Build(ctx, "github.com/kte-dev/kinesis-telemetry-extension", t.TempDir(), "kinesis-telemetry-extension")
	if err != nil {
		t.Fatal(err)
	}
	const n, lines, stream = 4, 10, "kte-demo-test"
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-extension", ext, "-kinesalite", k.Endpoint, "-stream", stream,
		"-n", strconv.Itoa(n), "-lines", strconv.Itoa(lines), "-limit", "1m"}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("unexpected exit code; got %d; want 0\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	if !strings.Contains(out, "\nOK: every event is in Kinesis") {
		t.Fatalf("no OK line:\n%s", out)
	}

	records, err := k.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([][]byte, len(records))
	perShard := map[string]int{}
	for i, r := range records {
		raw[i] = r.Data
		perShard[r.ShardID]++
	}
	events, _, err := e2e.Events(raw)
	if err != nil {
		t.Fatal(err)
	}
	functions := 0
	for _, ev := range events {
		if bytes.Contains(ev, []byte(`"type":"function"`)) {
			functions++
		}
	}

	m := regexp.MustCompile(`(?m)^found in Kinesis +(\d+) of (\d+) expected \(([^;)]*)`).FindStringSubmatch(out)
	d := regexp.MustCompile(`(?m)^duplicates +(\d+)$`).FindStringSubmatch(out)
	if m == nil || d == nil {
		t.Fatalf("no \"found in Kinesis\" or \"duplicates\" line:\n%s", out)
	}
	inKinesis, _ := strconv.Atoi(m[1])
	expected, _ := strconv.Atoi(m[2])
	dups, _ := strconv.Atoi(d[1])
	if inKinesis != expected {
		t.Fatalf("OK printed with %d of %d events in Kinesis", inKinesis, expected)
	}
	if got := inKinesis + dups; got != len(events) {
		t.Fatalf("unexpected events in the stream; printed %d found + %d duplicates; read back %d", inKinesis, dups, len(events))
	}
	if shards := countList(perShard, "%s: %d"); m[3] != shards {
		t.Fatalf("unexpected records per shard; printed %q; read back %q", m[3], shards)
	}
	// Every function log line of the workload is in the stream.
	want := e2e.Lines(e2e.Workload(n, lines, 0, 256<<10, 900<<10))
	if functions < want || functions > want+dups {
		t.Fatalf("unexpected function log events in the stream; got %d; want %d (plus up to %d duplicates)", functions, want, dups)
	}
	if want := fmt.Sprintf(" function %d,", want); !strings.Contains(out, want) {
		t.Fatalf("events generated: no %q:\n%s", want, out)
	}
}
