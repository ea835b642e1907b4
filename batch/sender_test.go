package batch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// slack is added to time bounds; the race detector slows everything down.
var slack = func() time.Duration {
	if raceEnabled {
		return 2 * time.Second
	}
	return 500 * time.Millisecond
}()

// writeEvents commits n events of size bytes with ids from first, one block
// per event.
func writeEvents(tb testing.TB, r *ring.Ring, first, n, size int) {
	tb.Helper()
	for i := first; i < first+n; i++ {
		if err := ringtest.Write(r, event(i, size)); err != nil {
			tb.Fatalf("cannot write event %d: %v", i, err)
		}
	}
}

// checkExactlyOnce checks that stored holds events first..first+n-1 of
// size bytes, each once and byte-identical.
func checkExactlyOnce(tb testing.TB, stored [][]byte, first, n, size int) {
	tb.Helper()
	seen := make(map[int]int, n)
	for _, d := range stored {
		id := eventID(d)
		if id < first || id >= first+n || !bytes.Equal(d, event(id, size)) {
			tb.Fatalf("unexpected record %.40q", d)
		}
		seen[id]++
	}
	for id := first; id < first+n; id++ {
		if seen[id] != 1 {
			tb.Fatalf("unexpected copies of event %d; got %d; want 1", id, seen[id])
		}
	}
}

// eventually polls cond until it holds or d passes.
func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d + slack)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSenderRetriesAgainstFakeKinesis(t *testing.T) {
	const n, size = 300, 200
	var failedIn2 []int
	var mu sync.Mutex
	fk := newFakeKinesis(t, func(k int, req *fakeRequest) fakeAnswer {
		switch k {
		case 0:
			return fakeAnswer{status: 500, errType: "InternalFailureException"}
		case 1:
			return fakeAnswer{status: 400, errType: codeThroughput}
		case 2:
			codes := make([]string, len(req.Records))
			mu.Lock()
			defer mu.Unlock()
			for i, rec := range req.Records {
				switch i % 6 {
				case 0:
					codes[i] = codeThroughput
				case 3:
					codes[i] = codeInternal
				default:
					continue
				}
				failedIn2 = append(failedIn2, eventID(rec.Data))
			}
			return fakeAnswer{codes: codes}
		case 3:
			return fakeAnswer{hang: true}
		}
		return fakeAnswer{}
	})
	r := newRing(t, MiB)
	cfg := testConfig(500, 5*MiB, MiB, "k")
	cfg.SendTimeout = 300 * time.Millisecond
	p := newPacker(t, r, cfg, Options{Client: fk.client(), BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	runPacker(t, p)
	writeEvents(t, r, 0, n, size)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := p.Flush(ctx)
	if !res.Complete || res.Err != nil || res.Delivered != n || res.Pending != 0 {
		t.Fatalf("unexpected flush result; got %+v; want complete with %d delivered", res, n)
	}
	reqs, stored, _ := fk.snapshot()
	checkExactlyOnce(t, stored, 0, n, size)
	if len(reqs) != 5 {
		t.Fatalf("unexpected number of calls; got %d; want 5", len(reqs))
	}
	for k := range 3 {
		if len(reqs[k].Records) != n {
			t.Fatalf("unexpected records in call %d; got %d; want %d", k, len(reqs[k].Records), n)
		}
	}
	// The entries that failed in call 2 are resent alone: in the call that
	// hung, and again in the one after it.
	slices.Sort(failedIn2)
	for k := 3; k < 5; k++ {
		var ids []int
		for _, rec := range reqs[k].Records {
			ids = append(ids, eventID(rec.Data))
		}
		slices.Sort(ids)
		if !slices.Equal(ids, failedIn2) {
			t.Fatalf("unexpected events in call %d; got %v; want the %d failed in call 2", k, ids, len(failedIn2))
		}
	}
	st := p.Stats()
	want := Stats{
		Calls: 5, CallRecords: 3*n + 2*100, Records: n, Events: n, Retried: 2*n + 2*100,
		Throttled: 50, InternalFail: 50, CallThrottled: 1, CallThrottledRecords: n, CallServer: 1, CallNetwork: 1,
	}
	got := st
	got.CallBytes, got.Bytes, got.Flushes, got.FlushTotal, got.FlushMax = 0, 0, 0, 0, 0
	if got != want {
		t.Fatalf("unexpected stats;\ngot  %+v\nwant %+v", got, want)
	}
	if st.Bytes != n*(size+1) || st.Flushes != 1 || st.FlushesPart != 0 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
	if r.Unread() != 0 {
		t.Fatalf("unexpected unread bytes; got %d", r.Unread())
	}
}

func TestFlushNeverReturnsWithCallInFlight(t *testing.T) {
	const n, size = 50, 100
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer { return fakeAnswer{hang: true} })
	r := newRing(t, MiB)
	cfg := testConfig(500, 5*MiB, MiB, "k")
	cfg.SendTimeout = 30 * time.Second // only the flush deadline can end the call
	cc := &countingClient{PutRecordsAPI: fk.client()}
	p := newPacker(t, r, cfg, Options{Client: cc})
	runPacker(t, p)
	writeEvents(t, r, 0, n, size)

	for _, d := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond} {
		// start before the deadline is set, so took >= d always holds
		// when Flush waits for the deadline.
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		res := p.Flush(ctx)
		took := time.Since(start)
		cancel()
		if got := cc.current(); got != 0 {
			t.Fatalf("unexpected calls in flight after Flush returned; got %d; want 0", got)
		}
		if took < d || took > d+slack {
			t.Fatalf("unexpected flush duration; got %v; want about %v", took, d)
		}
		if res.Complete || !errors.Is(res.Err, context.DeadlineExceeded) || res.Pending != n {
			t.Fatalf("unexpected flush result; got %+v; want deadline exceeded with %d pending", res, n)
		}
	}
	eventually(t, time.Second, "the server to see both calls go away", func() bool {
		_, _, hung := fk.snapshot()
		return hung == 2
	})
	if st := p.Stats(); st.Canceled != 2 || st.CallNetwork != 0 || st.FlushesPart != 2 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
	// Paused after Flush: nothing is sent, although events are pending.
	time.Sleep(200 * time.Millisecond)
	if reqs, _, _ := fk.snapshot(); len(reqs) != 2 {
		t.Fatalf("unexpected calls while paused; got %d; want 2", len(reqs))
	}
	fk.setHandle(nil) // store everything from now on
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res := p.Flush(ctx); !res.Complete || res.Delivered != n {
		t.Fatalf("unexpected flush result; got %+v", res)
	}
	_, stored, _ := fk.snapshot()
	checkExactlyOnce(t, stored, 0, n, size)
	if cc.max != 1 {
		t.Fatalf("unexpected concurrent calls; got %d; want 1", cc.max)
	}
}

// TestFullByCountGoesOutWhileResumed: a resumed packer sends a request as
// soon as it is full by count, though its events are far fewer bytes than
// the 64 KiB that wake it by bytes: writers wake it by frames too
// (ring.WaitFor). The events come one block at a time once the packer
// sleeps; without the frame mark nothing wakes it and no call is made.
func TestFullByCountGoesOutWhileResumed(t *testing.T) {
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer { return fakeAnswer{} })
	r := newRing(t, MiB)
	p := newPacker(t, r, testConfig(10, 5*MiB, MiB, "k"), Options{Client: fk.client()})
	runPacker(t, p)
	p.Resume()
	time.Sleep(50 * time.Millisecond) // the packer is waiting on the ring by now
	writeEvents(t, r, 0, 25, 100)     // 2.5 KB: two full requests and five events
	eventually(t, time.Second, "two requests full by count", func() bool {
		reqs, _, _ := fk.snapshot()
		return len(reqs) == 2
	})
	reqs, _, _ := fk.snapshot()
	for i, req := range reqs {
		if len(req.Records) != 10 {
			t.Fatalf("unexpected records in request %d; got %d; want 10", i, len(req.Records))
		}
	}
	time.Sleep(50 * time.Millisecond)
	if reqs, _, _ := fk.snapshot(); len(reqs) != 2 {
		t.Fatalf("unexpected calls; got %d; want 2 (the last 5 events wait for a flush)", len(reqs))
	}
}

func TestFlushCancelsCallStartedBeforeIt(t *testing.T) {
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer { return fakeAnswer{hang: true} })
	r := newRing(t, MiB)
	cfg := testConfig(10, 5*MiB, MiB, "k")
	cfg.SendTimeout = 30 * time.Second
	cc := &countingClient{PutRecordsAPI: fk.client()}
	p := newPacker(t, r, cfg, Options{Client: cc})
	runPacker(t, p)
	p.Resume()
	writeEvents(t, r, 0, 25, 100) // two full batches; the first one hangs
	eventually(t, time.Second, "a full batch to be sent", func() bool { return cc.current() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := p.Flush(ctx)
	if took := time.Since(start); took > 100*time.Millisecond+slack {
		t.Fatalf("unexpected flush duration; got %v", took)
	}
	if cc.current() != 0 || res.Pending < 10 || res.Unread == 0 || res.Complete {
		t.Fatalf("unexpected state after flush; got %d in flight and %+v", cc.current(), res)
	}
}

func TestNotRetryableLoggedOnceAndKept(t *testing.T) {
	const n, size = 20, 100
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer {
		return fakeAnswer{status: 400, errType: "AccessDeniedException"}
	})
	r := newRing(t, MiB)
	logs, logger := newLogCapture()
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{
		Client: fk.client(), Logger: logger, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	runPacker(t, p)
	writeEvents(t, r, 0, n, size)
	// A flush does not wait for the backoff of a refusal that retrying is
	// not expected to fix (it would add billed time to every invocation):
	// each flush makes one call once the backoff (10-20 ms here) is over.
	for i := 1; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		res := p.Flush(ctx)
		took := time.Since(start)
		cancel()
		if res.Complete || res.Pending != n {
			t.Fatalf("flush %d: unexpected flush result; got %+v", i, res)
		}
		if took > time.Second {
			t.Fatalf("flush %d took %v; want it to end after its call, not wait for the backoff", i, took)
		}
		if reqs, _, _ := fk.snapshot(); len(reqs) != i {
			t.Fatalf("flush %d: unexpected calls; got %d; want %d", i, len(reqs), i)
		}
		time.Sleep(25 * time.Millisecond)
	}
	text := logs.String()
	if c := strings.Count(text, "level=ERROR"); c != 1 {
		t.Fatalf("unexpected error log lines; got %d; want 1:\n%s", c, text)
	}
	if !strings.Contains(text, "grant kinesis:PutRecords on arn:aws:kinesis:<region>:<account>:stream/test") {
		t.Fatalf("unexpected log text; got %s", text)
	}
	// A call may still be on its way back when Flush returns: wait until
	// every call the endpoint answered is counted as rejected. The flush's
	// deadline may cut the last one after the endpoint has it: that one is
	// counted as canceled (its events are kept), not rejected.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		reqs, _, _ := fk.snapshot()
		st := p.Stats()
		if st.Canceled <= 1 && (st.CallRejected == uint64(len(reqs)) || st.CallRejected+st.Canceled == uint64(len(reqs))) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unexpected rejected calls; got %d (and %d canceled by the flush's deadline); want %d", st.CallRejected, st.Canceled, len(reqs))
		}
	}

	var out bytes.Buffer
	if got := p.GiveUp(&out, "shutdown"); got != n {
		t.Fatalf("unexpected given-up count; got %d; want %d", got, n)
	}
	var stored [][]byte
	for line := range strings.Lines(out.String()) {
		rest, ok := strings.CutPrefix(line, "KTE_UNDELIVERED reason=shutdown ")
		if !ok || !strings.HasSuffix(rest, "\n") {
			t.Fatalf("unexpected line %q", line)
		}
		stored = append(stored, []byte(strings.TrimSuffix(rest, "\n")))
	}
	checkExactlyOnce(t, stored, 0, n, size)
	if st := p.Stats(); st.GivenUp != n || st.Held != 0 {
		t.Fatalf("unexpected stats after GiveUp; got %+v", st)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logCapture is a logger whose lines can be read while the packer writes.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogCapture() (*logCapture, *slog.Logger) {
	c := &logCapture{}
	return c, slog.New(slog.NewTextHandler(lockedWriter{&c.mu, &c.buf}, nil))
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func TestAdvice(t *testing.T) {
	cfg := testConfig(500, 5*MiB, MiB, "k")
	cfg.StreamARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/test"
	p := newPacker(t, newRing(t, 64*KiB), cfg, Options{})
	f := func(kind failKind, want string) {
		t.Helper()
		if got := p.advice(kind); !strings.Contains(got, want) {
			t.Fatalf("unexpected advice for %v; got %q; want it to contain %q", kind, got, want)
		}
	}
	f(failAccess, "grant kinesis:PutRecords on arn:aws:kinesis:eu-west-1:123456789012:stream/test")
	f(failNotFound, "check KTE_STREAM and the region")
	f(failKMS, "kms:GenerateDataKey")
	f(failInvalid, "KTE_RECORD_MAX_BYTES")
	f(failInvalid, "KTE_PARTITION_KEY")
	f(failCredentials, "execution role")
	f(failEndpoint, "AWS_ENDPOINT_URL_KINESIS")
	f(failRejected, "test")
}

func TestFlushReturnsEarlyWhenRetryIsAfterDeadline(t *testing.T) {
	c := &memClient{respond: func(int, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return nil, errAPI("ResourceNotFoundException", 400)
	}}
	r := newRing(t, MiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{Client: c, BackoffMax: time.Minute})
	runPacker(t, p)
	writeEvents(t, r, 0, 5, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := p.Flush(ctx)
	if res.Duration > slack || res.Complete || res.Err != nil || res.Pending != 5 {
		t.Fatalf("unexpected flush result; got %+v; want an early, incomplete return", res)
	}
	if len(c.snapshot()) != 1 {
		t.Fatalf("unexpected calls; got %d; want 1", len(c.snapshot()))
	}
}

func TestResumedSendsOnlyFullBatches(t *testing.T) {
	c := &memClient{}
	r := newRing(t, MiB)
	p := newPacker(t, r, testConfig(10, 5*MiB, MiB, "k"), Options{Client: c})
	runPacker(t, p)
	writeEvents(t, r, 0, 25, 100)
	time.Sleep(50 * time.Millisecond)
	if len(c.snapshot()) != 0 {
		t.Fatal("unexpected call before Resume")
	}
	p.Resume()
	eventually(t, time.Second, "two full batches", func() bool { return len(c.snapshot()) == 2 })
	time.Sleep(100 * time.Millisecond)
	if got := len(c.snapshot()); got != 2 {
		t.Fatalf("unexpected calls with a partial batch left; got %d; want 2", got)
	}
	res := p.Flush(context.Background())
	calls := c.snapshot()
	if !res.Complete || len(calls) != 3 || len(calls[2].data) != 5 {
		t.Fatalf("unexpected flush; got %+v and %d calls", res, len(calls))
	}
	var all [][]byte
	for _, call := range calls {
		all = append(all, call.data...)
	}
	checkExactlyOnce(t, all, 0, 25, 100)
}

func TestAlwaysOnSendsPartialBatchAfterLinger(t *testing.T) {
	c := &memClient{}
	r := newRing(t, MiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{Client: c, AlwaysOn: true, Linger: 30 * time.Millisecond})
	runPacker(t, p)
	start := time.Now()
	writeEvents(t, r, 0, 3, 100)
	eventually(t, time.Second, "the linger to send", func() bool { return len(c.snapshot()) == 1 })
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Fatalf("unexpected send before the linger; after %v", took)
	}
	checkExactlyOnce(t, c.snapshot()[0].data, 0, 3, 100)
}

func TestPressureSendsPartialBatch(t *testing.T) {
	c := &memClient{}
	r := newRing(t, 64*KiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{Client: c, PressureBytes: 4 * KiB})
	runPacker(t, p)
	p.Resume()
	writeEvents(t, r, 0, 3, 1000)
	time.Sleep(50 * time.Millisecond)
	if len(c.snapshot()) != 0 {
		t.Fatal("unexpected call below the pressure mark")
	}
	writeEvents(t, r, 3, 2, 1000)
	eventually(t, time.Second, "pressure to send", func() bool { return len(c.snapshot()) == 1 })
	checkExactlyOnce(t, c.snapshot()[0].data, 0, 5, 1000)
}

func TestSetClientLater(t *testing.T) {
	r := newRing(t, MiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{})
	ctx0, cancel0 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel0()
	if res := p.Flush(ctx0); !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("unexpected flush result before Run; got %+v", res)
	}
	runPacker(t, p)
	writeEvents(t, r, 0, 7, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if res := p.Flush(ctx); res.Complete || res.Pending != 7 || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("unexpected flush result without a client; got %+v", res)
	}
	c := &memClient{}
	p.SetClient(c)
	if res := p.Flush(context.Background()); !res.Complete || res.Delivered != 7 {
		t.Fatalf("unexpected flush result; got %+v", res)
	}
	checkExactlyOnce(t, c.snapshot()[0].data, 0, 7, 100)
}

func TestStreamAddressing(t *testing.T) {
	f := func(cfg config.Config, wantName, wantARN string) {
		t.Helper()
		fk := newFakeKinesis(t, nil)
		r := newRing(t, 64*KiB)
		p := newPacker(t, r, cfg, Options{Client: fk.client()})
		runPacker(t, p)
		writeEvents(t, r, 0, 1, 10)
		if res := p.Flush(context.Background()); !res.Complete {
			t.Fatalf("unexpected flush result; got %+v", res)
		}
		reqs, _, _ := fk.snapshot()
		if reqs[0].StreamName != wantName || reqs[0].StreamARN != wantARN {
			t.Fatalf("unexpected stream fields; got name %q ARN %q; want %q and %q", reqs[0].StreamName, reqs[0].StreamARN, wantName, wantARN)
		}
	}
	cfg := testConfig(500, 5*MiB, MiB, "k")
	f(cfg, "test", "")
	cfg.StreamARN = "arn:aws:kinesis:us-east-1:123456789012:stream/test"
	f(cfg, "test", cfg.StreamARN)
}

func TestFlushDoesNotChaseNewEvents(t *testing.T) {
	c := &memClient{respond: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		time.Sleep(10 * time.Millisecond)
		return okOutput(len(in.Records)), nil
	}}
	r := newRing(t, MiB)
	p := newPacker(t, r, testConfig(50, 5*MiB, MiB, "k"), Options{Client: c})
	runPacker(t, p)
	writeEvents(t, r, 0, 500, 100)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a steady stream of new events during the flush
		defer wg.Done()
		for i := 500; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if ringtest.Write(r, event(i, 100)) != nil {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := p.Flush(ctx)
	close(stop)
	wg.Wait()
	if !res.Complete || res.Err != nil || res.Delivered < 500 {
		t.Fatalf("unexpected flush result; got %+v", res)
	}
	if res.Duration > 2*time.Second+slack {
		t.Fatalf("unexpected flush duration; got %v (chasing new events?)", res.Duration)
	}
}

// TestConcurrentGiveUps: GiveUp is safe from any goroutine; two at once
// while Run runs both return, and every event is written exactly once.
// The control block holds one request, and the second used to replace the
// first, whose caller then waited for ever (about once in 5 rounds).
func TestConcurrentGiveUps(t *testing.T) {
	const rounds, n, size = 200, 30, 40
	for i := range rounds {
		r := newRing(t, 64*KiB)
		// Nothing is resumed: the events stay in the ring for GiveUp.
		p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{Client: &memClient{}})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Run(ctx) }()
		writeEvents(t, r, 0, n, size)
		eventually(t, time.Second, "Run running", func() bool { p.ctl.mu.Lock(); defer p.ctl.mu.Unlock(); return p.ctl.running })
		var outs [2]bytes.Buffer
		var got [2]int
		done := make(chan struct{}, 2)
		for k := range 2 {
			go func() { got[k] = p.GiveUp(&outs[k], "shutdown"); done <- struct{}{} }()
		}
		for range 2 {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: a GiveUp never returned", i)
			}
		}
		cancel()
		wg.Wait()
		if got[0]+got[1] != n || bytes.Count(outs[0].Bytes(), []byte("\n"))+bytes.Count(outs[1].Bytes(), []byte("\n")) != n {
			t.Fatalf("round %d: unexpected given-up counts %v; want %d in all, each event once", i, got, n)
		}
	}
}

func TestGiveUpAfterRunReturned(t *testing.T) {
	r := newRing(t, 64*KiB)
	c := &memClient{respond: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return failOutput(len(in.Records), func(i int) string {
			if eventID(in.Records[i].Data) == 0 {
				return codeInternal
			}
			return ""
		}), nil
	}}
	// A window of 4 events: event 0 never gets through, so the window stays
	// full and most events stay unread in the ring.
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{Client: c, Window: 4})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// Raw newlines in an event are written as spaces.
	e := event(0, 20)
	e[10], e[11] = '\n', '\r'
	if err := ringtest.Write(r, e); err != nil {
		t.Fatal(err)
	}
	writeEvents(t, r, 1, 19, 20)
	fctx, fcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer fcancel()
	res := p.Flush(fctx)
	if res.Complete || res.Delivered != 3 || res.Pending != 1 || res.Unread == 0 {
		t.Fatalf("unexpected flush result; got %+v", res)
	}
	cancel()
	<-done
	var out bytes.Buffer
	if got := p.GiveUp(&out, "shutdown timeout"); got != 17 {
		t.Fatalf("unexpected given-up count; got %d; want 17", got)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 17 {
		t.Fatalf("unexpected lines; got %d; want 17", len(lines))
	}
	for i, line := range lines[1:] {
		if id := eventID([]byte(strings.TrimPrefix(line, "KTE_UNDELIVERED reason=shutdown_timeout "))); id != i+4 {
			t.Fatalf("unexpected event in line %d; got %d; want %d", i+1, id, i+4)
		}
	}
	want := "KTE_UNDELIVERED reason=shutdown_timeout " + string(e[:10]) + "  " + string(e[12:])
	if lines[0] != want {
		t.Fatalf("unexpected first line; got %q; want %q", lines[0], want)
	}
	if r.Unread() != 0 || r.Unreleased() != 0 {
		t.Fatalf("unexpected ring state after GiveUp; got unread %d unreleased %d", r.Unread(), r.Unreleased())
	}
}

func TestOversizeOnlyIsReleased(t *testing.T) {
	var mu sync.Mutex
	var undelivered bytes.Buffer
	r := newRing(t, 64*KiB)
	c := &memClient{}
	p := newPacker(t, r, testConfig(500, 5*MiB, KiB, "k"), Options{Client: c, Undelivered: lockedWriter{&mu, &undelivered}})
	runPacker(t, p)
	p.Resume()
	for i := range 100 { // 100 KiB of events that can never be sent: more than the ring
		if err := ringtest.Write(r, event(i, KiB)); err != nil {
			t.Fatalf("cannot write event %d (the packer must release them as they come): %v", i, err)
		}
		if i%10 == 9 { // let the packer catch up: it reads every few KiB
			eventually(t, time.Second, "the ring to be released", func() bool { return r.Stats().InUse < 8*KiB })
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Flush(ctx)
	if r.Stats().InUse != 0 {
		t.Fatalf("unexpected ring in use after the flush: %d bytes", r.Stats().InUse)
	}
	if st := p.Stats(); st.Oversize != 100 || st.Calls != 0 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(undelivered.String(), "KTE_UNDELIVERED reason=oversize "); n != 100 {
		t.Fatalf("unexpected undelivered lines; got %d; want 100", n)
	}
}

func TestRunTwice(t *testing.T) {
	p := newPacker(t, newRing(t, 64*KiB), testConfig(500, 5*MiB, MiB, "k"), Options{Client: &memClient{}})
	runPacker(t, p)
	eventually(t, time.Second, "Run to start", func() bool {
		p.ctl.mu.Lock()
		defer p.ctl.mu.Unlock()
		return p.ctl.running
	})
	if err := p.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("unexpected second Run result; got %v; want ErrRunning", err)
	}
}

func TestGiveUpCancelsCallInFlight(t *testing.T) {
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer { return fakeAnswer{hang: true} })
	r := newRing(t, MiB)
	cfg := testConfig(10, 5*MiB, MiB, "k")
	cfg.SendTimeout = 30 * time.Second
	cc := &countingClient{PutRecordsAPI: fk.client()}
	p := newPacker(t, r, cfg, Options{Client: cc})
	runPacker(t, p)
	p.Resume()
	writeEvents(t, r, 0, 25, 100)
	eventually(t, time.Second, "a full batch to be sent", func() bool { return cc.current() == 1 })
	var out bytes.Buffer
	start := time.Now()
	if n := p.GiveUp(&out, "shutdown"); n != 25 {
		t.Fatalf("unexpected given-up count; got %d; want 25", n)
	}
	if took := time.Since(start); took > slack || cc.current() != 0 {
		t.Fatalf("unexpected GiveUp; took %v with %d calls in flight", took, cc.current())
	}
	var got [][]byte
	for line := range strings.Lines(out.String()) {
		got = append(got, []byte(strings.TrimSuffix(strings.TrimPrefix(line, "KTE_UNDELIVERED reason=shutdown "), "\n")))
	}
	checkExactlyOnce(t, got, 0, 25, 100)
	if st := p.Stats(); st.Canceled != 1 || st.GivenUp != 25 || st.Held != 0 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
	eventually(t, time.Second, "the ring to be empty", func() bool { return r.Stats().InUse == 0 })
}

// TestFlushRetriesWithinItsDeadline: a backoff longer than the flush's time
// left (set by failures before the flush, or during it) is shortened to a
// quarter of that time, so the flush gets more attempts and delivers once
// the stream recovers, instead of returning early. This is what a SHUTDOWN
// after a transient outage needs.
func TestFlushRetriesWithinItsDeadline(t *testing.T) {
	r := newRing(t, 1<<20)
	var fails atomic.Int32
	fails.Store(3)
	c := &memClient{respond: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		if fails.Add(-1) >= 0 {
			return nil, errAPI("InternalFailureException", 500)
		}
		return okOutput(len(in.Records)), nil
	}}
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{Client: c, BackoffBase: 20 * time.Second, BackoffMax: 60 * time.Second})
	runPacker(t, p)
	writeEvents(t, r, 0, 50, 100)
	// A first flush fails three times in a row (whatever the backoff, the
	// cap lets it retry); a second one then delivers.
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
		res := p.Flush(ctx)
		cancel()
		if res.Complete {
			break
		}
	}
	calls := c.snapshot()
	delivered := 0
	for _, call := range calls {
		if call.err == nil {
			delivered += len(call.data)
		}
	}
	if delivered != 50 || len(calls) != 4 {
		t.Fatalf("unexpected delivery; got %d events in %d calls; want 50 after 3 failed calls", delivered, len(calls))
	}
}

// TestPassingFailuresLoggedOncePerRun: calls that fail for a passing
// reason are not logged while they are a blip; a run of them that lasts is
// logged once, with what to check, and its end once something gets
// through.
func TestPassingFailuresLoggedOncePerRun(t *testing.T) {
	const size = 100
	var mode atomic.Int32 // 0: store; 1: fail the call (500); 2: throttle every record
	var failed atomic.Int32
	fk := newFakeKinesis(t, func(_ int, req *fakeRequest) fakeAnswer {
		switch mode.Load() {
		case 1:
			if failed.Add(1) > 2 {
				mode.Store(0) // a blip: two failed calls
			}
			return fakeAnswer{status: 500, errType: "InternalFailure"}
		case 2:
			failed.Add(1)
			codes := make([]string, len(req.Records))
			for i := range codes {
				codes[i] = codeThroughput
			}
			return fakeAnswer{codes: codes}
		}
		return fakeAnswer{}
	})
	r := newRing(t, MiB)
	logs, logger := newLogCapture()
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{
		Client: fk.client(), Logger: logger, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	runPacker(t, p)
	flush := func(d time.Duration) FlushResult {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return p.Flush(ctx)
	}
	logText := logs.String

	mode.Store(1)
	writeEvents(t, r, 0, 10, size)
	if res := flush(2 * time.Second); !res.Complete || res.Delivered != 10 {
		t.Fatalf("unexpected flush result after a blip; got %+v", res)
	}
	if failed.Load() < 2 {
		t.Fatalf("unexpected failed calls; got %d; want at least 2", failed.Load())
	}
	if text := logText(); text != "" {
		t.Fatalf("unexpected log lines for a blip:\n%s", text)
	}

	failed.Store(0)
	mode.Store(2)
	writeEvents(t, r, 10, 10, size)
	if res := flush(time.Duration(failWarnAfter) / 2); res.Complete {
		t.Fatalf("unexpected flush result while throttled; got %+v", res)
	}
	if n := failed.Load(); n < failWarnCalls {
		t.Fatalf("unexpected throttled calls; got %d; want at least %d", n, failWarnCalls)
	}
	if text := logText(); text != "" {
		t.Fatalf("unexpected log lines before the run lasted %v:\n%s", time.Duration(failWarnAfter), text)
	}
	if res := flush(time.Duration(failWarnAfter)); res.Complete {
		t.Fatalf("unexpected flush result while throttled; got %+v", res)
	}
	if !strings.Contains(logText(), "keeps failing") {
		t.Fatalf("a run of throttled calls over %v not logged", time.Duration(failWarnAfter))
	}
	mode.Store(0)
	if res := flush(2 * time.Second); !res.Complete || res.Delivered != 10 {
		t.Fatalf("unexpected flush result after the run; got %+v", res)
	}
	if !strings.Contains(logText(), "delivers again") {
		t.Fatalf("the run's end not logged:\n%s", logText())
	}
	text := logText()
	if c := strings.Count(text, "level=WARN"); c != 1 || !strings.Contains(text, "the stream is throttling writes") ||
		!strings.Contains(text, "error=\"every record failed: "+codeThroughput+"\"") {
		t.Fatalf("want one warning about throttling; got:\n%s", text)
	}
	if c := strings.Count(text, "level=INFO"); c != 1 {
		t.Fatalf("want one line for the run's end; got:\n%s", text)
	}
}

// TestUnreachableLogged: a stream that cannot be reached is logged once it
// has failed for failWarnAfter, with what to check.
func TestUnreachableLogged(t *testing.T) {
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer { return fakeAnswer{} })
	client := fk.client()
	fk.Close() // connections are refused from now on
	r := newRing(t, MiB)
	logs, logger := newLogCapture()
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{
		Client: client, Logger: logger, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	runPacker(t, p)
	writeEvents(t, r, 0, 5, 100)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(failWarnAfter)+300*time.Millisecond)
	defer cancel()
	if res := p.Flush(ctx); res.Complete {
		t.Fatalf("unexpected flush result; got %+v", res)
	}
	text := logs.String()
	if strings.Count(text, "level=WARN") != 1 || !strings.Contains(text, "Kinesis cannot be reached") {
		t.Fatalf("want one warning that Kinesis cannot be reached; got:\n%s", text)
	}
	if st := p.Stats(); st.CallNetwork < failWarnCalls {
		t.Fatalf("unexpected network failures; got %+v", st)
	}
}

// joinUndelivered reads KTE_UNDELIVERED lines as a log reader would: whole
// events, and events in parts joined by id in part order.
func joinUndelivered(t *testing.T, out string) (events []string, reasons map[string]int) {
	t.Helper()
	reasons = map[string]int{}
	parts := map[string][]string{}
	for line := range strings.Lines(out) {
		if len(line) > maxUndeliveredLine {
			t.Fatalf("unexpected KTE_UNDELIVERED line of %d bytes; want at most %d", len(line), maxUndeliveredLine)
		}
		rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "KTE_UNDELIVERED reason=")
		if !ok {
			t.Fatalf("unexpected line %.100q", line)
		}
		reason, rest, _ := strings.Cut(rest, " ")
		if !strings.HasPrefix(rest, "id=") {
			events = append(events, rest)
			reasons[reason]++
			continue
		}
		var id string
		var i, n int
		if _, err := fmt.Sscanf(rest, "id=%16s part=%d/%d ", &id, &i, &n); err != nil {
			t.Fatalf("unexpected part line %.100q: %v", line, err)
		}
		_, chunk, _ := strings.Cut(rest[len("id=")+16+len(" part="):], " ")
		if len(parts[id]) != i-1 {
			t.Fatalf("unexpected part %d of %d of %s after %d", i, n, id, len(parts[id]))
		}
		if parts[id] = append(parts[id], chunk); i == n {
			events = append(events, strings.Join(parts[id], ""))
			reasons[reason]++
		}
	}
	return events, reasons
}

// TestGiveUpLongEvents: an event too long for one log line (CloudWatch Logs
// takes one log event of limited size per line) is written in parts that a
// reader joins back, at shutdown and when it can never fit a record.
func TestGiveUpLongEvents(t *testing.T) {
	var big bytes.Buffer
	r := newRing(t, 4*MiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, 256*KiB, "k"), Options{Undelivered: &big})
	sizes := []int{100, 200 * KiB, 40 * KiB, 100, 300 * KiB}
	for i, size := range sizes {
		if err := ringtest.Write(r, event(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	p.fill(p.now()) // the 300 KiB event can never fit a record: given up as oversize
	var out bytes.Buffer
	if n := p.GiveUp(&out, "shutdown"); n != 4 {
		t.Fatalf("unexpected given-up count; got %d; want 4", n)
	}
	events, reasons := joinUndelivered(t, big.String()+out.String())
	if len(events) != len(sizes) || reasons["oversize"] != 1 || reasons["shutdown"] != 4 {
		t.Fatalf("unexpected events; got %d with reasons %v; want %d", len(events), reasons, len(sizes))
	}
	for _, ev := range events {
		id := eventID([]byte(ev))
		if id < 0 || id >= len(sizes) || ev != string(event(id, sizes[id])) {
			t.Fatalf("unexpected event of %d bytes: %.40q", len(ev), ev)
		}
	}
}

// TestUndeliveredIDsRedrawn: after Redraw (a SnapStart restore), the
// events written in several lines take their ids from the new base.
func TestUndeliveredIDsRedrawn(t *testing.T) {
	r := newRing(t, MiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, 256*KiB, "k"), Options{})
	for i := range 2 {
		if err := ringtest.Write(r, event(i, 40*KiB)); err != nil {
			t.Fatal(err)
		}
	}
	var b [24]byte
	binary.LittleEndian.PutUint64(b[:], 0x0123456789abcdef)
	_ = p.Redraw("", b)
	var out bytes.Buffer
	if n := p.GiveUp(&out, "shutdown"); n != 2 {
		t.Fatalf("unexpected given-up count; got %d; want 2", n)
	}
	for _, id := range []string{"0123456789abcdf0", "0123456789abcdf1"} {
		if !strings.Contains(out.String(), "KTE_UNDELIVERED reason=shutdown id="+id+" part=1/2 ") {
			t.Fatalf("no event with id %s in:\n%.300s", id, out.String())
		}
	}
}

// hangingClient is a stream that cannot be reached: every call hangs until
// its context ends, as a connection does when nothing answers.
type hangingClient struct{ calls atomic.Int32 }

func (h *hangingClient) PutRecords(ctx context.Context, _ *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return nil, fmt.Errorf("dial tcp: %w", ctx.Err())
}

// TestUnreachableCutByFlushesLogged: when KTE_SEND_TIMEOUT_MS is not shorter
// than the flushes (the defaults: 2 s each), every call to a stream that
// cannot be reached ends with its flush; those calls still make a run that
// is logged.
func TestUnreachableCutByFlushesLogged(t *testing.T) {
	r := newRing(t, MiB)
	logs, logger := newLogCapture()
	cfg := testConfig(500, 5*MiB, MiB, "k")
	cfg.SendTimeout = 2 * time.Second
	hc := &hangingClient{}
	p := newPacker(t, r, cfg, Options{Client: hc, Logger: logger, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	runPacker(t, p)
	writeEvents(t, r, 0, 10, 100)
	start := time.Now()
	for time.Since(start) < time.Duration(failWarnAfter)+400*time.Millisecond { // runs past failWarnAfter from the first call's end
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if res := p.Flush(ctx); res.Complete {
			t.Fatalf("unexpected flush result; got %+v", res)
		}
		cancel()
	}
	if text := logs.String(); strings.Count(text, "level=WARN") != 1 || !strings.Contains(text, "Kinesis cannot be reached") {
		t.Fatalf("want one warning that Kinesis cannot be reached after %d calls; got:\n%s", hc.calls.Load(), text)
	}
	if st := p.Stats(); st.CallNetwork != 0 || st.Canceled < failWarnCalls {
		t.Fatalf("unexpected stats: the calls are counted as cut by their flush; got %+v", st)
	}
}

// TestRedrawReseedsJitter: two packers resumed from one snapshot draw the
// same backoffs until Redraw gives each its own seed.
func TestRedrawReseedsJitter(t *testing.T) {
	draws := func(p *Packer) []int64 {
		out := make([]int64, 8)
		for i := range out {
			out[i] = p.backoff(20)
		}
		return out
	}
	a := newPacker(t, newRing(t, 64*KiB), testConfig(500, 5*MiB, MiB, "k"), Options{})
	b := newPacker(t, newRing(t, 64*KiB), testConfig(500, 5*MiB, MiB, "k"), Options{})
	a.rng.Seed(1, 2) // the state both have from the snapshot
	b.rng.Seed(1, 2)
	if da, db := draws(a), draws(b); !slices.Equal(da, db) {
		t.Fatalf("unexpected backoffs from one seed: %v and %v", da, db)
	}
	_ = a.Redraw("", [24]byte{8: 1})
	_ = b.Redraw("", [24]byte{8: 2})
	if da, db := draws(a), draws(b); slices.Equal(da, db) {
		t.Fatalf("the same backoffs after Redraw with two seeds: %v", da)
	}
}

// TestRetriedCountsRecordsSentAgain: Stats.Retried counts the records of a
// call that were sent before, once per call that sends them again; a record
// that waits for its retry in the open request, and is given up on there
// or only sent later, is not counted until that call.
func TestRetriedCountsRecordsSentAgain(t *testing.T) {
	const n, size = 20, 100
	refuse := true
	var mu sync.Mutex
	c := &memClient{respond: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			return nil, errAPI("AccessDeniedException", 400) // not retryable: the flush ends without waiting
		}
		return okOutput(len(in.Records)), nil
	}}
	r := newRing(t, MiB)
	_, logger := newLogCapture()
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{
		Client: c, Logger: logger, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	runPacker(t, p)
	writeEvents(t, r, 0, n, size)
	f := func(what string, wantCalls, wantRetried, wantEvents uint64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p.Flush(ctx)
		cancel()
		if st := p.Stats(); st.Calls != wantCalls || st.Retried != wantRetried || st.Events != wantEvents {
			t.Fatalf("%s: unexpected stats; got %d calls, %d retried, %d delivered; want %d, %d, %d",
				what, st.Calls, st.Retried, st.Events, wantCalls, wantRetried, wantEvents)
		}
		time.Sleep(30 * time.Millisecond) // past the refusal's backoff (10-20 ms here)
	}
	f("first call refused", 1, 0, 0)
	f("sent again, refused again", 2, n, 0)
	mu.Lock()
	refuse = false
	mu.Unlock()
	f("sent a third time, delivered", 3, 2*n, n)

	// Refused, then given up on while waiting in the open request.
	mu.Lock()
	refuse = true
	mu.Unlock()
	writeEvents(t, r, n, n, size)
	f("new events refused", 4, 2*n, n)
	if got := p.GiveUp(io.Discard, "shutdown"); got != n {
		t.Fatalf("unexpected given-up count; got %d; want %d", got, n)
	}
	if st := p.Stats(); st.Retried != 2*n {
		t.Fatalf("unexpected retried after GiveUp; got %d; want %d", st.Retried, 2*n)
	}
}

// TestStalled: Stalled is set by a call that delivers nothing, whatever the
// way (refused as a whole, every record failed, no answer in time), and
// cleared by the next call that delivers, even in part.
func TestStalled(t *testing.T) {
	const n, size = 10, 100
	var mu sync.Mutex
	var answer func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)
	c := &memClient{respond: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		mu.Lock()
		a := answer
		mu.Unlock()
		return a(in)
	}}
	r := newRing(t, MiB)
	cfg := testConfig(500, 5*MiB, MiB, "k")
	cfg.SendTimeout = 50 * time.Millisecond
	p := newPacker(t, r, cfg, Options{Client: c, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	runPacker(t, p)
	if p.Stalled() {
		t.Fatal("unexpected Stalled before any call")
	}
	seq := 0
	f := func(what string, a func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error), want bool) {
		t.Helper()
		mu.Lock()
		answer = a
		mu.Unlock()
		writeEvents(t, r, seq, n, size)
		seq += n
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		p.Flush(ctx)
		cancel()
		if got := p.Stalled(); got != want {
			t.Fatalf("%s: unexpected Stalled; got %v; want %v (stats %+v)", what, got, want, p.Stats())
		}
	}
	ok := func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return okOutput(len(in.Records)), nil
	}
	throttled := func(*kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return nil, errAPI("ProvisionedThroughputExceededException", 400)
	}
	allFailed := func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		out := okOutput(len(in.Records))
		for i := range out.Records {
			out.Records[i].ErrorCode = aws.String("InternalFailure")
		}
		failed := int32(len(in.Records))
		out.FailedRecordCount = &failed
		return out, nil
	}
	halfFailed := func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		out := okOutput(len(in.Records))
		for i := range len(out.Records) / 2 {
			out.Records[i].ErrorCode = aws.String("ProvisionedThroughputExceededException")
		}
		return out, nil
	}
	hang := func(*kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		time.Sleep(100 * time.Millisecond) // past KTE_SEND_TIMEOUT_MS: the client gives up
		return nil, context.DeadlineExceeded
	}
	f("delivered", ok, false)
	f("call throttled", throttled, true)
	f("delivered in part", halfFailed, false)
	f("every record failed", allFailed, true)
	f("delivered", ok, false)
	f("no answer in time", hang, true)
	f("delivered", ok, false)
	f("refused", func(*kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return nil, errAPI("AccessDeniedException", 400)
	}, true)
}
