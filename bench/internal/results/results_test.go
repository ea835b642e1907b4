package results

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSummarize(t *testing.T) {
	f := func(xs []float64, want Summary) {
		t.Helper()
		if got := Summarize(xs); got != want {
			t.Fatalf("unexpected summary of %v; got %+v; want %+v", xs, got, want)
		}
	}
	f(nil, Summary{})
	f([]float64{3}, Summary{N: 1, Median: 3, P95: 3, P99: 3, Min: 3, Max: 3})
	f([]float64{4, 1, 3, 2}, Summary{N: 4, Median: 2.5, P95: 4, P99: 4, Min: 1, Max: 4})
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100..1, unsorted
	}
	f(xs, Summary{N: 100, Median: 50.5, P95: 95, P99: 99, Min: 1, Max: 100})
	if q := Quantile(nil, 0.5); !math.IsNaN(q) {
		t.Fatalf("unexpected quantile of nothing; got %v; want NaN", q)
	}
}

// TestMedianInterval checks the order statistics chosen against the
// binomial tables (n = 30: the 10th and 21st values, 95.7%; n = 100: the
// 40th and 61st, 96.5%), a sample too small for 95% ([min, max] and its
// coverage), and that the interval holds the true median about as often
// as it says over many samples of a skewed distribution.
func TestMedianInterval(t *testing.T) {
	seq := func(n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(n - i) // n..1, unsorted
		}
		return xs
	}
	f := func(n int, lo, hi, conf float64) {
		t.Helper()
		iv := MedianInterval(seq(n))
		if iv.N != n || iv.Lo != lo || iv.Hi != hi || math.Abs(iv.Conf-conf) > 0.001 {
			t.Fatalf("unexpected interval for 1..%d; got %+v; want [%v, %v] at %.3f", n, iv, lo, hi, conf)
		}
	}
	f(30, 10, 21, 0.957)
	f(100, 40, 61, 0.965)
	f(5, 1, 5, 0.9375)
	if iv := MedianInterval(nil); iv != (Interval{}) {
		t.Fatalf("unexpected interval of nothing: %+v", iv)
	}

	// Exponential values, true median ln 2.
	rng := rand.New(rand.NewPCG(1, 2))
	const samples, n = 2000, 30
	hits := 0
	for range samples {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = rng.ExpFloat64()
		}
		if iv := MedianInterval(xs); iv.Lo <= math.Ln2 && math.Ln2 <= iv.Hi {
			hits++
		}
	}
	if got := float64(hits) / samples; got < 0.94 || got > 0.975 {
		t.Fatalf("unexpected coverage %.3f over %d samples; want about 0.957", got, samples)
	}
}

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cs.json")
	in := ColdStart{Machine: ThisMachine(), Runs: 3, Extensions: []ColdStartExt{{Name: "kte", FirstNextMs: Summarize([]float64{1, 2, 3})}}}
	if err := Write(path, in); err != nil {
		t.Fatal(err)
	}
	var out ColdStart
	if err := Read(path, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("unexpected round trip; got %+v; want %+v", out, in)
	}
	if in.Machine.CPUs == 0 || in.Machine.Go == "" {
		t.Fatalf("unexpected machine: %+v", in.Machine)
	}
}
