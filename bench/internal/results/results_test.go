package results

import (
	"math"
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
