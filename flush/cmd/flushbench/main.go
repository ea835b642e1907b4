// Command flushbench measures the KTE_FLUSH strategies: it runs the real
// extension binary in the Lambda simulator against a fake Kinesis endpoint
// (flushtest.Kinesis, answering every PutRecords after -latency) at each
// invocation rate, and prints, per strategy and rate:
//
//   - delivery delay: from an event's generation (the simulator's clock) to
//     the answer of the PutRecords that carried it, p50/p99, for the
//     function's log lines and for all events;
//   - per-invoke overhead: the time the extension added to an invocation
//     after the function returned (InvokeResult.Overhead: billed duration),
//     p50/p99;
//   - the achieved rate (one execution environment runs one invocation at a
//     time, so a strategy that adds time can lower it) and the PutRecords
//     calls made.
//
// Usage:
//
//	go run ./flush/cmd/flushbench [-rates 1,20] [-seconds 60] [-strategies invoke,end,periodic:10s,auto]
//
// It writes a Markdown table to stdout and progress to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/flush/flushtest"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flushbench:", err)
		os.Exit(1)
	}
}

func run() error {
	rates := flag.String("rates", "1,20", "invocations per second, comma separated")
	seconds := flag.Float64("seconds", 60, "length of each run in seconds of invocations (at least 25 invocations)")
	strategies := flag.String("strategies", "invoke,end,periodic:10s,auto", "KTE_FLUSH values, comma separated")
	duration := flag.Duration("duration", 20*time.Millisecond, "function duration")
	lines := flag.Int("lines", 10, "function log lines per invocation")
	latency := flag.Duration("latency", 20*time.Millisecond, "PutRecords answer latency of the fake Kinesis")
	bin := flag.String("bin", "", "extension binary (default: build it)")
	verbose := flag.Bool("v", false, "show the extension's output")
	flag.Parse()

	ctx := context.Background()
	if *bin == "" {
		dir, err := os.MkdirTemp("", "flushbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if *bin, err = lambdasim.Build(ctx, "github.com/kte-dev/kinesis-telemetry-extension", dir, flushtest.ExtensionName); err != nil {
			return err
		}
	}
	var out io.Writer
	if *verbose {
		out = os.Stderr
	}
	fmt.Printf("Function: %v, %d log lines per invocation; PutRecords latency %v; KTE_BUFFER_TIMEOUT_MS=25; %.0f s per run.\n\n",
		*duration, *lines, *latency, *seconds)
	fmt.Println("| KTE_FLUSH | rate (/s) | achieved (/s) | log delay p50 | log delay p99 | all events p50 | all events p99 | overhead p50 | overhead p99 | overhead mean | PutRecords calls |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, rs := range strings.Split(*rates, ",") {
		rate, err := strconv.ParseFloat(strings.TrimSpace(rs), 64)
		if err != nil || rate <= 0 {
			return fmt.Errorf("bad rate %q", rs)
		}
		n := max(int(rate**seconds), 25)
		every := time.Duration(float64(time.Second) / rate)
		for _, st := range strings.Split(*strategies, ",") {
			st = strings.TrimSpace(st)
			fmt.Fprintf(os.Stderr, "flushbench: %s at %g/s, %d invocations...\n", st, rate, n)
			invs := make([]lambdasim.Invocation, n)
			for i := range invs {
				invs[i] = lambdasim.Invocation{Duration: *duration, LogLines: *lines}
			}
			port, err := lambdasim.FreePort()
			if err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(ctx, time.Duration(float64(n)/rate*2+60)*time.Second)
			r, err := flushtest.Run(rctx, flushtest.Scenario{
				Binary: *bin, Flush: st, Latency: *latency, Invocations: invs, Every: every, Output: out,
			}, port)
			cancel()
			if err != nil {
				return fmt.Errorf("%s at %g/s: %w", st, rate, err)
			}
			row, err := summarize(r)
			if err != nil {
				return fmt.Errorf("%s at %g/s: %w", st, rate, err)
			}
			fmt.Printf("| `%s` | %g | %.1f | %s | %s | %s | %s | %s | %s | %s | %d |\n", st, rate, row.achieved,
				ms(row.logP50), ms(row.logP99), ms(row.allP50), ms(row.allP99),
				ms(row.ovP50), ms(row.ovP99), ms(row.ovMean), len(r.Calls))
		}
	}
	return nil
}

type row struct {
	achieved                       float64
	logP50, logP99, allP50, allP99 time.Duration
	ovP50, ovP99, ovMean           time.Duration
}

func summarize(r *flushtest.Result) (row, error) {
	var logs, all []time.Duration
	st, _ := r.Sim.Subscriber(flushtest.ExtensionName)
	for _, ev := range r.Sim.Events(st.Acked) {
		d, ok := r.Delivered[ev.ID]
		if !ok {
			return row{}, fmt.Errorf("event %d (%s) acknowledged but never delivered", ev.ID, ev.Type)
		}
		all = append(all, d-ev.At)
		if ev.Type == lambdasim.TypeFunction {
			logs = append(logs, d-ev.At)
		}
	}
	var ov []time.Duration
	var sum time.Duration
	for _, res := range r.Invokes {
		ov = append(ov, res.Overhead)
		sum += res.Overhead
	}
	span := r.Invokes[len(r.Invokes)-1].Start - r.Invokes[0].Start
	return row{
		achieved: float64(len(r.Invokes)-1) / span.Seconds(),
		logP50:   pct(logs, 50), logP99: pct(logs, 99),
		allP50: pct(all, 50), allP99: pct(all, 99),
		ovP50: pct(ov, 50), ovP99: pct(ov, 99), ovMean: sum / time.Duration(len(ov)),
	}, nil
}

// pct returns the p-th percentile (nearest rank).
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
}
