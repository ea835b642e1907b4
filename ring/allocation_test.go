//go:build !race

package ring_test

import (
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

func TestAllocsReserveCopyCommitReadRelease(t *testing.T) {
	r, err := ring.New(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	a, b := make([]byte, 300), make([]byte, 1000)
	f := func(name string, fn func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Fatalf("unexpected allocations in %s; got %v; want 0", name, n)
		}
	}
	f("reserve+copy+commit, next, release", func() {
		w, err := r.Reserve(2, len(a)+len(b))
		if err != nil {
			panic(err)
		}
		w.Append(a)
		copy(w.Frame(len(b)), b)
		w.Commit()
		ringtest.ReleaseAll(r)
	})
	f("wait+wake", func() {
		r.Wake()
		<-r.Wait() // empty: returns the wake channel, ready after Wake
	})
	f("stats", func() { _ = r.Stats() })
}
