package batch

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

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

// readBack reads the stream and checks every event landed exactly once,
// byte-identical. It returns the number of copies beyond one and the
// records per shard.
func readBack(t *testing.T, ks *kinesalite.Server, stream string, sizes []int, dupOK bool) (int, map[string]int) {
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
		if n == 0 || n > 1 && !dupOK {
			t.Fatalf("unexpected copies of event %d (%d bytes) in the stream; got %d; want 1", id, sizes[id], n)
		}
		dups += n - 1
	}
	return dups, shards
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
	_, shards := readBack(t, ks, stream, sizes, false)
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

func TestKinesaliteThroughFaultProxy(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "faults", 2)
	fp, err := faultproxy.Start(ks.Endpoint, faultproxy.Faults{
		Seed:          11,
		RecordFailure: 0.1,
		Throttle:      0.1,
		ServerError:   0.1,
		Hang:          0.03,
		Delay:         0.1,
		DelayTime:     20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.Close() })
	cfg := testConfig(20, 5*MiB, MiB, "") // small batches: many calls, so every fault happens
	cfg.PartitionKey = config.PartitionKey{Mode: config.PartitionKeyEnvironment}
	cfg.StreamName = stream
	cfg.SendTimeout = 500 * time.Millisecond // hung calls time out after this
	r := newRing(t, 16*MiB)
	p := newPacker(t, r, cfg, Options{Client: kinesaliteClient(t, cfg, fp.URL), BackoffBase: 5 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	runPacker(t, p)
	sizes := mixedSizes(eventCount(2000, 600), cfg.RecordMaxBytes, 2*randomKeyBytes)

	pipeline(t, p, r, sizes)
	_, shards := readBack(t, ks, stream, sizes, false)
	if len(shards) != 1 {
		t.Fatalf("unexpected shards for one environment key; got %v; want one", shards)
	}
	fs, st := fp.Stats(), p.Stats()
	if fs.RecordFailures == 0 || fs.Throttled == 0 || fs.ServerErrors == 0 || fs.Hung == 0 || fs.Delayed == 0 {
		t.Fatalf("unexpected fault counts (every kind should have happened); got %+v", fs)
	}
	if st.Throttled+st.InternalFail != fs.RecordFailures || st.CallThrottled != fs.Throttled ||
		st.CallServer != fs.ServerErrors || st.CallNetwork != fs.Hung || st.Events != uint64(len(sizes)) {
		t.Fatalf("unexpected packer stats for the faults injected;\npacker %+v\nproxy  %+v", st, fs)
	}
	t.Logf("%d events: %d calls, %d retried; proxy %+v", len(sizes), st.Calls, st.Retried, fs)
}

// TestKinesaliteLostResponsesAtLeastOnce documents the at-least-once case: a
// call that Kinesis stored but whose answer was lost (HTTP 500 after
// forwarding, or a timeout) is resent, so its records land twice. Exactly
// the records behind lost answers are duplicated; nothing is missing.
func TestKinesaliteLostResponsesAtLeastOnce(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "at-least-once", 2)
	fp, err := faultproxy.Start(ks.Endpoint, faultproxy.Faults{Seed: 5, LostResponse: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fp.Close() })
	cfg := testConfig(50, 5*MiB, MiB, "k")
	cfg.StreamName = stream
	r := newRing(t, 4*MiB)
	p := newPacker(t, r, cfg, Options{Client: kinesaliteClient(t, cfg, fp.URL), BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	runPacker(t, p)
	sizes := make([]int, eventCount(1000, 300))
	for i := range sizes {
		sizes[i] = 8 + i%500
	}
	pipeline(t, p, r, sizes)
	dups, _ := readBack(t, ks, stream, sizes, true)
	fs := fp.Stats()
	if fs.LostResponses == 0 || uint64(dups) != fs.LostRecords {
		t.Fatalf("unexpected duplicates; got %d; want %d (records behind %d lost answers)", dups, fs.LostRecords, fs.LostResponses)
	}
	t.Logf("%d events, %d duplicates from %d lost answers", len(sizes), dups, fs.LostResponses)
	runtime.KeepAlive(p)
}

// TestKinesaliteWrappedPartsOneShard: with random keys on a 4-shard stream,
// the parts of each event too large for a 64 KiB record reach one shard, in
// part order, so a consumer reading shard by shard can join them.
func TestKinesaliteWrappedPartsOneShard(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "wrapped-parts", 4)
	cfg := testConfig(500, 5*MiB, 64*KiB, "")
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
