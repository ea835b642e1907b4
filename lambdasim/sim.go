package lambdasim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// Sentinel errors.
var (
	// ErrState: the call is not allowed in the environment's current state
	// (for example Invoke before Init, or after Shutdown).
	ErrState = errors.New("lambdasim: not allowed in this state")
	// ErrClosed: the Sim was closed.
	ErrClosed = errors.New("lambdasim: closed")
	// ErrInitTimeout: Init did not finish within Config.InitTimeout.
	ErrInitTimeout = errors.New("lambdasim: init timed out")
	// ErrInitFailed: an extension failed during Init (launch error, /init/error, exit).
	ErrInitFailed = errors.New("lambdasim: init failed")
)

// errDeadline and errExtensionFailed are internal outcomes of waitFor.
var (
	errDeadline        = errors.New("lambdasim: deadline reached")
	errExtensionFailed = errors.New("lambdasim: extension failed")
)

// resetDeadline is the SHUTDOWN deadline of a reset after a timeout, crash or
// failed Init: the shutdown phase's 2,000 ms with external extensions [DG-EXT].
const resetDeadline = 2 * time.Second

// maxExtensions is Lambda's limit of extensions per function [DG-EXT].
const maxExtensions = 10

// Extension is one executable the simulator launches, as Lambda launches
// every file in /opt/extensions.
type Extension struct {
	// Path of the executable. Its base name is the extension's name, which
	// the extension must send as Lambda-Extension-Name.
	Path string
	// Args are passed to the executable. Lambda passes none; this is a test
	// convenience.
	Args []string
	// Env holds extra "KEY=value" entries for this extension only; they
	// override Config.Env and the Lambda variables.
	Env []string
}

// Call identifies one Extensions or Telemetry API request, for Config.Faults.
type Call struct {
	// Endpoint is "register", "next", "init/error", "exit/error" or "telemetry".
	Endpoint string
	// Ext is the extension's name (for register: the Lambda-Extension-Name header).
	Ext string
	// N counts this extension's calls of Endpoint in the current environment, from 1.
	N int
}

// Fault is an answer injected instead of the simulator's own.
type Fault struct {
	Status       int
	ErrorType    string
	ErrorMessage string
}

// Config configures a Sim. The zero value of each field selects the default
// given in its comment.
type Config struct {
	// Extensions are launched in parallel at Start. At most 10, with
	// distinct base names.
	Extensions []Extension
	// Env holds "KEY=value" entries added to every extension's environment
	// after the Lambda variables (AWS_LAMBDA_RUNTIME_API, AWS_REGION,
	// AWS_LAMBDA_FUNCTION_NAME/VERSION/MEMORY_SIZE,
	// AWS_LAMBDA_INITIALIZATION_TYPE=on-demand, TZ, LANG) and PATH.
	Env []string
	// InheritEnv passes the caller's whole environment too (before the
	// Lambda variables).
	InheritEnv bool

	FunctionName    string // default "kte-sim-function"
	FunctionVersion string // default "$LATEST"
	Handler         string // default "bootstrap"
	MemorySizeMB    int    // default 128
	Region          string // default "us-east-1"
	AccountID       string // default "123456789012"

	// Timeout is the function timeout: an invocation's deadline, which
	// covers the runtime and the extensions. Default 3 s (Lambda's default).
	Timeout time.Duration
	// InitTimeout bounds Init. Default 10 s [DG-EXT].
	InitTimeout time.Duration
	// RuntimeInit is how long the simulated runtime takes to initialise once
	// every extension has registered. Default 0.
	RuntimeInit time.Duration
	// RuntimeMemoryMB is what the simulated runtime adds to the extensions'
	// peak RSS in platform.report's maxMemoryUsedMB. Default 32.
	RuntimeMemoryMB int

	// NoFreeze disables SIGSTOP/SIGCONT. The environment is still frozen
	// logically: no telemetry is delivered between invocations.
	NoFreeze bool
	// TelemetryNotSupported answers every subscription with 202
	// Telemetry.NotSupported and delivers nothing, as RIE's classic mode.
	TelemetryNotSupported bool
	// Faults, when set, is asked before each Extensions/Telemetry API
	// request is handled; a non-nil Fault is answered instead.
	Faults func(Call) *Fault

	// SubscriberBufferBytes bounds each subscriber's queue. When exceeded,
	// the oldest queued events are dropped (down to 3/4 of the bound) and a
	// platform.logsDropped event is queued. Lambda's bound is not
	// documented. Default 16 MiB; minimum 64 KiB.
	SubscriberBufferBytes int
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// of a failed POST. Lambda's values are not documented. Defaults 50 ms
	// and 1 s.
	RetryMin, RetryMax time.Duration

	// NoReportAfterReset withholds the platform.report of an invocation
	// that resets the environment (a timeout or a crash): on Lambda that
	// report may never come. By default it is produced, and delivered
	// during the reset's SHUTDOWN.
	NoReportAfterReset bool

	// NoRetain drops the bytes of function log events from Generated (the
	// subscriber queues still hold them until delivered), for long load runs.
	NoRetain bool
	// Output receives the extensions' stdout and stderr, one "[name] line"
	// per line. Nil discards it (the lines still become telemetry).
	Output io.Writer
}

func (c *Config) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.FunctionName, "kte-sim-function")
	def(&c.FunctionVersion, "$LATEST")
	def(&c.Handler, "bootstrap")
	def(&c.Region, "us-east-1")
	def(&c.AccountID, "123456789012")
	if c.MemorySizeMB == 0 {
		c.MemorySizeMB = 128
	}
	if c.Timeout == 0 {
		c.Timeout = 3 * time.Second
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.RuntimeMemoryMB == 0 {
		c.RuntimeMemoryMB = 32
	}
	if c.SubscriberBufferBytes == 0 {
		c.SubscriberBufferBytes = 16 << 20
	}
	c.SubscriberBufferBytes = max(c.SubscriberBufferBytes, 64<<10)
	if c.RetryMin == 0 {
		c.RetryMin = 50 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Second
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
}

// phase is the state of the execution environment.
type phase uint8

const (
	phaseIdle     phase = iota // nothing runs: before Start, or after a reset (Invoke re-initialises)
	phaseInit                  // Start was called; Init in progress
	phaseReady                 // initialised and frozen between invocations
	phaseInvoke                // an invocation runs
	phaseShutdown              // SHUTDOWN or a reset in progress
	phaseDown                  // shut down for good
	phaseBroken                // a lifecycle call was cancelled midway; only Close is useful
)

var phaseNames = [...]string{"idle", "init", "ready", "invoke", "shutdown", "down", "broken"}

func (p phase) String() string { return phaseNames[p] }

// pendingEvent is an Extensions API event waiting for an extension's /next.
type pendingEvent struct {
	body   []byte
	kind   MarkKind
	reqID  string
	detail string
}

// ext is one extension of the current environment. Guarded by Sim.mu,
// except name, spec, gen, proc (pointer) and evc.
type ext struct {
	name string
	spec Extension
	gen  int
	proc *process
	evc  chan pendingEvent // capacity 1: the event for a waiting /next

	id                 string
	registered         bool
	onInvoke, onShutdn bool
	waiting            bool          // blocked in /event/next
	busy               bool          // handed an event, not back in /event/next yet
	pending            *pendingEvent // handed out at the next /event/next
	nexts              int
	lastNext           time.Duration
	lastInvoke         time.Duration
	failed             string // error type of /init/error or /exit/error
	sub                *subscriber
}

// ready reports whether e has called /event/next and holds no event.
func (e *ext) ready() bool { return e.nexts > 0 && !e.busy && e.pending == nil }

func (e *ext) events() []string {
	ev := []string{}
	if e.onInvoke {
		ev = append(ev, "INVOKE")
	}
	if e.onShutdn {
		ev = append(ev, "SHUTDOWN")
	}
	return ev
}

// Sim is a simulated Lambda execution environment. Create it with New and
// release it with Close. Its accessors are safe for concurrent use; the
// lifecycle calls (Start, Init, Invoke, Shutdown) must not overlap.
//
// A Sim must not be copied after first use.
type Sim struct {
	_ noCopy

	cfg    Config
	epoch  time.Time
	ln     net.Listener
	srv    *http.Server
	addr   string
	client *http.Client
	bg     sync.WaitGroup // reapers and subscriber loops
	outMu  sync.Mutex     // serialises Config.Output

	mu        sync.Mutex
	phase     phase
	closed    bool
	gen       int
	initPhase string // "init", or "invoke" for a re-initialisation
	exts      []*ext
	byID      map[string]*ext
	calls     map[string]int // per generation: endpoint+"\x00"+name -> count
	procs     []*process     // every generation, launch order
	subs      []*subscriber  // every generation, subscription order
	regOpen   bool
	subOpen   bool
	frozen    bool
	thawed    chan struct{} // closed while thawed
	changed   chan struct{} // closed and replaced on every state change
	events    []Event
	index     map[string][]int // Lookup's index, built lazily
	marks     []Mark
	seq       int64
	invokes   int
	initStart time.Duration
	initDur   time.Duration // of the latest successful Init
	cold      bool          // the next report carries initDurationMs
}

type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// New validates cfg, starts the Runtime API server on 127.0.0.1 with a free
// port and returns the Sim. Nothing is launched before Start.
func New(cfg Config) (*Sim, error) {
	cfg.setDefaults()
	if len(cfg.Extensions) > maxExtensions {
		return nil, fmt.Errorf("lambdasim: %d extensions configured; Lambda allows at most %d", len(cfg.Extensions), maxExtensions)
	}
	seen := map[string]bool{}
	for _, e := range cfg.Extensions {
		if e.Path == "" {
			return nil, errors.New("lambdasim: extension with an empty Path")
		}
		n := extensionName(e.Path)
		if seen[n] {
			return nil, fmt.Errorf("lambdasim: two extensions named %q (file names in /opt/extensions are unique)", n)
		}
		seen[n] = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the runtime API: %w", err)
	}
	s := &Sim{
		cfg:     cfg,
		epoch:   time.Now(),
		ln:      ln,
		addr:    ln.Addr().String(),
		thawed:  make(chan struct{}),
		changed: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DisableCompression:  true,
			MaxIdleConnsPerHost: maxExtensions,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
	close(s.thawed)
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		_ = s.srv.Serve(ln) // returns on Close
	}()
	return s, nil
}

// RuntimeAPI returns the host:port given to extensions as AWS_LAMBDA_RUNTIME_API.
func (s *Sim) RuntimeAPI() string { return s.addr }

// Epoch is the origin of every offset (Mark.At, Event.At, results).
func (s *Sim) Epoch() time.Time { return s.epoch }

func (s *Sim) since() time.Duration { return time.Since(s.epoch) }

func (s *Sim) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sim) markLocked(m Mark) {
	if m.At == 0 {
		m.At = s.since()
	}
	s.marks = append(s.marks, m)
}

// waitFor blocks until cond (called with s.mu held) returns true or an
// error, the deadline passes (errDeadline; zero = none) or ctx ends.
func (s *Sim) waitFor(ctx context.Context, deadline time.Time, cond func() (bool, error)) error {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	for {
		s.mu.Lock()
		ok, err := cond()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if closed && !ok {
			return ErrClosed
		}
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-timeout:
			s.mu.Lock()
			ok, err = cond()
			s.mu.Unlock()
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
			return errDeadline
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sleepUntil waits until t or ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freezeLocked stops every extension process (unless Config.NoFreeze) and
// closes the telemetry gate.
func (s *Sim) freezeLocked() {
	if s.frozen {
		return
	}
	s.frozen = true
	s.thawed = make(chan struct{})
	for _, e := range s.exts {
		e.proc.sampleRSS()
		if !s.cfg.NoFreeze {
			e.proc.signal(sigStop)
		}
	}
	if !s.cfg.NoFreeze {
		for _, e := range s.exts {
			e.proc.waitStopped(time.Second)
		}
	}
	s.markLocked(Mark{Kind: MarkFreeze})
}

func (s *Sim) thawLocked() {
	if !s.frozen {
		return
	}
	if !s.cfg.NoFreeze {
		for _, e := range s.exts {
			e.proc.signal(sigCont)
		}
	}
	s.frozen = false
	close(s.thawed)
	s.markLocked(Mark{Kind: MarkThaw})
}

// thawedChan returns a channel that is closed while the environment is thawed.
func (s *Sim) thawedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.thawed
}

// emitLocked generates a platform or extension event and queues it for the
// subscribers that want it; a notice (platform.logsDropped) goes to its
// subscriber only, ahead of its queue.
func (s *Sim) emitLocked(typ, reqID, source string, gen int, record []byte, notice *subscriber) {
	now := time.Now()
	b := appendEnvelope(make([]byte, 0, len(record)+64), now, typ, record)
	s.addLocked(typ, reqID, source, gen, now, b, notice)
}

// addLocked records a rendered event and routes it.
func (s *Sim) addLocked(typ, reqID, source string, gen int, now time.Time, b []byte, notice *subscriber) {
	id := len(s.events)
	ev := Event{ID: id, Type: typ, Time: now, At: now.Sub(s.epoch), RequestID: reqID, Source: source, Generation: gen, Bytes: b}
	if s.cfg.NoRetain && typ == TypeFunction {
		ev.Bytes = nil
	}
	s.events = append(s.events, ev)
	if s.index != nil && ev.Bytes != nil {
		s.index[string(b)] = append(s.index[string(b)], id)
	}
	if notice != nil {
		notice.pushNotice(qitem{id: id, b: b, at: now})
		return
	}
	cat := category(typ)
	for _, sub := range s.subs {
		if sub.gen == gen && sub.wants(cat) {
			s.pushLocked(sub, id, b, now)
		}
	}
}

// pushLocked queues an event for sub and reports an overflow with
// platform.logsDropped.
func (s *Sim) pushLocked(sub *subscriber, id int, b []byte, now time.Time) {
	ids, n := sub.push(qitem{id: id, b: b, at: now}, s.cfg.SubscriberBufferBytes)
	if len(ids) == 0 {
		return
	}
	s.markLocked(Mark{Kind: MarkLogsDropped, Ext: sub.name, Events: ids, Bytes: n})
	rec := mustRecord(logsDroppedRecord{DroppedBytes: n, DroppedRecords: len(ids), Reason: LogsDroppedReason})
	s.emitLocked(TypeLogsDropped, "", sub.name, sub.gen, rec, sub)
}

// dispatchLocked hands ev to e: at once if e waits in /event/next, else at
// its next call.
func (s *Sim) dispatchLocked(e *ext, ev pendingEvent) {
	if !e.waiting {
		e.pending = &ev
		return
	}
	e.waiting = false
	e.busy = true
	e.evc <- ev // never blocks: capacity 1, and only a waiting /next drains it
	s.handedLocked(e, ev)
}

// handedLocked records that ev went to e.
func (s *Sim) handedLocked(e *ext, ev pendingEvent) {
	m := Mark{Kind: ev.kind, Ext: e.name, RequestID: ev.reqID, Detail: ev.detail}
	if ev.kind == MarkInvoke {
		e.lastInvoke = s.since()
		m.At = e.lastInvoke
	}
	s.markLocked(m)
}

// Start launches every extension in parallel and begins Init: it produces
// platform.initStart and returns once every process has been started. Call
// Init next; after a launch error (returned here) Init fails with
// ErrInitFailed (Extension.LaunchError) and cleans up.
func (s *Sim) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.phase != phaseIdle || s.gen > 0 {
		ph := s.phase
		s.mu.Unlock()
		return fmt.Errorf("%w: Start in phase %s (Invoke re-initialises after a reset)", ErrState, ph)
	}
	s.mu.Unlock()
	return s.startEnv("init")
}

// startEnv creates a new environment generation and launches its extensions.
func (s *Sim) startEnv(initPhase string) error {
	s.mu.Lock()
	s.gen++
	s.phase = phaseInit
	s.initPhase = initPhase
	s.regOpen, s.subOpen = true, true
	s.exts = s.exts[:0:0]
	s.byID = map[string]*ext{}
	s.calls = map[string]int{}
	for _, spec := range s.cfg.Extensions {
		e := &ext{
			name: extensionName(spec.Path),
			spec: spec,
			gen:  s.gen,
			evc:  make(chan pendingEvent, 1),
		}
		e.proc = &process{name: e.name, gen: s.gen, exited: make(chan struct{})}
		s.exts = append(s.exts, e)
		s.procs = append(s.procs, e.proc)
	}
	s.initStart = s.since()
	s.markLocked(Mark{Kind: MarkInitStart, At: s.initStart, Detail: initPhase})
	s.emitLocked(TypeInitStart, "", "", s.gen, mustRecord(initStartRecord{
		InitializationType: "on-demand",
		Phase:              initPhase,
		RuntimeVersion:     "provided:al2023.v1-lambdasim",
		RuntimeVersionArn:  "arn:aws:lambda:" + s.cfg.Region + "::runtime:lambdasim",
		FunctionName:       s.cfg.FunctionName,
		FunctionVersion:    s.cfg.FunctionVersion,
	}), nil)
	exts := slices.Clone(s.exts)
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, e := range exts {
		env := s.extensionEnv(e.spec)
		wg.Go(func() { s.launch(e, env) })
	}
	wg.Wait()
	var errs []error
	for _, e := range exts {
		if e.proc.launchErr != nil {
			errs = append(errs, e.proc.launchErr)
		}
	}
	return errors.Join(errs...)
}

// InitResult describes one Init phase.
type InitResult struct {
	Generation int
	// Phase is "init", or "invoke" for a re-initialisation run by Invoke
	// after a reset.
	Phase string
	// Start and End are offsets from Epoch; Duration is End-Start
	// (platform.initReport's durationMs).
	Start, End time.Duration
	Duration   time.Duration
}

// initFailureLocked returns the first extension failure of the current
// environment, as a Lambda error type.
func (s *Sim) initFailureLocked() (string, *ext) {
	for _, e := range s.exts {
		switch {
		case e.proc.launchErr != nil:
			return "Extension.LaunchError", e
		case e.failed != "":
			return "Extension.InitError", e
		case !e.proc.alive():
			return "Extension.Crash", e
		}
	}
	return "", nil
}

// Init waits until every extension has registered and then called
// /event/next, with the simulated runtime initialising in between, within
// Config.InitTimeout. It then closes the Telemetry API subscription, produces
// platform.initRuntimeDone, platform.extension and platform.initReport, and
// freezes the environment. On failure it resets the environment (SHUTDOWN
// "failure", then SIGKILL) and returns an error wrapping ErrInitTimeout or
// ErrInitFailed; the next Invoke initialises again.
func (s *Sim) Init(ctx context.Context) (InitResult, error) {
	s.mu.Lock()
	if s.phase != phaseInit {
		ph := s.phase
		s.mu.Unlock()
		return InitResult{}, fmt.Errorf("%w: Init in phase %s (call Start first)", ErrState, ph)
	}
	res := InitResult{Generation: s.gen, Phase: s.initPhase, Start: s.initStart}
	deadline := s.epoch.Add(s.initStart + s.cfg.InitTimeout)
	s.mu.Unlock()

	failed := func() error {
		if typ, e := s.initFailureLocked(); e != nil {
			return fmt.Errorf("%w: extension %s: %s", errExtensionFailed, e.name, typ)
		}
		return nil
	}
	err := s.waitFor(ctx, deadline, func() (bool, error) {
		if err := failed(); err != nil {
			return false, err
		}
		for _, e := range s.exts {
			if !e.registered {
				return false, nil
			}
		}
		return true, nil
	})
	if err == nil && s.cfg.RuntimeInit > 0 {
		err = sleepUntil(ctx, time.Now().Add(s.cfg.RuntimeInit))
		if err == nil && time.Now().After(deadline) {
			err = errDeadline
		}
	}
	if err == nil {
		s.mu.Lock()
		s.regOpen = false // rapid closes registration once the runtime is ready
		s.mu.Unlock()
		err = s.waitFor(ctx, deadline, func() (bool, error) {
			if err := failed(); err != nil {
				return false, err
			}
			for _, e := range s.exts {
				if !e.ready() {
					return false, nil
				}
			}
			return true, nil
		})
	}

	s.mu.Lock()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.phase = phaseBroken
		s.mu.Unlock()
		return res, err
	}
	s.regOpen, s.subOpen = false, false
	res.End = s.since()
	res.Duration = res.End - res.Start
	status, errType := "success", ""
	switch {
	case errors.Is(err, errDeadline):
		status, errType = "timeout", "Sandbox.Timeout"
		err = fmt.Errorf("%w after %s", ErrInitTimeout, s.cfg.InitTimeout)
	case err != nil:
		status, errType = "error", ""
		if t, _ := s.initFailureLocked(); t != "" {
			errType = t
		}
		err = fmt.Errorf("%w: %w", ErrInitFailed, err)
	}
	initType := "on-demand"
	s.emitLocked(TypeInitRuntimeDone, "", "", s.gen, mustRecord(initRuntimeDoneRecord{
		InitializationType: initType, Phase: s.initPhase, Status: status, ErrorType: errType,
	}), nil)
	for _, e := range s.exts {
		rec := extensionRecord{Name: e.name, State: "Ready", Events: e.events()}
		switch {
		case e.proc.launchErr != nil:
			rec.State, rec.ErrorType = "LaunchError", "Extension.LaunchError"
		case e.failed != "":
			rec.State, rec.ErrorType = "InitError", e.failed
		case !e.registered:
			rec.State = "Launched"
		case !e.ready():
			rec.State = "Registered"
		}
		s.emitLocked(TypeExtension, "", "", s.gen, mustRecord(rec), nil)
	}
	s.emitLocked(TypeInitReport, "", "", s.gen, mustRecord(initReportRecord{
		InitializationType: initType, Phase: s.initPhase, Status: status, ErrorType: errType,
		Metrics: initReportMetrics{DurationMs: msOf(res.Duration)},
	}), nil)
	if err != nil {
		s.markLocked(Mark{Kind: MarkInitDone, At: res.End, Err: err.Error()})
		s.mu.Unlock()
		if _, terr := s.teardown(ctx, "failure", resetDeadline, true); terr != nil {
			err = errors.Join(err, terr)
		}
		return res, err
	}
	s.markLocked(Mark{Kind: MarkInitDone, At: res.End})
	s.initDur = res.Duration
	s.cold = true
	s.phase = phaseReady
	s.freezeLocked()
	s.mu.Unlock()
	return res, nil
}

// Outcome is how a simulated function invocation ends.
type Outcome uint8

const (
	// Success: the function returns after Invocation.Duration.
	Success Outcome = iota
	// Timeout: the function runs until the deadline; the environment is reset.
	Timeout
	// Crash: the runtime exits after Invocation.Duration (Runtime.ExitError);
	// the environment is reset.
	Crash
)

func (o Outcome) String() string {
	switch o {
	case Timeout:
		return "timeout"
	case Crash:
		return "crash"
	}
	return "success"
}

// Invocation describes one simulated function invocation.
type Invocation struct {
	// Duration is the function's run time. A Duration of at least
	// Config.Timeout is a timeout.
	Duration time.Duration
	// LogLines function log lines are produced, evenly spread over Duration.
	LogLines int
	// LogFormat of the function's log lines.
	LogFormat LogFormat
	// LineSizes gives the size in bytes of each line's array element,
	// cycled; a size below the fixed part (about 150 bytes) yields the
	// shortest line. Empty: the shortest lines.
	LineSizes []int
	Outcome   Outcome
	// ResponseBytes is platform.runtimeDone's producedBytes. Default 64.
	ResponseBytes int
}

// ExtensionTiming is one extension's part in an invocation (offsets from Epoch).
type ExtensionTiming struct {
	Name string
	// Invoked is when INVOKE was handed to it; Next is its /event/next
	// after that (0 if it did not come back before the invocation ended:
	// at the deadline, or earlier at a crash).
	Invoked, Next time.Duration
}

// InvokeResult describes one invocation. Offsets are from Epoch.
type InvokeResult struct {
	RequestID string
	// N numbers the invocations of the Sim, from 1.
	N int
	// Init is set when the invocation first re-initialised the environment.
	Init *InitResult
	// Start is when the environment was thawed and INVOKE dispatched.
	Start time.Duration
	// Deadline is the invocation deadline (INVOKE's deadlineMs).
	Deadline time.Time
	// RuntimeDone is when the function ended (platform.runtimeDone).
	RuntimeDone time.Duration
	// ExtensionsDone is when the last extension called /event/next again
	// (0 if one did not by the deadline).
	ExtensionsDone time.Duration
	// Overhead is ExtensionsDone-RuntimeDone, at least 0: the time the
	// extensions added to the invocation.
	Overhead   time.Duration
	Extensions []ExtensionTiming
	// Status is platform.report's status: "success", "timeout" or "error".
	Status    string
	ErrorType string
	// Late lists extensions that had not called /event/next by the
	// deadline, when the invocation ran until it (a timeout); an
	// invocation that ended before, at a crash of the function or of an
	// extension, has none.
	Late []string
	// Reset is set when the invocation reset the environment (timeout,
	// crash, an extension failed or overran the deadline).
	Reset *ShutdownResult
	// Events counts the events generated from Start until the freeze or reset.
	Events int
}

// Invoke runs one invocation: thaw, platform.start, INVOKE to every
// extension registered for it, function log lines over inv.Duration,
// platform.runtimeDone when the function ends, then a wait until every
// extension has called /event/next again (bounded by the deadline),
// platform.report and freeze. A timeout, a crash, or an extension that fails
// or overruns the deadline resets the environment (see InvokeResult.Reset);
// the next Invoke then initialises a new one first.
func (s *Sim) Invoke(ctx context.Context, inv Invocation) (InvokeResult, error) {
	var res InvokeResult
	s.mu.Lock()
	ph, gen, closed := s.phase, s.gen, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return res, ErrClosed
	case ph == phaseIdle && gen > 0:
		// "Failure: crash/timeout in Invoke -> reset, re-Init on next use" [DG-EXT].
		if err := s.startEnv("invoke"); err != nil {
			ir, ierr := s.Init(ctx)
			res.Init = &ir
			return res, errors.Join(err, ierr)
		}
		ir, err := s.Init(ctx)
		res.Init = &ir
		if err != nil {
			return res, err
		}
	case ph != phaseReady:
		return res, fmt.Errorf("%w: Invoke in phase %s", ErrState, ph)
	}

	s.mu.Lock()
	s.phase = phaseInvoke
	s.invokes++
	res.N = s.invokes
	res.RequestID = newUUID()
	firstEvent := len(s.events)
	s.thawLocked()
	// Start and the deadline from one reading, after the thaw: a timeout
	// then lasts Config.Timeout from Start exactly.
	wallStart := time.Now()
	res.Deadline = wallStart.Add(s.cfg.Timeout)
	trace := traceContext{SpanID: randomHex(8), Type: "X-Amzn-Trace-Id", Value: traceHeader(wallStart)}
	res.Start = wallStart.Sub(s.epoch)
	s.emitLocked(TypeStart, res.RequestID, "", s.gen, mustRecord(startRecord{
		RequestID: res.RequestID, Version: s.cfg.FunctionVersion, Tracing: trace,
	}), nil)
	body := invokeEvent(res.Deadline, res.RequestID, s.functionARN(), trace.Value)
	for _, e := range s.exts {
		if e.onInvoke && e.proc.alive() && e.failed == "" {
			s.dispatchLocked(e, pendingEvent{body: body, kind: MarkInvoke, reqID: res.RequestID})
		}
	}
	gen = s.gen
	s.mu.Unlock()

	outcome, dur := inv.Outcome, inv.Duration
	if dur >= s.cfg.Timeout {
		outcome, dur = Timeout, s.cfg.Timeout
	}
	fnStart := s.epoch.Add(res.Start)
	err := s.runFunction(ctx, inv, res.RequestID, res.N, gen, fnStart, dur)
	if err == nil && outcome == Timeout {
		err = sleepUntil(ctx, res.Deadline)
	}
	if err != nil {
		s.mu.Lock()
		s.phase = phaseBroken
		s.mu.Unlock()
		return res, err
	}

	s.mu.Lock()
	res.RuntimeDone = s.since()
	rd := runtimeDoneRecord{
		RequestID: res.RequestID, Status: "success",
		Metrics: runtimeDoneMetrics{DurationMs: msOf(res.RuntimeDone - res.Start), ProducedBytes: inv.ResponseBytes},
		Tracing: trace,
	}
	if rd.Metrics.ProducedBytes == 0 {
		rd.Metrics.ProducedBytes = 64
	}
	var resetReason string
	// late: the invocation ran until its deadline (the function timed out,
	// or an extension overran); after a crash, it ended before.
	late := outcome == Timeout
	switch outcome {
	case Timeout:
		// rapid's reset: runtimeDone "timeout" without an errorType.
		rd.Status, rd.Metrics.ProducedBytes = "timeout", 0
		res.Status, resetReason = "timeout", "timeout"
	case Crash:
		rd.Status, rd.ErrorType, rd.Metrics.ProducedBytes = "error", "Runtime.ExitError", 0
		res.Status, res.ErrorType, resetReason = "error", "Runtime.ExitError", "failure"
	default:
		rd.Spans = []span{
			{Name: "responseLatency", Start: stamp(fnStart), DurationMs: msOf(res.RuntimeDone - res.Start)},
			{Name: "responseDuration", Start: stamp(s.epoch.Add(res.RuntimeDone)), DurationMs: 0.01},
		}
	}
	s.emitLocked(TypeRuntimeDone, res.RequestID, "", gen, mustRecord(rd), nil)
	s.markLocked(Mark{Kind: MarkRuntimeDone, At: res.RuntimeDone, RequestID: res.RequestID, Detail: rd.Status})
	if outcome == Crash {
		// "If any of the input streams are closed, Lambda flushes the logs"
		// [DG-TEL]. After runtimeDone is queued: a flush of a queue found
		// empty ends, and runtimeDone would wait the whole timeoutMs.
		for _, sub := range s.subs {
			if sub.gen == gen {
				sub.flushNow()
			}
		}
	}
	s.mu.Unlock()

	if resetReason == "" {
		err := s.waitFor(ctx, res.Deadline, func() (bool, error) {
			done := true
			for _, e := range s.exts {
				if !e.proc.alive() {
					return false, fmt.Errorf("%w: %s exited", errExtensionFailed, e.name)
				}
				if e.failed != "" {
					return false, fmt.Errorf("%w: %s reported %s", errExtensionFailed, e.name, e.failed)
				}
				if e.onInvoke && !e.ready() {
					done = false
				}
			}
			return done, nil
		})
		switch {
		case err == nil:
			res.Status = "success"
		case errors.Is(err, errDeadline):
			res.Status, resetReason, late = "timeout", "timeout", true
		case errors.Is(err, errExtensionFailed):
			res.Status, res.ErrorType, resetReason = "error", "Extension.Crash", "failure"
		default:
			s.mu.Lock()
			s.phase = phaseBroken
			s.mu.Unlock()
			return res, err
		}
	}

	s.mu.Lock()
	end := s.since()
	for _, e := range s.exts {
		if !e.onInvoke {
			continue
		}
		t := ExtensionTiming{Name: e.name, Invoked: e.lastInvoke}
		if e.ready() && e.lastNext >= res.Start {
			t.Next = e.lastNext
		} else if late {
			res.Late = append(res.Late, e.name)
		}
		res.Extensions = append(res.Extensions, t)
	}
	if resetReason == "" {
		res.ExtensionsDone = res.RuntimeDone
		for _, t := range res.Extensions {
			res.ExtensionsDone = max(res.ExtensionsDone, t.Next)
		}
		res.Overhead = res.ExtensionsDone - res.RuntimeDone
		end = res.ExtensionsDone
		s.markLocked(Mark{Kind: MarkExtensionsDone, RequestID: res.RequestID})
	}
	// platform.report: produced once every extension finished the invocation
	// [DG-LOGS]; after a reset it may never come.
	if resetReason == "" || !s.cfg.NoReportAfterReset {
		rep := reportRecord{RequestID: res.RequestID, Status: res.Status, ErrorType: res.ErrorType, Tracing: trace}
		d := end - res.Start
		rep.Metrics = reportMetrics{
			DurationMs:       msOf(d),
			BilledDurationMs: int((d + time.Millisecond - 1) / time.Millisecond),
			MemorySizeMB:     s.cfg.MemorySizeMB,
			MaxMemoryUsedMB:  s.memoryUsedMBLocked(),
		}
		if s.cold {
			rep.Metrics.InitDurationMs = msOf(s.initDur)
			s.cold = false
		}
		s.emitLocked(TypeReport, res.RequestID, "", gen, mustRecord(rep), nil)
	}
	res.Events = len(s.events) - firstEvent
	if resetReason == "" {
		s.phase = phaseReady
		s.freezeLocked()
		s.mu.Unlock()
		return res, nil
	}
	s.mu.Unlock()
	sr, err := s.teardown(ctx, resetReason, resetDeadline, true)
	res.Reset = &sr
	return res, err
}

// runFunction produces inv.LogLines function log lines spread evenly over
// [start, start+dur], in real time, and returns at start+dur.
func (s *Sim) runFunction(ctx context.Context, inv Invocation, reqID string, n, gen int, start time.Time, dur time.Duration) error {
	const perLock = 256 // lines emitted per lock hold, so API handlers are not starved
	lines := inv.LogLines
	end := start.Add(dur)
	var buf []byte
	for i := 0; i < lines; {
		now := time.Now()
		due := lines
		if now.Before(end) {
			due = int(int64(now.Sub(start)) * int64(lines+1) / int64(dur))
		}
		due = min(due, lines, i+perLock)
		if due > i {
			s.mu.Lock()
			for ; i < due; i++ {
				size := 0
				if len(inv.LineSizes) > 0 {
					size = inv.LineSizes[i%len(inv.LineSizes)]
				}
				s.seq++
				t := time.Now()
				buf = appendFunctionLine(buf[:0], t, reqID, s.seq, n, i, inv.LogFormat, size)
				s.addLocked(TypeFunction, reqID, "", gen, t, slices.Clone(buf), nil)
			}
			s.mu.Unlock()
			continue
		}
		next := start.Add(time.Duration(int64(dur) * int64(i+1) / int64(lines+1)))
		if err := sleepUntil(ctx, next); err != nil {
			return err
		}
	}
	return sleepUntil(ctx, end)
}

// memoryUsedMBLocked is platform.report's maxMemoryUsedMB: the simulated
// runtime plus the extensions' peak RSS.
func (s *Sim) memoryUsedMBLocked() int {
	var rss int64
	for _, e := range s.exts {
		e.proc.sampleRSS()
		rss += e.proc.peakRSS
	}
	return s.cfg.RuntimeMemoryMB + int(rss>>20)
}

func (s *Sim) functionARN() string {
	return "arn:aws:lambda:" + s.cfg.Region + ":" + s.cfg.AccountID + ":function:" + s.cfg.FunctionName
}

// invokeEvent renders the INVOKE event of /event/next [DG-EXT].
func invokeEvent(deadline time.Time, reqID, arn, trace string) []byte {
	b := []byte(`{"eventType":"INVOKE","deadlineMs":`)
	b = strconv.AppendInt(b, deadline.UnixMilli(), 10)
	b = append(b, `,"requestId":`...)
	b = jsonesc.AppendString(b, reqID)
	b = append(b, `,"invokedFunctionArn":`...)
	b = jsonesc.AppendString(b, arn)
	b = append(b, `,"tracing":{"type":"X-Amzn-Trace-Id","value":`...)
	b = jsonesc.AppendString(b, trace)
	return append(b, "}}"...)
}

// shutdownEvent renders the SHUTDOWN event of /event/next [DG-EXT].
func shutdownEvent(reason string, deadline time.Time) []byte {
	b, _ := json.Marshal(struct {
		EventType      string `json:"eventType"`
		ShutdownReason string `json:"shutdownReason"`
		DeadlineMs     int64  `json:"deadlineMs"`
	}{"SHUTDOWN", reason, deadline.UnixMilli()})
	return b
}

// ExtensionExit is how one extension ended in a shutdown or reset.
type ExtensionExit struct {
	Name string
	// After is the time from the start of the shutdown to the exit.
	After time.Duration
	// ExitCode is the exit status, or -1 when a signal ended the process.
	ExitCode int
	Signal   string
	// Killed says why the simulator sent SIGKILL ("" if it did not).
	Killed string
}

// ShutdownResult describes a Shutdown, or the reset after a failed
// invocation or Init.
type ShutdownResult struct {
	Reason string
	// Start is the offset from Epoch at which SHUTDOWN was dispatched;
	// Deadline is its deadlineMs.
	Start      time.Duration
	Deadline   time.Time
	Extensions []ExtensionExit
	// Killed lists the extensions that were sent SIGKILL.
	Killed []string
	// Undelivered counts events still queued or in flight for subscribers of
	// this environment when it ended.
	Undelivered int
}

// Shutdown ends the environment: thaw, SIGKILL for extensions not
// registered for SHUTDOWN, SHUTDOWN {shutdownReason, deadlineMs} to the
// others (at once, or at their next /event/next), telemetry delivery until
// each extension exits, SIGKILL for any still running at the deadline.
// reason defaults to "spindown" and deadline to 2 s. After a reset there is
// nothing left to shut down and Shutdown returns a zero result.
func (s *Sim) Shutdown(ctx context.Context, reason string, deadline time.Duration) (ShutdownResult, error) {
	if reason == "" {
		reason = "spindown"
	}
	if deadline <= 0 {
		deadline = 2 * time.Second
	}
	s.mu.Lock()
	ph, gen, closed := s.phase, s.gen, s.closed
	if ph == phaseIdle && gen > 0 {
		s.phase = phaseDown
	}
	s.mu.Unlock()
	switch {
	case closed:
		return ShutdownResult{}, ErrClosed
	case ph == phaseIdle && gen > 0:
		return ShutdownResult{Reason: reason}, nil
	case ph != phaseReady:
		return ShutdownResult{}, fmt.Errorf("%w: Shutdown in phase %s", ErrState, ph)
	}
	return s.teardown(ctx, reason, deadline, false)
}

// teardown sends SHUTDOWN to the current environment and waits for it to
// end. A reset leaves the Sim idle (Invoke re-initialises); otherwise down.
func (s *Sim) teardown(ctx context.Context, reason string, d time.Duration, reset bool) (ShutdownResult, error) {
	s.mu.Lock()
	s.phase = phaseShutdown
	if reset {
		s.markLocked(Mark{Kind: MarkReset, Detail: reason})
	}
	s.thawLocked()
	deadline := time.Now().Add(d)
	res := ShutdownResult{Reason: reason, Start: s.since(), Deadline: deadline}
	body := shutdownEvent(reason, deadline)
	for _, e := range s.exts {
		if !e.proc.alive() {
			continue
		}
		switch {
		case e.failed != "":
			// It reported /init/error or /exit/error and should exit by itself.
		case e.registered && e.onShutdn:
			s.dispatchLocked(e, pendingEvent{body: body, kind: MarkShutdown, detail: reason})
		default:
			// rapid kills external extensions not registered for SHUTDOWN at once.
			s.killLocked(e, "not registered for SHUTDOWN")
		}
	}
	exts := slices.Clone(s.exts)
	gen := s.gen
	s.mu.Unlock()

	err := s.waitFor(ctx, deadline, func() (bool, error) {
		for _, e := range exts {
			if e.proc.alive() {
				return false, nil
			}
		}
		return true, nil
	})
	if errors.Is(err, errDeadline) {
		err = nil
	}
	s.mu.Lock()
	for _, e := range exts {
		s.killLocked(e, "shutdown deadline exceeded")
	}
	s.mu.Unlock()
	for _, e := range exts {
		<-e.proc.exited // SIGKILL cannot be ignored; Wait returns promptly
	}

	s.mu.Lock()
	var subs []*subscriber
	for _, sub := range s.subs {
		if sub.gen == gen {
			sub.stop()
			subs = append(subs, sub)
		}
	}
	s.mu.Unlock()
	for _, sub := range subs {
		<-sub.done
		res.Undelivered += sub.undelivered()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range exts {
		p := e.proc
		x := ExtensionExit{Name: e.name, ExitCode: -1, Killed: p.killed}
		if p.exitedAt > 0 {
			x.After = p.exitedAt - res.Start
		}
		if p.state != nil {
			x.ExitCode = p.state.ExitCode()
		}
		if st := p.stats(); st.Signal != "" {
			x.Signal = st.Signal
		}
		if p.killed != "" {
			res.Killed = append(res.Killed, e.name)
		}
		res.Extensions = append(res.Extensions, x)
	}
	s.regOpen, s.subOpen = false, false
	if reset {
		s.phase = phaseIdle
	} else {
		s.phase = phaseDown
	}
	if s.closed {
		s.phase = phaseDown
	}
	return res, err
}

// Close kills every process, stops the Runtime API server and every
// delivery, and waits for the simulator's goroutines. It is idempotent.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, e := range s.exts {
		s.killLocked(e, "closed")
	}
	for _, sub := range s.subs {
		sub.stop()
	}
	s.notifyLocked()
	s.mu.Unlock()
	err := s.srv.Close()
	s.bg.Wait()
	s.client.CloseIdleConnections()
	return err
}
