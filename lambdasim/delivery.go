package lambdasim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// qitem is one queued event of a subscriber.
type qitem struct {
	id int
	b  []byte
	at time.Time // when it was queued
}

// subscriber delivers one extension's telemetry. Its queue is filled by the
// Sim (under Sim.mu, then subscriber.mu) and drained by run, the only
// goroutine that POSTs for it. run never holds mu while taking Sim.mu.
type subscriber struct {
	sim    *Sim
	name   string
	gen    int
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned
	wake   chan struct{} // capacity 1: queue changed

	mu       sync.Mutex
	cfg      subscription
	queue    []qitem // [head:] is queued, oldest first
	head     int
	qBytes   int
	notices  []qitem // platform.logsDropped events: never dropped, sent first
	flush    bool    // deliver what is queued without waiting for timeoutMs
	inflight []qitem // the batch being POSTed, until acknowledged
	stats    SubscriberStats

	// afterFlush, if set (by tests, before the Sim uses the subscriber),
	// runs at the end of flushNow on the caller's goroutine.
	afterFlush func()
}

func (s *Sim) newSubscriber(e *ext, cfg subscription) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscriber{
		sim: s, name: e.name, gen: e.gen, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), wake: make(chan struct{}, 1), cfg: cfg,
		stats: SubscriberStats{Name: e.name, Generation: e.gen},
	}
}

func (b *subscriber) wants(cat string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.wants(cat)
}

func (b *subscriber) reconfigure(cfg subscription) {
	b.mu.Lock()
	b.cfg = cfg
	b.mu.Unlock()
	b.signal()
}

func (b *subscriber) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// stop ends delivery; what is queued or in flight stays undelivered.
func (b *subscriber) stop() { b.cancel() }

// flushNow asks for what is queued to be delivered without waiting for
// timeoutMs; the request ends when run finds the queue empty, so queue what
// it is for first.
func (b *subscriber) flushNow() {
	b.mu.Lock()
	b.flush = true
	b.mu.Unlock()
	b.signal()
	if b.afterFlush != nil {
		b.afterFlush()
	}
}

// push queues it. When the queue exceeds limit bytes, the oldest queued
// events are dropped until it is at 3/4 of limit; push returns their IDs and
// size so the caller can report them with platform.logsDropped.
func (b *subscriber) push(it qitem, limit int) (dropped []int, droppedBytes int) {
	b.mu.Lock()
	if b.ctx.Err() == nil {
		b.queue = append(b.queue, it)
		b.qBytes += len(it.b)
		if b.qBytes > limit {
			// Drop oldest first, keeping the newest event, down to 3/4 of the
			// bound so one overflow yields one logsDropped, not one per event.
			for b.qBytes > limit*3/4 && b.head < len(b.queue)-1 {
				d := b.queue[b.head]
				b.queue[b.head] = qitem{}
				b.head++
				b.qBytes -= len(d.b)
				dropped = append(dropped, d.id)
				droppedBytes += len(d.b)
			}
			b.stats.Dropped = append(b.stats.Dropped, dropped...)
			// takeLocked, which also compacts, does not run while a
			// refused batch is retried: without this, every event pushed
			// and dropped meanwhile would keep its slot.
			b.compactLocked()
		}
	}
	b.mu.Unlock()
	b.signal()
	return dropped, droppedBytes
}

// pushNotice queues a platform.logsDropped event ahead of the queue, where
// later overflows cannot drop it.
func (b *subscriber) pushNotice(it qitem) {
	b.mu.Lock()
	if b.ctx.Err() == nil {
		b.notices = append(b.notices, it)
	}
	b.mu.Unlock()
	b.signal()
}

// readyLocked reports whether a batch is due; if not, wait is how long
// until the oldest event's timeoutMs passes (negative: queue empty).
func (b *subscriber) readyLocked(now time.Time) (ready bool, wait time.Duration) {
	n := len(b.queue) - b.head + len(b.notices)
	if n == 0 {
		b.flush = false
		return false, -1
	}
	if b.flush || n >= b.cfg.maxItems || b.qBytes >= b.cfg.maxBytes {
		return true, 0
	}
	var oldest time.Time
	if len(b.notices) > 0 {
		oldest = b.notices[0].at
	}
	if b.head < len(b.queue) && (oldest.IsZero() || b.queue[b.head].at.Before(oldest)) {
		oldest = b.queue[b.head].at
	}
	wait = oldest.Add(b.cfg.timeout).Sub(now)
	return wait <= 0, wait
}

// takeLocked removes the next batch: pending logsDropped notices, then up to
// maxItems events in all, adding events until their size reaches maxBytes
// (the last one may cross it).
func (b *subscriber) takeLocked() []qitem {
	batch := b.notices
	b.notices = nil
	end, size := b.head, 0
	for end < len(b.queue) && end-b.head+len(batch) < b.cfg.maxItems && size < b.cfg.maxBytes {
		size += len(b.queue[end].b)
		end++
	}
	batch = append(batch, b.queue[b.head:end]...)
	clear(b.queue[b.head:end])
	b.head = end
	b.qBytes -= size
	b.compactLocked()
	return batch
}

// compactLocked reclaims the slots before head once they are most of the
// queue, so the queue's length stays within about twice the queued events
// (plus 4096): the copies cost O(1) per event, amortised.
func (b *subscriber) compactLocked() {
	if b.head == len(b.queue) {
		b.queue, b.head = b.queue[:0], 0
	} else if b.head > 4096 && b.head > len(b.queue)/2 {
		n := copy(b.queue, b.queue[b.head:])
		clear(b.queue[n:])
		b.queue, b.head = b.queue[:n], 0
	}
}

// run delivers batches until stop. One POST at a time; a failed POST is
// retried with the same batch after an exponential backoff; POSTs start
// only while the environment is thawed.
func (b *subscriber) run() {
	defer b.sim.bg.Done()
	defer close(b.done)
	var (
		batch   []qitem
		body    []byte
		backoff time.Duration
		attempt int
	)
	for {
		select {
		case <-b.sim.thawedChan():
		case <-b.ctx.Done():
			return
		}
		if batch == nil {
			b.mu.Lock()
			ready, wait := b.readyLocked(time.Now())
			if ready {
				batch = b.takeLocked()
				b.inflight = batch
			}
			b.mu.Unlock()
			if batch == nil {
				if !b.sleep(wait, true) {
					return
				}
				continue
			}
			body = appendBody(body[:0], batch)
			attempt = 0
		}
		ok, frozen := b.post(body, batch, attempt+1)
		if frozen {
			continue // froze since the check above: wait for the thaw
		}
		attempt++
		if ok {
			batch, backoff = nil, 0
			continue
		}
		if backoff == 0 {
			backoff = b.sim.cfg.RetryMin
		} else {
			backoff = min(2*backoff, b.sim.cfg.RetryMax)
		}
		if !b.sleep(backoff, false) {
			return
		}
	}
}

// sleep waits d (forever if d < 0), or until the queue changes when
// wakeable. It returns false when the subscriber stopped.
func (b *subscriber) sleep(d time.Duration, wakeable bool) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	wake := b.wake
	if !wakeable {
		wake = nil
	}
	select {
	case <-timeout:
	case <-wake:
	case <-b.ctx.Done():
		return false
	}
	return true
}

// appendBody renders a JSON array of the batch's elements.
func appendBody(dst []byte, batch []qitem) []byte {
	dst = append(dst, '[')
	for i, it := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it.b...)
	}
	return append(dst, ']')
}

// post sends one batch and records it. It returns ok on a 2xx answer, and
// frozen (without sending) when the environment froze meanwhile: a POST
// starts only while thawed, and its Mark.At precedes any later freeze mark.
func (b *subscriber) post(body []byte, batch []qitem, attempt int) (ok, frozen bool) {
	b.mu.Lock()
	target := b.cfg.target
	b.mu.Unlock()
	ids := make([]int, len(batch))
	for i, it := range batch {
		ids[i] = it.id
	}
	m := Mark{Kind: MarkPost, Ext: b.name, Events: ids, Bytes: len(body)}
	if attempt > 1 {
		m.Detail = "retry"
	}
	b.sim.mu.Lock()
	if b.sim.frozen {
		b.sim.mu.Unlock()
		return false, true
	}
	start := time.Now()
	m.At = start.Sub(b.sim.epoch)
	b.sim.mu.Unlock()
	req, err := http.NewRequestWithContext(b.ctx, http.MethodPost, target, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		resp, err = b.sim.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			m.Status = resp.StatusCode
			ok = resp.StatusCode >= 200 && resp.StatusCode <= 299
		}
	}
	m.Latency = time.Since(start)
	if err != nil {
		m.Err = err.Error()
	}
	if b.ctx.Err() != nil && !ok {
		return false, false // stopped: not a delivery attempt worth recording
	}

	b.mu.Lock()
	b.stats.Posts++
	if attempt > 1 {
		b.stats.Retries++
	}
	if ok {
		b.stats.Acked = append(b.stats.Acked, ids...)
		b.inflight = nil
	} else {
		b.stats.FailedPosts++
	}
	b.mu.Unlock()

	b.sim.mu.Lock()
	b.sim.markLocked(m)
	b.sim.mu.Unlock()
	return ok, false
}

// undelivered counts events queued or in flight.
func (b *subscriber) undelivered() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) - b.head + len(b.inflight) + len(b.notices)
}

// SubscriberStats describes one Telemetry API subscriber's deliveries.
// Event IDs index Generated.
type SubscriberStats struct {
	Name          string
	Generation    int
	SchemaVersion string
	Types         []string
	URI           string
	MaxItems      int
	MaxBytes      int
	Timeout       time.Duration
	// Acked lists the IDs of events in POSTs answered 2xx, in delivery
	// order; an event appears once per acknowledged POST that carried it
	// (the simulator retries only failed POSTs, so once).
	Acked []int
	// Dropped lists events dropped on overflow (reported with logsDropped).
	Dropped []int
	// Pending lists events still queued or in flight (never acknowledged).
	Pending []int
	// Posts counts POST attempts; FailedPosts those that failed (non-2xx or
	// connection error); Retries the attempts that repeated a batch.
	Posts, FailedPosts, Retries int
}

func (b *subscriber) snapshot() SubscriberStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stats
	st.SchemaVersion, st.Types, st.URI = b.cfg.schema, append([]string(nil), b.cfg.types...), b.cfg.uri
	st.MaxItems, st.MaxBytes, st.Timeout = b.cfg.maxItems, b.cfg.maxBytes, b.cfg.timeout
	st.Acked = append([]int(nil), st.Acked...)
	st.Dropped = append([]int(nil), st.Dropped...)
	for _, it := range b.inflight {
		st.Pending = append(st.Pending, it.id)
	}
	for _, it := range b.notices {
		st.Pending = append(st.Pending, it.id)
	}
	for _, it := range b.queue[b.head:] {
		st.Pending = append(st.Pending, it.id)
	}
	return st
}
