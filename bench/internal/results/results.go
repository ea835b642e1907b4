// Package results holds what the bench harnesses measure, as the JSON files
// they write to bench/results/ and the report generator (bench/chart) reads,
// plus the small statistics and machine description they share.
package results

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Summary describes a sample.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	P99    float64 `json:"p99"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns the summary of xs (nearest-rank quantiles); the zero
// Summary for an empty sample.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary{N: len(s), Median: Quantile(s, 0.5), P95: Quantile(s, 0.95), P99: Quantile(s, 0.99), Min: s[0], Max: s[len(s)-1]}
}

// Quantile returns the q-quantile of sorted, by nearest rank: the smallest
// value with at least q of the sample at or below it. The median of an even
// sample is the mean of the two middle values.
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if q == 0.5 && n%2 == 0 {
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	i := int(math.Ceil(q*float64(n))) - 1
	return sorted[min(max(i, 0), n-1)]
}

// Interval is the median of a sample with a distribution-free confidence
// interval for it: [Lo, Hi] are order statistics of the sample chosen with
// the binomial distribution (each value is above the true median with
// probability one half), so it holds for any distribution of the values
// (paired differences of noisy timings, say) as long as they are
// independent. Conf is the interval's coverage: the largest at most 0.95
// that the sample size allows, or, for samples too small for that, the
// coverage of [min, max].
type Interval struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	Conf   float64 `json:"conf"`
}

// MedianInterval returns the Interval of xs; the zero Interval for an empty
// sample.
func MedianInterval(xs []float64) Interval {
	n := len(xs)
	if n == 0 {
		return Interval{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	// [s[k-1], s[n-k]] misses the median with probability 2 P(B <= k-1),
	// B ~ Binomial(n, 1/2): take the largest k that keeps it at most 5%.
	k, miss := 1, 2*binomialCDF(n, 0)
	for k < n/2 {
		m := 2 * binomialCDF(n, k)
		if m > 0.05 {
			break
		}
		k, miss = k+1, m
	}
	return Interval{N: n, Median: Quantile(s, 0.5), Lo: s[k-1], Hi: s[n-k], Conf: 1 - miss}
}

// binomialCDF is P(B <= j) for B ~ Binomial(n, 1/2).
func binomialCDF(n, j int) float64 {
	lgN, _ := math.Lgamma(float64(n + 1))
	p := 0.0
	for i := 0; i <= j; i++ {
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		p += math.Exp(lgN - a - b - float64(n)*math.Ln2)
	}
	return p
}

// String is "median [lo, hi]" with signs, in unit.
func (iv Interval) String(unit string) string {
	return fmt.Sprintf("%+.2f %s (%.1f%% interval %+.2f to %+.2f)", iv.Median, unit, 100*iv.Conf, iv.Lo, iv.Hi)
}

// Ms converts durations to milliseconds.
func Ms(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// Machine describes where a run happened.
type Machine struct {
	CPU     string `json:"cpu"`
	CPUs    int    `json:"cpus"`
	MemGiB  int    `json:"mem_gib"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	LoadAvg string `json:"loadavg"` // 1, 5 and 15 minute load averages when the run started
	Date    string `json:"date"`
}

// ThisMachine describes the machine the process runs on, now.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemGiB = int((kb + 1<<19) >> 20)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// String is the machine on one line.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d CPUs, %d GiB, Linux %s, %s, load average %s at the start (%s)",
		m.CPU, m.CPUs, m.MemGiB, m.Kernel, m.Go, m.LoadAvg, m.Date)
}

// ColdStart is what bench/coldstart writes.
type ColdStart struct {
	Machine Machine `json:"machine"`
	Runs    int     `json:"runs"`
	// Extensions holds KTE first, then the floor, then the floor with
	// KTE's dependencies imported (lambdasim.FloorDepsTag), then any
	// measured with -also.
	Extensions []ColdStartExt `json:"extensions"`
	// DNSLookupMs is how long resolving sandbox.localdomain took on this
	// machine (Lambda answers it from /etc/hosts); KTE's listener resolves
	// it during init.
	DNSLookupMs Summary `json:"dns_lookup_ms"`
	// LambdaHosts is set when the runs had sandbox.localdomain in
	// /etc/hosts, as Lambda has (bench/coldstart -lambda-hosts).
	LambdaHosts bool `json:"lambda_hosts"`
	// RingBytes is KTE's ring size in the runs.
	RingBytes int `json:"ring_bytes"`
}

// ColdStartExt is one extension's cold-start figures over the runs.
type ColdStartExt struct {
	Name string `json:"name"`
	// FirstNextMs: process start (fork) to its first /event/next.
	FirstNextMs Summary `json:"first_next_ms"`
	// SubscribedMs: process start to an accepted Telemetry API
	// subscription (none for the floor).
	SubscribedMs Summary `json:"subscribed_ms"`
	// RegisteredMs: process start to registration.
	RegisteredMs Summary `json:"registered_ms"`
	// InitPhaseMs: the simulated Init phase (platform.initReport).
	InitPhaseMs Summary `json:"init_phase_ms"`
	// PeakRSSMiB: peak resident set (VmHWM) over the process's life (init,
	// one small invoke, shutdown).
	PeakRSSMiB Summary `json:"peak_rss_mib"`
	// LoggedInitMs: the init_ms of KTE's own start-up line (none for the
	// floor).
	LoggedInitMs Summary `json:"logged_init_ms"`
	// OverFloorMs: FirstNextMs minus the floor's, paired by round (the
	// runs of a round follow each other, so a pair shares the machine's
	// state): its median and an interval for it. Zero for the floor.
	OverFloorMs Interval `json:"over_floor_ms"`
	// OverDepsFloorMs: the same against the floor with KTE's
	// dependencies: KTE's own share of OverFloorMs. KTE's only.
	OverDepsFloorMs Interval `json:"over_deps_floor_ms"`
	// OverKTEMs: the same against KTE, for the extensions measured with
	// -also (a before/after comparison). Zero for the first three.
	OverKTEMs Interval `json:"over_kte_ms"`
}

// Load is what bench/load writes.
type Load struct {
	Machine Machine    `json:"machine"`
	Runs    []LoadRate `json:"runs"`
}

// WriteTable writes the runs as a Markdown table, a row per rate: what
// bench/load prints and the report shows.
func (l Load) WriteTable(w io.Writer) {
	fmt.Fprintln(w, "| log lines/s | invokes | overhead p50 | overhead p99 | CPU % of one core | CPU ms/1k events | peak RSS | median RSS | anon / file at peak | generated | acked | in Kinesis | lost | duplicates | dropped by Lambda | PutRecords calls | connections |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range l.Runs {
		fmt.Fprintf(w, "| %d | %d | %.2f ms | %.2f ms | %.1f | %.2f | %.1f MiB | %.1f MiB | %.1f / %.1f MiB | %d | %d | %d | %d | %d | %d | %d | %d |\n",
			r.Rate, r.Invokes, r.OverheadMs.Median, r.OverheadMs.P99, r.CPUPercent, r.CPUMsPer1kEvents, r.PeakRSSMiB, r.MedianRSSMiB,
			r.SampledAnonMiB, r.SampledFileMiB, r.Generated, r.Acked, r.Received, r.Lost, r.Dupes, r.Dropped, r.Calls, r.Conns)
	}
}

// LoadRate is one sustained rate.
type LoadRate struct {
	// Rate is the function log lines per second of function run time.
	Rate     int     `json:"rate"`
	Seconds  float64 `json:"seconds"` // wall time of the invocations
	Invokes  int     `json:"invokes"`
	InvokeMs float64 `json:"invoke_ms"` // simulated function duration
	// GapMs is the idle time between invocations; 0 runs them back to back.
	GapMs      float64 `json:"gap_ms,omitempty"`
	LineBytes  []int   `json:"line_bytes"`
	OverheadMs Summary `json:"overhead_ms"` // runtimeDone to the extension's /event/next
	// CPUPercent is the extension process's CPU time over its life (from
	// start to exit) divided by that life, in percent of one CPU.
	CPUPercent float64 `json:"cpu_percent"`
	// CPUMsPer1kEvents is the extension's CPU time per thousand events
	// received by Kinesis.
	CPUMsPer1kEvents float64 `json:"cpu_ms_per_1k_events"`
	// PeakRSSMiB is the process's VmHWM (see harness.PeakRSS).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// MedianRSSMiB is the median of the resident set sampled every 20 ms
	// over the process's life: what it holds most of the time, where the
	// peak includes the briefest excursion.
	MedianRSSMiB float64 `json:"median_rss_mib"`
	// SampledRSS is the largest resident set seen by sampling /proc every
	// 20 ms, split into anonymous memory (heap, ring, stacks) and file
	// pages (the executable's text).
	SampledRSSMiB  float64 `json:"sampled_rss_mib"`
	SampledAnonMiB float64 `json:"sampled_anon_mib"`
	SampledFileMiB float64 `json:"sampled_file_mib"`
	RingBytes      int     `json:"ring_bytes"`

	Generated int `json:"generated"` // events the simulator generated
	Acked     int `json:"acked"`     // events in POSTs the extension answered 2xx
	Dropped   int `json:"dropped"`   // events Lambda dropped (subscriber queue overflow)
	Pending   int `json:"pending"`   // events still queued for the extension at the end
	// PendingTypes counts the pending events by type: the extension's own
	// last log lines, written after it stopped listening, can never reach it.
	PendingTypes map[string]int `json:"pending_types,omitempty"`
	Received     int            `json:"received"` // distinct events found in Kinesis records
	Records      int            `json:"records"`  // records received by Kinesis
	Dupes        int            `json:"dupes"`    // records carrying an event already received
	Unknown      int            `json:"unknown"`  // records matching no generated event
	Lost         int            `json:"lost"`     // acknowledged events never received by Kinesis
	Calls        int            `json:"calls"`    // PutRecords calls received
	Conns        int            `json:"conns"`    // TCP connections the extension opened to Kinesis
	Summary      string         `json:"summary"`  // the extension's KTE_SUMMARY line
}

// Write writes v as indented JSON to path.
func Write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write results: %w", err)
	}
	return nil
}

// Read reads JSON from path into v.
func Read(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read results: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("cannot decode %s: %w", path, err)
	}
	return nil
}
