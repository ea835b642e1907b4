// Package baseline is the telemetry-to-Kinesis pipeline as most Go Lambda
// extensions write it, for the benchmarks to compare KTE against in the same
// run: a net/http handler reads the body, decodes it with encoding/json into
// []json.RawMessage (one copy of each event), and sends every event into a
// buffered channel; one sender goroutine collects events from the channel and
// makes one PutRecords call per 500 records (or 5 MiB), resending the entries
// that failed.
//
// It is written the plain way on purpose, not badly: one partition key
// string for all records, a bounded queue (a full queue blocks the handler,
// so nothing is dropped), request and record byte limits respected. It does
// not enrich events, and neither do the benchmarks' KTE instances.
package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Kinesis PutRecords limits (the same figures as config.Kinesis*: 500
// records, 5 MiB per request and 1 MiB per record, data plus partition key).
const (
	MaxRecords      = 500
	MaxRequestBytes = 5 << 20
	MaxRecordBytes  = 1 << 20
)

// Defaults for zero Options fields.
const (
	DefaultQueueLen    = 10000
	DefaultSendTimeout = 2 * time.Second
	maxAttempts        = 5
	retryWait          = 50 * time.Millisecond
)

// ErrNotRunning is returned by Flush when Run is not running.
var ErrNotRunning = errors.New("baseline: sender not running")

// PutRecordsAPI is the one call the sender makes; *kinesis.Client implements it.
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, params *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Options configure an Extension.
type Options struct {
	Stream       string
	PartitionKey string
	// QueueLen is the channel's capacity in events (default 10000).
	QueueLen int
	// SendTimeout bounds one PutRecords call (default 2s).
	SendTimeout time.Duration
}

// Stats are the counters of an Extension.
type Stats struct {
	Received uint64 // events decoded and queued
	Sent     uint64 // events accepted by Kinesis
	Calls    uint64 // PutRecords calls that returned a response
	Dropped  uint64 // events larger than a record, or still failing after the last attempt
}

// Extension is the plain pipeline. ServeHTTP and Ingest may run on many
// goroutines at once; Run is the one sender goroutine; Flush and Stats are
// safe from any goroutine.
type Extension struct {
	client  PutRecordsAPI
	stream  string
	key     *string
	timeout time.Duration

	queue   chan json.RawMessage
	flushes chan chan error
	running atomic.Bool

	received, sent, calls, dropped atomic.Uint64

	srv *http.Server
}

// New returns an Extension sending to client.
func New(client PutRecordsAPI, o Options) *Extension {
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	key := o.PartitionKey
	stream := o.Stream
	return &Extension{
		client:  client,
		stream:  stream,
		key:     &key,
		timeout: o.SendTimeout,
		queue:   make(chan json.RawMessage, o.QueueLen),
		flushes: make(chan chan error),
	}
}

// ServeHTTP is the Telemetry API endpoint: 200 once every event of the body
// is queued, 400 for a body that is not a JSON array.
func (e *Extension) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := e.Ingest(r.Context(), body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Ingest decodes body, a JSON array of events, and queues every event,
// blocking while the queue is full (until ctx ends).
func (e *Extension) Ingest(ctx context.Context, body []byte) error {
	var events []json.RawMessage
	if err := json.Unmarshal(body, &events); err != nil {
		return fmt.Errorf("cannot decode telemetry: %w", err)
	}
	for _, ev := range events {
		select {
		case e.queue <- ev:
		case <-ctx.Done():
			return fmt.Errorf("cannot queue telemetry: %w", ctx.Err())
		}
	}
	e.received.Add(uint64(len(events)))
	return nil
}

// Start serves ServeHTTP on addr (for example "127.0.0.1:0") in a new
// goroutine and returns the bound address.
func (e *Extension) Start(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for telemetry: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/telemetry", e)
	e.srv = &http.Server{Handler: mux, ReadTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = e.srv.Serve(ln) }()
	return ln.Addr(), nil
}

// Shutdown stops the server started by Start.
func (e *Extension) Shutdown(ctx context.Context) error {
	if e.srv == nil {
		return nil
	}
	if err := e.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("cannot shut the telemetry server down: %w", err)
	}
	return nil
}

// Run is the sender goroutine: it sends a batch whenever 500 records (or
// 5 MiB) are queued, and everything queued when Flush asks. It returns ctx's
// error when ctx ends.
func (e *Extension) Run(ctx context.Context) error {
	e.running.Store(true)
	defer e.running.Store(false)
	var b batch
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-e.queue:
			e.add(ctx, &b, ev)
		case done := <-e.flushes:
		drain:
			for {
				select {
				case ev := <-e.queue:
					e.add(ctx, &b, ev)
				default:
					break drain
				}
			}
			done <- e.send(ctx, &b)
		}
	}
}

// Flush sends everything queued now and returns once it is sent (or ctx
// ends).
func (e *Extension) Flush(ctx context.Context) error {
	if !e.running.Load() {
		return ErrNotRunning
	}
	done := make(chan error, 1)
	select {
	case e.flushes <- done:
	case <-ctx.Done():
		return fmt.Errorf("cannot flush: %w", ctx.Err())
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("cannot flush: %w", ctx.Err())
	}
}

// Stats returns the counters.
func (e *Extension) Stats() Stats {
	return Stats{Received: e.received.Load(), Sent: e.sent.Load(), Calls: e.calls.Load(), Dropped: e.dropped.Load()}
}

// batch is the request under construction.
type batch struct {
	entries []types.PutRecordsRequestEntry
	bytes   int
}

func (e *Extension) add(ctx context.Context, b *batch, ev json.RawMessage) {
	size := len(ev) + len(*e.key)
	if size > MaxRecordBytes {
		e.dropped.Add(1)
		return
	}
	if b.bytes+size > MaxRequestBytes {
		_ = e.send(ctx, b) // errors are counted as dropped events
	}
	if b.entries == nil {
		b.entries = make([]types.PutRecordsRequestEntry, 0, MaxRecords)
	}
	b.entries = append(b.entries, types.PutRecordsRequestEntry{Data: ev, PartitionKey: e.key})
	b.bytes += size
	if len(b.entries) == MaxRecords {
		_ = e.send(ctx, b)
	}
}

// send makes the PutRecords call for b, resends failed entries a few times,
// and empties b.
func (e *Extension) send(ctx context.Context, b *batch) error {
	entries := b.entries
	b.entries, b.bytes = nil, 0
	var err error
	for attempt := 1; len(entries) > 0; attempt++ {
		if attempt > maxAttempts {
			e.dropped.Add(uint64(len(entries)))
			return fmt.Errorf("cannot put %d records after %d attempts: %w", len(entries), maxAttempts, err)
		}
		if attempt > 1 {
			time.Sleep(retryWait)
		}
		cctx, cancel := context.WithTimeout(ctx, e.timeout)
		var out *kinesis.PutRecordsOutput
		out, err = e.client.PutRecords(cctx, &kinesis.PutRecordsInput{StreamName: &e.stream, Records: entries})
		cancel()
		if err != nil {
			continue
		}
		e.calls.Add(1)
		if out.FailedRecordCount == nil || *out.FailedRecordCount == 0 {
			e.sent.Add(uint64(len(entries)))
			return nil
		}
		var failed []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil && i < len(entries) {
				failed = append(failed, entries[i])
			}
		}
		e.sent.Add(uint64(len(entries) - len(failed)))
		entries = failed
		err = fmt.Errorf("%d records failed", len(failed))
	}
	return nil
}
