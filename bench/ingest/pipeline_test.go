package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/baseline"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/fakekinesis"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/poster"
	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

// The pipelines under test. Each takes Telemetry API bodies one at a time
// (post), streams them towards a Kinesis client (full requests are sent as
// soon as they are full) and delivers the rest on flush. Both
// implementations get the same client.

// counter is what the pipelines deliver to: it says how many records have
// arrived.
type counter interface{ delivered() uint64 }

// pipeline is one implementation wired to a client.
type pipeline interface {
	// post hands one body to the implementation; it returns once the body
	// is acknowledged (for HTTP: answered 200).
	post(body []byte) error
	// endpoint is the telemetry endpoint's address over HTTP, else "".
	endpoint() string
	// flush delivers everything posted so far.
	flush(ctx context.Context) error
	close()
}

// transport says how bodies reach the implementation.
type transport int

const (
	overHTTP  transport = iota // a POST over a loopback TCP connection
	inProcess                  // the body handed to the ingest code directly
)

// shared is the fake Kinesis endpoint and the SDK client both
// implementations use: one of each per test binary.
var shared struct {
	once   sync.Once
	fake   *fakekinesis.Server
	client *kinesis.Client
}

// sharedClient returns the shared SDK client and fake endpoint.
func sharedClient(tb testing.TB) (*kinesis.Client, *fakekinesis.Server) {
	tb.Helper()
	shared.once.Do(func() {
		shared.fake = fakekinesis.New(fakekinesis.Options{})
		shared.client = newClient(tb, shared.fake)
	})
	if shared.client == nil {
		tb.Fatal("no shared Kinesis client")
	}
	return shared.client, shared.fake
}

// newClient returns the production SDK client (batch.NewKinesisClient: no
// SDK retries, the extension's HTTP timeouts) pointed at fake.
func newClient(tb testing.TB, fake *fakekinesis.Server) *kinesis.Client {
	tb.Helper()
	// The SDK reads its settings from the environment once, here.
	env := append(fake.Env(), "AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		tb.Setenv(k, v)
	}
	c, err := batch.NewKinesisClient(context.Background(), benchConfig(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// fakeCounter adapts a fake endpoint to counter.
type fakeCounter struct{ *fakekinesis.Server }

func (f fakeCounter) delivered() uint64 { return f.Stats().Records }

// discardClient accepts every request at once without serialising it: the
// in-process pipelines use it to show the implementations' own work, without
// the SDK's. Safe for concurrent use.
type discardClient struct {
	records atomic.Uint64
}

var (
	zero      int32
	okResults = func() []types.PutRecordsResultEntry {
		rs := make([]types.PutRecordsResultEntry, baseline.MaxRecords)
		for i := range rs {
			rs[i] = types.PutRecordsResultEntry{SequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588898"), ShardId: aws.String("shardId-000000000000")}
		}
		return rs
	}()
)

func (c *discardClient) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	n := len(in.Records)
	if n == 0 || n > len(okResults) {
		return nil, fmt.Errorf("unexpected request of %d records", n)
	}
	c.records.Add(uint64(n))
	return &kinesis.PutRecordsOutput{FailedRecordCount: &zero, Records: okResults[:n:n]}, nil
}

func (c *discardClient) delivered() uint64 { return c.records.Load() }

// benchConfig is KTE's configuration for the benchmarks: the production
// defaults (config.Load), with enrichment off so that both implementations
// send the same bytes. Tests (not benchmarks) get the longest send timeout,
// so that a loaded machine cannot turn a slow call into a retry, and the
// retry into a duplicate their exactly-once checks would count.
func benchConfig(tb testing.TB) config.Config {
	tb.Helper()
	env := map[string]string{
		config.EnvRuntimeAPI: "127.0.0.1:9001",
		"AWS_REGION":         "us-east-1",
		"KTE_STREAM":         "bench",
		"KTE_ENRICH":         "false",
	}
	if _, ok := tb.(*testing.B); !ok {
		env["KTE_SEND_TIMEOUT_MS"] = "60000"
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// ktePipeline is KTE's ring, listener and packer, as the extension wires
// them (lifecycle.go), with the packer resumed for the whole run.
type ktePipeline struct {
	ring   *ring.Ring
	packer *batch.Packer
	lis    *listener.Listener // overHTTP only
	poster *poster.Client     // overHTTP only
	addr   string             // overHTTP only: the telemetry endpoint
	cancel context.CancelFunc
	done   chan struct{}

	// inProcess: the listener's hot path without HTTP.
	events    []listener.Event
	fullWaits int
}

// benchPartitionKey is both implementations' partition key: 32 hex
// characters, like the extension's environment id.
const benchPartitionKey = "8f2d6a3c5e7b4a1d9c0e2f4a6b8d0c1e"

func newKTE(tb testing.TB, tr transport, c batch.PutRecordsAPI) *ktePipeline {
	tb.Helper()
	cfg := benchConfig(tb)
	r, err := ring.NewOffHeap(cfg.RingBytes) // as the extension does (lifecycle.go)
	if err != nil {
		tb.Fatal(err)
	}
	// The partition key as the extension's (lifecycle.go: its 32-character
	// environment id), as long as the baseline's, so both send the same bytes.
	p, err := batch.New(r, cfg, batch.Options{Client: c, EnvironmentKey: benchPartitionKey, Undelivered: io.Discard, Logger: discardLogger})
	if err != nil {
		tb.Fatal(err)
	}
	k := &ktePipeline{ring: r, packer: p, done: make(chan struct{})}
	if tr == overHTTP {
		k.lis, err = listener.New(r, listener.Options{
			Host:          "127.0.0.1",
			Port:          0, // a free port
			MaxBodyBytes:  2*cfg.BufferMaxBytes + config.PostSlackBytes,
			MaxFrameBytes: cfg.RecordMaxBytes - config.KinesisMaxPartitionKeyChars,
			Enrich:        cfg.Enrich,
			Logger:        discardLogger,
		})
		if err != nil {
			tb.Fatal(err)
		}
		if err := k.lis.Start(); err != nil {
			tb.Fatal(err)
		}
		k.addr = k.lis.Addr().String()
		k.poster = poster.New(k.addr, listener.DefaultPath)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	go func() {
		defer close(k.done)
		_ = p.Run(ctx)
	}()
	p.Resume()
	return k
}

func (k *ktePipeline) endpoint() string { return k.addr }

func (k *ktePipeline) post(body []byte) error {
	if k.lis != nil {
		return k.poster.Post(body)
	}
	return k.ingest(body)
}

// ingest is what the listener's handler does with a body, enrichment off:
// split, reserve one block for all events, copy, commit. Like the handler,
// it waits for room while the ring is full.
func (k *ktePipeline) ingest(body []byte) error {
	evs, err := listener.SplitArray(body, k.events[:0])
	k.events = evs[:0]
	if err != nil {
		return err
	}
	total := 0
	for _, ev := range evs {
		total += ev.End - ev.Start
	}
	for {
		w, err := k.ring.Reserve(len(evs), total)
		if errors.Is(err, ring.ErrFull) {
			k.fullWaits++
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range evs {
			w.Append(body[ev.Start:ev.End])
		}
		w.Commit()
		return nil
	}
}

func (k *ktePipeline) flush(ctx context.Context) error {
	res := k.packer.Flush(ctx)
	if res.Err != nil {
		return res.Err
	}
	if !res.Complete || res.Pending != 0 || res.Unread != 0 {
		return fmt.Errorf("incomplete flush: %+v", res)
	}
	k.packer.Resume()
	return nil
}

func (k *ktePipeline) close() {
	if k.lis != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = k.lis.Shutdown(ctx)
		cancel()
		k.poster.Close()
	}
	k.cancel()
	<-k.done
}

// basePipeline is the plain implementation.
type basePipeline struct {
	ext    *baseline.Extension
	poster *poster.Client // overHTTP only
	addr   string         // overHTTP only: the telemetry endpoint
	http   bool
	cancel context.CancelFunc
	done   chan struct{}
}

func newBaseline(tb testing.TB, tr transport, c baseline.PutRecordsAPI) *basePipeline {
	tb.Helper()
	if kc, ok := c.(*kinesis.Client); ok {
		// The baseline uses the SDK as most code does: the same client
		// settings (endpoint, credentials, HTTP client), but the SDK's own
		// serialiser, not KTE's (batch.WireOptions); kinesis.New sets the
		// SDK's default protocol.
		c = kinesis.New(kc.Options())
	}
	e := baseline.New(c, baseline.Options{Stream: "bench", PartitionKey: benchPartitionKey})
	p := &basePipeline{ext: e, done: make(chan struct{}), http: tr == overHTTP}
	if p.http {
		addr, err := e.Start("127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		p.addr = addr.String()
		p.poster = poster.New(p.addr, listener.DefaultPath)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		_ = e.Run(ctx)
	}()
	// Run must be running before the first Flush.
	for e.Flush(context.Background()) != nil {
		time.Sleep(100 * time.Microsecond)
	}
	return p
}

func (p *basePipeline) post(body []byte) error {
	if p.http {
		return p.poster.Post(body)
	}
	return p.ext.Ingest(context.Background(), body)
}

func (p *basePipeline) flush(ctx context.Context) error { return p.ext.Flush(ctx) }

func (p *basePipeline) endpoint() string { return p.addr }

func (p *basePipeline) close() {
	if p.http {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.ext.Shutdown(ctx)
		cancel()
		p.poster.Close()
	}
	p.cancel()
	<-p.done
}

// impl names an implementation and builds its pipeline.
type impl struct {
	name string
	new  func(tb testing.TB, tr transport, c batch.PutRecordsAPI) pipeline
}

var impls = []impl{
	{"kte", func(tb testing.TB, tr transport, c batch.PutRecordsAPI) pipeline { return newKTE(tb, tr, c) }},
	{"baseline", func(tb testing.TB, tr transport, c batch.PutRecordsAPI) pipeline { return newBaseline(tb, tr, c) }},
}
