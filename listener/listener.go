// Package listener receives Lambda Telemetry API deliveries over HTTP and
// writes every event, as raw bytes, into the ring.
//
// A delivery is a POST whose body is a JSON array of event objects. The
// handler validates and splits the array without building a tree
// (SplitArray), optionally adds an identity object to each event
// (enrichment), reserves one ring block for all the POST's events and
// commits them together: it answers 200 only when every event is in the
// ring. Bodies that are not a JSON array of objects, and events too large
// for one Kinesis record, are stored as marked "wrapped" records (see
// QuarantineMalformed) rather than dropped.
//
// The handler does not allocate in steady state and does not log on its
// success path (the extension may be subscribed to its own logs).
package listener

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/listener/socket"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

// Defaults for zero Options fields.
const (
	DefaultHost           = socket.DefaultHost
	DefaultPort           = 4243
	DefaultPath           = "/telemetry"
	DefaultMaxBodyBytes   = 2*256<<10 + 64<<10 // 2 x the default maxBytes + slack
	DefaultMaxFrameBytes  = 1<<20 - 256        // 1 MiB record minus a 256-byte partition key
	DefaultMaxPrefixBytes = 512
	DefaultFullWait       = 50 * time.Millisecond
	DefaultFullPoll       = time.Millisecond
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultLogEvery       = 10 * time.Second
)

// Errors returned by the Listener.
var (
	// ErrPrefixTooLong means the identity's enrichment prefix is longer than
	// Options.MaxPrefixBytes.
	ErrPrefixTooLong = errors.New("listener: identity prefix longer than MaxPrefixBytes")
	// ErrStarted means Start or StartOn was called twice.
	ErrStarted = errors.New("listener: already started")
)

// Options configure a Listener. Zero values take the documented defaults,
// except Port.
type Options struct {
	// Host to listen on (default "sandbox.localdomain"). If it does not
	// resolve, the listener uses 127.0.0.1 and logs that once. An address
	// that resolves to all interfaces (0.0.0.0, ::) is refused.
	Host string
	// Port to listen on. Unlike the other fields, 0 is not "default": it
	// picks a free port, as net.Listen does (tests); see Addr. The lifecycle
	// passes KTE_LISTEN_PORT (default DefaultPort, 4243).
	Port int
	// Path is the only path that accepts POSTs (default "/telemetry"); other
	// paths answer 404, other methods 405.
	Path string
	// MaxBodyBytes is the largest body accepted; larger bodies get 413
	// (default 576 KiB; set 2 x the subscription's maxBytes + slack).
	MaxBodyBytes int
	// MaxFrameBytes is the largest ring frame (one Kinesis record's data);
	// larger events are wrapped in parts (default 1 MiB - 256: the record
	// limit minus the longest partition key).
	MaxFrameBytes int
	// MaxPrefixBytes bounds the enrichment prefix SetIdentity accepts
	// (default 512); ring sizing assumes it per event.
	MaxPrefixBytes int
	// Enrich adds Identity as a "lambda" object to every event.
	Enrich bool
	// Identity is the initial identity; SetIdentity replaces it.
	Identity Identity
	// IDBase is where the ids of wrapped payloads (kte.id) start (default:
	// drawn at random); RedrawIDs moves them.
	IDBase uint64
	// FullWait is how long a POST waits for ring room before 503 (default
	// 50ms); FullPoll is how often it retries meanwhile (default 1ms).
	FullWait, FullPoll time.Duration
	// HTTP timeouts (defaults 10s, 10s, 2m). Shutdown needs them non-zero.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Logger for the rare lines (nil discards). At most one line per
	// LogEvery (default 10s) per kind of problem.
	Logger   *slog.Logger
	LogEvery time.Duration
	// OnRuntimeDone, if set, is called for each platform.runtimeDone event
	// with its record's requestId, after the POST's events are committed and
	// before the response. requestID is valid only during the call. Called
	// from handler goroutines, possibly concurrently.
	OnRuntimeDone func(requestID []byte)
}

func (o *Options) setDefaults() {
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	def(&o.MaxFrameBytes, DefaultMaxFrameBytes)
	def(&o.MaxPrefixBytes, DefaultMaxPrefixBytes)
	if o.IDBase == 0 {
		o.IDBase = rand.Uint64()
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defD(&o.FullWait, DefaultFullWait)
	defD(&o.FullPoll, DefaultFullPoll)
	defD(&o.ReadTimeout, DefaultReadTimeout)
	defD(&o.WriteTimeout, DefaultWriteTimeout)
	defD(&o.IdleTimeout, DefaultIdleTimeout)
	defD(&o.LogEvery, DefaultLogEvery)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Listener is the telemetry endpoint: a fasthttp server whose handler
// writes into one ring. Its handler runs on many fasthttp goroutines at
// once; SetIdentity, RedrawIDs, Stats, LastPost and Addr are safe from any
// goroutine.
// A Listener must not be copied after first use.
type Listener struct {
	_ noCopy

	// Read-only after New.
	ring      *ring.Ring
	opts      Options
	path      string
	maxFrame  int
	log       *slog.Logger
	srv       *fasthttp.Server
	epoch     time.Time // monotonic origin of lastPost and the log limiters
	idBase    uint64    // random start of wrapped-record ids
	scratches sync.Pool // *scratch: per-request buffers, one per handler in flight

	// prefix is the enrichment prefix (appendPrefix) or nil when enrichment
	// is off. SetIdentity stores a new one; a handler loads it once per POST,
	// so every frame of a POST has the same prefix.
	prefix atomic.Pointer[[]byte]
	// lastPost is when the last POST on the path was answered, in
	// nanoseconds since epoch (monotonic); handlers store it with the
	// answer, LastPost loads it.
	lastPost atomic.Int64
	// lastRefused is the lastPost value of the last POST answered 503;
	// handlers store it with the answer, RetryPending loads it.
	lastRefused atomic.Int64
	// handling counts the POSTs on the path being handled.
	handling atomic.Int32
	// closing is set by Shutdown: from then on a POST is answered 503
	// without touching the ring.
	// A handler adds itself to handling before it loads closing, and
	// Shutdown stores closing before it loads handling (sequentially
	// consistent atomics): either the handler sees closing, or Shutdown
	// waits for it.
	closing atomic.Bool
	// idSeq numbers wrapped payloads: a payload's id is idBase plus the
	// value its handler adds. RedrawIDs adds a random offset to it.
	idSeq atomic.Uint64

	// Counters: handler goroutines add, Stats loads. Each is touched at most
	// a few times per POST, so they are not padded apart.
	posts, accepted, events, frames, bodyBytes, frameBytes        atomic.Uint64
	malformed, overflow, oversize, refusedFull, tooLarge, badReqs atomic.Uint64
	droppedEvents, droppedRecords, droppedBytes                   atomic.Uint64

	logMalformed, logOversize, logFull, logTooLarge, logServer limiter

	// Serving state, guarded by mu.
	mu        sync.Mutex
	ln        net.Listener
	accepting chan struct{} // closed at Serve's first Accept
	closed    chan struct{} // closed once the server's Close of the listening socket has returned
	served    chan struct{} // closed when Serve returns
	serveErr  error
}

// scratch is one handler's working memory, reused through a sync.Pool:
// handlers run on many goroutines with no single owner, and the pool keeps
// one scratch per handler in flight. Nothing in it outlives the request.
type scratch struct {
	events []Event
	groups []group
	parts  []part
	hdr    []byte
	id     []byte      // decoded requestId
	syntax SyntaxError // why a body is malformed (SplitArrayTo)
	reason []byte      // its text, for kte.reason
}

// New returns a Listener writing into r. It checks the options against the
// ring: every body up to MaxBodyBytes must be storable (MaxQuarantineBlock)
// and MaxFrameBytes must leave room for wrapped records. The server does not
// run until Start or StartOn.
func New(r *ring.Ring, o Options) (*Listener, error) {
	o.setDefaults()
	if o.Port < 0 || o.Port > 65535 {
		return nil, fmt.Errorf("listener: port %d out of range", o.Port)
	}
	if len(o.Path) == 0 || o.Path[0] != '/' {
		return nil, fmt.Errorf("listener: path %q must start with '/'", o.Path)
	}
	if minFrame := maxHeaderLen(o.MaxPrefixBytes) + 2 + minChunkBytes; o.MaxFrameBytes < minFrame {
		return nil, fmt.Errorf("listener: MaxFrameBytes %d is below %d (room for a wrapped record with a %d-byte prefix)",
			o.MaxFrameBytes, minFrame, o.MaxPrefixBytes)
	}
	if need := MaxQuarantineBlock(o.MaxBodyBytes, o.MaxFrameBytes, o.MaxPrefixBytes); r.MaxBlock() < need {
		return nil, fmt.Errorf("listener: ring of %d bytes cannot hold a wrapped body of %d bytes: need a block of %d, ring.MaxBlock is %d",
			r.Size(), o.MaxBodyBytes, need, r.MaxBlock())
	}
	l := &Listener{
		ring:     r,
		opts:     o,
		path:     o.Path,
		maxFrame: o.MaxFrameBytes,
		log:      o.Logger,
		epoch:    time.Now(),
		idBase:   o.IDBase,
	}
	l.scratches.New = func() any { return &scratch{events: make([]Event, 0, 256)} }
	if o.Enrich {
		if err := l.SetIdentity(o.Identity); err != nil {
			return nil, err
		}
	}
	l.srv = &fasthttp.Server{
		Handler:                      l.handle,
		ErrorHandler:                 l.handleError,
		MaxRequestBodySize:           o.MaxBodyBytes,
		ReadTimeout:                  o.ReadTimeout,
		WriteTimeout:                 o.WriteTimeout,
		IdleTimeout:                  o.IdleTimeout,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{l},
	}
	return l, nil
}

// SetIdentity replaces the identity written into enriched events; POSTs
// already being handled keep the previous one. It is a no-op when
// enrichment is off. Safe from any goroutine.
func (l *Listener) SetIdentity(id Identity) error {
	if !l.opts.Enrich {
		return nil
	}
	p := appendPrefix(nil, id)
	if len(p) > l.opts.MaxPrefixBytes {
		return fmt.Errorf("cannot set identity (%d-byte prefix, at most %d): %w", len(p), l.opts.MaxPrefixBytes, ErrPrefixTooLong)
	}
	l.prefix.Store(&p)
	return nil
}

// RedrawIDs moves the ids of wrapped payloads (kte.id) by off, a random
// number, so that processes resumed from one snapshot (Lambda SnapStart),
// which drew the same start, do not share them: a consumer reassembling
// parts by id would mix their payloads. Ids already given out keep their
// value; later ones continue from the new start. Safe from any goroutine:
// off is added to the sequence the handlers add to. It does no allocation.
func (l *Listener) RedrawIDs(off uint64) { l.idSeq.Add(off) }

// Start resolves Options.Host, listens on it and serves in a new goroutine.
// It returns once the socket is bound (see Addr).
func (l *Listener) Start() error {
	ln, err := socket.Listen(l.opts.Host, l.opts.Port, l.log)
	if err != nil {
		return err
	}
	if err := l.StartOn(ln); err != nil {
		_ = ln.Close()
		return err
	}
	return nil
}

// StartOn serves on ln (for example a fasthttputil.InmemoryListener) in a
// new goroutine. It returns at once: connections made before the server's
// first Accept wait in ln's backlog (the lifecycle subscribes meanwhile).
// The Listener owns ln from now on; Shutdown closes it.
func (l *Listener) StartOn(ln net.Listener) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return ErrStarted
	}
	sl := &startListener{Listener: ln, accepting: make(chan struct{}), closed: make(chan struct{})}
	l.ln = ln
	l.accepting, l.closed = sl.accepting, sl.closed
	l.served = make(chan struct{})
	go func() {
		err := l.srv.Serve(sl)
		l.mu.Lock()
		l.serveErr = err
		l.mu.Unlock()
		close(l.served)
	}()
	return nil
}

// startListener reports the server's first Accept call: fasthttp registers
// the listener for Shutdown before it, so from then on Shutdown sees it
// (Shutdown waits for it, so that it cannot miss a server just started).
// It also reports when the server's Close of it has returned: only then is
// the socket closed (a blocked Accept, and so Serve, may return before).
type startListener struct {
	net.Listener
	once, closeOnce sync.Once
	accepting       chan struct{}
	closed          chan struct{}
}

func (s *startListener) Accept() (net.Conn, error) {
	s.once.Do(func() { close(s.accepting) })
	return s.Listener.Accept()
}

func (s *startListener) Close() error {
	err := s.Listener.Close()
	s.closeOnce.Do(func() { close(s.closed) })
	return err
}

// Addr returns the address the listener is bound to, or nil before Start.
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Shutdown stops listening and returns once no POST can store anything any
// more: POSTs in hand have been handled (one waiting for ring room waits
// at most FullWait), later ones are answered 503 without touching the ring,
// and the listening socket is closed. It returns ctx's
// error if that takes longer than ctx allows, or an error Serve returned.
//
// The server's connections are closed in the background: fasthttp checks
// for them only every 100 ms, and at SHUTDOWN that time belongs to the
// final flush (Lambda's keep-alive connection is always open).
func (l *Listener) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	started, accepting, closed, served := l.ln != nil, l.accepting, l.closed, l.served
	l.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-accepting:
	case <-served: // Serve failed at once; its error is reported below
	case <-ctx.Done():
		return fmt.Errorf("cannot shut the telemetry listener down: %w", ctx.Err())
	}
	l.closing.Store(true)
	go func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), connCloseTimeout)
		defer cancel()
		_ = l.srv.ShutdownWithContext(sctx)
	}()
	// The socket is closed once the server's Close of it has returned; its
	// Accept, and so Serve, can fail before (the Close marks the socket
	// closing, wakes Accept, and only then closes it).
	select {
	case <-closed:
	case <-ctx.Done():
		return fmt.Errorf("cannot shut the telemetry listener down: %w", ctx.Err())
	}
	for l.handling.Load() != 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("cannot shut the telemetry listener down: a POST still in hand: %w", ctx.Err())
		}
		time.Sleep(handlerPoll)
	}
	select {
	case <-served:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.serveErr != nil {
			return fmt.Errorf("telemetry listener failed: %w", l.serveErr)
		}
	default: // Serve returns as soon as its Accept has failed; no need to wait
	}
	return nil
}

// connCloseTimeout bounds the background close of the server's
// connections after Shutdown; handlerPoll is how often Shutdown checks for
// POSTs still in hand (storing a POST takes well under a millisecond).
const (
	connCloseTimeout = 5 * time.Second
	handlerPoll      = 200 * time.Microsecond
)

// LastPost returns when the last POST on the telemetry path was answered,
// or the zero Time if none has been. A POST waiting for ring room is
// answered up to FullWait after it arrived, and Lambda sends its next one
// only after the answer; while a POST is being handled, RetryPending says
// so. The lifecycle uses both to wait for a quiet period. Safe from any
// goroutine.
func (l *Listener) LastPost() time.Time {
	d := l.lastPost.Load()
	if d == 0 {
		return time.Time{}
	}
	return l.epoch.Add(time.Duration(d))
}

// now returns the monotonic time since epoch, never 0.
func (l *Listener) now() int64 { return int64(time.Since(l.epoch)) | 1 }

// handle is the fasthttp handler. It keeps nothing of ctx or the body after
// it returns. It does not allocate in steady state.
func (l *Listener) handle(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != l.path {
		l.badReqs.Add(1)
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	if !ctx.IsPost() {
		l.badReqs.Add(1)
		ctx.Response.Header.Set("Allow", "POST")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	l.handling.Add(1)
	if l.closing.Load() {
		l.handling.Add(-1)
		ctx.SetConnectionClose()
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return
	}
	l.posts.Add(1)
	s := l.scratches.Get().(*scratch)
	status := l.store(ctx.PostBody(), s)
	l.scratches.Put(s)
	// The answer's time, stored before handling drops: RetryPending sees
	// this POST either in hand or answered.
	answered := l.now()
	if status == fasthttp.StatusServiceUnavailable {
		l.lastRefused.Store(answered)
	}
	l.lastPost.Store(answered)
	l.handling.Add(-1)
	ctx.SetStatusCode(status)
}

// RetryPending reports whether a POST is being handled, or the last POST
// was refused for want of ring room: Lambda holds that delivery and will
// POST it again after a backoff, so at SHUTDOWN the lifecycle keeps
// listening for it. A POST being handled may still be refused (it waits up
// to FullWait for room), and when it is stored Lambda may have more to send
// at once. Lambda delivers to a subscriber one POST at a time, so the last
// POST tells. Safe from any goroutine.
func (l *Listener) RetryPending() bool {
	if l.handling.Load() != 0 {
		return true
	}
	r := l.lastRefused.Load()
	return r != 0 && r == l.lastPost.Load()
}

// handleError answers requests fasthttp could not read; a body over
// MaxBodyBytes is one of them.
func (l *Listener) handleError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		now := l.now()
		l.lastPost.Store(now)
		l.tooLarge.Add(1)
		if ok, n := l.logTooLarge.allow(now, l.opts.LogEvery); ok {
			l.log.Warn("telemetry body larger than the limit: answered 413",
				"limit", l.opts.MaxBodyBytes, "suppressed", n)
		}
		ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		l.badReqs.Add(1)
		ctx.Error("request header too large", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		l.badReqs.Add(1)
		ctx.Error("request timeout", fasthttp.StatusRequestTimeout)
	default:
		l.badReqs.Add(1)
		ctx.Error("cannot parse request", fasthttp.StatusBadRequest)
	}
}

// store writes body's events into the ring and returns the HTTP status.
func (l *Listener) store(body []byte, s *scratch) int {
	events, err := SplitArrayTo(body, s.events[:0], &s.syntax)
	s.events = events[:0]
	if err != nil {
		// Counted and logged once stored: a body answered 503 comes back
		// with Lambda's retry, and would be counted at every attempt.
		s.reason, _ = s.syntax.AppendText(s.reason[:0])
		status := l.wrapBody(body, s, QuarantineMalformed, s.reason)
		if status == fasthttp.StatusOK {
			l.malformed.Add(1)
			if ok, n := l.logMalformed.allow(l.now(), l.opts.LogEvery); ok {
				l.log.Warn("telemetry body is not a JSON array of objects: quarantined",
					"reason", string(s.reason), "bytes", len(body), "suppressed", n)
			}
		}
		return status
	}
	if len(events) == 0 {
		l.accepted.Add(1)
		return fasthttp.StatusOK
	}

	var pre []byte
	if p := l.prefix.Load(); p != nil {
		pre = *p
	}
	// Size the block: one frame per event, or parts for an oversize one.
	s.groups, s.parts = s.groups[:0], s.parts[:0]
	n, total, rare := 0, 0, false
	for i := range events {
		ev := &events[i]
		size := enrichedSize(body[ev.Start:ev.End], pre)
		if size <= l.maxFrame {
			n++
			total += size
		} else {
			gi := l.newGroup(s, QuarantineOversize, reasonOversize, ev.Type, body[ev.TypeStart:ev.TypeEnd], body, ev.Start, ev.End)
			k, t := l.plan(s, pre, body, gi)
			n += k
			total += t
		}
		rare = rare || ev.Type == TypePlatformRuntimeDone || ev.Type == TypePlatformLogsDropped
	}
	w, status := l.reserve(n, total)
	if status == statusTooLargeForRing {
		status = l.wrapBody(body, s, QuarantineOverflow, reasonOverflow)
		if status != fasthttp.StatusOK {
			return status // not stored: counted when Lambda's retry is
		}
		l.overflow.Add(1)
		// Its events are valid and Lambda's to count, only stored whole:
		// received counts them, as it would had they fitted.
		l.events.Add(uint64(len(events)))
		if rare {
			l.rareEvents(body, events, s) // the events are valid, only stored whole
		}
		return status
	}
	if status != fasthttp.StatusOK {
		return status
	}
	gi, pi := 0, 0
	for i := range events {
		ev := body[events[i].Start:events[i].End]
		size := enrichedSize(ev, pre)
		if size <= l.maxFrame {
			writeEnriched(w.Frame(size), ev, pre)
			continue
		}
		from := pi
		for pi < len(s.parts) && s.parts[pi].g == gi {
			pi++
		}
		writeParts(&w, s, pre, body, gi, from, pi)
		gi++
	}
	w.Commit()

	l.accepted.Add(1)
	l.events.Add(uint64(len(events)))
	l.frames.Add(uint64(n))
	l.bodyBytes.Add(uint64(len(body)))
	l.frameBytes.Add(uint64(total))
	if len(s.groups) > 0 {
		l.oversize.Add(uint64(len(s.groups)))
		if ok, k := l.logOversize.allow(l.now(), l.opts.LogEvery); ok {
			l.log.Warn("telemetry event larger than a record: stored in parts",
				"events", len(s.groups), "limit", l.maxFrame, "suppressed", k)
		}
	}
	if rare {
		l.rareEvents(body, events, s)
	}
	return fasthttp.StatusOK
}

// statusTooLargeForRing is reserve's answer when the block can never fit.
const statusTooLargeForRing = -1

// reserve reserves n frames of total bytes. When the ring is full it wakes
// the reader and retries every FullPoll for up to FullWait; then it gives
// 503. It returns statusTooLargeForRing when the block can never fit.
func (l *Listener) reserve(n, total int) (ring.Reservation, int) {
	w, err := l.ring.Reserve(n, total)
	if errors.Is(err, ring.ErrFull) {
		l.ring.Wake()
		deadline := time.Now().Add(l.opts.FullWait)
		for errors.Is(err, ring.ErrFull) && time.Now().Before(deadline) {
			time.Sleep(l.opts.FullPoll)
			w, err = l.ring.Reserve(n, total)
		}
	}
	switch {
	case err == nil:
		return w, fasthttp.StatusOK
	case errors.Is(err, ring.ErrFull):
		l.refusedFull.Add(1)
		if ok, k := l.logFull.allow(l.now(), l.opts.LogEvery); ok {
			l.log.Warn("ring full: telemetry POST answered 503 for Lambda to retry",
				"wait", l.opts.FullWait, "suppressed", k)
		}
		return w, fasthttp.StatusServiceUnavailable
	default: // ErrTooLarge
		return w, statusTooLargeForRing
	}
}

// wrapBody stores the whole body as wrapped records of the given kind.
func (l *Listener) wrapBody(body []byte, s *scratch, kind string, reason []byte) int {
	var pre []byte
	if p := l.prefix.Load(); p != nil {
		pre = *p
	}
	s.groups, s.parts = s.groups[:0], s.parts[:0]
	gi := l.newGroup(s, kind, reason, TypeNone, nil, body, 0, len(body))
	n, total := l.plan(s, pre, body, gi)
	w, status := l.reserve(n, total)
	if status == statusTooLargeForRing {
		// New's MaxQuarantineBlock check makes this unreachable for bodies
		// within MaxBodyBytes.
		l.tooLarge.Add(1)
		return fasthttp.StatusRequestEntityTooLarge
	}
	if status != fasthttp.StatusOK {
		return status
	}
	writeParts(&w, s, pre, body, gi, 0, n)
	w.Commit()
	l.accepted.Add(1)
	l.frames.Add(uint64(n))
	l.bodyBytes.Add(uint64(len(body)))
	l.frameBytes.Add(uint64(total))
	return fasthttp.StatusOK
}

// rareEvents runs the hooks for platform.runtimeDone and counts
// platform.logsDropped, after the POST is committed. These events are rare
// (one per invocation, or only under pressure), so their records are
// rescanned here rather than on every event.
func (l *Listener) rareEvents(body []byte, events []Event, s *scratch) {
	for i := range events {
		ev := &events[i]
		if ev.RecordEnd == 0 {
			continue
		}
		rec := body[ev.RecordStart:ev.RecordEnd]
		switch ev.Type {
		case TypePlatformRuntimeDone:
			if l.opts.OnRuntimeDone == nil {
				continue
			}
			v := member(rec, "requestId")
			if len(v) < 2 || v[0] != '"' {
				continue
			}
			raw := v[1 : len(v)-1]
			if bytes.IndexByte(raw, '\\') >= 0 {
				s.id = slices.Grow(s.id[:0], 3*len(raw))[:3*len(raw)]
				n, _ := unescapeInto(s.id, raw) // 3 bytes per raw byte always suffice
				raw = s.id[:n]
			}
			l.opts.OnRuntimeDone(raw)
		case TypePlatformLogsDropped:
			l.droppedEvents.Add(1)
			l.droppedRecords.Add(count(member(rec, "droppedRecords")))
			l.droppedBytes.Add(count(member(rec, "droppedBytes")))
		}
	}
}

// count returns a raw JSON number as a count: integers exactly, other
// non-negative numbers truncated, anything else 0.
func count(raw []byte) uint64 {
	if v, ok := parseCount(raw); ok {
		return v
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || !(f >= 0) || f >= 1<<64 {
		return 0
	}
	return uint64(f)
}

// fasthttpLogger routes fasthttp's own messages to slog, at most one per
// LogEvery: fasthttp writes one for each connection it cannot serve (a
// client sending garbage, for example), which a client can repeat at will.
// None is written for a body over MaxBodyBytes: handleError answers, counts
// and logs it. Called from fasthttp's goroutines, possibly concurrently; a
// suppressed message is not formatted.
type fasthttpLogger struct{ l *Listener }

func (f fasthttpLogger) Printf(format string, args ...any) {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return
		}
	}
	if ok, n := f.l.logServer.allow(f.l.now(), f.l.opts.LogEvery); ok {
		f.l.log.Warn("telemetry server: "+fmt.Sprintf(format, args...), "suppressed", n)
	}
}

// limiter lets one log line through per period and counts the rest.
type limiter struct {
	next       atomic.Int64 // time (since epoch) before which lines are suppressed
	suppressed atomic.Uint64
}

// allow reports whether a line may be logged at now, and how many were
// suppressed since the last one.
func (r *limiter) allow(now int64, every time.Duration) (bool, uint64) {
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+int64(every)) {
		r.suppressed.Add(1)
		return false, 0
	}
	return true, r.suppressed.Swap(0)
}

// Stats is a snapshot of the listener's counters.
//
// Events and Frames are the two units of the accounting. An event is one
// element of a POST's JSON array, as the splitter found it; Events counts
// those of the POSTs stored, whether an event is stored as one frame, in
// parts (an oversize event counts once) or inside an overflow body's wrapped
// records. A malformed body is not an array of events and adds none. A
// frame is what the ring holds and the packer sends as one Kinesis record:
// one per event, or one per part of a wrapped payload (a malformed or
// overflow body, an oversize event); Frames counts those committed.
type Stats struct {
	Posts       uint64 // POSTs on the telemetry path that reached the handler
	Accepted    uint64 // of those, answered 200
	Events      uint64 // events of the POSTs answered 200, as the splitter found them (see above)
	Frames      uint64 // ring frames committed, each one Kinesis record (see above)
	BodyBytes   uint64 // body bytes of POSTs answered 200
	FrameBytes  uint64 // payload bytes committed to the ring
	Malformed   uint64 // POSTs whose body is not a JSON array of objects, stored wrapped (counted once stored, not at a 503)
	Overflow    uint64 // POSTs whose events do not fit one ring block, stored wrapped (counted once stored, not at a 503)
	Oversize    uint64 // events larger than MaxFrameBytes, stored in parts
	RefusedFull uint64 // POSTs answered 503: no ring room within FullWait
	TooLarge    uint64 // requests answered 413: body over MaxBodyBytes
	BadRequests uint64 // wrong path (404), method (405) or unreadable request

	LogsDroppedEvents  uint64 // platform.logsDropped events received
	LogsDroppedRecords uint64 // sum of their droppedRecords: Lambda's own drops
	LogsDroppedBytes   uint64 // sum of their droppedBytes
}

// Stats returns the counters. Safe from any goroutine.
func (l *Listener) Stats() Stats {
	return Stats{
		Posts:              l.posts.Load(),
		Accepted:           l.accepted.Load(),
		Events:             l.events.Load(),
		Frames:             l.frames.Load(),
		BodyBytes:          l.bodyBytes.Load(),
		FrameBytes:         l.frameBytes.Load(),
		Malformed:          l.malformed.Load(),
		Overflow:           l.overflow.Load(),
		Oversize:           l.oversize.Load(),
		RefusedFull:        l.refusedFull.Load(),
		TooLarge:           l.tooLarge.Load(),
		BadRequests:        l.badReqs.Load(),
		LogsDroppedEvents:  l.droppedEvents.Load(),
		LogsDroppedRecords: l.droppedRecords.Load(),
		LogsDroppedBytes:   l.droppedBytes.Load(),
	}
}

// noCopy lets `go vet` (copylocks) flag copies of a Listener.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
