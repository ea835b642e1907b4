package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/faultproxy"
)

// TestFaultProxy puts the fault-injecting proxy (internal/faultproxy) between
// the extension and kinesalite: per-record failures (throughput exceeded,
// internal failure), throttled calls, 500s, hung calls and delays. None of
// these store anything for what they fail, so every event must be in Kinesis
// exactly once, and nothing on stderr. A second run adds lost responses
// (stored, then answered 500): delivery is then at-least-once, and the
// duplicates must be at most the records whose response was lost.
func TestFaultProxy(t *testing.T) {
	n := 30
	if testing.Short() {
		n = 10
	}
	f := faultproxy.Faults{
		Seed:          7,
		RecordFailure: 0.15,
		Throttle:      0.1,
		ServerError:   0.1,
		Hang:          0.08,
		Delay:         0.1,
		DelayTime:     30 * time.Millisecond,
	}
	for _, tc := range []struct {
		name string
		lost float64
	}{{"exactly-once", 0}, {"lost-responses", 0.25}} {
		t.Run(tc.name, func(t *testing.T) {
			var p *faultproxy.Server
			f := f
			f.LostResponse = tc.lost
			r := newRun(t, runOptions{
				endpoint: func(k string) string {
					var err error
					if p, err = faultproxy.Start(k, f); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = p.Close() })
					return p.URL
				},
				env: []string{"KTE_SEND_TIMEOUT_MS=400", "KTE_PARTITION_KEY=random"},
			})
			r.invoke(Workload(n, 30, 10*time.Millisecond, 200<<10))
			r.end(2 * time.Second)
			o := r.reconcile()
			r.figures(&o)
			st := p.Stats()
			t.Logf("proxy: %+v", st)

			// Every kind of fault must have been injected (with -short there
			// are too few calls to be sure of each kind).
			every := st.RecordFailures > 0 && st.Throttled > 0 && st.ServerErrors > 0 && st.Hung > 0
			if !every && (!testing.Short() || st.RecordFailures+st.Throttled+st.ServerErrors+st.Hung == 0) {
				t.Fatalf("unexpected proxy stats %+v; want every kind of fault injected (the test does not test what it says)", st)
			}
			if !o.OK() || len(o.unacked) != 0 {
				t.Fatalf("unexpected loss; got %s, %d not acknowledged; want every event in Kinesis or on stderr%s", o.Reconciliation, len(o.unacked), Describe(o.Missing, 5))
			}
			if o.OnStderr != 0 {
				t.Fatalf("unexpected events on stderr; got %d %v; want 0 (the faults are transient and the deadline leaves time)", o.OnStderr, o.reasons)
			}
			if retried, _ := strconv.Atoi(o.summary["retried"]); retried == 0 {
				t.Fatalf("unexpected KTE_SUMMARY retried=0 with injected faults")
			}
			if tc.lost == 0 {
				if !o.ExactlyOnce() {
					t.Fatalf("unexpected delivery; got %s; want exactly once (no fault stores what it fails)", o.Reconciliation)
				}
				return
			}
			// A quarter of the forwarded calls lose their response: with the
			// 20-odd forwarded calls of -short, none lost is about 1 in 2000
			// (at 0.1 it was 1 in 15, and CI met it).
			if st.LostResponses == 0 {
				t.Fatalf("unexpected proxy stats %+v; want at least one lost response (the test does not test what it says)", st)
			}
			if uint64(o.Duplicates) > st.LostRecords {
				t.Fatalf("unexpected duplicates; got %d with %d lost responses of %d records; want at most the records whose response was lost",
					o.Duplicates, st.LostResponses, st.LostRecords)
			}
		})
	}
}
