// Package flush decides, at each INVOKE, when the extension delivers what it
// has buffered (KTE_FLUSH). It is a pure policy: it keeps a little history
// (when the last flush happened, the recent gaps between INVOKEs) and is
// told the time by its caller, so its rules are tested with made-up clocks.
// The lifecycle carries out what it decides.
//
// # Strategies
//
// Every strategy honours the same three rules. A full batch (KTE_BATCH_MAX_*)
// is sent as soon as it is complete while the extension is working on an
// INVOKE (the packer does that between Resume and Flush). No strategy keeps
// the extension past the invocation's deadline (minus KTE_SHUTDOWN_MARGIN_MS).
// Nothing is in flight when the extension calls /event/next, because the
// environment may be frozen from that moment (Lambda Managed Instances, where
// there is no INVOKE and no freeze, deliver continuously instead and ignore
// KTE_FLUSH).
//
//   - invoke (Now at every INVOKE): deliver what is buffered as soon as the
//     INVOKE arrives, concurrently with the function, then call /event/next.
//     The telemetry of invocation N (its log lines, runtimeDone, report) is
//     delivered at INVOKE N+1, or at SHUTDOWN: the delay is the gap to the
//     next invocation. The end of N is usually still in Lambda's telemetry
//     buffer at the freeze and arrives just after the thaw, so the
//     lifecycle first waits for N's runtimeDone, at most
//     KTE_BUFFER_TIMEOUT_MS + 30 ms (without that wait it would go one
//     invocation later). It adds billed time only when the wait and the
//     delivery outlast the function. The cheapest choice for busy functions.
//   - end (AfterRuntimeDone at every INVOKE): wait until this invocation's
//     platform.runtimeDone has reached the extension (at most
//     KTE_FLUSH_END_MAX_WAIT_MS, never past the deadline), then deliver, then
//     call /event/next. The telemetry of invocation N is in Kinesis when N
//     ends (its platform.report, produced only after every extension is done,
//     goes with the next delivery). The caller gets its response as usual
//     (Lambda answers before the extensions finish), but the wait and the
//     delivery are billed, and the environment takes no new invocation
//     meanwhile. runtimeDone leaves Lambda's telemetry buffer up to
//     KTE_BUFFER_TIMEOUT_MS after the function ends, so end costs about that
//     plus one PutRecords per invocation: use it with a short buffer timeout
//     (25 ms, the minimum).
//   - periodic:<d> (Now once d has passed since the last delivery, else
//     Skip): like invoke, but deliver at most once per period, unless a full
//     batch is already buffered. Fewer, fuller PutRecords calls (cost) for a
//     delay of up to d plus the gap to the next invocation.
//   - auto: end while invocations are rare, invoke once they are frequent
//     enough that waiting for the next INVOKE delays little; see Policy.
//
// # A flush
//
// A flush (batch.Packer.Flush, which the lifecycle calls) sends what was
// buffered when it began: full and partial batches, and the records waiting
// for a retry, retried with backoff within its time. Events that arrive
// meanwhile wait for the next flush (a flush does not chase a steady
// stream). It ends when all of that is delivered, at its deadline, or as
// soon as the next attempt could not start before the deadline, or only
// after the backoff of a refusal that retrying is not expected to fix
// (access denied, a missing stream). Whichever way it ends, no PutRecords
// call is in flight when it returns: a call still waiting for Kinesis at the
// deadline is cut short, its records kept, and counted in CallsFailed. What
// is left stays buffered for the next flush.
//
// At an INVOKE, a flush ends at the latest KTE_FLUSH_MAX_MS after the
// INVOKE arrived (Now: the wait for the previous runtimeDone counts) or
// after the wait for this runtimeDone (AfterRuntimeDone), and never after
// the invocation's deadline minus KTE_SHUTDOWN_MARGIN_MS, so that a slow
// or unreachable stream adds a bounded time to an invocation. Every flush
// is counted in the Flushes metric, and in FlushesIncomplete when it ended
// with something left.
//
// # Shutdown
//
// On SHUTDOWN (also on SIGTERM or SIGINT outside Lambda, and when
// /event/next fails, with 2 s in place of the deadline) the lifecycle keeps
// listening for the last telemetry for a while, stops the listener, and
// makes a last flush with all the time left before the deadline minus
// KTE_SHUTDOWN_MARGIN_MS. What that flush could not deliver is written to
// stderr as KTE_UNDELIVERED reason=shutdown_deadline lines, followed by the
// KTE_SUMMARY line, whose reason= names what ended the extension (the
// README's Shutdown section lists the values). The extension then exits 0,
// or, after a failed /event/next, reports the error to /exit/error and
// exits 1: it can learn of no further event.
//
// # Without a Kinesis client
//
// The Kinesis client is built once Init is over; a flush that begins before
// it is there waits for it, within its deadline. When the AWS SDK refuses to
// build it (a setting such as AWS_RETRY_MODE=legacy), nothing can ever be
// sent: a flush or a wait for runtimeDone under way ends at once, every
// later INVOKE is handled as Skip whatever the policy says, and SHUTDOWN
// writes every event to stderr.
package flush

import (
	"slices"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// Action is what the lifecycle does for one INVOKE.
type Action uint8

const (
	// Skip: deliver nothing now; call /event/next at once. The packer stays
	// paused, so nothing is in flight.
	Skip Action = iota
	// Now: resume the packer and flush at once (after the brief wait for
	// the previous invocation's runtimeDone), concurrently with the
	// function, then call /event/next.
	Now
	// AfterRuntimeDone: resume the packer, wait for this request's
	// platform.runtimeDone (bounded by KTE_FLUSH_END_MAX_WAIT_MS and the
	// deadline), flush, then call /event/next.
	AfterRuntimeDone
)

func (a Action) String() string {
	switch a {
	case Skip:
		return "skip"
	case Now:
		return "now"
	case AfterRuntimeDone:
		return "after_runtime_done"
	}
	return "unknown"
}

// The auto rule. With invoke-style delivery the telemetry of an invocation
// waits for the next INVOKE, so the gap between INVOKEs is the delivery
// delay; with end-style delivery every invocation pays about
// KTE_BUFFER_TIMEOUT_MS plus one PutRecords of billed time. auto therefore
// looks at the last AutoWindow gaps between INVOKEs:
//
//   - it starts in end style and switches to invoke style once AutoWindow gaps
//     are known and their median is below AutoFastGap: half of the
//     invocations are then followed by another within AutoFastGap, which
//     bounds their delivery delay, while the billed time saved grows with the
//     rate (at 1 invocation per second, about a tenth of a second per second);
//   - it returns to end style when the median reaches AutoSlowGap (traffic
//     slowed down; the gap between the thresholds keeps it from flapping at
//     the boundary), or at once after a single gap of AutoLull or more, which
//     also forgets the gaps before it (traffic stopped at least once: the
//     invocation after a lull is often followed by another lull, and one
//     wrongly chosen end costs a fraction of a second while a wrongly chosen
//     invoke costs the whole next lull). After a lull it takes AutoWindow new
//     gaps to return to invoke style.
//
// The median, not the mean, so that one long pause among quick invocations
// does not hide that most of them are quick. Twenty invocations is the
// warm-up other extensions use for the same decision (Datadog's adaptive
// flush, see ../shared/reference/peers.md): enough for a stable median, few
// enough (at most AutoWindow × AutoFastGap, under 4 minutes) to react within
// the lifetime of an execution environment.
//
// What no rule can fix: in invoke style, the telemetry of the last invocation
// before traffic stops waits for the next INVOKE or for SHUTDOWN (when Lambda
// reclaims the idle environment, typically minutes later). Choose end when
// that matters more than billed time.
const (
	AutoWindow  = 20
	AutoFastGap = 10 * time.Second
	AutoSlowGap = 30 * time.Second
	AutoLull    = 60 * time.Second
)

// Policy decides the Action of each INVOKE. It is used by one goroutine (the
// lifecycle's) and must not be copied after first use. Times must come from
// one clock and be non-decreasing.
type Policy struct {
	_ noCopy

	mode   config.FlushMode
	period time.Duration

	lastFlush time.Time // zero: never flushed
	flushed   bool

	lastInvoke time.Time
	invoked    bool
	gaps       [AutoWindow]time.Duration // ring of the recent gaps
	ngaps      int                       // gaps known, at most AutoWindow
	next       int                       // where the next gap goes
	fast       bool                      // auto: invoke style
	sorted     [AutoWindow]time.Duration // scratch for the median
}

// New returns the policy for f.
func New(f config.Flush) *Policy {
	return &Policy{mode: f.Mode, period: f.Period}
}

// Invoke records an INVOKE that arrived at now and returns what to do.
// fullBatch says whether a full batch is already buffered (only periodic
// looks at it: a full batch always goes at once).
func (p *Policy) Invoke(now time.Time, fullBatch bool) Action {
	if p.invoked {
		p.addGap(now.Sub(p.lastInvoke))
	}
	p.lastInvoke, p.invoked = now, true
	switch p.mode {
	case config.FlushEnd:
		return AfterRuntimeDone
	case config.FlushPeriodic:
		if !p.flushed || fullBatch || now.Sub(p.lastFlush) >= p.period {
			return Now
		}
		return Skip
	case config.FlushAuto:
		if p.fast {
			return Now
		}
		return AfterRuntimeDone
	default:
		return Now
	}
}

// Flushed records that a flush began at t (the lifecycle calls it for every
// flush it makes, whatever the reason). periodic counts its period from here.
func (p *Policy) Flushed(t time.Time) {
	p.lastFlush, p.flushed = t, true
}

// Style returns the style the last INVOKE was handled in: "invoke", "end" or
// "periodic", for logs and metrics. Under auto it is the current choice.
func (p *Policy) Style() string {
	switch p.mode {
	case config.FlushEnd:
		return "end"
	case config.FlushPeriodic:
		return "periodic"
	case config.FlushAuto:
		if p.fast {
			return "invoke"
		}
		return "end"
	}
	return "invoke"
}

// Median returns the median of the recent gaps between INVOKEs and how many
// there are (at most AutoWindow); 0, 0 before the second INVOKE.
func (p *Policy) Median() (time.Duration, int) {
	if p.ngaps == 0 {
		return 0, 0
	}
	s := p.sorted[:p.ngaps]
	copy(s, p.gaps[:p.ngaps])
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = s[len(s)/2-1] + (s[len(s)/2]-s[len(s)/2-1])/2
	}
	return m, p.ngaps
}

// addGap records one gap and applies the auto rule.
func (p *Policy) addGap(g time.Duration) {
	if g >= AutoLull {
		p.ngaps, p.next, p.fast = 0, 0, false
		return
	}
	p.gaps[p.next] = g
	p.next = (p.next + 1) % AutoWindow
	p.ngaps = min(p.ngaps+1, AutoWindow)
	if p.mode != config.FlushAuto {
		return
	}
	m, n := p.Median()
	switch {
	case !p.fast && n == AutoWindow && m < AutoFastGap:
		p.fast = true
	case p.fast && m >= AutoSlowGap:
		p.fast = false
	}
}

// noCopy makes go vet's copylocks check flag copies of a Policy.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
