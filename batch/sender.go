package batch

import (
	"bufio"
	"context"
	"errors"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// randN returns a uniformly random int64 in [0, n), from the packer's own
// generator (see Redraw); it does no allocation. Packer goroutine only.
func (p *Packer) randN(n int64) int64 {
	if s := p.reseed.Swap(nil); s != nil {
		p.rng.Seed(s[0], s[1])
	}
	return p.jitter.Int64N(n)
}

// send makes one PutRecords call for the open request and settles its
// events: accepted entries at once, failed ones back to wait for a retry.
// Packer goroutine only.
func (p *Packer) send(ctx context.Context) {
	actx, cancel, byFlush, ok := p.startCall(ctx)
	if !ok {
		return // a control request is waiting: take it in first
	}
	entries := p.enc.Entries()
	p.input.Records = entries
	p.stats.calls.Add(1)
	p.stats.retried.Add(uint64(p.reqRetried))
	p.stats.callRecords.Add(uint64(len(entries)))
	p.stats.callBytes.Add(uint64(p.enc.Bytes()))

	out, err := p.client.PutRecords(withWireBuffers(actx, &p.wire), &p.input)

	p.ctl.mu.Lock()
	p.ctl.cancel = nil
	cut := p.ctl.cutShort
	p.ctl.mu.Unlock()
	canceled := cut || ctx.Err() != nil ||
		byFlush && errors.Is(err, context.DeadlineExceeded) ||
		p.fl != nil && p.fl.ctx.Err() != nil
	// The flush's time ran out before Kinesis answered: no backoff (the
	// stream's state is unknown), but it counts toward a run of failing
	// calls, as a stream that cannot be reached (a VPC without a route to
	// Kinesis: the connection hangs) ends every call this way when
	// KTE_SEND_TIMEOUT_MS is not shorter than the flush.
	// (The flush may have cut the call itself, at its deadline: then the
	// call's error is context.Canceled, and the flush's DeadlineExceeded.)
	flushTimedOut := err != nil && ctx.Err() == nil &&
		(byFlush && !cut && errors.Is(err, context.DeadlineExceeded) ||
			p.fl != nil && errors.Is(p.fl.ctx.Err(), context.DeadlineExceeded))
	cancel()
	p.input.Records = nil

	now := p.now()
	switch {
	case err != nil:
		kind := classify(err, canceled)
		p.callFailed(err, kind, now)
		if kind == failCanceled && flushTimedOut {
			p.failing(failNetwork, err.Error(), now)
		}
	case len(out.Records) != len(entries):
		if !p.loggedOdd {
			p.loggedOdd = true
			p.log.Warn("kte: Kinesis answered PutRecords with a different number of records than sent; resending them",
				"sent", len(entries), "answered", len(out.Records), "stream", p.name)
		}
		p.callFailed(errors.New("batch: response record count mismatch"), failServer, now)
	default:
		p.callDone(out, now)
	}
	p.stalled.Store(p.callFails > 0 || p.failCalls > 0)
	p.closeRequest()
	p.release()
}

// Stalled reports whether the last PutRecords call that Kinesis answered,
// or that got no answer within its time, delivered nothing, and no call
// has delivered since: the stream is unreachable, throttling everything,
// failing or refusing. A call cut short by a flush before its time ran out
// says nothing and changes nothing. Safe from any goroutine.
func (p *Packer) Stalled() bool { return p.stalled.Load() }

// startCall prepares the context of one call: the per-attempt timeout, cut
// to the flush deadline when that is sooner. It registers the cancel
// function so that Flush and GiveUp can cut the call short; it refuses to
// start when a control request is waiting (so that a Flush whose deadline
// has passed never waits for a call that started after it).
func (p *Packer) startCall(ctx context.Context) (context.Context, context.CancelFunc, bool, bool) {
	timeout := p.sendTimeout
	byFlush := false
	if p.fl != nil {
		if dl, ok := p.fl.ctx.Deadline(); ok {
			rem := time.Until(dl)
			if rem <= 0 {
				return nil, nil, false, false // the flush is over (its context may not say so yet)
			}
			if rem < timeout {
				timeout, byFlush = rem, true
			}
		}
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	p.ctl.mu.Lock()
	if p.ctl.flush != p.fl || p.ctl.giveUp != nil || p.fl != nil && p.fl.ctx.Err() != nil ||
		p.fl == nil && !p.ctl.resumed {
		p.ctl.mu.Unlock()
		cancel()
		return nil, nil, false, false
	}
	p.ctl.cancel, p.ctl.cutShort = cancel, false
	p.ctl.mu.Unlock()
	return actx, cancel, byFlush, true
}

// callFailed handles a call that failed as a whole: every event of the
// request waits to be resent, and further calls wait for the backoff.
func (p *Packer) callFailed(err error, kind failKind, now int64) {
	switch kind {
	case failCanceled:
		p.stats.canceled.Add(1)
	case failThrottled:
		p.stats.callThrottled.Add(1)
		p.stats.callThrottledRecords.Add(uint64(len(p.req)))
	case failServer:
		p.stats.callServer.Add(1)
	case failNetwork:
		p.stats.callNetwork.Add(1)
	default:
		p.stats.callRejected.Add(1)
	}
	for _, i := range p.req {
		p.retryLater(&p.slots[i&p.mask], now)
	}
	if kind == failCanceled {
		return // our own deadline, not the service's state: no backoff
	}
	p.callFails++
	p.rejected = !kind.retryable()
	if !p.rejected {
		p.notBefore = now + p.retryWait(p.callFails, now)
		p.failing(kind, err.Error(), now)
		return
	}
	p.notBefore = now + p.cap/2 + p.randN(p.cap/2+1)
	if !p.logged[kind] {
		p.logged[kind] = true
		p.log.Error(p.advice(kind), "stream", p.name, "error", err.Error())
	}
}

// keptAdvice ends every log message about failing calls.
const keptAdvice = " Events are kept and retried while there is room; at shutdown the rest is written to stderr as KTE_UNDELIVERED lines."

// advice returns the log message for a kind of refusal: what it means and
// the likely fix.
func (p *Packer) advice(kind failKind) string {
	switch kind {
	case failNotFound:
		return "kte: Kinesis stream " + p.name + " does not exist in the region the client uses: check KTE_STREAM and the region (the ARN's region, else AWS_REGION)." + keptAdvice
	case failAccess:
		return "kte: Kinesis refused PutRecords to " + p.name + ": grant kinesis:PutRecords on " + p.arn + " to the function's execution role (or to the stream's resource policy for another account)." + keptAdvice
	case failKMS:
		return "kte: stream " + p.name + " is encrypted with a KMS key the function cannot use: grant kms:GenerateDataKey on the stream's key to the function's execution role, and check the key is enabled." + keptAdvice
	case failInvalid:
		return "kte: Kinesis refused PutRecords to " + p.name + " as invalid: if KTE_RECORD_MAX_BYTES or KTE_BATCH_MAX_BYTES are above 1MiB/5MiB, raise the stream's maximum record size (UpdateMaxRecordSize) or lower them; a partition key (KTE_PARTITION_KEY) must be 1–256 UTF-16 code units, an emoji counting 2." + keptAdvice
	case failCredentials:
		return "kte: no AWS credentials to call Kinesis: the extension uses the function's execution role from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)." + keptAdvice
	case failEndpoint:
		return "kte: the Kinesis client has no usable endpoint: check the region (the stream ARN's, else AWS_REGION or AWS_DEFAULT_REGION) and the endpoint (AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL or endpoint_url in the AWS config file), an http:// or https:// URL with a host." + keptAdvice
	}
	return "kte: Kinesis refused PutRecords to " + p.name + " with an error that retrying is not expected to fix." + keptAdvice
}

// callDone walks the response by index: accepted entries settle their
// events, failed entries send theirs back to wait for a retry. It does no
// allocation.
func (p *Packer) callDone(out *kinesis.PutRecordsOutput, now int64) {
	entries := p.enc.Entries()
	res := out.Records
	failed := 0
	for e := range entries {
		code := res[e].ErrorCode
		if code == nil || *code == "" {
			p.stats.records.Add(1)
			p.stats.bytes.Add(uint64(len(entries[e].Data) + len(*entries[e].PartitionKey)))
			continue
		}
		failed++
		switch *code {
		case codeThroughput:
			p.stats.throttled.Add(1)
		case codeInternal:
			p.stats.internal.Add(1)
		default:
			p.stats.internal.Add(1)
			if !p.loggedOdd {
				p.loggedOdd = true
				p.log.Warn("kte: unexpected per-record error code from Kinesis; retrying the record", "code", *code, "stream", p.name)
			}
		}
	}
	// Failed entries wait one backoff, drawn once for the whole call (with
	// the exponent of the most-tried among them), so that they go out
	// together in one later request rather than one request per record.
	delivered := uint64(0)
	var attempts uint32
	for _, i := range p.req {
		s := &p.slots[i&p.mask]
		if code := res[s.entry].ErrorCode; code == nil || *code == "" {
			p.settle(s)
			delivered++
			continue
		}
		s.attempts++
		attempts = max(attempts, s.attempts)
	}
	if attempts > 0 {
		due := now + p.retryWait(int(attempts), now)
		for _, i := range p.req {
			if s := &p.slots[i&p.mask]; s.state == slotQueued {
				p.retryLater(s, due)
			}
		}
	}
	p.stats.events.Add(delivered)
	if failed == len(entries) {
		// Nothing got through: treat it like a throttled call, so that new
		// events wait too.
		p.callFails++
		p.notBefore, p.rejected = now+p.retryWait(p.callFails, now), false
		kind, detail := failServer, "every record failed"
		if failed > 0 {
			detail += ": " + *res[0].ErrorCode
			if *res[0].ErrorCode == codeThroughput {
				kind = failThrottled
			}
		}
		p.failing(kind, detail, now)
		return
	}
	p.callFails, p.notBefore, p.rejected = 0, 0, false
	p.delivering(now)
}

// A call that delivers nothing for a passing reason (network, throttling,
// 5xx) is retried without a word at first: a blip is normal. failWarnCalls
// such calls in a row over at least failWarnAfter are not, and are logged
// once per run, with the last error; the first call that delivers again
// logs the run's end. A refusal that retrying cannot fix is logged apart
// (callFailed) and neither ends nor extends a run.
const (
	failWarnCalls = 3
	failWarnAfter = int64(time.Second)
)

// failing counts a call of a run of calls that delivered nothing, and logs
// the run once it is long enough. Packer goroutine only.
func (p *Packer) failing(kind failKind, detail string, now int64) {
	if p.failCalls == 0 {
		p.failSince = now
	}
	p.failCalls++
	if p.failLogged || p.failCalls < failWarnCalls || now-p.failSince < failWarnAfter {
		return
	}
	p.failLogged = true
	p.log.Warn(p.failingAdvice(kind), "stream", p.name, "calls", p.failCalls,
		"for", time.Duration(now-p.failSince).Round(time.Millisecond).String(), "error", detail)
}

// delivering ends a run of failed calls. Packer goroutine only.
func (p *Packer) delivering(now int64) {
	if p.failLogged {
		p.log.Info("kte: PutRecords to "+p.name+" delivers again", "stream", p.name, "failed_calls", p.failCalls,
			"for", time.Duration(now-p.failSince).Round(time.Millisecond).String())
	}
	p.failCalls, p.failLogged = 0, false
}

// failingAdvice returns the log message for a run of failed calls of one
// kind: what it likely means and what to check.
func (p *Packer) failingAdvice(kind failKind) string {
	switch kind {
	case failNetwork:
		return "kte: PutRecords to " + p.name + " keeps failing: Kinesis cannot be reached or does not answer in time. A function in a VPC needs a Kinesis interface endpoint or a NAT gateway; check AWS_ENDPOINT_URL_KINESIS if it is set, and that KTE_SEND_TIMEOUT_MS and KTE_FLUSH_MAX_MS give a call time to finish." + keptAdvice
	case failThrottled:
		return "kte: PutRecords to " + p.name + " keeps failing: the stream is throttling writes. Add shards, or use on-demand capacity." + keptAdvice
	}
	return "kte: PutRecords to " + p.name + " keeps failing: Kinesis answers with server errors." + keptAdvice
}

// giveUp writes every held event to w (see GiveUp) and releases it.
// Packer goroutine, or the caller of GiveUp when Run is not running.
func (p *Packer) giveUp(w io.Writer, reason string) int {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	write := func(data []byte) {
		p.lineBuf = appendUndelivered(p.lineBuf[:0], reason, data, p.undelID.Add(1))
		_, _ = bw.Write(p.lineBuf)
		n++
	}
	p.closeRequest()
	for i := p.head; i != p.tail; i++ {
		s := &p.slots[i&p.mask]
		if s.state != slotSettled {
			write(s.data)
			p.settle(s)
		}
	}
	p.retrying = 0
	p.fresh = p.tail
	p.release()
	for {
		f, ok := p.r.Next()
		if !ok {
			break
		}
		write(f.Data)
		p.r.Release(f)
	}
	if err := bw.Flush(); err != nil {
		p.log.Error("kte: cannot write undelivered events", "error", err.Error(), "events", n)
	}
	if u := p.r.Unread(); u > 0 {
		p.log.Warn("kte: ring bytes reserved by a writer but never committed were not written", "bytes", u)
	}
	if cap(p.lineBuf) > 1<<20 {
		p.lineBuf = make([]byte, 0, 4096)
	}
	p.stats.givenUp.Add(uint64(n))
	return n
}
