// Package extapi is a client for the Lambda Extensions API (register,
// event/next, init/error, exit/error) and the Telemetry API subscription.
//
// The Runtime API address is injected (New takes AWS_LAMBDA_RUNTIME_API's
// host:port), so tests run against an httptest.Server. Every answer is read
// whole (at most 1 MiB) before a call returns, so connections are kept; no
// call logs anything.
package extapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/extapi/wire"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// Paths of the Runtime API endpoints (protocol.md sections 1 and 2).
const (
	PathRegister  = "/2020-01-01/extension/register"
	PathNext      = wire.PathNext
	PathInitError = "/2020-01-01/extension/init/error"
	PathExitError = "/2020-01-01/extension/exit/error"
	PathTelemetry = wire.PathTelemetry
)

// Header names.
const (
	HeaderExtensionName       = "Lambda-Extension-Name"
	HeaderExtensionIdentifier = "Lambda-Extension-Identifier"
	HeaderAcceptFeature       = "Lambda-Extension-Accept-Feature"
	HeaderFunctionErrorType   = "Lambda-Extension-Function-Error-Type"
	HeaderEventIdentifier     = "Lambda-Extension-Event-Identifier"

	// FeatureAccountID asks Register to return the account id.
	FeatureAccountID = "accountId"
)

// EventType is an Extensions API event.
type EventType string

// Event types an extension can register for.
const (
	Invoke   EventType = "INVOKE"
	Shutdown EventType = "SHUTDOWN"
)

// Shutdown reasons as the platform sends them (compare with
// Event.ShutdownReasonIs, which ignores case; unknown reasons are normal
// shutdowns).
const (
	ShutdownSpindown = "spindown"
	ShutdownTimeout  = "timeout"
	ShutdownFailure  = "failure"
)

// Sentinel errors; compare with errors.Is.
var (
	// ErrTelemetryNotSupported is returned by Subscribe when the Runtime API
	// answers 202: a local environment without a Telemetry API (the AWS
	// emulator's classic mode). The extension can keep working without
	// telemetry.
	ErrTelemetryNotSupported = errors.New("extapi: telemetry API not supported here")
	// ErrStatus is wrapped by every *StatusError (an unexpected HTTP status).
	ErrStatus = errors.New("extapi: unexpected status")
	// ErrNoIdentifier means Register succeeded without an extension id.
	ErrNoIdentifier = errors.New("extapi: register response without " + HeaderExtensionIdentifier)
	// ErrNotRegistered means a call that needs the extension id came before
	// a successful Register.
	ErrNotRegistered = errors.New("extapi: not registered")
	// ErrBadResponse means a 2xx response whose body could not be used.
	ErrBadResponse = errors.New("extapi: malformed response")
)

// StatusError is an unexpected HTTP status from the Runtime API, with the
// errorType and errorMessage of its body when it had them.
type StatusError struct {
	Op           string // "register", "next", "subscribe", "init error", "exit error"
	Status       int
	ErrorType    string
	ErrorMessage string
	Body         string // raw body (at most 1 KiB) when it was not an error object
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("extapi: ")
	b.WriteString(e.Op)
	b.WriteString(": status ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.ErrorType != "" || e.ErrorMessage != "" {
		b.WriteString(": ")
		b.WriteString(e.ErrorType)
		b.WriteString(": ")
		b.WriteString(e.ErrorMessage)
	} else if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(strconv.Quote(e.Body))
	}
	return b.String()
}

// Unwrap returns ErrStatus.
func (e *StatusError) Unwrap() error { return ErrStatus }

// Limits on what is read from a response.
const (
	maxResponseBytes  = 1 << 20 // an event or register response is far smaller
	maxErrorBodyBytes = 1 << 10 // kept in StatusError.Body
	defaultCallTime   = 5 * time.Second
)

// Client talks to one Runtime API. Register must be called (and return)
// before the other calls; afterwards the methods may be called from any
// goroutine, except that Next must not run concurrently with itself (its
// decode buffer is reused; concurrent calls are serialised).
//
// It speaks HTTP/1.1 with fasthttp's client, which makes each call on the
// calling goroutine: net/http hands the first call to a dial goroutine and
// every call to a connection's read and write goroutines, which cost a cold
// process 0.2 ms before its registration (0.68 against 0.45 ms for the three
// calls of a start-up, median of 40). Next has a connection of its own, so
// that a canceled ctx can close it. The other calls are made one at a time
// (they are few, and the lifecycle makes them in order anyway). A call is
// sent again only when a connection kept idle turns out closed before any
// byte of its answer (see callState.retry).
//
// Register also does what the first Next would do on its path (warmUp: the
// JSON decoders of the answers, Next's connection): while its answer is on
// the way, or, when the registration was written early, as soon as its
// answer is read.
//
// A Client must not be copied after first use.
type Client struct {
	hc       *host // every call but Next
	next     *host // Next, one connection
	nextConn atomic.Pointer[net.Conn]
	nextStop atomic.Bool              // Next's ctx ended: no new attempt
	written  atomic.Pointer[func()]   // NextWith's callback, until the request is written
	hcWrote  atomic.Pointer[func()]   // warmUp, until the first request on hc is written or readEarly runs it
	spare    atomic.Pointer[net.Conn] // Next's first connection, dialed by warmUp
	hcSpare  atomic.Pointer[net.Conn] // hc's first connection: the early registration's
	early    *earlyreg.Registration   // WithRegistration's, until Register
	wasEarly bool                     // Register read the answer to early
	// earlySub is WithSubscription's, until Subscribe; earlyConn the
	// early registration, whose connection the subscription uses until
	// its answer is in.
	earlySub struct {
		body   []byte
		answer func() ([]byte, bool)
	}
	earlyConn *earlyreg.Registration
	subEarly  bool // Subscribe used earlySub
	// earlyNext is WithNext's; nextPending is set by Subscribe when that
	// request was written, until NextWith reads its answer.
	earlyNext struct {
		sent   func() (time.Time, bool)
		done   <-chan struct{}
		answer func() ([]byte, bool)
	}
	nextPending bool
	callTime    time.Duration

	urlRegister, urlNext, urlInitError, urlExitError, urlTelemetry string

	// id is written once by Register and read by every later call; callers
	// order Register before the other calls (see the type doc).
	id string

	nextMu  sync.Mutex // guards nextBuf and nextEv
	nextBuf bytes.Buffer
	nextEv  Event
}

// Option configures a Client.
type Option func(*Client)

// WithCallTimeout bounds Register, Subscribe, InitError and ExitError (not
// Next) on top of their ctx; default 5s, 0 means ctx only.
func WithCallTimeout(d time.Duration) Option { return func(c *Client) { c.callTime = d } }

// WithRegistration gives the client a registration already written to the
// Runtime API (package earlyreg; nil means none): Register parses its
// answer from r.Answer, and from r.Conn what r.Answer lacks, instead of
// sending it, and the client's other calls use the connection afterwards
// (unless r.Conn is nil: it failed).
func WithRegistration(r *earlyreg.Registration) Option { return func(c *Client) { c.early = r } }

// WithSubscription gives the client a subscription sent on the early
// registration's connection (package earlysub; a nil body means none): its
// request body, and answer, which waits for its answer and returns what was
// read of it and whether that is all of it (the rest is then on the
// connection), or nil when it was not sent. Until Subscribe, the client
// leaves that connection alone; Subscribe waits for the answer and returns
// what it says when it is asked for the same body, and sends its own
// otherwise.
func WithSubscription(body []byte, answer func() ([]byte, bool)) Option {
	return func(c *Client) {
		if body != nil && answer != nil {
			c.earlySub.body, c.earlySub.answer = body, answer
		}
	}
}

// WithNext gives the client an /event/next request written on the early
// registration's connection after the subscription (package earlysub):
// sent waits for the subscription's answer and reports whether the request
// was written, and when; done is closed once its answer was read, which
// answer returns, with whether it is whole (else the rest is on the
// connection). Subscribe then leaves the connection to Next, whose first
// call returns that answer instead of sending a request.
func WithNext(sent func() (time.Time, bool), done <-chan struct{}, answer func() ([]byte, bool)) Option {
	return func(c *Client) {
		if sent != nil && done != nil && answer != nil {
			c.earlyNext.sent, c.earlyNext.done, c.earlyNext.answer = sent, done, answer
		}
	}
}

// WithExtensionID sets the extension id, as if Register had returned it.
func WithExtensionID(id string) Option { return func(c *Client) { c.id = id } }

// New returns a client for the Runtime API at runtimeAPI (host:port, the
// value of AWS_LAMBDA_RUNTIME_API; an "http://" prefix is accepted). It has
// no read timeout (Next waits for as long as the environment lives), keeps
// its connections across freezes, and ignores proxy settings (the Runtime
// API is local, an HTTP_PROXY meant for the function must not catch it).
func New(runtimeAPI string, opts ...Option) *Client {
	addr := strings.TrimPrefix(runtimeAPI, "http://")
	base := "http://" + addr
	c := &Client{
		callTime:     defaultCallTime,
		urlRegister:  base + PathRegister,
		urlNext:      base + PathNext,
		urlInitError: base + PathInitError,
		urlExitError: base + PathExitError,
		urlTelemetry: base + PathTelemetry,
	}
	for _, o := range opts {
		o(c)
	}
	warm := c.warmUp
	c.hcWrote.Store(&warm)
	c.hc = newHost(addr, 4, &c.hcSpare, &c.hcWrote, nil)
	c.next = newHost(addr, 1, &c.spare, &c.written, func(conn net.Conn) {
		c.nextConn.Store(&conn)
		if c.nextStop.Load() {
			_ = conn.Close() // ctx ended while this one was being dialed
		}
	})
	c.hc.RetryIfErr = func(_ *fasthttp.Request, _ int, err error) (bool, bool) { return false, c.hc.call.retry(err) }
	// Not after Next's ctx ended and closed the connection under it.
	c.next.RetryIfErr = func(_ *fasthttp.Request, _ int, err error) (bool, bool) {
		return false, !c.nextStop.Load() && c.next.call.retry(err)
	}
	return c
}

// host is one of the client's fasthttp clients, whose calls are made one
// at a time (do holds turn), so that call describes the one in progress.
type host struct {
	*fasthttp.HostClient
	turn chan struct{}
	call callState
}

// callState is what the attempt in progress of a host's call has seen of
// its connection.
type callState struct {
	dialed   atomic.Bool // the connection was dialed for it
	answered atomic.Bool // a byte of an answer was read
}

// retry reports whether an attempt that failed with err is to be made
// again (fasthttp then takes another connection, at most 5 attempts in
// all), and if so readies the state for it. Only an attempt made on a
// connection that was idle before it (kept from an earlier call, or dialed
// ahead of the call: not dialed for it) and that ended before the first
// byte of an answer is (fasthttp reports any failure to read that byte as
// io.EOF; the write can fail with EPIPE or ECONNRESET): the other end
// closed the connection while it was idle, as it may at any time, and did
// not take the request. After part of an answer, or on a connection dialed
// for the call, the request may have been taken: an /event/next answered
// is an event consumed, which a second request would skip (or, after
// SHUTDOWN, wait for until the process is killed), and a subscription or
// an error report would be made twice. The caller gets the error instead.
func (s *callState) retry(err error) bool {
	if s.dialed.Load() || s.answered.Load() ||
		!errors.Is(err, io.EOF) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		return false
	}
	s.answered.Store(false) // not dialed either
	return true
}

// hookConn is a connection of a host: it records in call when a byte of
// an answer is read and, after a write, calls the callback in *wrote once
// (a request is one write): NextWith's on Next's connection, warmUp on
// hc's.
type hookConn struct {
	net.Conn
	wrote *atomic.Pointer[func()]
	call  *callState
}

func (h hookConn) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	if n > 0 {
		h.call.answered.Store(true)
	}
	return n, err
}

func (h hookConn) Write(p []byte) (int, error) {
	n, err := h.Conn.Write(p)
	if f := h.wrote.Swap(nil); f != nil {
		(*f)()
	}
	return n, err
}

// idleKeep is how long an idle connection to the Runtime API is kept: for
// the life of the environment, across freezes (an idle connection is not
// a cost there, a new one at each thaw would be).
const idleKeep = 100 * 365 * 24 * time.Hour

// newHost returns a host of at most conns connections to addr; a new
// connection is the one in *spare if there is one, else dialed, and is
// used as a hookConn with wrote; seen, if set, sees each new one.
func newHost(addr string, conns int, spare *atomic.Pointer[net.Conn], wrote *atomic.Pointer[func()], seen func(net.Conn)) *host {
	h := &host{turn: make(chan struct{}, 1)}
	h.HostClient = &fasthttp.HostClient{
		Addr: addr,
		Dial: func(addr string) (net.Conn, error) {
			var conn net.Conn
			if p := spare.Swap(nil); p != nil {
				conn = *p
			} else {
				var err error
				if conn, err = net.Dial("tcp", addr); err != nil {
					return nil, err
				}
				h.call.dialed.Store(true)
			}
			conn = hookConn{conn, wrote, &h.call}
			if seen != nil {
				seen(conn)
			}
			return conn, nil
		},
		MaxConns:                 conns,
		MaxIdleConnDuration:      idleKeep,
		MaxResponseBodySize:      maxResponseBytes,
		NoDefaultUserAgentHeader: true,
	}
	return h
}

// RegisteredEarly reports whether Register read the answer to a
// registration given with WithRegistration rather than sending one.
func (c *Client) RegisteredEarly() bool { return c.wasEarly }

// SubscribedEarly reports whether Subscribe returned the answer to a
// subscription sent during package initialisation (WithSubscription).
func (c *Client) SubscribedEarly() bool { return c.subEarly }

// NextSentEarly reports whether the first /event/next request was written
// during package initialisation (WithNext), and when: Init is then over as
// far as Lambda is concerned, and a failure is reported with ExitError, not
// InitError. It waits for the subscription's answer.
func (c *Client) NextSentEarly() (time.Time, bool) {
	if c.earlyNext.sent == nil {
		return time.Time{}, false
	}
	return c.earlyNext.sent()
}

// ExtensionID returns the id from Register ("" before it).
func (c *Client) ExtensionID() string { return c.id }

// RegisterResponse is the answer to Register.
type RegisterResponse struct {
	ExtensionID     string `json:"-"` // header Lambda-Extension-Identifier
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
	AccountID       string `json:"accountId"` // present because we send Accept-Feature: accountId
	// BodyError is set (wrapping ErrBadResponse) when the answer had the
	// extension id but a body that could not be decoded: the registration
	// succeeded, and the other fields, which only describe the function,
	// are empty.
	BodyError error `json:"-"`
}

// Register registers the extension under name (the executable's file name)
// for events, asking for the account id. On success the client keeps the
// extension id for every later call; an answer with the id is a success
// even when its body cannot be decoded (see RegisterResponse.BodyError).
// With WithRegistration, it reads the answer of the registration already
// written, which must be for the same name and events.
func (c *Client) Register(ctx context.Context, name string, events []EventType) (RegisterResponse, error) {
	const op = "register"
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	var buf bytes.Buffer
	var status int
	var id string
	var err error
	if early := c.early; early != nil {
		c.early, c.wasEarly = nil, true
		status, id, err = c.readEarly(ctx, early, name, events, &buf)
	} else {
		status, id, err = c.do(ctx, c.hc, call{
			method: fasthttp.MethodPost, url: c.urlRegister, json: appendRegisterBody(nil, events),
			header: [][2]string{{HeaderExtensionName, name}, {HeaderAcceptFeature, FeatureAccountID}},
		}, &buf)
	}
	if err != nil {
		return RegisterResponse{}, fmt.Errorf("extapi: cannot register %q: %w", name, err)
	}
	if status != fasthttp.StatusOK {
		return RegisterResponse{}, statusError(op, status, buf.Bytes())
	}
	if id == "" {
		return RegisterResponse{}, ErrNoIdentifier
	}
	var rr RegisterResponse
	if err := json.Unmarshal(buf.Bytes(), &rr); err != nil {
		rr = RegisterResponse{BodyError: fmt.Errorf("%w: cannot decode register response: %w", ErrBadResponse, err)}
	}
	rr.ExtensionID = id
	c.id = id
	return rr, nil
}

// warmUp runs once, when the first request on hc (the registration) is
// written, while its answer is on its way (0.3-1 ms during a cold start, in
// which this goroutine would only wait), or from readEarly. It builds the
// JSON decoders of the answers to Register and Next, which the JSON library
// compiles for each type the first time it decodes one (25-50 µs each in a
// fresh process), and dials Next's first connection. Measured with go run
// ./bench/coldstart: 0.1-0.24 ms earlier to the first /event/next, paired by
// round.
func (c *Client) warmUp() {
	var rr RegisterResponse
	_ = json.Unmarshal([]byte(`{}`), &rr)
	var ev Event
	_ = json.Unmarshal([]byte(`{}`), &ev)
	if c.nextConn.Load() != nil || c.spare.Load() != nil {
		return // Next has its connection
	}
	// A failed dial is not an error here: Next dials again and reports it.
	if conn, err := net.DialTimeout("tcp", c.next.Addr, spareDialTimeout); err == nil {
		c.spare.Store(&conn)
	}
}

// readEarly reads the answer to the registration early wrote into dst and
// returns its status and extension id; the connection then serves hc's
// next call, or is closed. While a subscription sent on it is on its way
// (WithSubscription), the answer is parsed from early.Answer alone and
// Subscribe takes the connection (takeEarlyConn).
func (c *Client) readEarly(ctx context.Context, early *earlyreg.Registration, name string, events []EventType, dst *bytes.Buffer) (int, string, error) {
	pending := c.earlySub.answer != nil
	rest := early // where the rest of the answer is, and who takes the connection
	if pending {
		c.earlyConn, rest = early, nil
	}
	if early.Name != name || !sameEvents(early.Events, events) {
		if rest != nil && rest.Conn != nil {
			_ = rest.Conn.Close()
		}
		return 0, "", fmt.Errorf("BUG: the registration written during initialisation was for %q %v, not %q %v", early.Name, early.Events, name, events)
	}
	if pending && !early.Complete {
		return 0, "", errors.New("BUG: a subscription was sent before the registration's answer was read")
	}
	status, id, err := c.answerOn(ctx, early.Answer, early.Complete, rest, dst)
	if err != nil {
		return 0, "", err
	}
	// The answer was waiting: warm up now, on the way to the subscription,
	// rather than during it.
	if f := c.hcWrote.Swap(nil); f != nil {
		(*f)()
	}
	return status, id, nil
}

// answerOn parses into dst an answer read during package initialisation:
// answer, and when it is not complete the rest from rest's connection
// (within ctx). Unless rest is nil (the connection is left alone; answer
// must then be complete), the connection then becomes hc's first one if it
// can serve another call, else it is closed; rest.Conn is closed either way
// (net.FileConn holds a duplicate). It returns the answer's status and
// Lambda-Extension-Identifier header.
func (c *Client) answerOn(ctx context.Context, answer []byte, complete bool, rest *earlyreg.Registration, dst *bytes.Buffer) (int, string, error) {
	var src io.Reader = bytes.NewReader(answer)
	var conn net.Conn
	if rest != nil && rest.Conn != nil {
		var err error
		conn, err = net.FileConn(rest.Conn)
		_ = rest.Conn.Close()
		rest.Conn = nil
		if err != nil && !complete {
			return 0, "", fmt.Errorf("cannot use the connection of the registration written during initialisation: %w", err)
		}
	}
	if !complete {
		if conn == nil {
			return 0, "", errors.New("the connection of the registration written during initialisation failed")
		}
		if d, ok := ctx.Deadline(); ok {
			_ = conn.SetReadDeadline(d)
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		defer stop()
		src = io.MultiReader(src, conn)
	}
	br := bufio.NewReader(src)
	var resp fasthttp.Response
	err := resp.ReadLimitBody(br, maxResponseBytes)
	if conn != nil {
		_ = conn.SetReadDeadline(time.Time{})
		if err == nil && br.Buffered() == 0 && !resp.ConnectionClose() {
			c.hcSpare.Store(&conn)
		} else {
			_ = conn.Close()
		}
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return 0, "", ctx.Err()
	default:
		return 0, "", err
	}
	dst.Write(resp.Body())
	return resp.StatusCode(), string(resp.Header.Peek(HeaderExtensionIdentifier)), nil
}

// takeEarlyConn gives hc the early registration's connection once the
// subscription sent on it has its answer (or closes it).
func (c *Client) takeEarlyConn() {
	early := c.earlyConn
	c.earlyConn = nil
	if early == nil || early.Conn == nil {
		return
	}
	if conn, err := net.FileConn(early.Conn); err == nil {
		c.hcSpare.Store(&conn)
	}
	_ = early.Conn.Close() // FileConn holds a duplicate
	early.Conn = nil
}

// closeEarlyConn closes the early registration's connection, whose state
// is of no use to hc.
func (c *Client) closeEarlyConn() {
	early := c.earlyConn
	c.earlyConn = nil
	if early != nil && early.Conn != nil {
		_ = early.Conn.Close()
		early.Conn = nil
	}
}

func sameEvents(sent []string, events []EventType) bool {
	if len(sent) != len(events) {
		return false
	}
	for i, e := range events {
		if sent[i] != string(e) {
			return false
		}
	}
	return true
}

// spareDialTimeout bounds warmUp's dial, which the call that runs it waits
// for.
const spareDialTimeout = 100 * time.Millisecond

// Tracing is the X-Ray context of an INVOKE.
type Tracing struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Event is one answer of Next. For INVOKE: RequestID, InvokedFunctionARN,
// Tracing and DeadlineMs (the function's deadline); for SHUTDOWN:
// ShutdownReason and DeadlineMs (when the process must have exited).
type Event struct {
	EventType          EventType `json:"eventType"`
	DeadlineMs         int64     `json:"deadlineMs"`
	RequestID          string    `json:"requestId"`
	InvokedFunctionARN string    `json:"invokedFunctionArn"`
	ShutdownReason     string    `json:"shutdownReason"`
	Tracing            Tracing   `json:"tracing"`
}

// Deadline returns DeadlineMs as a time.
func (e *Event) Deadline() time.Time { return time.UnixMilli(e.DeadlineMs) }

// ShutdownReasonIs reports whether the shutdown reason equals reason,
// ignoring case (the docs say SPINDOWN, the platform sends spindown).
func (e *Event) ShutdownReasonIs(reason string) bool {
	return strings.EqualFold(e.ShutdownReason, reason)
}

// Next blocks until Lambda sends the next event. It has no timeout of its
// own: only ctx ends it (the environment may be frozen inside this call for
// minutes). The response is decoded through a reused buffer; the strings of
// the returned Event are new each call. Concurrent calls are serialised.
func (c *Client) Next(ctx context.Context) (Event, error) { return c.NextWith(ctx, nil) }

// NextWith is Next that calls written, if not nil, once the request has been
// written: from then on the extension is waiting as far as Lambda is
// concerned (its part of Init is over), even before an answer.
func (c *Client) NextWith(ctx context.Context, written func()) (Event, error) {
	if c.id == "" {
		return Event{}, ErrNotRegistered
	}
	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	if c.nextPending {
		c.nextPending = false
		return c.nextEarly(ctx, written)
	}
	if written != nil {
		c.written.Store(&written)
		defer c.written.Store(nil)
	}
	// Only ctx ends the wait: when it is canceled, the connection is closed
	// under the call.
	c.nextStop.Store(false)
	stop := context.AfterFunc(ctx, func() {
		c.nextStop.Store(true)
		if conn := c.nextConn.Load(); conn != nil {
			_ = (*conn).Close()
		}
	})
	defer stop()
	c.nextBuf.Reset()
	status, _, err := c.do(ctx, c.next, call{
		method: fasthttp.MethodGet, url: c.urlNext, header: [][2]string{{HeaderExtensionIdentifier, c.id}},
	}, &c.nextBuf)
	return c.nextEvent(status, err)
}

// nextEarly is NextWith's first call when the request was written during
// package initialisation (WithNext): written is called at once, and the
// answer is the one read then (the rest of it read from the connection,
// which then serves hc's next call). When ctx ends first, the read of that
// answer is ended too and the connection closed.
func (c *Client) nextEarly(ctx context.Context, written func()) (Event, error) {
	if written != nil {
		written()
	}
	select {
	case <-c.earlyNext.done:
	case <-ctx.Done():
		if early := c.earlyConn; early != nil {
			early.Interrupt()
			<-c.earlyNext.done
		}
		c.closeEarlyConn()
		return Event{}, fmt.Errorf("extapi: cannot get next event: %w", ctx.Err())
	}
	answer, complete := c.earlyNext.answer()
	early := c.earlyConn
	c.earlyConn = nil
	c.nextBuf.Reset()
	status, _, err := c.answerOn(ctx, answer, complete, early, &c.nextBuf)
	return c.nextEvent(status, err)
}

// nextEvent decodes Next's answer, read into nextBuf.
func (c *Client) nextEvent(status int, err error) (Event, error) {
	const op = "next"
	if err != nil {
		return Event{}, fmt.Errorf("extapi: cannot get next event: %w", err)
	}
	if status != fasthttp.StatusOK {
		return Event{}, statusError(op, status, c.nextBuf.Bytes())
	}
	c.nextEv = Event{}
	if err := json.Unmarshal(c.nextBuf.Bytes(), &c.nextEv); err != nil {
		return Event{}, fmt.Errorf("%w: cannot decode next event: %w", ErrBadResponse, err)
	}
	if c.nextEv.EventType == "" {
		return Event{}, fmt.Errorf("%w: next event without eventType: %q", ErrBadResponse, truncate(c.nextBuf.Bytes()))
	}
	return c.nextEv, nil
}

type errorRequest struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace"`
}

// InitError reports a failure during Init (bad configuration, failed
// subscription) with errType in Category.Reason form, e.g.
// "Extension.ConfigInvalid". Afterwards no call succeeds: the caller exits.
func (c *Client) InitError(ctx context.Context, errType string, err error) error {
	return c.reportError(ctx, "init error", c.urlInitError, errType, err)
}

// ExitError reports a failure after Init, like InitError, before exiting.
func (c *Client) ExitError(ctx context.Context, errType string, err error) error {
	return c.reportError(ctx, "exit error", c.urlExitError, errType, err)
}

func (c *Client) reportError(ctx context.Context, op, url, errType string, cause error) error {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	body, err := json.Marshal(errorRequest{ErrorMessage: msg, ErrorType: errType, StackTrace: []string{}})
	if err != nil {
		return fmt.Errorf("extapi: cannot encode %s request: %w", op, err)
	}
	hdr := [][2]string{{HeaderFunctionErrorType, errType}}
	if c.id != "" {
		hdr = append(hdr, [2]string{HeaderExtensionIdentifier, c.id})
	}
	var buf bytes.Buffer
	status, _, err := c.do(ctx, c.hc, call{method: fasthttp.MethodPost, url: url, json: body, header: hdr}, &buf)
	if err != nil {
		return fmt.Errorf("extapi: cannot report %s %s: %w", op, errType, err)
	}
	if status/100 != 2 {
		return statusError(op, status, buf.Bytes())
	}
	return nil
}

// Subscription is a Telemetry API subscription (package wire writes it).
type Subscription = wire.Subscription

// SubscribeResult is a successful subscription's answer.
type SubscribeResult struct {
	Status int    // 200
	Body   string // as sent (usually "OK"), at most 1 KiB
}

// The register body is written here, not with json.Marshal, for the reason
// package wire gives for the subscription's. TestRequestBodies decodes both
// against encoding/json's encoding of the same values.

// appendRegisterBody appends {"events":[...]}.
func appendRegisterBody(dst []byte, events []EventType) []byte {
	dst = append(dst, `{"events":[`...)
	for i, e := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonesc.AppendString(dst, string(e))
	}
	return append(dst, "]}"...)
}

// Subscribe subscribes to the Telemetry API. A 202 answer returns
// ErrTelemetryNotSupported (wrapped with the body's errorType and
// errorMessage); any other non-200 a *StatusError.
func (c *Client) Subscribe(ctx context.Context, s Subscription) (SubscribeResult, error) {
	const op = "subscribe"
	if c.id == "" {
		return SubscribeResult{}, ErrNotRegistered
	}
	if len(s.Types) == 0 || s.URI == "" || s.SchemaVersion == "" {
		return SubscribeResult{}, fmt.Errorf("extapi: cannot subscribe: schema version, types and URI are required (got %q, %q, %q)", s.SchemaVersion, s.Types, s.URI)
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	var buf bytes.Buffer
	body := wire.AppendSubscribeBody(nil, s)
	var status int
	var err error
	var answer []byte
	complete := true
	if early := c.earlySub; early.answer != nil {
		c.earlySub.body, c.earlySub.answer = nil, nil
		answer, complete = early.answer()
		_, nextSent := c.NextSentEarly()
		switch {
		case answer != nil && !complete:
			// Sent, its answer slow: the rest is on the connection, which
			// answerOn reads and then hands to hc (or closes).
		case nextSent:
			c.nextPending = true // the connection is Next's until its answer is read
		default:
			c.takeEarlyConn()
		}
		if answer != nil && !bytes.Equal(early.body, body) {
			// Another subscription: this one's is sent, and the early
			// one's answer, or what is left of it, is not read.
			if !complete {
				c.closeEarlyConn()
			}
			answer = nil
		}
	}
	if answer != nil {
		c.subEarly = true
		var rest *earlyreg.Registration
		if !complete {
			rest, c.earlyConn = c.earlyConn, nil
		}
		status, _, err = c.answerOn(ctx, answer, complete, rest, &buf)
	} else {
		status, _, err = c.do(ctx, c.hc, call{
			method: fasthttp.MethodPut, url: c.urlTelemetry, json: body,
			header: [][2]string{{HeaderExtensionIdentifier, c.id}},
		}, &buf)
	}
	if err != nil {
		return SubscribeResult{}, fmt.Errorf("extapi: cannot subscribe to the telemetry API at %s: %w", c.urlTelemetry, err)
	}
	switch status {
	case fasthttp.StatusOK:
		return SubscribeResult{Status: status, Body: string(truncate(buf.Bytes()))}, nil
	case fasthttp.StatusAccepted:
		se := statusError(op, status, buf.Bytes())
		return SubscribeResult{}, fmt.Errorf("%w (status 202: %s: %s)", ErrTelemetryNotSupported, se.ErrorType, se.ErrorMessage)
	}
	return SubscribeResult{}, statusError(op, status, buf.Bytes())
}

// call is one request to the Runtime API.
type call struct {
	method, url string
	header      [][2]string
	json        []byte // the body, sent as application/json; nil for none
}

// do makes the call on hc, after any call in progress there, and reads
// the answer's body (at most maxResponseBytes; more is an error) into dst.
// It returns the status and the Lambda-Extension-Identifier header. ctx's
// deadline bounds the call; cancellation without a deadline ends it only
// where the caller closes the connection (Next), and is reported as ctx's
// error.
func (c *Client) do(ctx context.Context, hc *host, r call, dst *bytes.Buffer) (int, string, error) {
	select {
	case hc.turn <- struct{}{}:
		defer func() { <-hc.turn }()
	case <-ctx.Done():
		return 0, "", ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	hc.call.dialed.Store(false)
	hc.call.answered.Store(false)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(r.method)
	req.SetRequestURI(r.url)
	for _, h := range r.header {
		req.Header.Set(h[0], h[1])
	}
	if r.json != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(r.json)
	}
	var err error
	if dl, ok := ctx.Deadline(); ok {
		err = hc.DoDeadline(req, resp, dl)
	} else {
		err = hc.Do(req, resp)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return 0, "", ctx.Err()
	case errors.Is(err, fasthttp.ErrTimeout):
		return 0, "", fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return 0, "", fmt.Errorf("%w: response body over %d bytes", ErrBadResponse, maxResponseBytes)
	default:
		return 0, "", err
	}
	dst.Write(resp.Body())
	return resp.StatusCode(), string(resp.Header.Peek(HeaderExtensionIdentifier)), nil
}

// callContext applies the per-call timeout (not used by Next).
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.callTime <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.callTime)
}

type errorBody struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

func statusError(op string, status int, body []byte) *StatusError {
	e := &StatusError{Op: op, Status: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && (eb.ErrorType != "" || eb.ErrorMessage != "") {
		e.ErrorType, e.ErrorMessage = eb.ErrorType, eb.ErrorMessage
	} else {
		e.Body = string(truncate(body))
	}
	return e
}

func truncate(b []byte) []byte {
	if len(b) > maxErrorBodyBytes {
		return b[:maxErrorBodyBytes]
	}
	return b
}
