package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/results"
)

func TestStripper(t *testing.T) {
	var s stripper
	f := func(rec, want string) {
		t.Helper()
		if got := string(s.original([]byte(rec))); got != want {
			t.Fatalf("unexpected original of %s; got %s; want %s", rec, got, want)
		}
	}
	const id = `{"lambda":{"function":"f","version":"$LATEST","region":"r","account":"1","environment":"e"},`
	f(`{"time":"t","type":"function"}`, `{"time":"t","type":"function"}`) // not enriched
	f(id+`"time":"t","type":"function","record":"x"}`, `{"time":"t","type":"function","record":"x"}`)
	f(id[:len(id)-1]+`}`, `{}`)
	f(id[:len(id)-1]+" \t}", "{ \t}")
	f(id+`"a":{"lambda":1}}`, `{"a":{"lambda":1}}`)
	// Another identity than the one learnt: left as it is, so it cannot match.
	other := strings.Replace(id, `"f"`, `"g"`, 1) + `"a":1}`
	f(other, other)
}

// TestRun drives a short low rate at the real binary and checks the books
// balance: nothing lost, nothing unknown.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the extension")
	}
	shutdownDeadline = 10 * time.Second // a loaded CI machine must not turn into a kill
	path := filepath.Join(t.TempDir(), "load.json")
	var out strings.Builder
	if err := run([]int{500}, []int{150, 400}, 500*time.Millisecond, 50*time.Millisecond, 30*time.Millisecond, nil, path, &out); err != nil {
		t.Fatal(err)
	}
	var l results.Load
	if err := results.Read(path, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Runs) != 1 {
		t.Fatalf("unexpected runs: %d", len(l.Runs))
	}
	r := l.Runs[0]
	if r.GapMs != 30 || r.Invokes < 2 || r.Invokes > 7 || r.Received == 0 || r.Received != r.Acked || r.Lost != 0 || r.Unknown != 0 || r.Dropped != 0 {
		t.Fatalf("unexpected books: %+v", r)
	}
	if r.Generated != r.Acked+r.Pending || r.PendingTypes["extension"] != r.Pending {
		t.Fatalf("unexpected pending events (only the extension's own last lines may be): %+v", r)
	}
	if r.PeakRSSMiB <= 0 || r.MedianRSSMiB <= 0 || r.MedianRSSMiB > r.PeakRSSMiB || r.CPUPercent <= 0 || r.OverheadMs.N != r.Invokes || !strings.Contains(r.Summary, "KTE_SUMMARY") {
		t.Fatalf("unexpected figures: %+v", r)
	}
}

func TestRunRefusesBadTimes(t *testing.T) {
	for _, tc := range []struct {
		invoke, gap time.Duration
		want        string
	}{
		{0, 0, "-invoke must be positive and at most -duration"},
		{2 * time.Second, 0, "-invoke must be positive and at most -duration"},
		{100 * time.Millisecond, -time.Millisecond, "-gap -1ms must be between 0 and -duration (1s)"},
		{100 * time.Millisecond, 2 * time.Second, "-gap 2s must be between 0 and -duration (1s)"},
	} {
		err := run([]int{1000}, []int{100}, time.Second, tc.invoke, tc.gap, nil, "", io.Discard)
		if err == nil || err.Error() != tc.want {
			t.Errorf("invoke %s, gap %s: unexpected error %v; want %q", tc.invoke, tc.gap, err, tc.want)
		}
	}
}
