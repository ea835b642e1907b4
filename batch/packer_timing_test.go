package batch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

var benchSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"1KiB", KiB}, {"64KiB", 64 * KiB}}

// perBatch is how many events of size bytes fill one request with a
// 16-byte generated key.
func perBatch(size int) int { return min(500, 5*MiB/(size+2*randomKeyBytes)) }

// BenchmarkPack measures the reader side for one event per op: Next, the
// encoder filling the reused PutRecordsInput, settling from a response and
// releasing (zeroing) the ring. Ring writes happen with the timer stopped.
func BenchmarkPack(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) { benchPack(b, bs.size, false) })
	}
}

// BenchmarkWriteAndPack is BenchmarkPack with the writer's copy into the
// ring included: the whole ring-to-request path for one event per op.
func BenchmarkWriteAndPack(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) { benchPack(b, bs.size, true) })
	}
}

func benchPack(b *testing.B, size int, withWrite bool) {
	cfg := testConfig(500, 5*MiB, MiB, "")
	cfg.PartitionKey = config.PartitionKey{Mode: config.PartitionKeyEnvironment}
	p := newPacker(b, newRing(b, 64*MiB), cfg, Options{})
	per := perBatch(size)
	events := buildEvents(per, size)
	out := okOutput(per)
	all := out.Records
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(per, b.N-done)
		if !withWrite {
			b.StopTimer()
		}
		if err := ringtest.Write(p.r, events[:n]...); err != nil {
			b.Fatal(err)
		}
		if !withWrite {
			b.StartTimer()
		}
		now := p.now()
		p.fill(now)
		if len(p.req) != n {
			b.Fatalf("unexpected events in the request; got %d; want %d", len(p.req), n)
		}
		out.Records = all[:n]
		p.callDone(out, now)
		p.closeRequest()
		p.release()
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// leanKinesis is a fake PutRecords endpoint that does as little as it can
// per call (count the records, answer from a cached response), so that the
// allocations measured are mostly the client's.
type leanKinesis struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	resp  map[int][]byte
	calls int
}

var partitionKeyField = []byte(`"PartitionKey"`)

func (l *leanKinesis) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
	_, _ = l.buf.ReadFrom(r.Body)
	n := bytes.Count(l.buf.Bytes(), partitionKeyField)
	body, ok := l.resp[n]
	if !ok {
		var b bytes.Buffer
		b.WriteString(`{"FailedRecordCount":0,"Records":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"}`)
		}
		b.WriteString(`]}`)
		body = b.Bytes()
		l.resp[n] = body
	}
	l.calls++
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

var contentTypeJSON = []string{"application/x-amz-json-1.1"}

// BenchmarkSend measures the whole delivery for one event per op: ring
// write, packing, the SDK's PutRecords (serialising, signing, HTTP over
// loopback, parsing) against an in-process fake endpoint, settling and
// release. allocs/op is per event and includes everything in the process,
// the fake endpoint's net/http server too; the SDK allocates per call and
// per record, and allocs/op shows what that amounts to per event.
func BenchmarkSend(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			lk := &leanKinesis{resp: map[int][]byte{}}
			srv := httptest.NewServer(lk)
			defer srv.Close()
			c := kinesis.New(kinesis.Options{
				Region:       "us-east-1",
				BaseEndpoint: aws.String(srv.URL),
				Credentials:  credentials.NewStaticCredentialsProvider("AKIDBENCH", "secret", ""),
				Retryer:      aws.NopRetryer{},
				HTTPClient:   newHTTPClient(5 * time.Second),
			}, WireOptions)
			cfg := testConfig(500, 5*MiB, MiB, "")
			cfg.PartitionKey = config.PartitionKey{Mode: config.PartitionKeyEnvironment}
			r := newRing(b, 64*MiB)
			p := newPacker(b, r, cfg, Options{Client: c})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			defer func() {
				cancel()
				<-done
			}()
			p.Resume()
			block := buildEvents(min(100, perBatch(bs.size)), bs.size)
			// Warm up: one call, so that the connection and caches exist.
			if err := ringtest.Write(r, block...); err != nil {
				b.Fatal(err)
			}
			if res := p.Flush(context.Background()); !res.Complete {
				b.Fatalf("unexpected warm-up flush; got %+v", res)
			}
			p.Resume()
			calls0 := lk.calls
			b.SetBytes(int64(bs.size))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(len(block), b.N-done)
				if err := ringtest.Write(r, block[:n]...); err != nil {
					if !errors.Is(err, ring.ErrFull) {
						b.Fatal(err)
					}
					runtime.Gosched()
					continue
				}
				done += n
			}
			if res := p.Flush(context.Background()); !res.Complete {
				b.Fatalf("unexpected flush; got %+v", res)
			}
			b.StopTimer()
			lk.mu.Lock()
			calls := lk.calls - calls0
			lk.mu.Unlock()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(calls), "records/call")
		})
	}
}

// Sink keeps results alive against dead-code elimination.
var Sink int

func BenchmarkKeysNext(b *testing.B) {
	k, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Sink += len(*k.Next())
	}
}

// BenchmarkEncoderAdd measures RecordEncoder.Add for one enriched event of
// size bytes per op, with one key and with random keys (where Add also
// tells a wrapped part from a plain event).
func BenchmarkEncoderAdd(b *testing.B) {
	pre := []byte(`{"lambda":{"function":"orders-api","version":"$LATEST","region":"eu-west-1","account":"111122223333","environment":"5f1c0d2e9a7b4c3d8e6f0a1b2c3d4e5f"},`)
	for _, mode := range []config.PartitionKeyMode{config.PartitionKeyEnvironment, config.PartitionKeyRandom} {
		for _, bs := range benchSizes[:2] {
			b.Run("keys="+mode.String()+"/"+bs.name, func(b *testing.B) {
				keys, err := NewKeys(config.PartitionKey{Mode: mode}, "", "")
				if err != nil {
					b.Fatal(err)
				}
				enc, err := NewRecordEncoder(Limits{MaxRecords: 500, MaxBytes: 5 * MiB, RecordMaxBytes: MiB}, keys)
				if err != nil {
					b.Fatal(err)
				}
				ev := append(append([]byte{}, pre...), `"time":"2026-01-01T00:00:03.140Z","type":"function","record":"`...)
				ev = append(ev, bytes.Repeat([]byte("x"), max(0, bs.size-len(ev)-2))...)
				ev = append(ev, `"}`...)
				b.SetBytes(int64(len(ev)))
				b.ReportAllocs()
				for b.Loop() {
					if _, st := enc.Add(ev); st != Added {
						enc.Reset()
					}
				}
			})
		}
	}
}
