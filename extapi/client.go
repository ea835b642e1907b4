// Package extapi is a client for the Lambda Extensions API (register,
// event/next, init/error, exit/error) and the Telemetry API subscription.
//
// The Runtime API address is injected (New takes AWS_LAMBDA_RUNTIME_API's
// host:port), so tests run against an httptest.Server. Every response body
// is closed on every path; no call logs anything.
package extapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-json"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// Paths of the Runtime API endpoints (protocol.md sections 1 and 2).
const (
	PathRegister  = "/2020-01-01/extension/register"
	PathNext      = "/2020-01-01/extension/event/next"
	PathInitError = "/2020-01-01/extension/init/error"
	PathExitError = "/2020-01-01/extension/exit/error"
	PathTelemetry = "/2022-07-01/telemetry"
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
// A Client must not be copied after first use.
type Client struct {
	http     *http.Client
	callTime time.Duration

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

// WithHTTPClient replaces the HTTP client. It must not set Timeout: Next
// blocks until Lambda has an event, for as long as the environment lives.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithCallTimeout bounds Register, Subscribe, InitError and ExitError (not
// Next) on top of their ctx; default 5s, 0 means ctx only.
func WithCallTimeout(d time.Duration) Option { return func(c *Client) { c.callTime = d } }

// WithExtensionID sets the extension id, as if Register had returned it.
func WithExtensionID(id string) Option { return func(c *Client) { c.id = id } }

// New returns a client for the Runtime API at runtimeAPI (host:port, the
// value of AWS_LAMBDA_RUNTIME_API; an "http://" prefix is accepted). The
// default HTTP client has no timeout and ignores proxy settings (the Runtime
// API is local, an HTTP_PROXY meant for the function must not catch it).
func New(runtimeAPI string, opts ...Option) *Client {
	base := "http://" + strings.TrimPrefix(runtimeAPI, "http://")
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
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     0, // keep the connection across freezes
		}}
	}
	return c
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
}

// Register registers the extension under name (the executable's file name)
// for events, asking for the account id. On success the client keeps the
// extension id for every later call.
func (c *Client) Register(ctx context.Context, name string, events []EventType) (RegisterResponse, error) {
	const op = "register"
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	body := appendRegisterBody(nil, events)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.urlRegister, bytes.NewReader(body))
	if err != nil {
		return RegisterResponse{}, fmt.Errorf("extapi: cannot build register request: %w", err)
	}
	req.Header.Set(HeaderExtensionName, name)
	req.Header.Set(HeaderAcceptFeature, FeatureAccountID)
	req.Header.Set("Content-Type", "application/json")

	var buf bytes.Buffer
	status, hdr, err := c.doHeader(req, &buf)
	if err != nil {
		return RegisterResponse{}, fmt.Errorf("extapi: cannot register %q: %w", name, err)
	}
	if status != http.StatusOK {
		return RegisterResponse{}, statusError(op, status, buf.Bytes())
	}
	var rr RegisterResponse
	if err := json.Unmarshal(buf.Bytes(), &rr); err != nil {
		return RegisterResponse{}, fmt.Errorf("%w: cannot decode register response: %w", ErrBadResponse, err)
	}
	rr.ExtensionID = hdr.Get(HeaderExtensionIdentifier)
	if rr.ExtensionID == "" {
		return RegisterResponse{}, ErrNoIdentifier
	}
	c.id = rr.ExtensionID
	return rr, nil
}

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
func (c *Client) Next(ctx context.Context) (Event, error) {
	const op = "next"
	if c.id == "" {
		return Event{}, ErrNotRegistered
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.urlNext, nil)
	if err != nil {
		return Event{}, fmt.Errorf("extapi: cannot build next request: %w", err)
	}
	req.Header.Set(HeaderExtensionIdentifier, c.id)

	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	c.nextBuf.Reset()
	status, err := c.do(req, &c.nextBuf)
	if err != nil {
		return Event{}, fmt.Errorf("extapi: cannot get next event: %w", err)
	}
	if status != http.StatusOK {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("extapi: cannot build %s request: %w", op, err)
	}
	if c.id != "" {
		req.Header.Set(HeaderExtensionIdentifier, c.id)
	}
	req.Header.Set(HeaderFunctionErrorType, errType)
	req.Header.Set("Content-Type", "application/json")
	var buf bytes.Buffer
	status, err := c.do(req, &buf)
	if err != nil {
		return fmt.Errorf("extapi: cannot report %s %s: %w", op, errType, err)
	}
	if status/100 != 2 {
		return statusError(op, status, buf.Bytes())
	}
	return nil
}

// Subscription is a Telemetry API subscription. The buffering values are
// always sent; the Runtime API validates them (maxItems 1000–10000, maxBytes
// 262144–1048576, timeoutMs 25–30000).
type Subscription struct {
	SchemaVersion string   // "2022-12-13", or "2025-01-29" under Lambda Managed Instances
	Types         []string // non-empty subset of "platform", "function", "extension"
	MaxItems      int
	MaxBytes      int
	TimeoutMs     int
	URI           string // e.g. "http://sandbox.localdomain:4243/telemetry"
}

// SubscribeResult is a successful subscription's answer.
type SubscribeResult struct {
	Status int    // 200
	Body   string // as sent (usually "OK"), at most 1 KiB
}

// The register and subscribe bodies are written here, not with json.Marshal:
// both are on the cold-start path, and goccy/go-json compiles an encoder for
// a type on its first Marshal (about 0.1 ms each on a 2-core AMD EPYC), a
// cost these two fixed shapes do not need. TestRequestBodies decodes them
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

// appendSubscribeBody appends the Telemetry API subscription request
// (protocol.md section 2): schema version, types, buffering and an HTTP
// destination.
func appendSubscribeBody(dst []byte, s Subscription) []byte {
	dst = append(dst, `{"schemaVersion":`...)
	dst = jsonesc.AppendString(dst, s.SchemaVersion)
	dst = append(dst, `,"types":[`...)
	for i, t := range s.Types {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonesc.AppendString(dst, t)
	}
	dst = append(dst, `],"buffering":{"maxItems":`...)
	dst = strconv.AppendInt(dst, int64(s.MaxItems), 10)
	dst = append(dst, `,"maxBytes":`...)
	dst = strconv.AppendInt(dst, int64(s.MaxBytes), 10)
	dst = append(dst, `,"timeoutMs":`...)
	dst = strconv.AppendInt(dst, int64(s.TimeoutMs), 10)
	dst = append(dst, `},"destination":{"protocol":"HTTP","URI":`...)
	dst = jsonesc.AppendString(dst, s.URI)
	return append(dst, "}}"...)
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
	body := appendSubscribeBody(nil, s)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.urlTelemetry, bytes.NewReader(body))
	if err != nil {
		return SubscribeResult{}, fmt.Errorf("extapi: cannot build subscribe request: %w", err)
	}
	req.Header.Set(HeaderExtensionIdentifier, c.id)
	req.Header.Set("Content-Type", "application/json")
	var buf bytes.Buffer
	status, err := c.do(req, &buf)
	if err != nil {
		return SubscribeResult{}, fmt.Errorf("extapi: cannot subscribe to the telemetry API at %s: %w", c.urlTelemetry, err)
	}
	switch status {
	case http.StatusOK:
		return SubscribeResult{Status: status, Body: string(truncate(buf.Bytes()))}, nil
	case http.StatusAccepted:
		se := statusError(op, status, buf.Bytes())
		return SubscribeResult{}, fmt.Errorf("%w (status 202: %s: %s)", ErrTelemetryNotSupported, se.ErrorType, se.ErrorMessage)
	}
	return SubscribeResult{}, statusError(op, status, buf.Bytes())
}

// do sends req and reads at most maxResponseBytes of the body into dst. The
// body is always closed; an oversized body is an error.
func (c *Client) do(req *http.Request, dst *bytes.Buffer) (int, error) {
	status, _, err := c.doHeader(req, dst)
	return status, err
}

// doHeader is do that also returns the response headers.
func (c *Client) doHeader(req *http.Request, dst *bytes.Buffer) (int, http.Header, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	n, err := dst.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("cannot read response body: %w", err)
	}
	if n > maxResponseBytes {
		return 0, nil, fmt.Errorf("%w: response body over %d bytes", ErrBadResponse, maxResponseBytes)
	}
	return resp.StatusCode, resp.Header, nil
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
