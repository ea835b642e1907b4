package ingest

import (
	"context"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/poster"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
)

// BenchmarkEndToEnd is the whole ingest path, KTE against the baseline with
// the same parameters: each op is one Telemetry API body POSTed over a
// loopback TCP connection (the same fasthttp client, one connection, one POST
// at a time, as Lambda delivers), acknowledged, split or decoded into the
// ring or queue, packed into PutRecords requests and sent with the real AWS
// SDK v2 client (batch.NewKinesisClient) to the shared in-process fake
// Kinesis endpoint. Full requests go out while the bodies stream in; the
// rest is flushed at the end, inside the timing. Every run checks that the
// fake received every event.
//
// Besides ns/op, B/op, allocs/op and MB/s (body bytes), it reports events/s,
// allocs/event and cpu-ms/10k-events. Allocations and CPU time are this
// process's (runtime.MemStats, getrusage): the implementation and the fake
// endpoint, for both alike; the POSTs come from a child process (the
// stand-in for Lambda), whose work is not counted.
func BenchmarkEndToEnd(b *testing.B) {
	client, fake := sharedClient(b)
	runAll(b, overHTTP, client, fakeCounter{fake})
}

// BenchmarkInProcess is the implementations' own work, without HTTP and
// without the SDK: each op hands one body to the ingest code (KTE: the
// listener's split, reserve, copy and commit; baseline: encoding/json into
// []json.RawMessage and the channel), the packer or sender builds the
// PutRecords requests, and a client that accepts every request at once,
// without serialising it, receives them. Metrics as BenchmarkEndToEnd.
func BenchmarkInProcess(b *testing.B) {
	runAll(b, inProcess, &discardClient{}, nil)
}

func runAll(b *testing.B, tr transport, client batch.PutRecordsAPI, count counter) {
	if count == nil {
		count = client.(counter)
	}
	// Body outside, implementation inside: with -count, a leaf's runs are
	// consecutive, so both implementations of one body run within seconds
	// of each other on a machine whose load drifts.
	for _, body := range Bodies() {
		b.Run("body="+body.Name, func(b *testing.B) {
			for _, im := range impls {
				b.Run("impl="+im.name, func(b *testing.B) {
					run(b, im, tr, client, count, body)
				})
			}
			if tr == overHTTP {
				b.Run("impl="+floorImpl.name, func(b *testing.B) {
					run(b, floorImpl, tr, client, count, body)
				})
			}
		})
	}
}

func run(b *testing.B, im impl, tr transport, client batch.PutRecordsAPI, count counter, body Body) {
	p := im.new(b, tr, client)
	defer p.close()
	if f, ok := p.(*floorPipeline); ok {
		// The floor answers bodies and delivers nothing: count bodies.
		count = floorCounter{f, body.Events}
	}
	// Over HTTP, the POSTs come from a child process (poster.Remote), so
	// that this process's CPU time and allocations are the
	// implementation's and the fake endpoint's only.
	post := func(n int) error {
		for range n {
			if err := p.post(body.Data); err != nil {
				return err
			}
		}
		return nil
	}
	if addr := p.endpoint(); addr != "" {
		r := remotePoster(b, addr)
		defer func() {
			if err := r.Close(); err != nil {
				b.Errorf("poster: %v", err)
			}
		}()
		post = func(n int) error { return r.Post(body.Data, n) }
	}
	// Warm up: connections, buffers, the first requests.
	if err := post(2); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.flush(ctx); err != nil {
		b.Fatal(err)
	}
	before := count.delivered()

	b.ReportAllocs()
	b.SetBytes(int64(len(body.Data)))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU(b)
	b.ResetTimer()
	t0 := time.Now()
	if err := post(b.N); err != nil {
		b.Fatal(err)
	}
	if err := p.flush(ctx); err != nil {
		b.Fatal(err)
	}
	wall := time.Since(t0)
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&ms1)

	events := b.N * body.Events
	if got := count.delivered() - before; got != uint64(events) {
		if k, ok := p.(*ktePipeline); ok {
			b.Logf("packer stats: %+v", k.packer.Stats())
		}
		b.Fatalf("unexpected records delivered; got %d; want %d", got, events)
	}
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(cpu.Seconds()*1e3/float64(events)*1e4, "cpu-ms/10k-events")
}

// processCPU returns the user and system CPU time of the whole process.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// posterDir holds the poster command, built once per test binary.
var posterDir struct {
	once sync.Once
	dir  string
	err  error
}

// remotePoster starts a poster child process for the endpoint at addr.
func remotePoster(b *testing.B, addr string) *poster.Remote {
	b.Helper()
	posterDir.once.Do(func() { posterDir.dir, posterDir.err = os.MkdirTemp("", "kte-bench-poster-") })
	if posterDir.err != nil {
		b.Fatal(posterDir.err)
	}
	r, err := poster.StartRemote(context.Background(), posterDir.dir, addr, listener.DefaultPath)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func TestMain(m *testing.M) {
	code := m.Run()
	if posterDir.dir != "" {
		_ = os.RemoveAll(posterDir.dir)
	}
	os.Exit(code)
}
