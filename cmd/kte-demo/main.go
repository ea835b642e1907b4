// Command kte-demo shows the extension working without AWS: it starts
// kinesalite (a Kinesis implementation) on loopback, creates a stream, runs
// the built extension inside the local Lambda simulator (package lambdasim)
// for a realistic workload, shuts the environment down, reads the stream
// back and prints what happened to every telemetry event.
//
//	make demo    # = make deps build-host && go run ./cmd/kte-demo -extension build/host/kinesis-telemetry-extension
//
// The exit status is 1 when an event the extension had to ship is not in
// the stream (missing, or given up on and written to stderr as
// KTE_UNDELIVERED), an unknown record is found, an invocation failed, or the
// extension did not exit cleanly, or when the run is interrupted or takes
// longer than -limit; 2 for bad flags or missing tools.
// Duplicate records (delivery is at least once) are reported, not failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/e2e"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the demo's flags.
type options struct {
	extension   string
	invocations int
	lines       int
	shards      int
	stream      string
	verbose     bool
	limit       time.Duration
	kinesalite  string // endpoint of a running kinesalite, "" to start one
}

// shutdownDeadline is the SHUTDOWN event's deadlineMs in the demo (the
// simulator's default, 2 s as in Lambda with extensions).
const shutdownDeadline = 2 * time.Second

func run(parent context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kte-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.extension, "extension", "build/host/kinesis-telemetry-extension", "path of the built extension (make build-host)")
	fs.IntVar(&o.invocations, "n", 30, "number of invocations")
	fs.IntVar(&o.lines, "lines", 40, "average function log lines per invocation")
	fs.IntVar(&o.shards, "shards", 2, "shards of the demo stream")
	fs.StringVar(&o.stream, "stream", "kte-demo", "name of the demo stream")
	fs.BoolVar(&o.verbose, "v", false, "echo the extension's own output")
	fs.DurationVar(&o.limit, "limit", 90*time.Second, "give up after this long")
	fs.StringVar(&o.kinesalite, "kinesalite", "", "`URL` of a kinesalite already running, to use instead of starting one (the stream must not exist yet)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.invocations < 1 || o.lines < 1 || o.shards < 1 {
		fmt.Fprintln(stderr, "kte-demo: -n, -lines and -shards must be positive")
		return 2
	}
	if _, err := os.Stat(o.extension); err != nil {
		fmt.Fprintf(stderr, "kte-demo: cannot find the extension: %v\nPossible solution: run `make build-host` (or `make demo`).\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(parent, o.limit)
	defer cancel()
	code, err := demo(ctx, o, stdout)
	if err != nil {
		switch {
		case parent.Err() != nil:
			// Ctrl-C or SIGTERM: the error only says "context canceled".
			fmt.Fprintln(stderr, "kte-demo: interrupted")
			return 1
		case ctx.Err() != nil:
			fmt.Fprintf(stderr, "kte-demo: gave up after -limit %s, before the demo finished\n", o.limit)
			return 1
		}
		fmt.Fprintln(stderr, "kte-demo:", err)
		if errors.Is(err, kinesalite.ErrNoToolsDir) {
			return 2
		}
		if errors.Is(err, kinesalite.ErrUnavailable) {
			fmt.Fprintln(stderr, "Possible solution: run `make deps` (needs node and npm).")
			return 2
		}
		return 1
	}
	return code
}

// result is everything the summary reports.
type result struct {
	workload    []lambdasim.Invocation
	invokes     []lambdasim.InvokeResult
	shutdown    lambdasim.ShutdownResult
	generated   []lambdasim.Event
	sub         lambdasim.SubscriberStats
	proc        lambdasim.ProcessStats
	records     []kinesalite.Record
	rec         e2e.Reconciliation
	ids         []e2e.Identity
	parseErr    error
	undelivered map[string]int
	summary     map[string]string
	samples     [][]byte
	initMs      string
	peakRSS     int64
	elapsed     time.Duration
}

func demo(ctx context.Context, o options, stdout io.Writer) (int, error) {
	begin := time.Now()
	ext, err := filepath.Abs(o.extension)
	if err != nil {
		return 1, err
	}
	name := filepath.Base(ext)

	fmt.Fprintf(stdout, "KTE demo: %s in the local Lambda simulator, shipping to kinesalite\n", name)
	k := &kinesalite.Server{Endpoint: o.kinesalite}
	if o.kinesalite == "" {
		if k, err = kinesalite.Start(); err != nil {
			return 1, err
		}
		defer k.Close()
	}
	if err := k.CreateStream(ctx, o.stream, int32(o.shards)); err != nil {
		return 1, err
	}
	port, err := lambdasim.FreePort()
	if err != nil {
		return 1, fmt.Errorf("cannot find a free port: %w", err)
	}
	out := &e2e.Output{}
	if o.verbose {
		out.Echo = stdout
	}
	s, err := lambdasim.New(lambdasim.Config{
		Extensions:   []lambdasim.Extension{{Path: ext}},
		Env:          e2e.ExtensionEnv(k.Endpoint, o.stream, port),
		FunctionName: "kte-demo-function",
		MemorySizeMB: 256,
		Timeout:      3 * time.Second,
		Output:       out,
	})
	if err != nil {
		return 1, err
	}
	defer s.Close()

	r := result{workload: e2e.Workload(o.invocations, o.lines, 20*time.Millisecond, 256<<10, 900<<10)}
	fmt.Fprintf(stdout, "kinesalite at %s, stream %q with %d shards; %d invocations, %d function log lines\n\n",
		k.Endpoint, o.stream, o.shards, len(r.workload), e2e.Lines(r.workload))
	if err := s.Start(ctx); err != nil {
		return 1, err
	}
	if _, err := s.Init(ctx); err != nil {
		return 1, fmt.Errorf("init: %w%s", err, lastLines(out, name, 5))
	}
	// Peak RSS from VmHWM, not the simulator's rusage figure (see e2e.RSSWatch).
	ps := s.Processes()
	rss := e2e.WatchRSS(ps[len(ps)-1].PID, 0)
	defer rss.Stop()
	for i, inv := range r.workload {
		res, err := s.Invoke(ctx, inv)
		if err != nil {
			return 1, fmt.Errorf("invocation %d: %w", i+1, err)
		}
		r.invokes = append(r.invokes, res)
	}
	r.shutdown, err = s.Shutdown(ctx, "spindown", shutdownDeadline)
	if err != nil {
		return 1, fmt.Errorf("shutdown: %w", err)
	}

	r.peakRSS = rss.Stop()
	r.generated = s.Generated()
	r.sub, _ = s.Subscriber(name)
	if ps := s.Processes(); len(ps) > 0 {
		r.proc = ps[len(ps)-1]
	}
	r.records, err = k.ReadAll(ctx, o.stream)
	if err != nil {
		return 1, err
	}
	raw := make([][]byte, len(r.records))
	for i, rec := range r.records {
		raw[i] = rec.Data
	}
	fromKinesis, ids, perr := e2e.Events(raw)
	undelivered, reasons := out.Undelivered(name)
	fromStderr, _, uerr := e2e.Events(undelivered)
	r.ids, r.parseErr, r.undelivered = ids, errors.Join(perr, uerr), reasons
	r.rec = e2e.Reconcile(r.generated, shippable(name, r.shutdown.Start), fromKinesis, fromStderr)
	r.summary, _ = out.Summary(name)
	r.samples = samples(raw)
	r.initMs = startedInitMs(out.Lines(name))
	r.elapsed = time.Since(begin)
	return report(stdout, &r), nil
}

// shippable says which generated events the extension must ship: all but
// its own output after SHUTDOWN (its summary and final log lines, written
// after its last flush, which it cannot deliver by design).
func shippable(name string, shutdownAt time.Duration) func(lambdasim.Event) bool {
	return func(ev lambdasim.Event) bool {
		return ev.Type != lambdasim.TypeExtensionLog || ev.Source != name || ev.At < shutdownAt
	}
}

// report prints the summary and returns the exit status.
func report(w io.Writer, r *result) int {
	byType := map[string]int{}
	for _, ev := range r.generated {
		byType[ev.Type]++
	}
	var overheads []time.Duration
	failed := 0
	for _, res := range r.invokes {
		if res.Status != "success" || res.Reset != nil {
			failed++
			continue
		}
		overheads = append(overheads, res.Overhead)
	}
	slices.Sort(overheads)
	excluded := 0
	for _, n := range r.rec.Excluded {
		excluded += n
	}

	minSize, maxSize, big := 0, 0, 0
	for _, ev := range r.generated {
		n := len(ev.Bytes)
		if minSize == 0 || n < minSize {
			minSize = n
		}
		maxSize = max(maxSize, n)
		if n >= 100<<10 {
			big++
		}
	}
	fmt.Fprintf(w, "events generated      %d, %s to %s each (%d over 100 KiB)\n", len(r.generated), size(minSize), size(maxSize), big)
	fmt.Fprintf(w, "                      %s\n", typeList(byType))
	fmt.Fprintf(w, "delivered             %d acknowledged by the extension in %d POSTs (%d refused, retried by Lambda; %d dropped by Lambda)\n",
		len(r.sub.Acked), r.sub.Posts, r.sub.FailedPosts, len(r.sub.Dropped))
	fmt.Fprintf(w, "found in Kinesis      %d of %d expected (%s)\n", r.rec.InKinesis, r.rec.Expected, shardList(r.records))
	fmt.Fprintf(w, "missing               %d\n", len(r.rec.Missing))
	fmt.Fprintf(w, "duplicates            %d\n", r.rec.Duplicates)
	undelivered := 0
	for _, n := range r.undelivered {
		undelivered += n
	}
	if undelivered > 0 || r.rec.OnStderr > 0 {
		fmt.Fprintf(w, "written to stderr     %d event(s) as KTE_UNDELIVERED (by reason: %s); %d expected event(s) among them, %d of those also in Kinesis\n",
			undelivered, countList(r.undelivered, "%s %d"), r.rec.OnStderr, r.rec.InBoth)
	}
	if n := len(r.rec.Unexpected); n > 0 {
		fmt.Fprintf(w, "unexpected records    %d\n", n)
	}
	if excluded > 0 {
		fmt.Fprintf(w, "not expected          %d line(s) the extension wrote after SHUTDOWN, after its final flush (its last log lines)\n", excluded)
	}
	fmt.Fprintf(w, "init time             %s from process start to first /event/next (registered %s, subscribed %s; own init_ms=%s)\n",
		ms(r.proc.FirstNext), ms(r.proc.Registered), ms(r.proc.Subscribed), r.initMs)
	fmt.Fprintf(w, "peak RSS              %.1f MiB (VmHWM of the extension process)\n", float64(r.peakRSS)/(1<<20))
	fmt.Fprintf(w, "per-invoke overhead   p50 %s, p99 %s, max %s: function end to the extension's next /event/next (0: it was already waiting)\n",
		ms(pct(overheads, 0.50)), ms(pct(overheads, 0.99)), ms(pct(overheads, 1)))
	for _, e := range r.shutdown.Extensions {
		fmt.Fprintf(w, "shutdown              exit %d, %s after SHUTDOWN (deadline %s)", e.ExitCode, ms(e.After), shutdownDeadline)
		if e.Killed != "" {
			fmt.Fprintf(w, ", killed: %s", e.Killed)
		}
		fmt.Fprintln(w)
	}
	if r.summary != nil {
		fmt.Fprintf(w, "extension summary     received=%s sent=%s put_calls=%s retried=%s dropped_shutdown=%s quarantined=%s oversize_split=%s\n",
			r.summary["received"], r.summary["sent"], r.summary["put_calls"], r.summary["retried"],
			r.summary["dropped_shutdown"], r.summary["quarantined"], r.summary["oversize_split"])
	}
	fmt.Fprintln(w, "\nsample records as read from Kinesis (long strings cut; the \"lambda\" object, added by KTE_ENRICH, shown once):")
	for i, s := range r.samples {
		elide := ""
		if i > 0 {
			elide = "lambda"
		}
		fmt.Fprintln(w, indent(s, 2, 100, elide))
	}

	var problems []string
	if r.rec.InKinesis < r.rec.Expected {
		problems = append(problems, fmt.Sprintf("only %d of %d expected event(s) are in Kinesis", r.rec.InKinesis, r.rec.Expected))
	}
	if undelivered > 0 || r.rec.OnStderr > 0 {
		problems = append(problems, fmt.Sprintf("the extension gave up on %d event(s) and wrote them to stderr as KTE_UNDELIVERED (by reason: %s)",
			undelivered, countList(r.undelivered, "%s %d")))
	}
	if n := len(r.rec.Missing); n > 0 {
		problems = append(problems, fmt.Sprintf("%d event(s) missing:%s", n, e2e.Describe(r.rec.Missing, 5)))
	}
	if n := len(r.rec.Unexpected); n > 0 {
		problems = append(problems, fmt.Sprintf("%d unexpected record(s), e.g. %.200q", n, r.rec.Unexpected[0]))
	}
	if r.parseErr != nil {
		problems = append(problems, "cannot parse records: "+r.parseErr.Error())
	}
	if failed > 0 {
		problems = append(problems, fmt.Sprintf("%d invocation(s) failed or reset the environment", failed))
	}
	for _, e := range r.shutdown.Extensions {
		if e.ExitCode != 0 || e.Killed != "" {
			problems = append(problems, fmt.Sprintf("the extension ended with exit code %d %s %s", e.ExitCode, e.Signal, e.Killed))
		}
	}
	if len(r.ids) > 1 {
		problems = append(problems, fmt.Sprintf("%d different identities in one environment", len(r.ids)))
	}
	fmt.Fprintln(w)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(w, "FAIL:", p)
		}
		return 1
	}
	dups := ""
	if r.rec.Duplicates > 0 {
		// Delivery is at least once: a PutRecords call retried after its
		// answer was lost stores its records again.
		dups = fmt.Sprintf(", plus %d duplicate record(s) (delivery is at least once)", r.rec.Duplicates)
	}
	fmt.Fprintf(w, "OK: every event is in Kinesis, intact (byte for byte once the \"lambda\" object is taken off)%s; demo ran in %s\n",
		dups, r.elapsed.Round(100*time.Millisecond))
	return 0
}

// typeList lists event counts by type, "function 1200, platform.report 30".
func typeList(m map[string]int) string { return countList(m, "%s %d") }

// shardList says how the records spread over the shards.
func shardList(rs []kinesalite.Record) string {
	n := map[string]int{}
	for _, r := range rs {
		n[r.ShardID]++
	}
	s := countList(n, "%s: %d")
	if len(n) == 1 {
		s += "; one partition key per execution environment keeps its order on one shard"
	}
	return s
}

// countList formats m's entries with format (a key, then its count) in key
// order, joined by commas.
func countList(m map[string]int, format string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, format, k, m[k])
	}
	return b.String()
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

// samples picks three records to show: a platform report, a text log line
// (of at least 1000 bytes if there is one, to show cutting) and a JSON log
// line, the first of each in stream order.
func samples(raw [][]byte) [][]byte {
	want := []struct {
		sub string
		min int
	}{{`"type":"platform.report"`, 0}, {`"type":"function","record":"`, 1000}, {`"type":"function","record":{`, 0}}
	out := make([][]byte, 0, len(want))
	for _, w := range want {
		var pick []byte
		for _, r := range raw {
			if bytes.Contains(r, []byte(w.sub)) {
				if pick == nil {
					pick = r
				}
				if len(r) >= w.min {
					pick = r
					break
				}
			}
		}
		if pick != nil {
			out = append(out, pick)
		}
	}
	return out
}

// indent pretty-prints JSON keeping the member order, cutting strings longer
// than maxStr and showing the value of the top-level member elide (if not
// "") as {…}; invalid JSON is returned cut.
func indent(data []byte, margin, maxStr int, elide string) string {
	type frame struct {
		obj   bool
		count int
		key   bool // in an object: the next token is a key
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var b strings.Builder
	var stack []frame
	newline := func() {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(" ", margin+2*len(stack)))
	}
	b.WriteString(strings.Repeat(" ", margin))
	for {
		tok, err := dec.Token()
		if err == io.EOF && len(stack) == 0 {
			return b.String()
		}
		if err != nil {
			return fmt.Sprintf("%*s%.*s", margin, "", maxStr, data)
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			n := stack[len(stack)-1].count
			stack = stack[:len(stack)-1]
			if n > 0 {
				newline()
			}
			b.WriteRune(rune(d))
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].key = true
			}
			continue
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if !top.obj || top.key {
				if top.count > 0 {
					b.WriteByte(',')
				}
				newline()
				top.count++
			}
			if top.obj && top.key {
				q, _ := json.Marshal(tok)
				b.Write(q)
				b.WriteString(": ")
				top.key = false
				if len(stack) == 1 && tok == elide {
					if skipValue(dec) != nil {
						return fmt.Sprintf("%*s%.*s", margin, "", maxStr, data)
					}
					b.WriteString("{…}")
					top.key = true
				}
				continue
			}
			if top.obj {
				top.key = true // after this value
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			b.WriteRune(rune(v))
			stack = append(stack, frame{obj: v == '{', key: v == '{'})
		case string:
			if len(v) > maxStr {
				v = fmt.Sprintf("%s… (%d more bytes)", v[:maxStr], len(v)-maxStr)
			}
			q, _ := json.Marshal(v)
			b.Write(q)
		default:
			q, _ := json.Marshal(v)
			b.Write(q)
		}
	}
}

// skipValue reads one whole value from dec.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// lastLines returns the extension's last n output lines, for an error.
func lastLines(o *e2e.Output, name string, n int) string {
	lines := o.Lines(name)
	lines = lines[max(0, len(lines)-n):]
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\n  ")
		b.Write(l)
	}
	return b.String()
}

// startedInitMs returns the init_ms field of the extension's start-up line
// ("kte: started"), or "?".
func startedInitMs(lines [][]byte) string {
	for _, l := range lines {
		if !bytes.Contains(l, []byte(`msg="kte: started"`)) {
			continue
		}
		for _, f := range strings.Fields(string(l)) {
			if v, ok := strings.CutPrefix(f, "init_ms="); ok {
				return v + " ms"
			}
		}
	}
	return "?"
}
