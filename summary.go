package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/metrics"
)

// runtimeDoneMemory is how many recent runtimeDone request ids are kept: a
// runtimeDone may reach the listener before the lifecycle goroutine starts
// waiting for it (a very short function), and invocations are sequential,
// so a few are plenty.
const runtimeDoneMemory = 8

// runtimeDone remembers the request ids of the last platform.runtimeDone
// events the listener has seen, for the flush strategies that wait for them.
// add is called from listener handler goroutines (once per invocation, so
// its one allocation is not on the per-event path); wait from the lifecycle
// goroutine.
type runtimeDone struct {
	mu     sync.Mutex
	recent [runtimeDoneMemory]string
	next   int
	ch     chan struct{} // closed and replaced on every runtimeDone
}

func newRuntimeDone() *runtimeDone {
	return &runtimeDone{ch: make(chan struct{})}
}

func (x *extension) onRuntimeDone(requestID []byte) { x.done.add(requestID) }

func (d *runtimeDone) add(requestID []byte) {
	d.mu.Lock()
	d.recent[d.next] = string(requestID)
	d.next = (d.next + 1) % runtimeDoneMemory
	close(d.ch)
	d.ch = make(chan struct{})
	d.mu.Unlock()
}

// seen reports whether a runtimeDone for id arrived (among the last few),
// and returns the channel closed by the next one.
func (d *runtimeDone) seen(id string) (bool, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.recent {
		if r == id && id != "" {
			return true, nil
		}
	}
	return false, d.ch
}

// wait returns true as soon as the runtimeDone of request id has arrived,
// or false at until or when ctx ends, whichever comes first.
func (d *runtimeDone) wait(ctx context.Context, id string, until time.Time) bool {
	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	for {
		ok, next := d.seen(id)
		if ok {
			return true
		}
		select {
		case <-next:
		case <-timer.C:
			ok, _ = d.seen(id)
			return ok
		case <-ctx.Done():
			return false
		}
	}
}

// summaryPrefix starts the one line of counters written to stderr at exit.
const summaryPrefix = "KTE_SUMMARY"

// printSummary writes the counters as one greppable line to stderr:
// KTE_SUMMARY reason=... received=... records=... sent=... retried=...
// dropped_<reason>=... received counts events: the elements of the JSON
// arrays the listener stored (listener.Stats.Events), an overflowing
// body's included (stored whole, wrapped), a malformed body's none (it is
// not an array of events). records counts the Kinesis records they were
// stored as (listener.Stats.Frames, ring frames): one per event, or one per
// part of a wrapped payload. Records are the unit of sent and of
// dropped_shutdown and dropped_oversize: once nothing is left buffered,
// records = sent + dropped_shutdown + dropped_oversize.
func (x *extension) printSummary(reason string, res batch.FlushResult, undelivered int) {
	fmt.Fprintln(x.env.stderr, x.summaryLine(reason, res, undelivered))
}

func (x *extension) summaryLine(reason string, res batch.FlushResult, undelivered int) string {
	ls := x.lis.Stats()
	ps := x.packer.Stats()
	rs := x.ring.Stats()
	return fmt.Sprintf("%s reason=%s received=%d records=%d posts=%d sent=%d put_calls=%d retried=%d throttled=%d "+
		"dropped_shutdown=%d dropped_oversize=%d dropped_by_lambda=%d quarantined=%d oversize_split=%d "+
		"refused_full=%d refused_too_large=%d ring_high_water=%d ring_bytes=%d ring_restarts=%d final_flush_ms=%d",
		summaryPrefix, reason, ls.Events, ls.Frames, ls.Posts, ps.Events, ps.Calls, ps.Retried, ps.Throttled+ps.CallThrottledRecords,
		undelivered, ps.Oversize, ls.LogsDroppedRecords, ls.Malformed+ls.Overflow, ls.Oversize,
		ls.RefusedFull, ls.TooLarge, rs.HighWater, rs.Size, rs.Restarts, res.Duration.Milliseconds())
}

// summaryReason returns the summary's reason= for a SHUTDOWN's
// shutdownReason: lower-cased (Lambda's documentation writes SPINDOWN, its
// platform sends spindown), "unknown" when empty, and white space and
// control characters made '_', so that it stays one field of the line.
func summaryReason(shutdownReason string) string {
	if shutdownReason == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return unicode.ToLower(r)
	}, shutdownReason)
}

// Metrics (KTE_METRICS): one CloudWatch EMF line on stdout at SHUTDOWN and
// at an INVOKE when a minute has passed since the last line (never from a
// timer while the environment may be frozen; on Lambda Managed Instances,
// which never freeze, from a one-minute ticker instead). Counters are
// emitted as the count of the interval since the previous line; gauges as
// described. The names are those of the README's Metrics section.
//
// Two units are counted, as in the summary line: events (elements of the
// JSON arrays the listener stored: EventsReceived) and records (Kinesis
// records, the ring's frames: one per event, or one per part of a wrapped
// payload). Whatever their names, EventsSent, EventsRetried, EventsDropped
// and EventsBuffered count records; they equal events only while nothing
// was wrapped. EventsDropped = DroppedShutdown + DroppedOversize +
// DroppedByLambda: the first two are records KTE gave up on (the summary's
// dropped_shutdown and dropped_oversize), the third the records Lambda
// reports it dropped before delivering them (platform.logsDropped's
// droppedRecords: Lambda's telemetry records, each one event KTE never
// received; the summary's dropped_by_lambda).
var metricDefs = []metrics.Def{
	{Name: "EventsReceived", Unit: metrics.Count},                              // events stored, as the summary's received (an overflowing body's each)
	{Name: "EventsSent", Unit: metrics.Count},                                  // records accepted by Kinesis (the summary's sent)
	{Name: "BytesSent", Unit: metrics.Bytes},                                   // data + partition key bytes accepted
	{Name: "PutRecordsCalls", Unit: metrics.Count},                             // PutRecords calls made
	{Name: "EventsRetried", Unit: metrics.Count},                               // records sent again (the summary's retried)
	{Name: "RecordsThrottled", Unit: metrics.Count},                            // records refused for throughput: failed entries, and those of throttled calls
	{Name: "RecordsFailed", Unit: metrics.Count},                               // entries failed with InternalFailure
	{Name: "CallsThrottled", Unit: metrics.Count},                              // whole calls refused by throttling
	{Name: "CallsFailed", Unit: metrics.Count},                                 // calls failed with 5xx, no answer, or cut by a flush deadline
	{Name: "CallsRejected", Unit: metrics.Count},                               // calls refused as not retryable (access, stream, KMS)
	{Name: "EventsDropped", Unit: metrics.Count},                               // records: the sum of the three Dropped* below
	{Name: "DroppedShutdown", Unit: metrics.Count},                             // records written as KTE_UNDELIVERED reason=shutdown_deadline
	{Name: "DroppedOversize", Unit: metrics.Count},                             // records written as KTE_UNDELIVERED reason=oversize: larger than any record
	{Name: "DroppedByLambda", Unit: metrics.Count},                             // platform.logsDropped droppedRecords: Lambda's records (events) never delivered
	{Name: "DroppedByLambdaBytes", Unit: metrics.Bytes},                        // platform.logsDropped droppedBytes
	{Name: "Quarantined", Unit: metrics.Count},                                 // POSTs whose body is stored wrapped (malformed, overflow), once stored
	{Name: "OversizeSplit", Unit: metrics.Count},                               // events stored wrapped in parts
	{Name: "RefusedFull", Unit: metrics.Count},                                 // POSTs answered 503 (ring full; Lambda retries)
	{Name: "RefusedTooLarge", Unit: metrics.Count},                             // POSTs answered 413
	{Name: "Flushes", Unit: metrics.Count},                                     // flushes made
	{Name: "FlushesIncomplete", Unit: metrics.Count},                           // of those, ended with something left (deadline, backoff, no client)
	{Name: "EndWaitExpired", Unit: metrics.Count},                              // end/auto: runtimeDone did not come in time
	{Name: "FlushLatencyAvg", Unit: metrics.Milliseconds, Kind: metrics.Gauge}, // mean flush time in the interval
	{Name: "FlushLatencyMax", Unit: metrics.Milliseconds, Kind: metrics.Gauge}, // longest flush in the interval
	{Name: "EventsBuffered", Unit: metrics.Count, Kind: metrics.Gauge},         // records (frames) in the ring now, not settled
	{Name: "RingHighWaterBytes", Unit: metrics.Bytes, Kind: metrics.Gauge},     // most ring bytes in use since start
	{Name: "RingHighWaterPercent", Unit: metrics.Percent, Kind: metrics.Gauge}, // the same, in % of the ring
}

// metricDimensions maps KTE_METRICS_DIMENSIONS names to EMF dimension names.
var metricDimensions = map[string]string{
	config.DimensionFunction: "FunctionName",
	config.DimensionVersion:  "FunctionVersion",
	config.DimensionStream:   "StreamName",
}

// emitter is the extension's metrics state: the EMF writer plus what the
// lifecycle measures itself (flush latencies of the interval, expired
// end-style waits). Its methods are safe from any goroutine, and those the
// lifecycle calls on every invocation are no-ops on a nil *emitter.
type emitter struct {
	w *metrics.Emitter

	mu         sync.Mutex
	flushes    uint64 // cumulative
	incomplete uint64 // cumulative
	endExpired uint64 // cumulative
	winN       int    // flushes in the interval
	winSum     time.Duration
	winMax     time.Duration

	stop       chan struct{}
	stopOnce   sync.Once
	tickerDone chan struct{} // closed when the Managed Instances ticker has stopped; nil without one
	values     []float64
}

func (x *extension) newEmitter() (*emitter, error) {
	dims := make([]metrics.Dimension, 0, len(x.cfg.MetricsDimensions))
	for _, d := range x.cfg.MetricsDimensions {
		var v string
		switch d {
		case config.DimensionFunction:
			v = firstNonEmpty(x.reg.FunctionName, x.cfg.FunctionName)
		case config.DimensionVersion:
			v = firstNonEmpty(x.reg.FunctionVersion, x.cfg.FunctionVersion)
		case config.DimensionStream:
			v = x.cfg.StreamName
		}
		dims = append(dims, metrics.Dimension{Name: metricDimensions[d], Value: firstNonEmpty(v, "unknown")})
	}
	w, err := metrics.New(x.env.stdout, metrics.Options{
		Namespace:  x.cfg.MetricsNamespace,
		Dimensions: dims,
		Metrics:    metricDefs,
	}, time.Now())
	if err != nil {
		return nil, fmt.Errorf("cannot set up the metrics: %w", err)
	}
	return &emitter{w: w, stop: make(chan struct{}), values: make([]float64, len(metricDefs))}, nil
}

func (m *emitter) flushed(res batch.FlushResult) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.flushes++
	if !res.Complete {
		m.incomplete++
	}
	m.winN++
	m.winSum += res.Duration
	m.winMax = max(m.winMax, res.Duration)
	m.mu.Unlock()
}

func (m *emitter) endWaitExpired() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.endExpired++
	m.mu.Unlock()
}

func (m *emitter) due(now time.Time) bool { return m.w.Due(now) }

// stopTicker stops the Managed Instances ticker and waits until it has: a
// tick that fired meanwhile must not write a line after the final one.
func (m *emitter) stopTicker() {
	m.stopOnce.Do(func() { close(m.stop) })
	if m.tickerDone != nil {
		<-m.tickerDone
	}
}

// startMetricsTicker emits once a minute on Lambda Managed Instances, where
// there is no INVOKE to emit at and the environment is never frozen.
// lmiMetricsInterval is how often Managed Instances, which have no INVOKE to
// hang metrics on, get an EMF line (tests shorten it).
var lmiMetricsInterval = metrics.DefaultInterval

func (x *extension) startMetricsTicker() {
	if x.stats == nil || !x.cfg.LMI {
		return
	}
	done := make(chan struct{})
	x.stats.tickerDone = done
	go func() {
		defer close(done)
		t := time.NewTicker(lmiMetricsInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				x.emitMetrics()
			case <-x.stats.stop:
				return
			}
		}
	}()
}

// emitMetrics writes one EMF line with the counters now.
func (x *extension) emitMetrics() {
	m := x.stats
	m.mu.Lock() // before the counters: lines are written in the order they were read
	defer m.mu.Unlock()
	ls := x.lis.Stats()
	ps := x.packer.Stats()
	rs := x.ring.Stats()
	avg := time.Duration(0)
	if m.winN > 0 {
		avg = m.winSum / time.Duration(m.winN)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	v := m.values[:0]
	v = append(v,
		float64(ls.Events), float64(ps.Events), float64(ps.Bytes), float64(ps.Calls), float64(ps.Retried),
		float64(ps.Throttled+ps.CallThrottledRecords), float64(ps.InternalFail), float64(ps.CallThrottled),
		float64(ps.CallServer+ps.CallNetwork+ps.Canceled), float64(ps.CallRejected),
		float64(ps.GivenUp+ps.Oversize+ls.LogsDroppedRecords), float64(ps.GivenUp), float64(ps.Oversize),
		float64(ls.LogsDroppedRecords), float64(ls.LogsDroppedBytes),
		float64(ls.Malformed+ls.Overflow), float64(ls.Oversize), float64(ls.RefusedFull), float64(ls.TooLarge),
		float64(m.flushes), float64(m.incomplete), float64(m.endExpired),
		ms(avg), ms(m.winMax), float64(bufferedFrames(rs, ps)),
		float64(rs.HighWater), math.Round(10000*float64(rs.HighWater)/float64(max(rs.Size, 1)))/100,
	)
	// The strategy in use is a log field, not a dimension (it would split
	// every metric in two under auto).
	style := "continuous" // Lambda Managed Instances
	if !x.cfg.LMI {
		style = x.policy.Style()
	}
	if err := m.w.Emit(time.Now(), v, metrics.Property{Name: "FlushStrategy", Value: style}); err != nil {
		x.log.Warn("kte: cannot write metrics", "error", err)
	}
	m.winN, m.winSum, m.winMax = 0, 0, 0
}
