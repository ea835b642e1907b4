package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/rie"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// The conformance tests run the extension under AWS's Runtime Interface
// Emulator (internal/rie), in its classic and managed-instances modes. They
// need root and unshare(1): outside CI they are skipped without them, under
// CI=true they fail.

var (
	rieOnce               sync.Once
	rieEmulator, rieFunc  string
	rieBuildErr           error
	conformanceInvokes    = 5
	conformanceLines      = 12
	conformanceSizes      = []int{60, 300, 2000, 9000} // bytes per marker line, cycled
	conformanceShutdownTO = 6 * time.Second
)

// needEmulator checks that the emulator can run and builds it (once).
func needEmulator(t *testing.T) (emulator, function string) {
	t.Helper()
	if err := rie.Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the emulator conformance tests must run under CI=true: %v; run them as root on a machine with unshare(1)", err)
		}
		t.Skipf("skipping the emulator conformance test: %v", err)
	}
	rieOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := filepath.Join(workDir, "rie")
		if rieBuildErr = os.MkdirAll(dir, 0o755); rieBuildErr == nil {
			rieEmulator, rieFunc, rieBuildErr = rie.Build(ctx, dir)
		}
	})
	if rieBuildErr != nil {
		t.Fatalf("cannot build the emulator: %v", rieBuildErr)
	}
	return rieEmulator, rieFunc
}

// emulatorRun is the extension under the emulator, shipping to kinesalite.
type emulatorRun struct {
	t      *testing.T
	k      *kinesalite.Server
	stream string
	emu    *rie.Emulator
	out    *Output
	id     string // unique prefix of this run's markers
}

func startEmulator(t *testing.T, managed bool) *emulatorRun {
	t.Helper()
	emulator, function := needEmulator(t)
	k := kinesalite.StartT(t)
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	stream := k.StreamT(t, name, 1)
	layer := filepath.Join(workDir, "layer-"+name)
	if err := rie.Layer(layer, function, extBin); err != nil {
		t.Fatal(err)
	}
	port, err := lambdasim.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &emulatorRun{t: t, k: k, stream: stream, out: &Output{}, id: fmt.Sprintf("%s-%d", name, time.Now().UnixNano())}
	if testing.Verbose() && os.Getenv("KTE_E2E_ECHO") != "" {
		r.out.Echo = os.Stderr
	}
	r.emu, err = rie.Start(rie.Config{
		Emulator: emulator,
		Layer:    layer,
		Env:      ExtensionEnv(k.Endpoint, stream, port, "AWS_LAMBDA_FUNCTION_TIMEOUT=10", "AWS_LAMBDA_FUNCTION_NAME=kte-conformance"),
		Managed:  managed,
		Output:   r.out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.emu.Kill)
	return r
}

// invokeAll invokes the function conformanceInvokes times; each invocation
// prints conformanceLines marker lines. It returns the markers.
func (r *emulatorRun) invokeAll() map[string]int {
	r.t.Helper()
	markers := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range conformanceInvokes {
		id := fmt.Sprintf("%s-%d", r.id, i)
		size := conformanceSizes[i%len(conformanceSizes)]
		payload := fmt.Appendf(nil, `{"id":%q,"lines":%d,"size":%d}`, id, conformanceLines, size)
		body, err := r.emu.Invoke(ctx, payload)
		if err != nil {
			r.t.Fatalf("invocation %d: %v%s", i+1, err, r.tail(20))
		}
		var resp struct {
			ID    string `json:"id"`
			Lines int    `json:"lines"`
		}
		if err := json.Unmarshal(body, &resp); err != nil || resp.ID != id || resp.Lines != conformanceLines {
			r.t.Fatalf("unexpected response to invocation %d; got %s (%v); want id %s and %d lines", i+1, body, err, id, conformanceLines)
		}
		for j := range conformanceLines {
			markers[fmt.Sprintf("KTE_MARK %s %d ", id, j)] = 0
		}
	}
	return markers
}

// stop sends SIGTERM and waits for the emulator; it must exit on its own.
func (r *emulatorRun) stop() time.Duration {
	r.t.Helper()
	took, killed := r.emu.Stop(conformanceShutdownTO)
	if killed {
		r.t.Fatalf("the emulator did not exit within %s of SIGTERM%s", conformanceShutdownTO, r.tail(20))
	}
	return took
}

func (r *emulatorRun) tail(n int) string {
	lines := r.out.Lines("")
	var b strings.Builder
	for _, l := range lines[max(0, len(lines)-n):] {
		fmt.Fprintf(&b, "\n  | %.300s", l)
	}
	return b.String()
}

// grep returns the output lines matching re.
func (r *emulatorRun) grep(re string) []string {
	rx := regexp.MustCompile(re)
	var out []string
	for _, l := range r.out.Lines("") {
		if rx.Match(l) {
			out = append(out, string(l))
		}
	}
	return out
}

// mustOne asserts exactly one output line matches re and returns it.
func (r *emulatorRun) mustOne(re, what string) string {
	r.t.Helper()
	got := r.grep(re)
	if len(got) != 1 {
		r.t.Fatalf("unexpected %s; got %d lines matching %q; want 1:\n%s%s", what, len(got), re, strings.Join(got, "\n"), r.tail(20))
	}
	return got[0]
}

func (r *emulatorRun) mustNone(re, what string) {
	r.t.Helper()
	if got := r.grep(re); len(got) != 0 {
		r.t.Fatalf("unexpected %s: %d lines matching %q:\n%.2000s", what, len(got), re, strings.Join(got, "\n"))
	}
}

// markersIn counts, in Kinesis, the function events whose record is one of
// the marker lines, and the events by type.
func (r *emulatorRun) markersIn(markers map[string]int) (found int, types map[string]int, records []kinesalite.Record) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	records, err := r.k.ReadAll(ctx, r.stream)
	if err != nil {
		r.t.Fatalf("cannot read the stream back: %v", err)
	}
	for k := range markers {
		markers[k] = 0
	}
	types = map[string]int{}
	for _, rec := range records {
		pr, err := ParseRecord(rec.Data)
		if err != nil || pr.Event == nil {
			r.t.Fatalf("unexpected record %.200q: %v", rec.Data, err)
		}
		var ev struct {
			Type   string          `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(pr.Event, &ev); err != nil {
			r.t.Fatalf("unexpected event %.200q: %v", pr.Event, err)
		}
		types[ev.Type]++
		var line string
		if ev.Type != "function" || json.Unmarshal(ev.Record, &line) != nil {
			continue
		}
		i := strings.IndexByte(strings.TrimPrefix(line, "KTE_MARK "), ' ')
		if !strings.HasPrefix(line, "KTE_MARK ") || i < 0 {
			continue
		}
		// The marker is "KTE_MARK <id> <i> " and padding follows.
		rest := line[len("KTE_MARK ")+i+1:]
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			continue
		}
		key := line[:len("KTE_MARK ")+i+1+j+1]
		if n, ok := markers[key]; ok {
			markers[key] = n + 1
			if n == 0 {
				found++
			}
		}
	}
	return found, types, records
}

// TestConformanceClassic runs the extension under the emulator's classic
// mode: the extension registers for INVOKE and SHUTDOWN, the Telemetry API
// answers 202 (logged; the extension keeps running without telemetry), the
// function answers every invocation, each INVOKE reaches the extension (it
// calls /event/next once per invocation plus once after init), and SIGTERM
// brings SHUTDOWN: the extension prints its KTE_SUMMARY and exits before the
// deadline, without being killed.
func TestConformanceClassic(t *testing.T) {
	r := startEmulator(t, false)
	markers := r.invokeAll()
	took := r.stop()

	r.mustOne(`External agent kinesis-telemetry-extension \([0-9a-f-]+\) registered, subscribed to \[INVOKE SHUTDOWN\]`, "registration")
	r.mustOne(`level=WARN msg="kte: the Telemetry API is not supported here.*status 202`, "log line for the 202 on subscribe")
	started := r.mustOne(`msg="kte: started"`, "start-up line")
	// The emulator answers the subscription 202: /event/next is main's.
	if !strings.Contains(started, "lmi=false") || !strings.Contains(started, "registered_early=true") || !strings.Contains(started, "subscribed_early=true") ||
		!strings.Contains(started, "next_early=false") {
		t.Fatalf("unexpected start-up line; got %q; want lmi=false, registered and subscribed during initialisation, /event/next after", started)
	}
	if got, want := len(r.grep(`API request - GET /2020-01-01/extension/event/next`)), conformanceInvokes+1; got != want {
		t.Fatalf("unexpected /event/next calls; got %d; want %d (after init and after each INVOKE)", got, want)
	}
	if got := len(r.grep(`INVOKE RTDONE\(status: success`)); got != conformanceInvokes {
		t.Fatalf("unexpected successful invocations; got %d; want %d", got, conformanceInvokes)
	}
	r.mustOne(`Agent kinesis-telemetry-extension \([0-9a-f-]+\) is registered for the shutdown event`, "SHUTDOWN dispatch")
	summary := r.mustOne(`^KTE_SUMMARY `, "KTE_SUMMARY line")
	s := ParseSummary(summary)
	if s["reason"] != "sandboxterminated" || s["received"] != "0" || s["dropped_shutdown"] != "0" {
		t.Fatalf("unexpected summary; got %q; want reason=sandboxterminated received=0 dropped_shutdown=0", summary)
	}
	r.mustOne(`Handling termination for extension-kinesis-telemetry-extension`, "extension exit")
	r.mustNone(`did not exit after deadline|Killing it|failed to transition`, "kill or failed shutdown")
	found, types, records := r.markersIn(markers)
	if len(records) != 0 || found != 0 {
		t.Fatalf("unexpected records in classic mode (no Telemetry API); got %d %v", len(records), types)
	}
	t.Logf("classic mode: %d invocations answered, %d /event/next calls, 202 on subscribe logged, SHUTDOWN on SIGTERM (emulator exited %s after it); %s",
		conformanceInvokes, conformanceInvokes+1, took.Round(time.Millisecond), started[strings.Index(started, "init_ms"):])
}

// TestConformanceManaged runs the extension under the emulator's
// managed-instances mode (AWS_LAMBDA_MAX_CONCURRENCY=1), whose Telemetry API
// is real: the extension must detect the mode, register for SHUTDOWN only,
// subscribe with schema 2025-01-29 (the only one the emulator accepts),
// deliver in the background (there is no INVOKE), so that every function log
// line printed by the bootstrap is in Kinesis before SHUTDOWN, exactly once;
// at SIGTERM it must exit 0 with its KTE_SUMMARY line.
func TestConformanceManaged(t *testing.T) {
	r := startEmulator(t, true)
	markers := r.invokeAll()

	// Background delivery: everything must reach Kinesis before SHUTDOWN.
	invoked := time.Now()
	deadline := invoked.Add(5 * time.Second)
	var found int
	var types map[string]int
	for {
		found, types, _ = r.markersIn(markers)
		if found == len(markers) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	inKinesis := time.Since(invoked)
	if found != len(markers) {
		t.Errorf("unexpected function log lines in Kinesis 5 s after the last invocation, before SHUTDOWN; got %d of %d (types %v); emulator delivery errors:\n%s",
			found, len(markers), types, strings.Join(firstN(r.grep(`could not send batch`), 3), "\n"))
	}
	took := r.stop()
	if t.Failed() {
		t.FailNow()
	}

	r.mustOne(`msg="External agent registered" agentName=kinesis-telemetry-extension .*events=\[SHUTDOWN\]`, "SHUTDOWN-only registration")
	r.mustOne(`msg="Telemetry subscription created" agentName=kinesis-telemetry-extension`, "subscription with schema 2025-01-29")
	started := r.mustOne(`msg="kte: started"`, "start-up line")
	if !strings.Contains(started, "lmi=true") || !strings.Contains(started, "registered_early=true") || !strings.Contains(started, "subscribed_early=true") ||
		!strings.Contains(started, "next_early=true") {
		t.Fatalf("unexpected start-up line; got %q; want lmi=true, registered, subscribed and the first /event/next during initialisation", started)
	}
	r.mustNone(`could not send batch to telemetry api Subscriber`, "failed telemetry deliveries")
	r.mustOne(`Name:extension-kinesis-telemetry-extension Cause:exited Signo:<nil> ExitStatus:0 `, "exit status 0")
	summary := r.mustOne(`^KTE_SUMMARY `, "KTE_SUMMARY line")
	s := ParseSummary(summary)
	if s["reason"] != "spindown" || s["dropped_shutdown"] != "0" {
		t.Fatalf("unexpected summary; got %q; want reason=spindown dropped_shutdown=0", summary)
	}
	found, types, records := r.markersIn(markers)
	dup := 0
	for _, n := range markers {
		dup += max(0, n-1)
	}
	if found != len(markers) || dup != 0 || types["platform.logsDropped"] != 0 {
		t.Fatalf("unexpected function log lines after SHUTDOWN; got %d of %d, %d duplicates, types %v; want all once, no platform.logsDropped", found, len(markers), dup, types)
	}
	if types["platform.start"] != conformanceInvokes || types["platform.report"] != conformanceInvokes || types["platform.telemetrySubscription"] != 1 {
		t.Fatalf("unexpected platform events; got %v; want %d platform.start and platform.report, 1 platform.telemetrySubscription", types, conformanceInvokes)
	}
	t.Logf("managed-instances mode: %d invocations, %d marker lines all in Kinesis before SHUTDOWN (within %s of the last invocation), %d records %v; emulator exited %s after SIGTERM; %s",
		conformanceInvokes, len(markers), inKinesis.Round(10*time.Millisecond), len(records), types, took.Round(time.Millisecond), started[strings.Index(started, "init_ms"):])
	t.Logf("extension summary: %s", summary)
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }
