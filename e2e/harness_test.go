package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/lambdahosts"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/testsupport"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// extName is the extension's file name, which is its registration name.
const extName = "kinesis-telemetry-extension"

// extBin is the extension, built once by TestMain with the Makefile's flags.
var extBin string

// TestMain runs the tests with Lambda's /etc/hosts (package lambdahosts),
// with the extension built once.
func TestMain(m *testing.M) {
	os.Exit(lambdahosts.RunTests("e2e", func() int { return runTests(m) }))
}

// runTests builds the extension and runs the tests.
func runTests(m *testing.M) int {
	return testsupport.Main(m, "kte-e2e-", func(ctx context.Context, dir string) error {
		workDir = dir
		// KTE_E2E_EXTENSION runs the tests against another build (for
		// example a candidate fix); its file name must be the extension's
		// name.
		if extBin = os.Getenv("KTE_E2E_EXTENSION"); extBin != "" {
			return nil
		}
		var err error
		extBin, err = lambdasim.Build(ctx, ".", dir, extName)
		return err
	})
}

// workDir holds what TestMain built; tests may add binaries there.
var workDir string

// slow scales waits under the race detector.
func slow(d time.Duration) time.Duration {
	if raceEnabled {
		return 3 * d
	}
	return d
}

// run is one extension process in a simulated Lambda environment, shipping
// to a stream on kinesalite (or to Endpoint, when a proxy sits in between).
type run struct {
	t      *testing.T
	k      *kinesalite.Server
	stream string
	sim    *lambdasim.Sim
	out    *Output

	invokes  []lambdasim.InvokeResult
	shutdown lambdasim.ShutdownResult
	rss      *RSSWatch
}

// runOptions configure newRun.
type runOptions struct {
	shards int32
	// endpoint overrides kinesalite's endpoint in the extension's
	// environment (a proxy in front of it).
	endpoint func(kinesaliteEndpoint string) string
	env      []string // extra KTE_ variables
	cfg      lambdasim.Config
}

// newRun starts kinesalite, creates a stream and a simulator running the
// extension, and runs Start and Init.
func newRun(t *testing.T, o runOptions) *run {
	t.Helper()
	k := kinesalite.StartT(t)
	if o.shards == 0 {
		o.shards = 2
	}
	stream := k.StreamT(t, "e2e-"+strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), o.shards)
	endpoint := k.Endpoint
	if o.endpoint != nil {
		endpoint = o.endpoint(k.Endpoint)
	}
	port, err := lambdasim.FreePort()
	if err != nil {
		t.Fatalf("cannot find a free port: %v", err)
	}
	r := &run{t: t, k: k, stream: stream, out: &Output{}}
	if testing.Verbose() && os.Getenv("KTE_E2E_ECHO") != "" {
		r.out.Echo = os.Stderr
	}
	cfg := o.cfg
	cfg.Extensions = []lambdasim.Extension{{Path: extBin}}
	cfg.Env = ExtensionEnv(endpoint, stream, port, o.env...)
	cfg.Output = r.out
	if cfg.Timeout == 0 {
		cfg.Timeout = slow(3 * time.Second)
	}
	r.sim, err = lambdasim.New(cfg)
	if err != nil {
		t.Fatalf("cannot create the simulator: %v", err)
	}
	t.Cleanup(func() { _ = r.sim.Close() })
	ctx := context.Background()
	if err := r.sim.Start(ctx); err != nil {
		t.Fatalf("cannot start the extension: %v", err)
	}
	if _, err := r.sim.Init(ctx); err != nil {
		t.Fatalf("init failed: %v%s", err, r.tail(10))
	}
	ps := r.sim.Processes()
	r.rss = WatchRSS(ps[len(ps)-1].PID, 0)
	t.Cleanup(func() { r.rss.Stop() })
	return r
}

// invoke runs the workload; every invocation must succeed.
func (r *run) invoke(w []lambdasim.Invocation) {
	r.t.Helper()
	for i, inv := range w {
		res, err := r.sim.Invoke(context.Background(), inv)
		if err != nil {
			r.t.Fatalf("invocation %d: %v", i+1, err)
		}
		if res.Status != "success" || res.Reset != nil {
			r.t.Fatalf("unexpected invocation %d status; got %s %s (late %v); want success%s", i+1, res.Status, res.ErrorType, res.Late, r.tail(10))
		}
		r.invokes = append(r.invokes, res)
	}
}

// end sends SHUTDOWN with the given deadline; the extension must exit 0 on
// its own, before the deadline.
func (r *run) end(deadline time.Duration) {
	r.t.Helper()
	var err error
	r.shutdown, err = r.sim.Shutdown(context.Background(), "spindown", deadline)
	if err != nil {
		r.t.Fatalf("shutdown failed: %v", err)
	}
	for _, e := range r.shutdown.Extensions {
		if e.Killed != "" || e.ExitCode != 0 {
			r.t.Fatalf("unexpected extension end; got exit %d signal %q killed %q after %s; want exit 0 before the deadline%s",
				e.ExitCode, e.Signal, e.Killed, e.After, r.tail(10))
		}
	}
}

// tail returns the extension's last n output lines, for failure messages,
// each cut after 300 bytes (KTE_UNDELIVERED lines can be 32 KiB).
func (r *run) tail(n int) string {
	const most = 300
	lines := r.out.Lines(extName)
	var b strings.Builder
	for _, l := range lines[max(0, len(lines)-n):] {
		b.WriteString("\n  | ")
		if len(l) > most {
			fmt.Fprintf(&b, "%s... (%d bytes)", l[:most], len(l))
			continue
		}
		b.Write(l)
	}
	return b.String()
}

// outcome is where every event went.
type outcome struct {
	Reconciliation
	records     []kinesalite.Record
	ids         []Identity
	reasons     map[string]int
	summary     map[string]string
	sub         lambdasim.SubscriberStats
	proc        lambdasim.ProcessStats
	generated   []lambdasim.Event
	undelivered int
	peakRSS     int64 // VmHWM (see RSSWatch)
	// unacked are events to ship that the extension never acknowledged
	// (dropped by the simulator or still queued when it exited).
	unacked []lambdasim.Event
}

// reconcile reads the stream back and accounts for every generated event
// (except the extension's own output after SHUTDOWN, written after its final
// flush by design).
func (r *run) reconcile() outcome {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o outcome
	var err error
	o.records, err = r.k.ReadAll(ctx, r.stream)
	if err != nil {
		r.t.Fatalf("cannot read the stream back: %v", err)
	}
	raw := make([][]byte, len(o.records))
	for i, rec := range o.records {
		raw[i] = rec.Data
	}
	fromKinesis, ids, err := Events(raw)
	if err != nil {
		r.t.Fatalf("cannot parse the records read back: %v", err)
	}
	und, reasons := r.out.Undelivered(extName)
	fromStderr, ids2, err := Events(und)
	if err != nil {
		r.t.Fatalf("cannot parse the KTE_UNDELIVERED lines: %v", err)
	}
	for _, id := range ids2 {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	o.ids, o.reasons, o.undelivered = ids, reasons, len(und)
	o.generated = r.sim.Generated()
	shutdownAt := r.shutdown.Start
	keep := func(ev lambdasim.Event) bool {
		return ev.Type != lambdasim.TypeExtensionLog || ev.At < shutdownAt
	}
	o.Reconciliation = Reconcile(o.generated, keep, fromKinesis, fromStderr)
	var ok bool
	if o.summary, ok = r.out.Summary(extName); !ok {
		r.t.Fatalf("no KTE_SUMMARY line on the extension's stderr%s", r.tail(10))
	}
	o.sub, _ = r.sim.Subscriber(extName)
	for _, ev := range r.sim.Events(append(slices.Clone(o.sub.Dropped), o.sub.Pending...)) {
		if keep(ev) {
			o.unacked = append(o.unacked, ev)
		}
	}
	ps := r.sim.Processes()
	o.proc = ps[len(ps)-1]
	o.peakRSS = r.rss.Stop()
	return o
}

// checkIdentity asserts one enrichment identity with the simulator's values.
func (o *outcome) checkIdentity(t *testing.T, function string) {
	t.Helper()
	if len(o.ids) != 1 {
		t.Fatalf("unexpected identities; got %v; want exactly one", o.ids)
	}
	id := o.ids[0]
	want := Identity{Function: function, Version: "$LATEST", Region: "us-east-1", Account: "123456789012", Environment: id.Environment}
	if id != want || len(id.Environment) != 32 {
		t.Fatalf("unexpected identity; got %+v; want %+v with a 32-hex-digit environment", id, want)
	}
}

// figures logs what the lead quotes: events, losses, init time, peak RSS,
// overhead.
func (r *run) figures(o *outcome) {
	r.t.Helper()
	var over []time.Duration
	for _, res := range r.invokes {
		over = append(over, res.Overhead)
	}
	slices.Sort(over)
	p := func(q float64) time.Duration {
		if len(over) == 0 {
			return 0
		}
		return over[min(len(over)-1, int(q*float64(len(over))))]
	}
	lost := len(o.Missing)
	r.t.Logf("figures: generated %d events (%d to ship), acked %d, in Kinesis %d (%d records), on stderr %d %v, lost %d, duplicates %d; "+
		"init %s (process start to first /event/next), peak RSS %.1f MiB, overhead p50 %s p99 %s over %d invokes; shutdown exit after %s",
		len(o.generated), o.Expected, len(o.sub.Acked), o.InKinesis, len(o.records), o.OnStderr, o.reasons, lost, o.Duplicates,
		o.proc.FirstNext.Round(10*time.Microsecond), float64(o.peakRSS)/(1<<20), p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), len(over),
		r.exitAfter())
	r.t.Logf("extension summary: %v", o.summary)
}

func (r *run) exitAfter() time.Duration {
	for _, e := range r.shutdown.Extensions {
		return e.After.Round(time.Millisecond)
	}
	return 0
}

func itoa(n int) string { return fmt.Sprint(n) }
