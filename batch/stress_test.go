package batch

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// TestPackerConcurrentExactlyOnce runs the packer goroutine against several
// writers on a small ring (so that back-pressure happens), a lifecycle that
// resumes and flushes at random, and a client that fails whole calls and
// single entries at random. Every event must be accepted exactly once and
// byte-identical, and no call may overlap another.
func TestPackerConcurrentExactlyOnce(t *testing.T) {
	writers, perWriter := 4, 5000
	if testing.Short() {
		perWriter = 500
	}
	total := writers * perWriter
	r := newRing(t, 128*KiB)
	var (
		mu       sync.Mutex
		rng      = rand.New(rand.NewPCG(1, 2))
		accepted = make([]int, total)
		inFlight atomic.Int32
	)
	c := &memClient{respond: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		if inFlight.Add(1) != 1 {
			t.Error("unexpected concurrent PutRecords calls")
		}
		defer inFlight.Add(-1)
		mu.Lock()
		defer mu.Unlock()
		switch rng.IntN(10) {
		case 0:
			return nil, errAPI(codeThroughput, 400)
		case 1:
			return nil, errAPI("InternalFailureException", 500)
		case 2:
			return nil, errors.New("connection reset by peer")
		}
		out := failOutput(len(in.Records), func(int) string {
			switch rng.IntN(10) {
			case 0:
				return codeThroughput
			case 1:
				return codeInternal
			}
			return ""
		})
		for i, e := range in.Records {
			if out.Records[i].ErrorCode == nil {
				id := eventID(e.Data)
				if id < 0 || id >= total || string(e.Data) != string(event(id, sizeOf(id))) {
					t.Errorf("unexpected record %.40q", e.Data)
					continue
				}
				accepted[id]++
			}
		}
		return out, nil
	}}
	p := newPacker(t, r, testConfig(100, 64*KiB, 8*KiB, "k"), Options{
		Client: c, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, Window: 256,
	})
	runPacker(t, p)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * perWriter; i < (w+1)*perWriter; {
				n := min(1+i%7, (w+1)*perWriter-i) // blocks of 1–7 events
				block := make([][]byte, n)
				for j := range block {
					block[j] = event(i+j, sizeOf(i+j))
				}
				if err := ringtest.Write(r, block...); err != nil {
					if !errors.Is(err, ring.ErrFull) {
						t.Error(err)
						return
					}
					runtime.Gosched() // the listener would answer 503; Lambda retries
					continue
				}
				i += n
			}
		}()
	}
	stop := make(chan struct{})
	lifecycle := make(chan struct{})
	go func() { // invocations: resume, then flush with a short deadline
		defer close(lifecycle)
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.Resume()
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rand.IntN(20))*time.Millisecond)
			p.Flush(ctx)
			cancel()
		}
	}()
	wg.Wait()
	close(stop)
	<-lifecycle
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res := p.Flush(ctx)
		cancel()
		if res.Complete && res.Unread == 0 {
			break
		}
		if i == 10 {
			t.Fatalf("unexpected final flush; got %+v", res)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range accepted {
		if n != 1 {
			t.Fatalf("unexpected copies of event %d; got %d; want 1", id, n)
		}
	}
	st := p.Stats()
	if st.Events != uint64(total) || st.Held != 0 || st.Retried == 0 || st.CallThrottled == 0 || st.Throttled == 0 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
	if rs := r.Stats(); rs.InUse != 0 || rs.Refused == 0 && !testing.Short() {
		t.Fatalf("unexpected ring stats; got %+v (back-pressure expected)", rs)
	}
	t.Logf("%d events in %d calls (%.1f records per call), %d retried; ring refused %d reservations",
		total, st.Calls, st.AvgRecordsPerCall(), st.Retried, r.Stats().Refused)
}

// sizeOf gives event id its size: mostly small, some large.
func sizeOf(id int) int {
	switch id % 10 {
	case 0:
		return 4000 + id%3000
	case 1, 2:
		return 1000 + id%500
	}
	return 8 + id%300
}
