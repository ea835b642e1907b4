package flush

import (
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// t0 is an arbitrary origin for the made-up clocks below.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// script runs INVOKEs at the given offsets from t0 (flushing whenever the
// policy says so) and returns the actions, one letter each: S skip, N now,
// E after runtimeDone.
func script(p *Policy, at []time.Duration, full func(i int) bool) string {
	var b strings.Builder
	for i, d := range at {
		now := t0.Add(d)
		a := p.Invoke(now, full != nil && full(i))
		switch a {
		case Skip:
			b.WriteByte('S')
		case Now:
			b.WriteByte('N')
			p.Flushed(now)
		case AfterRuntimeDone:
			b.WriteByte('E')
			p.Flushed(now.Add(50 * time.Millisecond))
		}
	}
	return b.String()
}

// every returns n offsets spaced by gap, starting at start.
func every(start, gap time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = start + time.Duration(i)*gap
	}
	return out
}

func TestPolicyFixedModes(t *testing.T) {
	f := func(fl config.Flush, at []time.Duration, full func(int) bool, want string) {
		t.Helper()
		if got := script(New(fl), at, full); got != want {
			t.Fatalf("unexpected actions for %s; got %s; want %s", fl, got, want)
		}
	}
	at := every(0, 100*time.Millisecond, 6)
	f(config.Flush{Mode: config.FlushInvoke}, at, nil, "NNNNNN")
	f(config.Flush{Mode: config.FlushEnd}, at, nil, "EEEEEE")
	// Long gaps change nothing for the fixed modes.
	f(config.Flush{Mode: config.FlushEnd}, every(0, 10*time.Minute, 3), nil, "EEE")

	// periodic: the first INVOKE flushes, then at most once per period.
	per := config.Flush{Mode: config.FlushPeriodic, Period: time.Second}
	f(per, every(0, 300*time.Millisecond, 8), nil, "NSSSNSSS") // 0, 1.2 s flush
	f(per, every(0, time.Second, 4), nil, "NNNN")              // exactly the period
	f(per, every(0, 999*time.Millisecond, 3), nil, "NSN")      // just under it
	// A full batch goes at once, and restarts the period.
	f(per, every(0, 300*time.Millisecond, 8), func(i int) bool { return i == 2 }, "NSNSSSNS")
}

func TestPolicyPeriodicCountsFromAnyFlush(t *testing.T) {
	p := New(config.Flush{Mode: config.FlushPeriodic, Period: 10 * time.Second})
	if a := p.Invoke(t0, false); a != Now {
		t.Fatalf("unexpected first action; got %s; want now", a)
	}
	p.Flushed(t0)
	// Every flush the lifecycle reports counts, whoever chose it.
	p.Flushed(t0.Add(8 * time.Second))
	if a := p.Invoke(t0.Add(12*time.Second), false); a != Skip {
		t.Fatalf("unexpected action 4 s after a flush; got %s; want skip", a)
	}
	if a := p.Invoke(t0.Add(18*time.Second), false); a != Now {
		t.Fatalf("unexpected action 10 s after a flush; got %s; want now", a)
	}
}

func TestPolicyAutoSwitchesToInvokeAfterWindow(t *testing.T) {
	p := New(config.Flush{Mode: config.FlushAuto})
	// 21 INVOKEs one second apart: 20 gaps are known at the 21st, whose
	// action is already invoke style.
	got := script(p, every(0, time.Second, 25), nil)
	want := strings.Repeat("E", AutoWindow) + "NNNNN"
	if got != want {
		t.Fatalf("unexpected actions; got %s; want %s", got, want)
	}
	if m, n := p.Median(); m != time.Second || n != AutoWindow {
		t.Fatalf("unexpected median; got %v over %d; want 1s over %d", m, n, AutoWindow)
	}
	if p.Style() != "invoke" {
		t.Fatalf("unexpected style; got %s; want invoke", p.Style())
	}
}

func TestPolicyAutoStaysEndWhileRare(t *testing.T) {
	f := func(gap time.Duration, want string) {
		t.Helper()
		if got := script(New(config.Flush{Mode: config.FlushAuto}), every(0, gap, 30), nil); got != want {
			t.Fatalf("gap %v: unexpected actions; got %s; want %s", gap, got, want)
		}
	}
	f(AutoFastGap, strings.Repeat("E", 30))                                       // not under the threshold
	f(AutoFastGap-time.Millisecond, strings.Repeat("E", AutoWindow)+"NNNNNNNNNN") // just under
	f(45*time.Second, strings.Repeat("E", 30))
	f(5*time.Minute, strings.Repeat("E", 30)) // every gap a lull
}

func TestPolicyAutoMedianIgnoresOutliers(t *testing.T) {
	// Quick invocations with one long (but not lull) pause in every four:
	// the median is 1 s, so invoke style, where a mean (≈ 12 s) would not be.
	var at []time.Duration
	var d time.Duration
	for i := range 30 {
		at = append(at, d)
		if i%4 == 3 {
			d += 45 * time.Second
		} else {
			d += time.Second
		}
	}
	got := script(New(config.Flush{Mode: config.FlushAuto}), at, nil)
	if want := strings.Repeat("E", AutoWindow) + strings.Repeat("N", 10); got != want {
		t.Fatalf("unexpected actions; got %s; want %s", got, want)
	}
}

func TestPolicyAutoBackToEnd(t *testing.T) {
	// Warm up to invoke style, then slow down to 40 s gaps: the median
	// reaches AutoSlowGap once more than half the window is slow (at the
	// 11th slow gap), and end style comes back from that INVOKE on.
	at := every(0, time.Second, 21)
	last := at[len(at)-1]
	at = append(at, every(last+40*time.Second, 40*time.Second, 12)...)
	got := script(New(config.Flush{Mode: config.FlushAuto}), at, nil)
	want := strings.Repeat("E", AutoWindow) + strings.Repeat("N", 11) + "EE"
	if got != want {
		t.Fatalf("unexpected actions; got %s; want %s", got, want)
	}

	// Between the thresholds nothing changes (hysteresis): 20 s gaps keep
	// invoke style once chosen, and never choose it.
	at = every(0, time.Second, 21)
	last = at[len(at)-1]
	at = append(at, every(last+20*time.Second, 20*time.Second, 30)...)
	got = script(New(config.Flush{Mode: config.FlushAuto}), at, nil)
	if want := strings.Repeat("E", AutoWindow) + strings.Repeat("N", 31); got != want {
		t.Fatalf("unexpected actions with 20 s gaps; got %s; want %s", got, want)
	}
}

func TestPolicyAutoLullResets(t *testing.T) {
	// Warm up, then one lull of AutoLull: end style at once, and 20 fresh
	// quick gaps before invoke style again.
	at := every(0, time.Second, 22)
	last := at[len(at)-1]
	at = append(at, every(last+AutoLull, time.Second, 22)...)
	got := script(New(config.Flush{Mode: config.FlushAuto}), at, nil)
	want := strings.Repeat("E", AutoWindow) + "NN" + strings.Repeat("E", AutoWindow) + "NN"
	if got != want {
		t.Fatalf("unexpected actions; got %s; want %s", got, want)
	}
	// Just under a lull is an ordinary (slow) gap.
	at = every(0, time.Second, 22)
	last = at[len(at)-1]
	at = append(at, last+AutoLull-time.Millisecond)
	got = script(New(config.Flush{Mode: config.FlushAuto}), at, nil)
	if want := strings.Repeat("E", AutoWindow) + "NNN"; got != want {
		t.Fatalf("unexpected actions after an almost-lull; got %s; want %s", got, want)
	}
}

func TestPolicyMedian(t *testing.T) {
	f := func(gaps []time.Duration, want time.Duration) {
		t.Helper()
		p := New(config.Flush{Mode: config.FlushInvoke})
		d := time.Duration(0)
		p.Invoke(t0, false)
		for _, g := range gaps {
			d += g
			p.Invoke(t0.Add(d), false)
		}
		got, n := p.Median()
		if got != want || n != min(len(gaps), AutoWindow) {
			t.Fatalf("unexpected median of %v; got %v over %d; want %v", gaps, got, n, want)
		}
	}
	f(nil, 0)
	f([]time.Duration{3 * time.Second}, 3*time.Second)
	f([]time.Duration{3 * time.Second, time.Second}, 2*time.Second)
	f([]time.Duration{5, 1, 4}, 4)
	// Only the last AutoWindow gaps count.
	gaps := make([]time.Duration, 0, 30)
	for range 10 {
		gaps = append(gaps, time.Hour/2) // lulls: they empty the window
	}
	for range 20 {
		gaps = append(gaps, 7*time.Second)
	}
	f(gaps, 7*time.Second)
	gaps = gaps[:0]
	for range 11 {
		gaps = append(gaps, 50*time.Second)
	}
	for range 20 {
		gaps = append(gaps, 2*time.Second)
	}
	f(gaps, 2*time.Second)
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Skip: "skip", Now: "now", AfterRuntimeDone: "after_runtime_done", Action(9): "unknown"} {
		if got := a.String(); got != want {
			t.Fatalf("unexpected string; got %q; want %q", got, want)
		}
	}
}
