// Command coldstart measures what the extension adds to a Lambda cold start.
// It builds KTE, the floor extension (lambdasim.FloorExtensionPackage: a Go
// extension that only registers and loops on /event/next, what any Go
// extension costs) and the floor with KTE's dependencies imported but not
// called (lambdasim.FloorDepsTag: what their initialisation costs apart from
// anything KTE does) with the release flags, then starts each of them -n
// times, each round in a new random order, in the local Lambda simulator: init, one small
// invocation, shutdown. KTE runs with its defaults against an in-process fake Kinesis
// endpoint (no AWS). It reports the median and p95 of the time from process
// start to the first /event/next and to the Telemetry API subscription, the
// Init phase, the peak resident set (VmHWM, see harness.PeakRSS), and the init_ms KTE logs in its start-up
// line, for both, and the difference.
//
//	go run ./bench/coldstart [-n 30] [-out bench/results/coldstart.json] [-also old=/tmp/kte-old,...]
//
// -also measures more extension binaries in the same rounds (for example a
// build of KTE before a change), so that a before/after comparison shares
// the machine's drift.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/fakekinesis"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/harness"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/results"
	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/lambdahosts"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// shutdownDeadline is the SHUTDOWN phase's deadline: Lambda's 2 s (tests
// on a loaded machine raise it).
var shutdownDeadline = 2 * time.Second

func main() {
	n := flag.Int("n", 30, "runs per extension")
	out := flag.String("out", "", "write the results as JSON to this file")
	var also []string
	flag.Func("also", "also measure these `name=path` extension binaries in the same rounds, comma-separated (e.g. another build of KTE)", func(v string) error {
		for _, a := range strings.Split(v, ",") {
			if name, path, ok := strings.Cut(a, "="); !ok || name == "" || path == "" {
				return fmt.Errorf("%q is not name=path", a)
			}
			also = append(also, a)
		}
		return nil
	})
	hosts := flag.Bool("lambda-hosts", true, "map sandbox.localdomain in /etc/hosts, as Lambda does, in a private mount namespace (needs unshare and root or user namespaces)")
	flag.Parse()
	if *hosts && !lambdahosts.Mapped() {
		code, err := lambdahosts.Rerun()
		if err == nil {
			os.Exit(code)
		}
		fmt.Fprintf(os.Stderr, "coldstart: cannot map sandbox.localdomain as Lambda does (%v); running with this machine's resolver\n", err)
	}
	if err := run(*n, *out, also, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

// sample is one run's figures.
type sample struct {
	firstNext, subscribed, registered, initPhase time.Duration
	peakRSS                                      int64
	loggedInit                                   float64 // ms; -1 when not logged
}

func run(n int, outPath string, also []string, w io.Writer) error {
	if n < 1 {
		return errors.New("-n must be at least 1")
	}
	ctx := context.Background()
	machine := results.ThisMachine()
	dir, err := os.MkdirTemp("", "kte-coldstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kte, floor, depsFloor, err := harness.Build(ctx, dir)
	if err != nil {
		return err
	}
	fake := fakekinesis.New(fakekinesis.Options{})
	defer fake.Close()

	names, paths := []string{"kte", "floor", "floor_with_deps"}, []string{kte, floor, depsFloor}
	for _, a := range also {
		name, path, _ := strings.Cut(a, "=")
		names, paths = append(names, name), append(paths, path)
	}
	samples := make([][]sample, len(paths))
	// One warm-up run each (page cache, first exec), then each round in a
	// new random order (fixed seed: runs are repeatable), so that drift on a
	// shared machine, the position in a round and whichever ran just before
	// (the same binary, warm, or another) fall on all alike.
	order := rand.New(rand.NewPCG(1, 2))
	for round := -1; round < n; round++ {
		perm := order.Perm(len(paths))
		for _, i := range perm {
			s, err := once(ctx, paths[i], fake)
			if err != nil {
				return err
			}
			if round >= 0 {
				samples[i] = append(samples[i], s)
			}
		}
	}

	res := results.ColdStart{Machine: machine, Runs: n, DNSLookupMs: dnsLookup(20), LambdaHosts: lambdahosts.Mapped()}
	cfg, err := config.Load(lookup(harness.KTEEnv(fake, 4243, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001", "AWS_REGION=us-east-1")))
	if err != nil {
		return err
	}
	res.RingBytes = cfg.RingBytes
	for i, name := range names {
		e := summarize(name, samples[i])
		if i != 1 {
			e.OverFloorMs = paired(samples[i], samples[1])
		}
		if i == 0 {
			e.OverDepsFloorMs = paired(samples[0], samples[2])
		}
		if i >= 3 {
			e.OverKTEMs = paired(samples[i], samples[0])
		}
		res.Extensions = append(res.Extensions, e)
	}
	print(w, res)
	if outPath != "" {
		return results.Write(outPath, res)
	}
	return nil
}

var initMsRE = regexp.MustCompile(`kte: started.* init_ms=([0-9.]+)`)

// once runs one environment with the extension at path: init, one small
// invocation, shutdown.
func once(ctx context.Context, path string, fake *fakekinesis.Server) (sample, error) {
	port, err := lambdasim.FreePort()
	if err != nil {
		return sample{}, err
	}
	var out harness.Output
	s, err := lambdasim.New(lambdasim.Config{
		Extensions: []lambdasim.Extension{{Path: path}},
		Env:        harness.KTEEnv(fake, port),
		Output:     &out,
	})
	if err != nil {
		return sample{}, err
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		return sample{}, err
	}
	ir, err := s.Init(ctx)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w\n%s", path, err, strings.Join(out.Lines(), "\n"))
	}
	ps := s.Processes()
	if len(ps) != 1 {
		return sample{}, fmt.Errorf("%s: unexpected processes: %d", path, len(ps))
	}
	// The high-water mark covers init; sampling starts after it so as not
	// to compete with the extension for the CPU while init is timed.
	stop, peak := make(chan struct{}), make(chan harness.RSS, 1)
	go func() { peak <- harness.PeakRSS(ps[0].PID, 10*time.Millisecond, stop) }()
	if _, err := s.Invoke(ctx, lambdasim.Invocation{Duration: 20 * time.Millisecond, LogLines: 10}); err != nil {
		return sample{}, err
	}
	if _, err := s.Shutdown(ctx, "spindown", shutdownDeadline); err != nil {
		return sample{}, err
	}
	close(stop)
	rss := <-peak
	p := s.Processes()[0]
	if p.ExitCode != 0 || p.Killed != "" || p.FirstNext == 0 {
		return sample{}, fmt.Errorf("%s: unexpected end: exit %d, killed %q, first next %v\n%s",
			path, p.ExitCode, p.Killed, p.FirstNext, strings.Join(out.Lines(), "\n"))
	}
	smp := sample{firstNext: p.FirstNext, subscribed: p.Subscribed, registered: p.Registered,
		initPhase: ir.Duration, peakRSS: rss.HWM, loggedInit: -1}
	for _, line := range out.Lines() {
		if m := initMsRE.FindStringSubmatch(line); m != nil {
			smp.loggedInit, _ = strconv.ParseFloat(m[1], 64)
		}
	}
	return smp, nil
}

func summarize(name string, ss []sample) results.ColdStartExt {
	var next, sub, reg, initPhase []time.Duration
	var rss, logged []float64
	for _, s := range ss {
		next = append(next, s.firstNext)
		reg = append(reg, s.registered)
		initPhase = append(initPhase, s.initPhase)
		if s.subscribed > 0 {
			sub = append(sub, s.subscribed)
		}
		rss = append(rss, float64(s.peakRSS)/(1<<20))
		if s.loggedInit >= 0 {
			logged = append(logged, s.loggedInit)
		}
	}
	return results.ColdStartExt{
		Name:         name,
		FirstNextMs:  results.Summarize(results.Ms(next)),
		SubscribedMs: results.Summarize(results.Ms(sub)),
		RegisteredMs: results.Summarize(results.Ms(reg)),
		InitPhaseMs:  results.Summarize(results.Ms(initPhase)),
		PeakRSSMiB:   results.Summarize(rss),
		LoggedInitMs: results.Summarize(logged),
	}
}

// paired is a's first /event/next minus b's, round by round.
func paired(a, b []sample) results.Interval {
	d := make([]time.Duration, len(a))
	for r := range a {
		d[r] = a[r].firstNext - b[r].firstNext
	}
	return results.MedianInterval(results.Ms(d))
}

// dnsLookup times n resolutions of sandbox.localdomain with Go's own
// resolver, as the CGO_ENABLED=0 extension does them.
func dnsLookup(n int) results.Summary {
	r := &net.Resolver{PreferGo: true}
	var ds []time.Duration
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		t0 := time.Now()
		_, _ = r.LookupIP(ctx, "ip", "sandbox.localdomain")
		ds = append(ds, time.Since(t0))
		cancel()
	}
	return results.Summarize(results.Ms(ds))
}

func lookup(env []string) func(string) (string, bool) {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func print(w io.Writer, r results.ColdStart) {
	fmt.Fprintf(w, "Cold start, %d runs each: %s\n\n", r.Runs, r.Machine)
	fmt.Fprintln(w, "| | KTE median | KTE p95 | floor median | floor p95 | KTE − floor (median) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	k, f := r.Extensions[0], r.Extensions[1]
	row := func(name string, a, b results.Summary, unit string) {
		fb, fp, diff := "–", "–", "–"
		if b.N > 0 {
			fb, fp, diff = fmt.Sprintf("%.2f %s", b.Median, unit), fmt.Sprintf("%.2f %s", b.P95, unit), fmt.Sprintf("%+.2f %s", a.Median-b.Median, unit)
		}
		fmt.Fprintf(w, "| %s | %.2f %s | %.2f %s | %s | %s | %s |\n", name, a.Median, unit, a.P95, unit, fb, fp, diff)
	}
	row("process start → registered", k.RegisteredMs, f.RegisteredMs, "ms")
	row("process start → subscribed", k.SubscribedMs, f.SubscribedMs, "ms")
	row("process start → first /event/next", k.FirstNextMs, f.FirstNextMs, "ms")
	row("Init phase (initReport)", k.InitPhaseMs, f.InitPhaseMs, "ms")
	row("peak RSS", k.PeakRSSMiB, f.PeakRSSMiB, "MiB")
	row("KTE's logged init_ms", k.LoggedInitMs, f.LoggedInitMs, "ms")
	fmt.Fprintf(w, "\nKTE − floor, first /event/next, paired by round: %s\n", k.OverFloorMs.String("ms"))
	d := r.Extensions[2]
	fmt.Fprintf(w, "  of which KTE's dependencies, imported by the floor (first /event/next %.2f ms, peak RSS %.2f MiB): %s\n",
		d.FirstNextMs.Median, d.PeakRSSMiB.Median, d.OverFloorMs.String("ms"))
	fmt.Fprintf(w, "  and KTE over that floor: %s\n", k.OverDepsFloorMs.String("ms"))
	for _, a := range r.Extensions[3:] {
		fmt.Fprintf(w, "\nAlso measured, %s: registered %.2f ms (%+.2f), first /event/next median %.2f ms (%+.2f over the floor), p95 %.2f ms, peak RSS %.2f MiB\n",
			a.Name, a.RegisteredMs.Median, a.RegisteredMs.Median-f.RegisteredMs.Median, a.FirstNextMs.Median, a.FirstNextMs.Median-f.FirstNextMs.Median, a.FirstNextMs.P95, a.PeakRSSMiB.Median)
		fmt.Fprintf(w, "  paired by round: over the floor %s; over KTE %s\n", a.OverFloorMs.String("ms"), a.OverKTEMs.String("ms"))
	}
	fmt.Fprintf(w, "\nKTE ring: %d MiB; sandbox.localdomain lookup here: median %.2f ms (%s)\n",
		r.RingBytes>>20, r.DNSLookupMs.Median, hostsNote(r.LambdaHosts))
}

func hostsNote(mapped bool) string {
	if mapped {
		return "mapped in /etc/hosts, as in Lambda"
	}
	return "through this machine's DNS server; Lambda answers it from /etc/hosts"
}
