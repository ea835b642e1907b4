package batch

import (
	"sync/atomic"
	"time"
)

// counters are written by the packer goroutine only (single writer, so the
// atomic adds never contend) and read by Stats from any goroutine. Updating
// them does no allocation.
type counters struct {
	calls         atomic.Uint64 // PutRecords calls made (attempts, whatever their outcome)
	callRecords   atomic.Uint64 // entries in those calls: with calls, the batch fill ratio
	callBytes     atomic.Uint64 // request bytes (data + keys) in those calls
	records       atomic.Uint64 // records accepted by Kinesis
	bytes         atomic.Uint64 // data + key bytes of accepted records
	events        atomic.Uint64 // events (frames) delivered; equal to records for RecordEncoder
	retried       atomic.Uint64 // events in calls that sent them again after a failure, once per such call
	throttled     atomic.Uint64 // entries failed with ProvisionedThroughputExceededException
	internal      atomic.Uint64 // entries failed with InternalFailure (or an unknown code)
	callThrottled atomic.Uint64 // whole calls refused by throttling (HTTP 400/429 throttling codes)
	callServer    atomic.Uint64 // whole calls failed with HTTP 5xx
	callNetwork   atomic.Uint64 // whole calls failed without a response (network, timeout)
	callRejected  atomic.Uint64 // whole calls refused as not retryable (access, stream, KMS, validation)
	canceled      atomic.Uint64 // calls canceled because a flush deadline or GiveUp cut them short
	oversize      atomic.Uint64 // events given up on because they can never fit a record
	givenUp       atomic.Uint64 // events given up on through GiveUp
	flushes       atomic.Uint64 // Flush calls answered
	flushesPart   atomic.Uint64 // of which left something pending
	flushNanos    atomic.Uint64 // total Flush duration
	flushMaxNanos atomic.Uint64 // longest Flush
	held          atomic.Int64  // events read from the ring and not settled (a gauge)
	// callThrottledRecords counts the records of the calls counted in
	// callThrottled, at each such call.
	callThrottledRecords atomic.Uint64
}

// Stats is a snapshot of the packer's counters.
type Stats struct {
	Calls         uint64 // PutRecords calls made
	CallRecords   uint64 // records in those calls (divide by Calls for the average batch)
	CallBytes     uint64 // bytes (data + keys) in those calls
	Records       uint64 // records accepted by Kinesis
	Bytes         uint64 // data + partition key bytes accepted
	Events        uint64 // events delivered (equal to Records with one event per record)
	Retried       uint64 // events sent again after a failed entry or call, once per call that resent them
	Throttled     uint64 // entries failed with ProvisionedThroughputExceededException
	InternalFail  uint64 // entries failed with InternalFailure (or an unknown per-record code)
	CallThrottled uint64 // calls refused by throttling as a whole
	CallServer    uint64 // calls failed with HTTP 5xx
	CallNetwork   uint64 // calls failed without a response (network error, attempt timeout)
	CallRejected  uint64 // calls refused as not retryable (access, missing stream, KMS, validation)
	Canceled      uint64 // calls cut short by a flush deadline or GiveUp (their events are kept)
	Oversize      uint64 // events given up on: larger than a record can be
	GivenUp       uint64 // events given up on through GiveUp (written as KTE_UNDELIVERED lines)
	Flushes       uint64 // Flush calls answered
	FlushesPart   uint64 // Flush calls that returned with events still pending
	FlushTotal    time.Duration
	FlushMax      time.Duration
	Held          int64 // events read from the ring and not yet settled
	// CallThrottledRecords is the number of records in the calls refused
	// by throttling as a whole (CallThrottled), counted at each such call:
	// with Throttled, every time Kinesis refused a record for throughput.
	CallThrottledRecords uint64
}

// AvgRecordsPerCall returns the mean number of records per PutRecords call
// (the batch fill ratio, times Limits.MaxRecords).
func (s Stats) AvgRecordsPerCall() float64 {
	if s.Calls == 0 {
		return 0
	}
	return float64(s.CallRecords) / float64(s.Calls)
}

// Stats returns a snapshot of the counters. Safe from any goroutine; it
// does no allocation.
func (p *Packer) Stats() Stats {
	c := &p.stats
	return Stats{
		Calls:         c.calls.Load(),
		CallRecords:   c.callRecords.Load(),
		CallBytes:     c.callBytes.Load(),
		Records:       c.records.Load(),
		Bytes:         c.bytes.Load(),
		Events:        c.events.Load(),
		Retried:       c.retried.Load(),
		Throttled:     c.throttled.Load(),
		InternalFail:  c.internal.Load(),
		CallThrottled: c.callThrottled.Load(),
		CallServer:    c.callServer.Load(),
		CallNetwork:   c.callNetwork.Load(),
		CallRejected:  c.callRejected.Load(),
		Canceled:      c.canceled.Load(),
		Oversize:      c.oversize.Load(),
		GivenUp:       c.givenUp.Load(),
		Flushes:       c.flushes.Load(),
		FlushesPart:   c.flushesPart.Load(),
		FlushTotal:    time.Duration(c.flushNanos.Load()),
		FlushMax:      time.Duration(c.flushMaxNanos.Load()),
		Held:          c.held.Load(),
		// records, not calls (CallThrottled counts those)
		CallThrottledRecords: c.callThrottledRecords.Load(),
	}
}
