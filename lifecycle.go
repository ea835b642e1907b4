package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/extapi"
	"github.com/kte-dev/kinesis-telemetry-extension/flush"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlysub"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

// Error types reported to /init/error and /exit/error (Category.Reason).
const (
	errTypeConfig    = "Extension.ConfigInvalid"
	errTypeListen    = "Extension.ListenFailed"
	errTypeSubscribe = "Extension.SubscribeFailed"
	errTypeRuntime   = "Extension.RuntimeAPIFailed"
)

// Timings of the lifecycle. The SHUTDOWN quiet period waits for the last
// telemetry (the final platform.report arrives after SHUTDOWN): Lambda
// delivers at the latest timeoutMs after an event is produced, so we wait
// until no POST has arrived for timeoutMs plus quietSlack, and never longer
// than shutdownQuietShare of the time left.
const (
	quietSlack = 30 * time.Millisecond
	// retryPoll is how often SHUTDOWN checks for a refused delivery's retry.
	retryPoll          = 5 * time.Millisecond
	shutdownQuietShare = 0.5
	// signalShutdownBudget bounds the orderly flush on SIGTERM/SIGINT
	// outside Lambda, like Lambda's own 2 s SHUTDOWN phase.
	signalShutdownBudget = 2 * time.Second
	// endFlushReserve is the part of an invocation's time that the wait
	// for runtimeDone (KTE_FLUSH=end, auto) leaves to the flush after it:
	// the wait ends this long before the deadline minus the margin, so that
	// one PutRecords (tens of ms in the same region) still fits when the
	// function ran until its deadline.
	endFlushReserve = 250 * time.Millisecond
	// An event's deadline is at most this far away (protocol.md, Timing):
	// Lambda's SHUTDOWN phase lasts 2 s, an invocation at most 15 min (the
	// longest function timeout).
	shutdownPhase = 2 * time.Second
	invokeLongest = 15 * time.Minute
	// shutdownFallback is the SHUTDOWN deadline, from its arrival, when the
	// event's cannot be used: within the 1.7 s or so that external
	// extensions get of the 2 s.
	shutdownFallback = 1500 * time.Millisecond
	// prevTailMaxWait bounds waitPrevious (with quietSlack): a wait at an
	// INVOKE is billed whenever the function returns first, so it must stay
	// short whatever KTE_BUFFER_TIMEOUT_MS says. It is that variable's
	// default: up to it the wait is as long as Lambda may hold the tail.
	prevTailMaxWait = 100 * time.Millisecond
	// writeOutRate is the rate, in bytes per second, at which the final
	// flush expects what is left in the ring to go to stderr as
	// KTE_UNDELIVERED lines (GiveUp); writeOutShare is the most of the
	// time left at the flush's start that it leaves for that while the
	// stream delivers, and writeOutPoll how often it checks. See
	// finalFlush. The rate is cautious: a reader of the pipe slower than
	// expected loses the rest to SIGKILL, while a faster one only costs
	// the flush time. The simulator took in 24 MiB of lines in 0.2–0.45 s
	// on an idle 2-core machine, and in more than 1 s with three other
	// processes keeping both cores busy; Lambda's reader is not documented.
	writeOutRate  = 16 << 20
	writeOutShare = 0.5
	writeOutPoll  = 10 * time.Millisecond
)

// extension is the running extension: what the lifecycle steps build.
type extension struct {
	env    env
	log    *slog.Logger
	api    *extapi.Client
	cfg    config.Config
	ring   *ring.Ring
	lis    *listener.Listener
	packer *batch.Packer
	reg    extapi.RegisterResponse
	envID  string // this execution environment's random id (enrichment, partition keys)
	done   *runtimeDone
	policy *flush.Policy // used by the lifecycle goroutine only
	prev   string        // request id of the previous INVOKE (lifecycle goroutine only)
	// deadlineWarned is set once an INVOKE's deadline was replaced
	// (lifecycle goroutine only).
	deadlineWarned bool
	// restored is set under SnapStart until the first event after the
	// restore has redrawn what Init drew at random (lifecycle goroutine
	// only; see redrawAfterRestore).
	restored bool
	// runtimeDones is set when platform.runtimeDone events will come: the
	// subscription includes platform events and the Telemetry API took it.
	runtimeDones bool
	stats        *emitter  // nil when KTE_METRICS is off
	clientOnce   sync.Once // buildClient
	gcOnce       sync.Once // setGCPercent
	// clientLost is canceled when the Kinesis client cannot be built
	// (buildClient): nothing can be sent then, so INVOKEs no longer flush
	// or wait (see invoke).
	clientLost context.Context
	loseClient context.CancelFunc
}

// initError reports a failure of the extension's Init to Lambda and returns
// the exit code. When the first /event/next went out during package
// initialisation (earlysub), Lambda has taken the extension's Init as over,
// and the failure is reported as an exit error.
func (x *extension) initError(ctx context.Context, errType string, err error) int {
	x.log.Error("kte: init failed", "error_type", errType, "error", err)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	report := x.api.InitError
	if _, early := x.api.NextSentEarly(); early {
		report = x.api.ExitError
	}
	if rerr := report(rctx, errType, err); rerr != nil {
		x.log.Error("kte: cannot report the init error", "error", rerr)
	}
	return 1
}

// boundSocket is the telemetry socket bound by listener.Listen, or why not.
type boundSocket struct {
	ln  net.Listener
	err error
}

// prepare builds the ring, the flush policy, the packer and the listener
// (build), then serves on the socket from bound, bound meanwhile. It runs
// once registered: the listener enriches with the registration's identity
// from its first POST, which may come at once when the subscription was
// sent during package initialisation (earlysub). The socket is closed when
// prepare fails.
func (x *extension) prepare(bound <-chan boundSocket) error {
	err := x.build()
	b := <-bound
	if err == nil {
		if err = b.err; err == nil {
			err = x.lis.StartOn(b.ln)
		}
		if err != nil {
			err = fmt.Errorf("cannot start the telemetry listener on port %d: %w", x.cfg.ListenPort, err)
		}
	}
	if err != nil && b.ln != nil {
		_ = b.ln.Close()
	}
	return err
}

// build is prepare's part that needs no socket.
func (x *extension) build() error {
	r, err := ring.NewOffHeap(x.cfg.RingBytes)
	if err != nil {
		return fmt.Errorf("KTE_RING_BYTES=%d: %w", x.cfg.RingBytes, err)
	}
	x.ring = r
	x.policy = flush.New(x.cfg.Flush)
	x.clientLost, x.loseClient = context.WithCancel(context.Background())
	v, _ := x.env.lookup(initTypeVar)
	x.restored = v == initTypeSnapStart
	var idBase uint64
	x.envID, idBase = initDraws()
	x.packer, err = batch.New(r, x.cfg, batch.Options{
		EnvironmentKey: x.envID,
		AlwaysOn:       x.cfg.LMI, // no freeze on Managed Instances: deliver continuously
		Undelivered:    x.env.stderr,
		Logger:         x.log,
	})
	if err != nil {
		return err
	}
	x.lis, err = listener.New(r, listener.Options{
		Port:          x.cfg.ListenPort,
		Path:          earlysub.Path,
		MaxBodyBytes:  2*x.cfg.BufferMaxBytes + config.PostSlackBytes,
		MaxFrameBytes: x.cfg.RecordMaxBytes - x.cfg.MaxPartitionKeyBytes(),
		Enrich:        x.cfg.Enrich,
		Identity:      x.identity(), // registered before prepare: the first POST is enriched in full
		IDBase:        idBase,
		Logger:        x.log,
		OnRuntimeDone: x.onRuntimeDone,
	})
	return err
}

// identity is what enrichment writes into every event: the registration's
// answer where there is one, else the environment's.
func (x *extension) identity() listener.Identity {
	reg := x.reg
	return listener.Identity{
		Function:    firstNonEmpty(reg.FunctionName, x.cfg.FunctionName),
		Version:     firstNonEmpty(reg.FunctionVersion, x.cfg.FunctionVersion),
		Region:      x.cfg.Region,
		Account:     reg.AccountID,
		Environment: x.envID,
	}
}

// start completes what prepare built: the metrics and the packer's
// goroutine. The Kinesis client comes later (buildClient).
func (x *extension) start(ctx context.Context) error {
	if x.cfg.Metrics {
		var err error
		if x.stats, err = x.newEmitter(); err != nil {
			return err
		}
	}
	go func() {
		if err := x.packer.Run(context.WithoutCancel(ctx)); err != nil {
			x.log.Error("kte: packer stopped", "error", err)
		}
	}()
	return nil
}

// afterInit runs once the first /event/next request has been written: the
// extension's part of Init is over, and what Init did not need is done now,
// off its path: the signal handlers, the start-up line (with the time Init
// took; once it is written, SIGTERM ends the extension in order), the advice
// on the flush settings, the Kinesis client and the GC target.
func (x *extension) afterInit(ctx context.Context) {
	// Taken first: Lambda (and the simulator) may freeze the process as
	// soon as the request is out, and the time frozen is not Init's.
	took := time.Since(x.env.start)
	at, nextEarly := x.api.NextSentEarly()
	if nextEarly {
		took = at.Sub(x.env.start)
	}
	if x.env.watchSignals != nil {
		x.env.watchSignals()
	}
	x.log.Info("kte: started", "init_ms", fmt.Sprintf("%.2f", float64(took.Microseconds())/1000),
		"version", version, "stream", x.cfg.StreamName, "listen", x.lis.Addr(), "ring_bytes", x.cfg.RingBytes,
		"flush", x.cfg.Flush.String(), "lmi", x.cfg.LMI, "registered_early", x.api.RegisteredEarly(),
		"subscribed_early", x.api.SubscribedEarly(), "next_early", nextEarly)
	x.adviseFlush()
	x.buildClient(ctx)
	x.setGCPercent()
}

// newKinesisClient is batch.NewKinesisClient; a test records when it runs.
var newKinesisClient = batch.NewKinesisClient

// buildClient builds the Kinesis client and gives it to the packer, once,
// in its own goroutine. The SDK's configuration and credential chain take
// about 1 ms of CPU that the first PutRecords needs and the Init phase does
// not, so the lifecycle calls it when its first /event/next request has been
// written (Init is then over as far as this extension goes), and again when
// that call returns, in case the request never went out. Until the client is
// there, events stay in the ring and a flush waits for it. When it cannot be
// built (a setting the SDK refuses, such as AWS_RETRY_MODE=legacy), no
// client will ever come: clientLost is canceled, which ends any flush or
// wait under way, and from then on INVOKEs neither flush nor wait; the
// events stay in the ring and SHUTDOWN writes them to stderr.
func (x *extension) buildClient(ctx context.Context) {
	if x.packer == nil {
		return // init failed before prepare built it
	}
	x.clientOnce.Do(func() {
		go func() {
			c, err := newKinesisClient(context.WithoutCancel(ctx), x.cfg)
			if err != nil {
				x.log.Error("kte: cannot build the Kinesis client, so nothing can be sent: events stay buffered "+
					"and are written to stderr as KTE_UNDELIVERED lines at shutdown", "error", err)
				x.loseClient()
				return
			}
			x.packer.SetClient(c)
		}()
	})
}

// SnapStart: Lambda runs the Init phase of a function version published with
// SnapStart once, snapshots the memory of the environment, and resumes every
// environment of that version from the snapshot, with
// AWS_LAMBDA_INITIALIZATION_TYPE=snap-start as it was during Init.
const (
	initTypeVar       = "AWS_LAMBDA_INITIALIZATION_TYPE"
	initTypeSnapStart = "snap-start"
)

// initDraws returns what Init draws at random: the environment id and the
// start of the wrapped-record ids. Drawn with math/rand/v2, which costs
// nothing at start (newEnvironmentID); under SnapStart its state is in the
// snapshot, so redrawAfterRestore draws again from crypto/rand. Tests give
// two lifecycles the same draws, as two environments resumed from one
// snapshot have.
var initDraws = func() (envID string, idBase uint64) { return newEnvironmentID(), rand.Uint64() }

// redrawAfterRestore gives an environment resumed from a SnapStart snapshot
// its own environment id, wrapped-record ids, generated partition keys, the
// ids of events written in several KTE_UNDELIVERED lines and the seed of
// the backoffs' jitter, which Init drew and every environment resumed from the snapshot shares.
// The loop calls it when /event/next returns the first event after the
// restore, before handling it. It draws from crypto/rand (the kernel's
// generator, which Lambda reseeds on restore). Handlers pick up the new
// identity from their next POST and the new id start at once (atomics); the
// packer, paused across the snapshot, takes the new keys at its next record,
// so every record sent after the restore has them. A POST handled between
// the restore and this call (platform.restore* events that Lambda delivers
// before the INVOKE reaches the extension) keeps the snapshot's environment
// id in its enrichment and, for wrapped payloads, kte.id.
func (x *extension) redrawAfterRestore() {
	var b [48]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	x.envID = hex.EncodeToString(b[:16])
	x.lis.RedrawIDs(binary.LittleEndian.Uint64(b[16:24]))
	if err := x.lis.SetIdentity(x.identity()); err != nil {
		x.log.Warn("kte: cannot set the new identity after a SnapStart restore", "error", err)
	}
	if err := x.packer.Redraw(x.envID, [24]byte(b[24:])); err != nil {
		x.log.Warn("kte: cannot redraw the partition keys after a SnapStart restore", "error", err)
	}
	x.log.Info("kte: resumed from a SnapStart snapshot: new environment id, wrapped-record ids and partition keys",
		"environment", x.envID)
}

// gcPercent is the garbage collector's target (GOGC) unless GOGC sets one
// (gogcSets): at 50 the heap peaks near 1.5 times what is live instead of
// twice, which took 1.3-1.5 MiB off the peak RSS at 1,000 and 10,000 events/s
// for 0.1-0.2 ms more CPU per second (go run ./bench/load -env GOGC=...).
const gcPercent = 50

// setGCPercent applies gcPercent after the first collection once Init is
// over (the heap then holds well under the 4 MB that triggers it). Set at
// once, it would bring that collection forward (the heap minimum falls
// from 4 MB to 2 MB): in an environment that only starts, or stays quiet,
// that cycle costs 0.8 MiB of peak RSS for nothing (go run ./bench/coldstart).
// The first collection is seen by a cleanup on an object dropped at once.
func (x *extension) setGCPercent() {
	x.gcOnce.Do(func() {
		set := x.env.setGCPercent
		if v, ok := x.env.lookup("GOGC"); ok && gogcSets(v) || set == nil {
			return
		}
		runtime.AddCleanup(new(gcSentinel), func(int) { set(gcPercent) }, 0)
	})
}

// gogcSets reports whether the Go runtime takes v, the value of GOGC, as a
// target: "off" or a decimal integer (runtime.readGOGC). Anything else,
// the empty string included, leaves the runtime's default of 100, which
// gcPercent then replaces.
func gogcSets(v string) bool {
	if v == "off" {
		return true
	}
	_, err := strconv.ParseInt(v, 10, 32)
	return err == nil
}

// gcSentinel is large enough not to share a tiny-allocator block, whose
// cleanups may never run.
type gcSentinel struct{ _ [32]byte }

func (x *extension) subscribe(ctx context.Context) error {
	port := x.cfg.ListenPort
	if a, ok := x.lis.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	sub := earlysub.Subscription(x.cfg, port)
	_, err := x.api.Subscribe(ctx, sub)
	if errors.Is(err, extapi.ErrTelemetryNotSupported) {
		x.log.Warn("kte: the Telemetry API is not supported here (a local emulator?); running without telemetry", "detail", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot subscribe to the Telemetry API at %s: %w", sub.URI, err)
	}
	x.runtimeDones = slices.Contains(x.cfg.Types, config.TypePlatform)
	return nil
}

// loop blocks on /event/next until SHUTDOWN or a signal.
func (x *extension) loop(ctx context.Context) int {
	afterInit := func() { x.afterInit(ctx) }
	for {
		ev, err := x.api.NextWith(ctx, afterInit)
		afterInit = nil
		x.buildClient(ctx)
		if x.restored && err == nil {
			x.restored = false
			x.redrawAfterRestore()
		}
		if err != nil {
			if ctx.Err() != nil {
				// SIGTERM/SIGINT outside Lambda: the same orderly flush.
				x.shutdown(time.Now().Add(signalShutdownBudget), "signal")
				return 0
			}
			x.log.Error("kte: /event/next failed", "error", err)
			x.shutdown(time.Now().Add(signalShutdownBudget), "runtime_api_error")
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = x.api.ExitError(rctx, errTypeRuntime, err)
			cancel()
			return 1
		}
		switch ev.EventType {
		case extapi.Invoke:
			x.invoke(ctx, &ev)
		case extapi.Shutdown:
			x.shutdown(x.deadline(&ev, time.Now()), summaryReason(ev.ShutdownReason))
			return 0
		default:
			x.log.Warn("kte: unknown event type from /event/next", "type", ev.EventType)
		}
	}
}

// invoke handles one INVOKE as the flush policy says (see package flush),
// and returns (so that /event/next is called) only when nothing is in
// flight: the environment may freeze as soon as /event/next is called.
// Whatever the policy, it returns before the invoke's deadline minus the
// margin, and at once when the Kinesis client cannot be built.
func (x *extension) invoke(ctx context.Context, ev *extapi.Event) {
	now := time.Now()
	end := x.deadline(ev, now).Add(-x.cfg.ShutdownMargin)
	prev := x.prev
	x.prev = ev.RequestID
	action := x.policy.Invoke(now, x.fullBatchBuffered())
	if x.clientLost.Err() != nil {
		action = flush.Skip // no client will come: a flush could only wait
	}
	ctx, stop := x.whileClientMayCome(ctx)
	defer stop()
	switch action {
	case flush.Now:
		x.packer.Resume()
		x.waitPrevious(ctx, prev, now, end)
		x.invokeFlush(ctx, now, end) // the wait counts toward KTE_FLUSH_MAX_MS
	case flush.AfterRuntimeDone:
		// Full batches go while we wait; the rest after runtimeDone. With
		// no runtimeDone to come (the Telemetry API not supported here;
		// config refuses end and auto without platform), there is nothing
		// to wait for.
		x.packer.Resume()
		until := now.Add(x.cfg.FlushEndMaxWait)
		if last := end.Add(-endFlushReserve); last.Before(until) {
			until = last
		}
		if x.runtimeDones && !x.done.wait(ctx, ev.RequestID, until) {
			x.stats.endWaitExpired()
		}
		x.invokeFlush(ctx, time.Now(), end)
	case flush.Skip:
		// The packer stays paused since the last flush: nothing in flight.
	}
	if x.stats != nil && x.stats.due(time.Now()) {
		x.emitMetrics()
	}
}

// deadline returns the deadline of ev, an INVOKE or a SHUTDOWN that
// arrived at now, or a fallback when it is missing, already past, or
// further away than Lambda gives (shutdownPhase, invokeLongest): taken as
// it is, such a deadline would give up at SHUTDOWN on everything buffered
// without a PutRecords call, skip the flush at an INVOKE, or let either run
// past the time Lambda gives it (at SHUTDOWN, into the SIGKILL, with
// nothing written to stderr). The fallback is shutdownFallback for
// SHUTDOWN, and for INVOKE KTE_FLUSH_MAX_MS plus the margin (the flush gets
// KTE_FLUSH_MAX_MS). It logs a warning, for INVOKE the first time only (an
// emulator that omits the deadline omits it from every event).
func (x *extension) deadline(ev *extapi.Event, now time.Time) time.Time {
	d := ev.Deadline()
	longest, fallback := shutdownPhase, shutdownFallback
	if ev.EventType == extapi.Invoke {
		longest, fallback = invokeLongest, x.cfg.FlushMax+x.cfg.ShutdownMargin
	}
	if d.After(now) && d.Sub(now) <= longest {
		return d
	}
	if ev.EventType == extapi.Invoke {
		if x.deadlineWarned {
			return now.Add(fallback)
		}
		x.deadlineWarned = true
	}
	x.log.Warn("kte: the event's deadline is missing, past or further than Lambda gives; using a fallback",
		"type", ev.EventType, "deadline_ms", ev.DeadlineMs, "fallback_ms", fallback.Milliseconds())
	return now.Add(fallback)
}

// waitPrevious waits, before an invoke-style flush, for the previous
// invocation's runtimeDone if it has not arrived yet. The end of an
// invocation (its last log lines, runtimeDone, report) is usually still in
// Lambda's telemetry buffer when the environment freezes, and reaches the
// listener just after the thaw, while the flush at INVOKE has already begun;
// a flush does not chase new events, so without this wait that telemetry
// would wait one more invocation. Lambda delivers it within
// KTE_BUFFER_TIMEOUT_MS of the end of the invocation, just after the thaw
// when the gap was longer. The wait runs concurrently with the function,
// but the time it runs past the function's end is billed, so it is
// bounded by KTE_BUFFER_TIMEOUT_MS, at most prevTailMaxWait, plus
// quietSlack, by half of KTE_FLUSH_MAX_MS (the other half is the flush's),
// and leaves endFlushReserve before the deadline; a tail held longer goes
// with the next flush. It is skipped when no runtimeDone will come (no
// platform subscription, or the Telemetry API is not supported).
func (x *extension) waitPrevious(ctx context.Context, prev string, now, end time.Time) {
	if prev == "" || !x.runtimeDones {
		return
	}
	wait := min(time.Duration(x.cfg.BufferTimeoutMs)*time.Millisecond, prevTailMaxWait) + quietSlack
	until := now.Add(min(wait, x.cfg.FlushMax/2))
	if last := end.Add(-endFlushReserve); last.Before(until) {
		until = last
	}
	x.done.wait(ctx, prev, until)
}

// whileClientMayCome returns ctx, canceled also when the Kinesis client
// turns out not to be buildable (clientLost), so that a flush or a wait for
// runtimeDone that began while it was being built ends then; stop releases
// it.
func (x *extension) whileClientMayCome(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(x.clientLost, cancel)
	return ctx, func() {
		unhook()
		cancel()
	}
}

// invokeFlush is a flush at an INVOKE: it ends at end or KTE_FLUSH_MAX_MS
// after from, whichever is first, so that a slow or unavailable stream
// adds a bounded time to each invocation; what is left stays buffered for
// the next flush.
func (x *extension) invokeFlush(ctx context.Context, from, end time.Time) batch.FlushResult {
	if budget := from.Add(x.cfg.FlushMax); budget.Before(end) {
		end = budget
	}
	return x.flush(ctx, end)
}

// flush delivers what is buffered, within end, and records the flush for
// the policy and the metrics.
func (x *extension) flush(ctx context.Context, end time.Time) batch.FlushResult {
	start := time.Now()
	fctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	res := x.packer.Flush(fctx)
	x.policy.Flushed(start)
	x.stats.flushed(res)
	return res
}

// fullBatchBuffered reports whether the ring holds at least a full batch
// (by records or bytes), or enough to put it under pressure (a quarter of
// it, the packer's default PressureBytes): periodic then flushes at once.
func (x *extension) fullBatchBuffered() bool {
	rs := x.ring.Stats()
	return bufferedFrames(rs, x.packer.Stats()) >= uint64(x.cfg.BatchMaxRecords) ||
		rs.InUse >= x.cfg.BatchMaxBytes || rs.InUse >= rs.Size/4
}

// bufferedFrames is the number of frames committed to the ring and not yet
// settled (delivered, or given up on).
func bufferedFrames(rs ring.Stats, ps batch.Stats) uint64 {
	settled := ps.Events + ps.Oversize + ps.GivenUp
	if rs.FramesWritten < settled {
		return 0
	}
	return rs.FramesWritten - settled
}

// adviseFlush logs once what the configuration means for KTE_FLUSH.
func (x *extension) adviseFlush() {
	switch {
	case x.cfg.LMI && x.cfg.Flush.Mode != config.FlushInvoke:
		x.log.Info("kte: KTE_FLUSH is ignored on Lambda Managed Instances: there is no INVOKE and no freeze, events are delivered continuously",
			"flush", x.cfg.Flush.String())
	case (x.cfg.Flush.Mode == config.FlushEnd || x.cfg.Flush.Mode == config.FlushAuto) &&
		time.Duration(x.cfg.BufferTimeoutMs)*time.Millisecond >= x.cfg.FlushEndMaxWait:
		x.log.Warn("kte: platform.runtimeDone reaches the extension up to KTE_BUFFER_TIMEOUT_MS after the function ends, "+
			"which is not shorter than KTE_FLUSH_END_MAX_WAIT_MS: the wait will often end without it; lower KTE_BUFFER_TIMEOUT_MS (25 is the minimum)",
			"flush", x.cfg.Flush.String(), "buffer_timeout_ms", x.cfg.BufferTimeoutMs, "end_max_wait_ms", x.cfg.FlushEndMaxWait.Milliseconds())
	case x.cfg.Flush.Mode == config.FlushEnd && x.cfg.BufferTimeoutMs > config.TelemetryMinTimeoutMs:
		x.log.Warn("kte: with KTE_FLUSH=end every invocation waits for its platform.runtimeDone, which Lambda holds up to "+
			"KTE_BUFFER_TIMEOUT_MS after the function ends (billed time): set KTE_BUFFER_TIMEOUT_MS=25, the minimum",
			"flush", x.cfg.Flush.String(), "buffer_timeout_ms", x.cfg.BufferTimeoutMs)
	case !x.cfg.LMI && x.cfg.Flush.Mode != config.FlushEnd && x.runtimeDones &&
		time.Duration(x.cfg.BufferTimeoutMs)*time.Millisecond > prevTailMaxWait:
		x.log.Warn(fmt.Sprintf("kte: the end of an invocation reaches the extension up to KTE_BUFFER_TIMEOUT_MS after the function ends, "+
			"and a delivery at the next INVOKE waits for it at most %d ms: when invocations come sooner than KTE_BUFFER_TIMEOUT_MS apart, "+
			"it is delivered one invocation later; lower KTE_BUFFER_TIMEOUT_MS to %d or less",
			(prevTailMaxWait+quietSlack).Milliseconds(), prevTailMaxWait.Milliseconds()),
			"flush", x.cfg.Flush.String(), "buffer_timeout_ms", x.cfg.BufferTimeoutMs)
	}
}

// shutdown ends the extension, as the package doc's steps for the end say:
// it waits for late telemetry, stops the listener, flushes within the
// deadline, writes what could not be delivered to stderr, then the last
// metrics line and the summary. The caller exits.
func (x *extension) shutdown(deadline time.Time, reason string) {
	end := deadline.Add(-x.cfg.ShutdownMargin)
	x.packer.Resume()
	x.waitQuiet(end)
	x.stopListener()
	ctx, stop := x.whileClientMayCome(context.Background())
	res := x.finalFlush(ctx, end)
	stop()
	undelivered := x.packer.GiveUp(x.env.stderr, "shutdown_deadline")
	if x.stats != nil {
		x.stats.stopTicker()
		x.emitMetrics()
	}
	x.printSummary(reason, res, undelivered)
}

// finalFlush is the flush at shutdown: it ends at end, or earlier when the
// bytes still in the ring need the time left to be written to stderr
// (GiveUp) at writeOutRate, so that every event is delivered or written out
// and the summary follows, even when the stream is down and the ring large.
// It is checked every writeOutPoll, so as the flush delivers, less is left
// for the write-out. While the stream delivers, the time left for the
// write-out is at most writeOutShare of the time left when the flush
// starts: a ring too large to be written out in that share may then lose
// the rest to Lambda's SIGKILL, if the flush delivers too little of it.
// While calls deliver nothing (Packer.Stalled: an outage, a stream
// throttling everything), the write-out gets all the time it needs.
func (x *extension) finalFlush(parent context.Context, end time.Time) batch.FlushResult {
	start := time.Now()
	earliest := start.Add(time.Duration(float64(end.Sub(start)) * (1 - writeOutShare)))
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stop := func() time.Time {
		if t := end.Add(-writeOutTime(x.ring.Stats().InUse)); t.After(earliest) || x.packer.Stalled() {
			return t
		}
		return earliest
	}
	go func() {
		for {
			left := time.Until(stop())
			if left <= 0 {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(left, writeOutPoll)):
			}
		}
	}()
	return x.flush(ctx, end)
}

// writeOutTime is how long n bytes of events take to write to stderr at
// writeOutRate.
func writeOutTime(n int) time.Duration {
	return time.Duration(float64(n) / writeOutRate * float64(time.Second))
}

// waitQuiet keeps the listener open until no telemetry has arrived for
// timeoutMs + quietSlack since SHUTDOWN or the last POST's answer,
// whichever is later, no POST is being handled and no refused delivery is
// waiting for Lambda's retry (RetryPending), or until its share of the time
// left is spent. Telemetry produced before the freeze (the last
// platform.report) is delivered by Lambda within timeoutMs of the thaw; a
// delivery answered 503 for want of ring room comes back after Lambda's
// backoff, and the packer is sending meanwhile, so it will fit. A POST
// waiting for room is answered up to FullWait after it arrived, which can
// be longer than the quiet period: counting from its arrival, SHUTDOWN
// stopped listening before its 503, and lost the retry.
func (x *extension) waitQuiet(end time.Time) {
	quiet := time.Duration(x.cfg.BufferTimeoutMs)*time.Millisecond + quietSlack
	from := time.Now()
	limit := from.Add(time.Duration(float64(time.Until(end)) * shutdownQuietShare))
	for {
		now := time.Now()
		if !now.Before(limit) {
			return
		}
		last := x.lis.LastPost()
		if last.Before(from) {
			last = from
		}
		since := now.Sub(last)
		if since >= quiet && !x.lis.RetryPending() {
			return
		}
		wait := retryPoll
		if since < quiet {
			wait = quiet - since
		}
		time.Sleep(min(wait, limit.Sub(now)))
	}
}

func (x *extension) stopListener() {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := x.lis.Shutdown(ctx); err != nil {
		x.log.Warn("kte: listener did not stop cleanly", "error", err)
	}
}
