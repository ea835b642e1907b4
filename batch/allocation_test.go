//go:build !race

package batch

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// TestPackFullBatchAllocs: reading 500 frames from the ring into the reused
// PutRecordsInput, settling them from a response and releasing the ring
// allocates nothing.
func TestPackFullBatchAllocs(t *testing.T) {
	f := func(key config.PartitionKey, size int) {
		t.Helper()
		cfg := testConfig(500, 5*MiB, MiB, "")
		cfg.PartitionKey = key
		p := newPacker(t, newRing(t, 8*MiB), cfg, Options{})
		events := buildEvents(500, size)
		out := okOutput(500)
		allocs := testing.AllocsPerRun(100, func() {
			writeAll(t, p, events)
			now := p.now()
			p.fill(now)
			if len(p.enc.Entries()) != 500 {
				t.Fatalf("unexpected entries; got %d; want 500", len(p.enc.Entries()))
			}
			p.callDone(out, now)
			p.closeRequest()
			p.release()
		})
		if allocs != 0 {
			t.Fatalf("unexpected allocations packing a full batch of %d-byte events with %v keys; got %v; want 0", size, key.Mode, allocs)
		}
		if p.r.Unreleased() != 0 || p.Stats().Events != 101*500 {
			t.Fatalf("unexpected state; got %d unreleased, %d events", p.r.Unreleased(), p.Stats().Events)
		}
	}
	f(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, 100)
	f(config.PartitionKey{Mode: config.PartitionKeyRandom}, 1000)
	f(config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: "k"}, 8)
}

// TestRetryPathAllocs: failed entries going back to wait, being re-added
// to a later request and settled allocate nothing either.
func TestRetryPathAllocs(t *testing.T) {
	p := newPacker(t, newRing(t, 8*MiB), testConfig(500, 5*MiB, MiB, "k"), Options{})
	events := buildEvents(500, 200)
	half := failOutput(500, func(i int) string {
		if i%2 == 0 {
			return codeThroughput
		}
		return ""
	})
	rest := okOutput(250)
	allocs := testing.AllocsPerRun(100, func() {
		writeAll(t, p, events)
		now := p.now()
		p.fill(now)
		p.callDone(half, now)
		p.closeRequest()
		p.release()
		p.fill(now + int64(time.Hour))
		if len(p.enc.Entries()) != 250 {
			t.Fatalf("unexpected retry entries; got %d; want 250", len(p.enc.Entries()))
		}
		p.callDone(rest, now)
		p.closeRequest()
		p.release()
	})
	if allocs != 0 {
		t.Fatalf("unexpected allocations on the retry path; got %v; want 0", allocs)
	}
	if p.r.Unreleased() != 0 || p.unsettled != 0 {
		t.Fatalf("unexpected state; got %d unreleased, %d unsettled", p.r.Unreleased(), p.unsettled)
	}
}

// TestSendAllocsPerCallNotPerEvent: a whole send (with an in-memory client
// that answers from a prepared response) allocates the same for 10 events as
// for 500: the per-call context and nothing per event.
func TestSendAllocsPerCallNotPerEvent(t *testing.T) {
	measure := func(n int) float64 {
		out := okOutput(n)
		c := clientFunc(func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) { return out, nil })
		p := newPacker(t, newRing(t, 8*MiB), testConfig(500, 5*MiB, MiB, "k"), Options{Client: c})
		p.ctl.resumed, p.resumed, p.client = true, true, c
		events := buildEvents(n, 100)
		ctx := context.Background()
		return testing.AllocsPerRun(100, func() {
			writeAll(t, p, events)
			p.fill(p.now())
			p.send(ctx)
		})
	}
	small, large := measure(10), measure(500)
	t.Logf("allocations per send: %v with 10 events, %v with 500", small, large)
	if large != small || large > 8 {
		t.Fatalf("unexpected allocations per send; got %v for 500 events and %v for 10; want equal and small", large, small)
	}
}

type clientFunc func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)

func (f clientFunc) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return f(ctx, in)
}

func TestKeysAndLineAllocs(t *testing.T) {
	k, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(1000, func() { _ = k.Next() }); a != 0 {
		t.Fatalf("unexpected allocations in Keys.Next; got %v; want 0", a)
	}
	buf := make([]byte, 0, 4096)
	data := event(1, 1000)
	if a := testing.AllocsPerRun(1000, func() { buf = appendUndelivered(buf[:0], "shutdown", data, 7) }); a != 0 {
		t.Fatalf("unexpected allocations in appendUndelivered; got %v; want 0", a)
	}
	buf = make([]byte, 0, 2*MiB)
	data = event(1, MiB)
	if a := testing.AllocsPerRun(100, func() { buf = appendUndelivered(buf[:0], "shutdown", data, 7) }); a != 0 {
		t.Fatalf("unexpected allocations in appendUndelivered of a long event; got %v; want 0", a)
	}
}

// TestEncoderWrappedAllocs: with random keys, telling wrapped parts from
// plain events (and giving parts their payload's key) allocates nothing.
func TestEncoderWrappedAllocs(t *testing.T) {
	enc := randomKeyEncoder(t)
	frames := listenerFrames(t, testIdentity, true, wrappingBody())
	allocs := testing.AllocsPerRun(100, func() {
		enc.Reset()
		for _, f := range frames {
			if _, st := enc.Add(f); st != Added {
				t.Fatalf("unexpected status; got %v; want Added", st)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("unexpected allocations adding %d listener frames with random keys; got %v; want 0", len(frames), allocs)
	}
}
