package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	testext, err := lambdasim.Build(ctx, lambdasim.TestExtensionPackage, dir, "testext")
	if err != nil {
		t.Fatal(err)
	}
	f := func(args []string, wantCode int, wantOut ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code, err := run(ctx, args, &stdout, &stderr)
		if code != wantCode {
			t.Fatalf("unexpected exit code for %q; got %d (%v); want %d\nstdout:\n%s\nstderr:\n%s", args, code, err, wantCode, &stdout, &stderr)
		}
		for _, w := range wantOut {
			if !strings.Contains(stdout.String()+stderr.String(), w) {
				t.Fatalf("unexpected output for %q: missing %q\nstdout:\n%s\nstderr:\n%s", args, w, &stdout, &stderr)
			}
		}
	}
	f(nil, 2, "usage: lambdasim")
	f([]string{"-size", "x", testext}, 2)
	f([]string{"-format", "xml", testext}, 2)
	// Its last line, written as it ends after SHUTDOWN, cannot reach it:
	// counted apart, not undelivered.
	f([]string{"-n", "3", "-lines", "10", "-duration", "5ms", "-env", "TESTEXT_LOG=1", "-env", "TESTEXT_LAST_LINE=1", testext}, 0,
		"generated: 48 events:", "function=30", "extension=4", "acknowledged 47, dropped 0, undelivered 0, own lines after SHUTDOWN 1;",
		"[testext] testext: INVOKE", "[testext] testext: SHUTDOWN done", ", exit code 0\n")
	// An extension that ignores SHUTDOWN is killed: exit status 1.
	f([]string{"-n", "1", "-shutdown-deadline", "200ms", "-env", "TESTEXT_SHUTDOWN_HANG=1", "-quiet", testext}, 1,
		"killed: shutdown deadline exceeded")
	// An extension that exits non-zero at SHUTDOWN, having got every event
	// but its own log line saying it fails: exit status 1.
	f([]string{"-n", "1", "-env", "TESTEXT_SHUTDOWN_FAIL=1", "-quiet", testext}, 1,
		"dropped 0, undelivered 0, own lines after SHUTDOWN 1;", "shutdown testext: exited after ", ", exit code 1\n")
}
