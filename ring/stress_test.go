package ring_test

import (
	"encoding/binary"
	"errors"
	"flag"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

var stressFrames = flag.Int("ring.stress", 0, "frames per stress run (default 2e5, 1e4 with -short)")

// stampedPayload fills p with a frame of writer w, sequence seq: the stamp
// followed by bytes derived from both, so any corruption or mix-up shows.
func stampedPayload(p []byte, w int, seq uint64) {
	binary.LittleEndian.PutUint32(p, uint32(w))
	binary.LittleEndian.PutUint64(p[4:], seq)
	for i := 12; i < len(p); i++ {
		p[i] = byte(uint64(i)*31 + seq*7 + uint64(w))
	}
}

// TestStress runs several writers posting sequence-stamped frames in
// multi-frame blocks of random sizes through a small ring started near the
// 2^64 wraparound, while one reader checks that every frame arrives exactly
// once, intact and in per-writer order, releasing in uneven batches.
func TestStress(t *testing.T) {
	total := *stressFrames
	if total == 0 {
		total = 200_000
		if testing.Short() {
			total = 10_000
		}
	}
	for _, c := range []struct {
		name    string
		size    int
		writers int
		start   uint64
		offHeap bool
		drop    bool // page dropping forced on (off-heap rings decide by rate after 1 s)
	}{
		{"small-ring-9-writers", 16 << 10, 9, nearWrap, false, false},
		{"large-ring-3-writers", 1 << 20, 3, nearWrap - 1<<19, false, false},
		{"off-heap-ring-4-writers", 64 << 10, 4, nearWrap - 1<<15, true, false},
		{"off-heap-dropping-ring-4-writers", 64 << 10, 4, nearWrap - 1<<15, true, true},
	} {
		t.Run(c.name, func(t *testing.T) { stress(t, c.size, c.writers, c.start, total, c.offHeap, c.drop) })
	}
}

func stress(t *testing.T, size, writers int, start uint64, total int, offHeap, drop bool) {
	newAt := ring.NewAt
	if offHeap {
		newAt = ring.NewAtOffHeap
	}
	r, err := newAt(size, start)
	if err != nil {
		t.Fatal(err)
	}
	r.SetDropping(drop)
	perWriter := total / writers
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var sizes [8]int
			for seq := 0; seq < perWriter; {
				n := 1 + rng.IntN(len(sizes))
				n = min(n, perWriter-seq)
				payload := 0
				for i := range n {
					sizes[i] = 12 + rng.IntN(200)
					if rng.IntN(50) == 0 {
						sizes[i] = 12 + rng.IntN(size/8)
					}
					payload += sizes[i]
				}
				var res ring.Reservation
				for {
					var err error
					res, err = r.Reserve(n, payload)
					if err == nil {
						break
					}
					if !errors.Is(err, ring.ErrFull) {
						t.Errorf("writer %d: unexpected error: %v", w, err)
						return
					}
					runtime.Gosched()
				}
				for i := range n {
					stampedPayload(res.Frame(sizes[i]), w, uint64(seq+i))
				}
				res.Commit()
				seq += n
				if offHeap && rng.IntN(16) == 0 {
					// Let the reader catch up and empty the ring, so that
					// blocks go back to the arena's beginning (Restarts).
					time.Sleep(50 * time.Microsecond)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	next := make([]uint64, writers)
	want := make([]byte, size)
	seen := 0
	rng := rand.New(rand.NewPCG(7, 7))
	var held []ring.Frame
	check := func(f ring.Frame) bool {
		p := f.Data
		if len(p) < 12 {
			t.Errorf("frame %d too short: %d bytes", seen, len(p))
			return false
		}
		w := int(binary.LittleEndian.Uint32(p))
		seq := binary.LittleEndian.Uint64(p[4:])
		if w >= writers || seq != next[w] {
			t.Errorf("frame %d: writer %d seq %d; want seq %d", seen, w, seq, next[w])
			return false
		}
		stampedPayload(want[:len(p)], w, seq)
		if string(want[:len(p)]) != string(p) {
			t.Errorf("frame %d of writer %d seq %d corrupted", seen, w, seq)
			return false
		}
		next[w]++
		return true
	}
	finished := false
	for seen < perWriter*writers {
		f, ok := r.Next()
		if !ok {
			if len(held) > 0 { // nothing new: release what we hold
				r.Release(held[len(held)-1])
				held = held[:0]
				continue
			}
			if finished {
				t.Fatalf("writers done but only %d of %d frames seen", seen, perWriter*writers)
			}
			select {
			case <-r.Wait():
			case <-done:
				finished = true
			}
			continue
		}
		if !check(f) {
			t.FailNow()
		}
		seen++
		held = append(held, f)
		if rng.IntN(8) == 0 { // release in uneven batches
			k := rng.IntN(len(held))
			r.Release(held[k])
			held = append(held[:0], held[k+1:]...) // still to release
		}
	}
	if len(held) > 0 {
		r.Release(held[len(held)-1])
	}
	<-done
	if _, ok := r.Next(); ok {
		t.Fatalf("unexpected extra frame")
	}
	st := r.Stats()
	if st.InUse != 0 || st.FramesWritten != uint64(seen) {
		t.Fatalf("unexpected stats after the run: %+v (seen %d)", st, seen)
	}
	if !r.ZeroBeyondHead() {
		t.Fatalf("ring not zeroed after the run")
	}
	if offHeap && st.Restarts == 0 {
		t.Fatalf("unexpected stats %+v; want blocks put back at the arena's beginning (the test does not test what it says)", st)
	}
	if st.HighWater > st.Size {
		t.Fatalf("unexpected high water %d above the size %d", st.HighWater, st.Size)
	}
	t.Logf("%d writers, %d frames, %d refused reservations, %d restarts, high water %d of %d", writers, seen, st.Refused, st.Restarts, st.HighWater, st.Size)
}

// TestStressAbandonAndMarks is TestStress with the other writer and reader
// paths under load: writers abandon one block in ten (after writing some
// of its frames) and wake the reader when the ring is full, as the
// listener does; the reader waits with WaitFor for random byte and frame
// marks, as the packer does. Every committed frame must arrive once,
// intact, in per-writer order, and no frame of an abandoned block at all.
func TestStressAbandonAndMarks(t *testing.T) {
	total := *stressFrames
	if total == 0 {
		total = 100_000
		if testing.Short() {
			total = 5_000
		}
	}
	for _, offHeap := range []bool{false, true} {
		const writers, size = 6, 32 << 10
		newAt := ring.NewAt
		if offHeap {
			newAt = ring.NewAtOffHeap
		}
		r, err := newAt(size, nearWrap-size/2)
		if err != nil {
			t.Fatal(err)
		}
		perWriter := total / writers
		var committed [writers]uint64 // frames committed, per writer, once it is done
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 9))
				seq := uint64(0)
				for range perWriter / 4 {
					n := 1 + rng.IntN(7)
					sizes := make([]int, n)
					payload := 0
					for i := range sizes {
						sizes[i] = 12 + rng.IntN(300)
						payload += sizes[i]
					}
					var res ring.Reservation
					for {
						var err error
						if res, err = r.Reserve(n, payload); err == nil {
							break
						}
						if !errors.Is(err, ring.ErrFull) {
							t.Errorf("writer %d: unexpected error: %v", w, err)
							return
						}
						r.Wake()
						runtime.Gosched()
					}
					if rng.IntN(10) == 0 {
						for i := range rng.IntN(n + 1) {
							stampedPayload(res.Frame(sizes[i]), w, 1<<40+seq) // never expected
						}
						res.Abandon()
						continue
					}
					for i := range n {
						stampedPayload(res.Frame(sizes[i]), w, seq+uint64(i))
					}
					res.Commit()
					seq += uint64(n)
				}
				committed[w] = seq
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		polled := make(chan int)
		go func() { // Stats, as the metrics read it while the ring runs
			n := 0
			defer func() { polled <- n }()
			for {
				select {
				case <-done:
					return
				default:
				}
				if st := r.Stats(); st.InUse < 0 || st.InUse > st.Size {
					t.Errorf("unexpected InUse %d in a ring of %d bytes (off-heap %v)", st.InUse, st.Size, offHeap)
					return
				}
				n++
			}
		}()

		var next [writers]uint64
		want := make([]byte, size)
		rng := rand.New(rand.NewPCG(3, 3))
		var last ring.Frame
		holding, finished := false, false
		for {
			f, ok := r.Next()
			if !ok {
				switch {
				case holding: // nothing new: release what we hold
					r.Release(last)
					holding = false
					continue
				case finished:
				default:
					select {
					case <-r.WaitFor(1+rng.IntN(4096), 1+rng.IntN(16)):
					case <-done:
						finished = true // one more pass: what is committed now is all
					}
					continue
				}
				break
			}
			p := f.Data
			w := int(binary.LittleEndian.Uint32(p))
			seq := binary.LittleEndian.Uint64(p[4:])
			if w >= writers || seq != next[w] {
				t.Fatalf("unexpected frame (off-heap %v): writer %d seq %d; want seq %d", offHeap, w, seq, next[w])
			}
			stampedPayload(want[:len(p)], w, seq)
			if string(want[:len(p)]) != string(p) {
				t.Fatalf("frame of writer %d seq %d corrupted (off-heap %v)", w, seq, offHeap)
			}
			next[w]++
			last, holding = f, true
			if rng.IntN(4) == 0 {
				r.Release(f)
				holding = false
			}
		}
		t.Logf("off-heap %v: %d Stats calls while the ring ran", offHeap, <-polled)
		if next != committed {
			t.Fatalf("unexpected frames (off-heap %v); got %v per writer; want %v", offHeap, next, committed)
		}
		st := r.Stats()
		if st.InUse != 0 || !r.ZeroBeyondHead() {
			t.Fatalf("unexpected ring after the run (off-heap %v): %+v, zero beyond head %v", offHeap, st, r.ZeroBeyondHead())
		}
		t.Logf("off-heap %v: %v frames per writer, %d refused reservations, %d restarts", offHeap, next, st.Refused, st.Restarts)
	}
}
