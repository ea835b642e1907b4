// Command lambdasim runs Lambda extensions in the local simulator
// (package lambdasim): Init, a workload of invocations, Shutdown, then a
// summary of what was generated, delivered and measured.
//
//	go run ./cmd/lambdasim -n 20 -lines 200 build/host/kinesis-telemetry-extension
//
// It passes its own environment to the extensions (-inherit-env), plus
// -env KEY=VALUE entries. The exit status is 1 when an extension did not
// get every event (dropped or undelivered; not counting its own log lines
// written after SHUTDOWN, its last, which it cannot receive as it exits),
// was killed or exited non-zero at SHUTDOWN, an invocation failed, or a
// step failed; 2 for bad flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		// The simulator's own errors already name it.
		msg := err.Error()
		if !strings.HasPrefix(msg, "lambdasim: ") {
			msg = "lambdasim: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("lambdasim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		env      listFlag
		n        = fs.Int("n", 10, "number of invocations")
		duration = fs.Duration("duration", 50*time.Millisecond, "function duration of each invocation")
		lines    = fs.Int("lines", 100, "function log lines per invocation")
		sizes    = fs.String("size", "200", "bytes per log event (comma list, cycled; 0 = shortest)")
		format   = fs.String("format", "mixed", "function log format: text, json or mixed (alternating per invocation)")
		gap      = fs.Duration("gap", 0, "pause between invocations (the environment is frozen)")
		timeout  = fs.Duration("timeout", 3*time.Second, "function timeout")
		deadline = fs.Duration("shutdown-deadline", 2*time.Second, "SHUTDOWN deadline")
		inherit  = fs.Bool("inherit-env", true, "pass this process's environment to the extensions")
		noFreeze = fs.Bool("nofreeze", false, "do not SIGSTOP the extensions between invocations")
		no202    = fs.Bool("telemetry-not-supported", false, "answer subscriptions with 202 Telemetry.NotSupported (RIE classic mode)")
		timeline = fs.Bool("timeline", false, "print the timeline")
		quiet    = fs.Bool("quiet", false, "do not echo the extensions' output")
	)
	fs.Var(&env, "env", "KEY=VALUE for the extensions (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lambdasim [flags] EXTENSION...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2, nil
	}
	var lineSizes []int
	for f := range strings.SplitSeq(*sizes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 0 {
			return 2, fmt.Errorf("-size %q: want non-negative integers", *sizes)
		}
		lineSizes = append(lineSizes, v)
	}
	if *format != "text" && *format != "json" && *format != "mixed" {
		return 2, fmt.Errorf("-format %q: want text, json or mixed", *format)
	}

	cfg := lambdasim.Config{Env: env, InheritEnv: *inherit, Timeout: *timeout, NoFreeze: *noFreeze, TelemetryNotSupported: *no202}
	if !*quiet {
		cfg.Output = stderr
	}
	for _, p := range fs.Args() {
		cfg.Extensions = append(cfg.Extensions, lambdasim.Extension{Path: p})
	}
	s, err := lambdasim.New(cfg)
	if err != nil {
		return 1, err
	}
	defer s.Close()

	code := 0
	if err := s.Start(ctx); err != nil {
		return 1, err
	}
	ir, err := s.Init(ctx)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "init: %s\n", ir.Duration.Round(time.Microsecond))

	var overheads []time.Duration
	for i := range *n {
		inv := lambdasim.Invocation{Duration: *duration, LogLines: *lines, LineSizes: lineSizes}
		if *format == "json" || *format == "mixed" && i%2 == 1 {
			inv.LogFormat = lambdasim.LogJSON
		}
		res, err := s.Invoke(ctx, inv)
		if err != nil {
			return 1, fmt.Errorf("invocation %d: %w", i+1, err)
		}
		if res.Status != "success" {
			code = 1
			fmt.Fprintf(stdout, "invocation %d: %s %s (late: %v)\n", i+1, res.Status, res.ErrorType, res.Late)
		} else {
			overheads = append(overheads, res.Overhead)
		}
		if *gap > 0 {
			select {
			case <-time.After(*gap):
			case <-ctx.Done():
				return 1, ctx.Err()
			}
		}
	}
	sr, err := s.Shutdown(ctx, "spindown", *deadline)
	if err != nil {
		return 1, err
	}

	slices.Sort(overheads)
	pct := func(p float64) time.Duration {
		if len(overheads) == 0 {
			return 0
		}
		return overheads[min(len(overheads)-1, int(p*float64(len(overheads))))].Round(time.Microsecond)
	}
	fmt.Fprintf(stdout, "invocations: %d, overhead (runtimeDone to the last /event/next) p50 %s p99 %s max %s\n",
		*n, pct(0.5), pct(0.99), pct(1))

	gen := s.Generated()
	byType := map[string]int{}
	for _, ev := range gen {
		byType[ev.Type]++
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.Sort(types)
	fmt.Fprintf(stdout, "generated: %d events:", len(gen))
	for _, t := range types {
		fmt.Fprintf(stdout, " %s=%d", t, byType[t])
	}
	fmt.Fprintln(stdout)

	marks := s.Timeline()
	for _, st := range s.Subscribers() {
		own := ownAfterShutdown(s, marks, st.Name, st.Pending)
		fmt.Fprintf(stdout, "subscriber %s (schema %s, types %v, maxItems %d, maxBytes %d, timeout %s): acknowledged %d, dropped %d, undelivered %d, "+
			"own lines after SHUTDOWN %d; %d POSTs, %d failed, %d retries\n",
			st.Name, st.SchemaVersion, st.Types, st.MaxItems, st.MaxBytes, st.Timeout,
			len(st.Acked), len(st.Dropped), len(st.Pending)-own, own, st.Posts, st.FailedPosts, st.Retries)
		if len(st.Dropped)+len(st.Pending)-own > 0 {
			code = 1
		}
	}
	for _, p := range s.Processes() {
		fmt.Fprintf(stdout, "process %s (pid %d): registered %s, subscribed %s, first /event/next %s after start; peak RSS %.1f MiB; CPU %s; exit %d %s\n",
			p.Name, p.PID, p.Registered.Round(time.Microsecond), p.Subscribed.Round(time.Microsecond), p.FirstNext.Round(time.Microsecond),
			float64(p.PeakRSS)/(1<<20), p.CPU.Round(time.Millisecond), p.ExitCode, p.Signal)
	}
	for _, e := range sr.Extensions {
		fmt.Fprintf(stdout, "shutdown %s: exited after %s, exit code %d", e.Name, e.After.Round(time.Microsecond), e.ExitCode)
		if e.Signal != "" {
			fmt.Fprintf(stdout, " (%s)", e.Signal)
		}
		if e.ExitCode != 0 {
			code = 1
		}
		if e.Killed != "" {
			code = 1
			fmt.Fprintf(stdout, ", killed: %s", e.Killed)
		}
		fmt.Fprintln(stdout)
	}
	if *timeline {
		for _, m := range s.Timeline() {
			fmt.Fprintln(stdout, m)
		}
	}
	return code, nil
}

// ownAfterShutdown counts the events of ids that are subscriber name's own
// log lines written after SHUTDOWN was handed to its process: the lines it
// writes as it ends, after its last delivery, which no extension can
// receive. marks is the simulator's timeline.
func ownAfterShutdown(s *lambdasim.Sim, marks []lambdasim.Mark, name string, ids []int) int {
	var launches, shutdowns []time.Duration
	for _, m := range marks {
		switch {
		case m.Ext != name:
		case m.Kind == lambdasim.MarkLaunch:
			launches = append(launches, m.At)
		case m.Kind == lambdasim.MarkShutdown:
			shutdowns = append(shutdowns, m.At)
		}
	}
	// latest returns the last of ts at or before at, or -1.
	latest := func(ts []time.Duration, at time.Duration) time.Duration {
		last := time.Duration(-1)
		for _, t := range ts {
			if t <= at {
				last = t
			}
		}
		return last
	}
	n := 0
	for _, ev := range s.Events(ids) {
		if ev.Type != lambdasim.TypeExtensionLog || ev.Source != name {
			continue
		}
		if sd := latest(shutdowns, ev.At); sd >= 0 && sd >= latest(launches, ev.At) {
			n++
		}
	}
	return n
}
