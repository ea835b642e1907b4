// Command load drives sustained telemetry rates at the real extension binary
// in the local Lambda simulator, with an in-process fake Kinesis endpoint
// that keeps every record, and reports what the extension costs and whether
// anything was lost.
//
// For each rate, invocations of -invoke duration run for -duration, back to
// back or -gap apart (the environment idle in between, as between a
// function's requests), each logging rate×invoke function lines (sizes
// cycled from -lines); the extension runs with its defaults (KTE_FLUSH=invoke,
// enrichment on, an 8 MiB ring). It reports the per-invoke overhead (from the
// function's end, platform.runtimeDone, to the extension's /event/next) p50
// and p99, the extension's CPU time over its life as a percentage of one CPU
// and per thousand events, its peak resident set, and the events generated,
// acknowledged and found in Kinesis: every record is decoded, stripped of
// its enrichment and matched byte for byte with the event the simulator
// generated, so lost, duplicated and unknown events are counted exactly.
//
//	go run ./bench/load [-rates 1000,10000,50000] [-duration 10s] [-gap 0] [-out bench/results/load.json]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/fakekinesis"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/harness"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/results"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// shutdownDeadline is the SHUTDOWN phase's deadline: Lambda's 2 s (tests
// on a loaded machine raise it).
var shutdownDeadline = 2 * time.Second

func main() {
	rates := flag.String("rates", "1000,10000,50000", "comma list of function log lines per second")
	duration := flag.Duration("duration", 10*time.Second, "how long invocations run at each rate")
	invoke := flag.Duration("invoke", 100*time.Millisecond, "simulated function duration of each invocation")
	gap := flag.Duration("gap", 0, "idle time between invocations (0: back to back)")
	lines := flag.String("lines", "150,250,400,1200", "comma list of log line sizes in bytes, cycled")
	out := flag.String("out", "", "write the results as JSON to this file")
	verbose := flag.Bool("v", false, "copy the extension's output to stderr")
	flag.StringVar(&prebuilt, "extension", "", "run this extension binary instead of building KTE")
	var env envFlag
	flag.Var(&env, "env", "KEY=value added to the extension's environment (repeatable), e.g. GOMEMLIMIT=16MiB")
	flag.Parse()
	rs, err := ints(*rates)
	if err == nil {
		var ls []int
		if ls, err = ints(*lines); err == nil {
			if *verbose {
				extOutput = os.Stderr
			}
			err = run(rs, ls, *duration, *invoke, *gap, env, *out, os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// prebuilt is the -extension binary, if any.
var prebuilt string

// extOutput receives a copy of the extension's output (-v).
var extOutput = io.Discard

// envFlag collects repeated -env flags.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("not KEY=value: %q", v)
	}
	*e = append(*e, v)
	return nil
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("not a positive integer: %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(rates, lines []int, duration, invoke, gap time.Duration, env []string, outPath string, w io.Writer) error {
	if invoke <= 0 || duration < invoke {
		return errors.New("-invoke must be positive and at most -duration")
	}
	if gap < 0 || gap > duration {
		return fmt.Errorf("-gap %s must be between 0 and -duration (%s)", gap, duration)
	}
	ctx := context.Background()
	res := results.Load{Machine: results.ThisMachine()}
	dir, err := os.MkdirTemp("", "kte-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kte := prebuilt
	if kte == "" {
		if kte, err = lambdasim.Build(ctx, harness.Module, dir, harness.KTEName); err != nil {
			return err
		}
	}
	for _, rate := range rates {
		r, err := once(ctx, kte, rate, lines, duration, invoke, gap, env)
		if err != nil {
			return fmt.Errorf("rate %d: %w", rate, err)
		}
		res.Runs = append(res.Runs, r)
	}
	print(w, res)
	if outPath != "" {
		return results.Write(outPath, res)
	}
	return nil
}

func once(ctx context.Context, kte string, rate int, lines []int, duration, invoke, gap time.Duration, env []string) (results.LoadRate, error) {
	fake := fakekinesis.New(fakekinesis.Options{Keep: true})
	defer fake.Close()
	port, err := lambdasim.FreePort()
	if err != nil {
		return results.LoadRate{}, err
	}
	var out harness.Output
	s, err := lambdasim.New(lambdasim.Config{
		Extensions: []lambdasim.Extension{{Path: kte}},
		Env:        harness.KTEEnv(fake, port, env...),
		Output:     io.MultiWriter(&out, extOutput),
		Timeout:    10 * time.Second,
	})
	if err != nil {
		return results.LoadRate{}, err
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		return results.LoadRate{}, err
	}
	if _, err := s.Init(ctx); err != nil {
		return results.LoadRate{}, fmt.Errorf("%w\n%s", err, strings.Join(out.Lines(), "\n"))
	}
	perInvoke := max(1, int(int64(rate)*int64(invoke)/int64(time.Second)))
	r := results.LoadRate{Rate: rate, InvokeMs: float64(invoke) / float64(time.Millisecond),
		GapMs: float64(gap) / float64(time.Millisecond), LineBytes: lines}
	ps := s.Processes()
	if len(ps) != 1 {
		return r, fmt.Errorf("unexpected processes: %d", len(ps))
	}
	stop, sampled := make(chan struct{}), make(chan harness.RSS, 1)
	go func() { sampled <- harness.PeakRSS(ps[0].PID, 20*time.Millisecond, stop) }()
	var overheads []time.Duration
	t0 := time.Now()
	for time.Since(t0) < duration {
		if len(overheads) > 0 && gap > 0 {
			time.Sleep(gap)
		}
		ir, err := s.Invoke(ctx, lambdasim.Invocation{Duration: invoke, LogLines: perInvoke, LineSizes: lines})
		if err != nil {
			return r, err
		}
		if ir.Status != "success" || ir.Reset != nil || len(ir.Late) > 0 {
			return r, fmt.Errorf("invocation %d: status %s, late %v\n%s", ir.N, ir.Status, ir.Late, strings.Join(out.Lines(), "\n"))
		}
		overheads = append(overheads, ir.Overhead)
	}
	r.Seconds = time.Since(t0).Seconds()
	r.Invokes = len(overheads)
	if _, err := s.Shutdown(ctx, "spindown", shutdownDeadline); err != nil {
		return r, err
	}
	close(stop)
	rss := <-sampled
	const mib = 1 << 20
	r.PeakRSSMiB, r.MedianRSSMiB = float64(rss.HWM)/mib, float64(rss.Median)/mib
	r.SampledRSSMiB, r.SampledAnonMiB, r.SampledFileMiB = float64(rss.Total)/mib, float64(rss.Anon)/mib, float64(rss.File)/mib
	r.OverheadMs = results.Summarize(results.Ms(overheads))

	ps = s.Processes()
	p := ps[0]
	if p.ExitCode != 0 || p.Killed != "" {
		return r, fmt.Errorf("unexpected end: exit %d, killed %q\n%s", p.ExitCode, p.Killed, strings.Join(out.Lines(), "\n"))
	}
	life := p.Exited - p.Started
	r.CPUPercent = 100 * p.CPU.Seconds() / life.Seconds()
	for _, line := range out.Lines() {
		if i := strings.Index(line, "KTE_SUMMARY"); i >= 0 {
			r.Summary = line[i:]
		}
		if i := strings.Index(line, "ring_bytes="); i >= 0 && r.RingBytes == 0 {
			r.RingBytes, _ = strconv.Atoi(strings.Fields(line[i+len("ring_bytes="):])[0])
		}
	}

	// What Lambda generated and delivered, against what Kinesis holds.
	st, ok := s.Subscriber(harness.KTEName)
	if !ok {
		return r, errors.New("the extension never subscribed")
	}
	r.Generated = len(s.Generated())
	r.Acked, r.Dropped, r.Pending = len(st.Acked), len(st.Dropped), len(st.Pending)
	for _, ev := range s.Events(st.Pending) {
		if r.PendingTypes == nil {
			r.PendingTypes = map[string]int{}
		}
		r.PendingTypes[ev.Type]++
	}
	fs := fake.Stats()
	r.Calls, r.Conns = int(fs.Calls), int(fs.Conns)
	records := fake.Data()
	r.Records = len(records)
	seen := make(map[int]bool, len(records))
	var strip stripper
	for _, rec := range records {
		ids := s.Lookup(strip.original(rec))
		if len(ids) == 0 {
			r.Unknown++
			continue
		}
		if seen[ids[0]] {
			r.Dupes++
			continue
		}
		seen[ids[0]] = true
	}
	r.Received = len(seen)
	for _, id := range st.Acked {
		if !seen[id] {
			r.Lost++
		}
	}
	if r.Received > 0 {
		r.CPUMsPer1kEvents = float64(p.CPU.Microseconds()) / 1000 / float64(r.Received) * 1000
	}
	return r, nil
}

// stripper undoes the enrichment: the listener writes an event {…} as
// {"lambda":{…},…}, the identity object being the same for every event of
// an execution environment.
type stripper struct {
	prefix []byte // `{"lambda":{…},`, learnt from the first enriched record
	buf    []byte
}

var lambdaMember = []byte(`{"lambda":`)

func (s *stripper) original(rec []byte) []byte {
	if !bytes.HasPrefix(rec, lambdaMember) {
		return rec
	}
	if s.prefix == nil {
		dec := json.NewDecoder(bytes.NewReader(rec[len(lambdaMember):]))
		var id json.RawMessage
		if err := dec.Decode(&id); err != nil {
			return rec
		}
		end := len(lambdaMember) + int(dec.InputOffset())
		if end >= len(rec) || (rec[end] != ',' && rec[end] != '}') {
			return rec
		}
		s.prefix = append([]byte(nil), rec[:end]...)
		s.prefix = append(s.prefix, ',')
	}
	switch {
	case bytes.HasPrefix(rec, s.prefix):
		s.buf = append(append(s.buf[:0], '{'), rec[len(s.prefix):]...)
	case bytes.HasPrefix(rec, s.prefix[:len(s.prefix)-1]) && len(bytes.TrimLeft(rec[len(s.prefix)-1:], " \t\r\n")) == 1 && rec[len(rec)-1] == '}':
		s.buf = append(append(s.buf[:0], '{'), rec[len(s.prefix)-1:]...) // an empty event, its white space kept
	default:
		return rec
	}
	return s.buf
}

func print(w io.Writer, res results.Load) {
	fmt.Fprintf(w, "Load: %s\n\n", res.Machine)
	res.WriteTable(w)
	for _, r := range res.Runs {
		fmt.Fprintf(w, "\n%d/s: pending at exit %v; %s", r.Rate, r.PendingTypes, r.Summary)
	}
	fmt.Fprintln(w)
}
