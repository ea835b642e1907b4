package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/faultproxy"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// These tests run the packer against kinesalite, a Kinesis implementation
// on Node, started by the test (skipped when it is not installed, failed
// under CI=true). kinesalite is lenient about sizes, so the limits are proven
// by the unit tests; here the point is real wire traffic, real shards and
// reading every record back.

// mixedSizes returns n event sizes: mostly small, some tens of KiB, and a
// few exactly as large as a record can be with the key.
func mixedSizes(n, recordMax, keyLen int) []int {
	sizes := make([]int, n)
	for i := range sizes {
		switch {
		case i%1000 == 999:
			sizes[i] = recordMax - keyLen
		case i%20 == 7:
			sizes[i] = 10*KiB + (i*7919)%(54*KiB)
		default:
			sizes[i] = 8 + (i*104729)%2000
		}
	}
	return sizes
}

// pipeline writes the events from two writer goroutines (blocks of up to 5,
// waiting when the ring is full as Lambda's retries would), with the packer
// resumed, then flushes until everything is settled.
func pipeline(t *testing.T, p *Packer, r *ring.Ring, sizes []int) {
	t.Helper()
	p.Resume()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 5; i < len(sizes); i += 10 {
				n := min(5, len(sizes)-i)
				block := make([][]byte, n)
				for j := range block {
					block[j] = event(i+j, sizes[i+j])
				}
				for {
					err := ringtest.Write(r, block...)
					if err == nil {
						break
					}
					if !errors.Is(err, ring.ErrFull) {
						t.Error(err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res := p.Flush(ctx)
		cancel()
		if res.Complete && res.Unread == 0 {
			return
		}
		if i == 5 {
			t.Fatalf("unexpected flush result; got %+v", res)
		}
	}
}

// readBack reads the stream and checks every event landed, byte-identical,
// once or, for event id, at most 1+extra(id) times (extra nil: none). It
// returns the number of copies beyond one and the records per shard.
func readBack(t *testing.T, ks *kinesalite.Server, stream string, sizes []int, extra func(id int) int) (int, map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := ks.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, len(sizes))
	shards := map[string]int{}
	for _, rec := range got {
		id := eventID(rec.Data)
		if id < 0 || id >= len(sizes) || string(rec.Data) != string(event(id, sizes[id])) {
			t.Fatalf("unexpected record in the stream: %.60q (%d bytes)", rec.Data, len(rec.Data))
		}
		seen[id]++
		shards[rec.ShardID]++
	}
	dups := 0
	for id, n := range seen {
		most := 1
		if extra != nil {
			most += extra(id)
		}
		if n == 0 || n > most {
			t.Fatalf("unexpected copies of event %d (%d bytes) in the stream; got %d; want 1 (or up to %d, one more per call carrying it that got no answer)",
				id, sizes[id], n, most)
		}
		dups += n - 1
	}
	return dups, shards
}

// answerLog wraps the packer's client and notes what came back for each
// call. A call that got no answer (the attempt timed out, the connection
// was cut, or the answer was cut short) may have been stored all the same,
// and its records are then rightly sent again: they alone may land twice.
// It is safe for concurrent use.
type answerLog struct {
	PutRecordsAPI

	mu       sync.Mutex
	noAnswer map[int]int // event id -> calls that carried it and got no answer
	got5xx   map[int]int // event id -> calls that carried it and were answered HTTP 5xx
	answer   answerTally
}

// answerTally counts the answers of calls as the client received them.
type answerTally struct {
	calls      int // calls made
	unanswered int // calls that got no answer
	unansRecs  int // records in those calls
	throttled  int // calls answered with a throttling error
	server     int // calls answered with HTTP 5xx
	refused    int // calls answered with any other HTTP 4xx
	recThrough int // records answered ProvisionedThroughputExceededException
	recOther   int // records answered with any other error code
}

func newAnswerLog(c PutRecordsAPI) *answerLog {
	return &answerLog{PutRecordsAPI: c, noAnswer: map[int]int{}, got5xx: map[int]int{}}
}

func (a *answerLog) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out, err := a.PutRecordsAPI.PutRecords(ctx, in, o...)
	// The records' data and the answer's entries are the packer's, and
	// valid until this call returns: read them now.
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answer.calls++
	var re *smithyhttp.ResponseError
	switch {
	case err == nil:
		for _, r := range out.Records {
			switch code := aws.ToString(r.ErrorCode); code {
			case "":
			case faultproxy.CodeThroughput:
				a.answer.recThrough++
			default:
				a.answer.recOther++
			}
		}
	case errors.As(err, &re) && re.HTTPStatusCode() >= 500:
		a.answer.server++
		for _, r := range in.Records {
			a.got5xx[eventID(r.Data)]++
		}
	case errors.As(err, &re) && re.HTTPStatusCode() >= 400:
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == faultproxy.CodeThroughput {
			a.answer.throttled++
		} else {
			a.answer.refused++
		}
	default:
		a.answer.unanswered++
		a.answer.unansRecs += len(in.Records)
		for _, r := range in.Records {
			a.noAnswer[eventID(r.Data)]++
		}
	}
	return out, err
}

// unanswered returns how many calls that got no answer carried event id.
func (a *answerLog) unanswered(id int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.noAnswer[id]
}

// unansweredOr5xx returns how many calls that got no answer or HTTP 5xx
// carried event id.
func (a *answerLog) unansweredOr5xx(id int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.noAnswer[id] + a.got5xx[id]
}

func (a *answerLog) tally() answerTally {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.answer
}

// slowTarget is a reverse proxy in front of kinesalite that holds some
// PutRecords calls for a while before forwarding them, so that the client
// gives up on a call that is then stored. It is safe for concurrent use.
type slowTarget struct {
	rp    *httputil.ReverseProxy
	hold  time.Duration
	every int // hold call n (from 0) when n%every == every/3

	mu      sync.Mutex
	calls   int
	held    int // calls held
	records int // records in the calls held
	pending sync.WaitGroup
}

func startSlowTarget(t *testing.T, target string, hold time.Duration, every int) (*slowTarget, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	s := &slowTarget{rp: httputil.NewSingleHostReverseProxy(u), hold: hold, every: every}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *slowTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" {
		s.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	n := s.calls
	s.calls++
	hold := n%s.every == s.every/3
	if hold {
		var req struct{ Records []json.RawMessage }
		if err := json.Unmarshal(body, &req); err != nil {
			s.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.held++
		s.records += len(req.Records)
		s.pending.Add(1)
		defer s.pending.Done()
	}
	s.mu.Unlock()
	if hold {
		time.Sleep(s.hold) // not cut when the client leaves: the call is stored anyway
	}
	s.rp.ServeHTTP(w, r)
}

// wait waits until the calls held have been forwarded and returns their
// number and their records.
func (s *slowTarget) wait() (calls, records int) {
	s.pending.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.records
}

// kinesaliteClient builds the client the way the extension does, from the
// SDK's standard chain with AWS_ENDPOINT_URL_KINESIS pointing at endpoint.
func kinesaliteClient(t *testing.T, cfg config.Config, endpoint string) PutRecordsAPI {
	t.Helper()
	clientEnv(t, endpoint)
	c, err := NewKinesisClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kinesaliteSendTimeout is the call timeout of the tests that allow no
// duplicate: kinesalite may take seconds to store a 5 MiB call on a busy
// machine, and a call that times out may have been stored before it is sent
// again (at least once, as on Kinesis: TestKinesaliteThroughFaultProxy).
const kinesaliteSendTimeout = 25 * time.Second

func eventCount(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

func TestKinesaliteExactlyOnce(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "exactly-once", 4)
	cfg := testConfig(500, 5*MiB, MiB, "")
	cfg.SendTimeout = kinesaliteSendTimeout
	cfg.PartitionKey = config.PartitionKey{Mode: config.PartitionKeyRandom}
	// Addressed by ARN: requests carry the name too, which kinesalite needs.
	cfg.StreamName, cfg.StreamARN, cfg.Region = stream, "arn:aws:kinesis:us-east-1:000000000000:stream/"+stream, "us-east-1"
	r := newRing(t, 16*MiB)
	p := newPacker(t, r, cfg, Options{Client: kinesaliteClient(t, cfg, ks.Endpoint)})
	runPacker(t, p)
	sizes := mixedSizes(eventCount(3000, 1000), cfg.RecordMaxBytes, 2*randomKeyBytes)

	start := time.Now()
	pipeline(t, p, r, sizes)
	took := time.Since(start)
	_, shards := readBack(t, ks, stream, sizes, nil)
	if len(shards) != 4 {
		t.Fatalf("unexpected spread of random keys; got records in %d shards; want 4", len(shards))
	}
	st := p.Stats()
	if st.Events != uint64(len(sizes)) || st.Oversize != 0 || st.Held != 0 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
	t.Logf("%d events, %.1f MB in %v: %d calls, %.1f records per call, shards %v",
		len(sizes), float64(st.Bytes)/1e6, took.Round(time.Millisecond), st.Calls, st.AvgRecordsPerCall(), shards)
}

// TestKinesaliteThroughFaultProxy: with every kind of fault injected, every
// event lands, and only once unless a call carrying it got no answer. Such
// a call may have been stored before the client gave up (a slow machine can
// time out any call), and a slow target behind the proxy makes sure some
// are: their records are sent again and land twice, which is at-least-once
// delivery, not a fault of the packer.
func TestKinesaliteThroughFaultProxy(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "faults", 2)
	const sendTimeout = 500 * time.Millisecond // hung calls time out after this
	slow, target := startSlowTarget(t, ks.Endpoint, sendTimeout+300*time.Millisecond, 30)
	fp, err := faultproxy.Start(target, faultproxy.PackerFaults)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.Close() })
	cfg := testConfig(20, 5*MiB, MiB, "") // small batches: many calls, so every fault happens
	cfg.PartitionKey = config.PartitionKey{Mode: config.PartitionKeyEnvironment}
	cfg.StreamName = stream
	cfg.SendTimeout = sendTimeout
	r := newRing(t, 16*MiB)
	client := newAnswerLog(kinesaliteClient(t, cfg, fp.URL))
	p := newPacker(t, r, cfg, Options{Client: client, BackoffBase: 5 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	runPacker(t, p)
	sizes := mixedSizes(eventCount(2000, 600), cfg.RecordMaxBytes, 2*randomKeyBytes)

	pipeline(t, p, r, sizes)
	held, heldRecords := slow.wait() // every call held is in the stream now
	dups, shards := readBack(t, ks, stream, sizes, client.unanswered)
	if len(shards) != 1 {
		t.Fatalf("unexpected shards for one environment key; got %v; want one", shards)
	}
	if held == 0 || dups < heldRecords {
		t.Fatalf("unexpected duplicates; got %d with %d calls of %d records held past the timeout; want at least those records (the test does not test what it says)",
			dups, held, heldRecords)
	}
	fs, st, ans := fp.Stats(), p.Stats(), client.tally()
	if fs.RecordFailures == 0 || fs.Throttled == 0 || fs.ServerErrors == 0 || fs.Hung == 0 || fs.Delayed == 0 {
		t.Fatalf("unexpected fault counts (every kind should have happened); got %+v", fs)
	}
	// The packer counts the answers it received. The proxy counts those it
	// gave, some of which a slow machine may not wait for: each such call
	// is one more without an answer.
	if st.Throttled != uint64(ans.recThrough) || st.InternalFail != uint64(ans.recOther) || st.CallThrottled != uint64(ans.throttled) ||
		st.CallServer != uint64(ans.server) || st.CallNetwork+st.Canceled != uint64(ans.unanswered) || ans.refused != 0 ||
		st.Calls != uint64(ans.calls) || st.Events != uint64(len(sizes)) {
		t.Fatalf("unexpected packer stats for the answers received;\npacker %+v\nanswers %+v", st, ans)
	}
	missed := int(fs.Hung) + held + int(fs.Throttled) - ans.throttled + int(fs.ServerErrors) - ans.server
	if ans.throttled > int(fs.Throttled) || ans.server > int(fs.ServerErrors) || ans.recThrough+ans.recOther > int(fs.RecordFailures) ||
		ans.unanswered < missed {
		t.Fatalf("unexpected answers for the faults injected;\nanswers %+v\nproxy   %+v (and %d calls held)", ans, fs, held)
	}
	t.Logf("%d events: %d calls, %d retried, %d unanswered (%d held), %d duplicates; proxy %+v", len(sizes), st.Calls, st.Retried, ans.unanswered, held, dups, fs)
}

// TestKinesaliteLostResponsesAtLeastOnce documents the at-least-once case: a
// call that Kinesis stored but whose answer was lost (HTTP 500 after
// forwarding, or a timeout) is resent, so its records land twice. Only the
// records of calls answered 500 (every 500 here is a lost answer) or not
// answered at all (a slow machine can time out any call) may be duplicated,
// and every record behind a lost answer is; nothing is missing.
func TestKinesaliteLostResponsesAtLeastOnce(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "at-least-once", 2)
	fp, err := faultproxy.Start(ks.Endpoint, faultproxy.LostAnswerFaults)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.Close() })
	cfg := testConfig(50, 5*MiB, MiB, "k")
	cfg.StreamName = stream
	r := newRing(t, 4*MiB)
	client := newAnswerLog(kinesaliteClient(t, cfg, fp.URL))
	p := newPacker(t, r, cfg, Options{Client: client, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	runPacker(t, p)
	sizes := make([]int, eventCount(1000, 300))
	for i := range sizes {
		sizes[i] = 8 + i%500
	}
	pipeline(t, p, r, sizes)
	dups, _ := readBack(t, ks, stream, sizes, client.unansweredOr5xx)
	fs, ans := fp.Stats(), client.tally()
	if fs.LostResponses == 0 || uint64(dups) < fs.LostRecords || uint64(dups) > fs.LostRecords+uint64(ans.unansRecs) {
		t.Fatalf("unexpected duplicates; got %d; want %d (records behind %d lost answers) plus at most the %d records of %d unanswered calls",
			dups, fs.LostRecords, fs.LostResponses, ans.unansRecs, ans.unanswered)
	}
	t.Logf("%d events, %d duplicates from %d lost answers and %d unanswered calls", len(sizes), dups, fs.LostResponses, ans.unanswered)
	runtime.KeepAlive(p)
}

// TestKinesaliteWrappedPartsOneShard: with random keys on a 4-shard stream,
// the parts of each event too large for a 64 KiB record reach one shard, in
// part order, so a consumer reading shard by shard can join them.
func TestKinesaliteWrappedPartsOneShard(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "wrapped-parts", 4)
	cfg := testConfig(500, 5*MiB, 64*KiB, "")
	cfg.SendTimeout = kinesaliteSendTimeout
	cfg.PartitionKey = config.PartitionKey{Mode: config.PartitionKeyRandom}
	cfg.StreamName, cfg.Region = stream, "us-east-1"
	r := newRing(t, 16*MiB)
	p := newPacker(t, r, cfg, Options{Client: kinesaliteClient(t, cfg, ks.Endpoint)})
	runPacker(t, p)
	frames := listenerFrames(t, testIdentity, true, wrappingBody(), wrappingBody(), wrappingBody())
	if err := ringtest.Write(r, frames...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res := p.Flush(ctx); !res.Complete {
		t.Fatalf("unexpected flush result; got %+v", res)
	}
	recs, err := ks.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	type place struct {
		shard string
		next  int // the part expected next on that shard
	}
	payloads := map[string]*place{}
	parts := 0
	for _, rec := range recs {
		id, part, ok := kteOf(t, rec.Data)
		if !ok {
			continue
		}
		parts++
		pl := payloads[id]
		if pl == nil {
			pl = &place{shard: rec.ShardID, next: 1}
			payloads[id] = pl
		}
		if rec.ShardID != pl.shard || part != pl.next {
			t.Fatalf("unexpected record of payload %s; got part %d on %s; want part %d on %s", id, part, rec.ShardID, pl.next, pl.shard)
		}
		pl.next++
	}
	if len(recs) != len(frames) || len(payloads) != 6 {
		t.Fatalf("unexpected records; got %d with %d payloads in %d parts; want %d with 6 payloads", len(recs), len(payloads), parts, len(frames))
	}
}
