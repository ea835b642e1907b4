package ring

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestRestartRaceKeepsHighWater: the reader's restartEmpty and a writer's
// restart at the same empty position race; whichever wins, the restart's
// pad must stay out of the high-water mark. The reader used to put its
// old frontFrom back when it lost, wiping out the winning writer's (the
// same value), and the pad then counted as in use for good: about 93% of
// this ring, where at most one 5000-byte block and two small ones are.
// It took 4 to 837 hits in 300,000 rounds.
func TestRestartRaceKeepsHighWater(t *testing.T) {
	const size, rounds = 64 << 10, 300000
	r, err := NewOffHeap(size)
	if err != nil {
		t.Fatal(err)
	}
	reserve := func(n int) Reservation {
		w, err := r.Reserve(1, n)
		for err == ErrFull { // restartEmpty may refuse a writer once (documented)
			w, err = r.Reserve(1, n)
		}
		if err != nil {
			panic(err)
		}
		w.Frame(n)
		return w
	}
	// The writer reserves when told to (round k: turn = k), after a delay
	// that varies, so that it lands in the reader's restartEmpty now and
	// then; it answers with turn = -k.
	var turn, delay atomic.Int64
	var writerAt atomic.Uint64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for k := int64(1); ; k++ {
			for turn.Load() != k {
				select {
				case <-stop:
					return
				default:
				}
			}
			for i := range delay.Load() {
				runtime.KeepAlive(i)
			}
			w := reserve(100)
			writerAt.Store(w.pos)
			w.Commit()
			turn.Store(-k)
		}
	}()
	bound := uint64(BlockSize(1, 5000) + 2*BlockSize(1, 100))
	races := 0
	for k := int64(1); k <= rounds; k++ {
		w := reserve(5000)
		w.Commit()
		f, ok := r.Next()
		if !ok {
			t.Fatal("no frame")
		}
		end := f.End()
		delay.Store(k % 64)
		turn.Store(k)
		r.ReleaseTo(end) // empties the ring: restartEmpty runs
		for turn.Load() != -k {
		}
		if at := writerAt.Load(); at&r.mask == 0 && at == end+r.size-end&r.mask && r.read == end {
			// The writer restarted at end and restartEmpty lost: a
			// second block before the reader reaches the pad.
			races++
			w := reserve(100)
			w.Commit()
		}
		for {
			f, ok := r.Next()
			if !ok {
				break
			}
			r.Release(f)
		}
	}
	if hw := r.Stats().HighWater; hw > int(bound) {
		t.Fatalf("high-water mark %d after %d restart races; at most %d bytes were ever in use", hw, races, bound)
	}
	t.Logf("%d restart races in %d rounds", races, rounds)
}
