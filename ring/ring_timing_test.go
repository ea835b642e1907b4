package ring_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

// Sink keeps the reader's work observable so it is not optimised away.
var Sink atomic.Uint64

var benchSizes = []int{100, 1 << 10, 16 << 10, 64 << 10}

// BenchmarkWrite measures one frame's trip from a writer's buffer to the
// reader: reserve, copy, commit, then read and release on the reader's
// goroutine. impl=chan is the plain alternative: copy into a new slice and
// send it on a buffered channel (a copy is needed in both: the HTTP body
// is reused after the handler returns).
func BenchmarkWrite(b *testing.B) {
	for _, size := range benchSizes {
		for _, writers := range []int{1, 8} {
			name := fmt.Sprintf("frame=%s/writers=%d", sizeName(size), writers)
			b.Run("impl=ring/"+name, func(b *testing.B) { benchRing(b, size, writers) })
			b.Run("impl=chan/"+name, func(b *testing.B) { benchChan(b, size, writers) })
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// parallel runs fn b.N times over the given number of writer goroutines.
func parallel(b *testing.B, writers int, fn func()) {
	if writers == 1 {
		for range b.N {
			fn()
		}
		return
	}
	b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			fn()
		}
	})
}

func benchRing(b *testing.B, size, writers int) {
	r, err := ring.New(8 << 20)
	if err != nil {
		b.Fatal(err)
	}
	src := make([]byte, size)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the single reader
		defer wg.Done()
		var sum uint64
		for {
			var last ring.Frame
			n := 0
			for f, ok := r.Next(); ok; f, ok = r.Next() {
				sum += uint64(len(f.Data))
				last, n = f, n+1
			}
			if n > 0 {
				r.Release(last)
				continue
			}
			select {
			case <-r.Wait():
			case <-stop:
				Sink.Add(sum)
				return
			}
		}
	}()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	parallel(b, writers, func() {
		for {
			w, err := r.Reserve(1, size)
			if err == nil {
				w.Append(src)
				w.Commit()
				return
			}
			if !errors.Is(err, ring.ErrFull) {
				panic(err)
			}
			runtime.Gosched()
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
}

func benchChan(b *testing.B, size, writers int) {
	ch := make(chan []byte, 1024)
	src := make([]byte, size)
	done := make(chan struct{})
	go func() {
		var sum uint64
		for p := range ch {
			sum += uint64(len(p))
		}
		Sink.Add(sum)
		close(done)
	}()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	parallel(b, writers, func() {
		p := make([]byte, len(src))
		copy(p, src)
		ch <- p
	})
	b.StopTimer()
	close(ch)
	<-done
}

// BenchmarkReservePost measures a whole telemetry POST of 100 events of
// 300 bytes reserved as one block (the listener's pattern).
func BenchmarkReservePost(b *testing.B) {
	r, err := ring.New(8 << 20)
	if err != nil {
		b.Fatal(err)
	}
	ev := make([]byte, 300)
	b.SetBytes(100 * 300)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w, err := r.Reserve(100, 100*300)
		if err != nil {
			b.Fatal(err)
		}
		for range 100 {
			w.Append(ev)
		}
		w.Commit()
		var last ring.Frame
		for f, ok := r.Next(); ok; f, ok = r.Next() {
			last = f
		}
		r.Release(last)
	}
}
