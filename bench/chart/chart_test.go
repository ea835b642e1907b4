package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/results"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/kte-dev/kinesis-telemetry-extension/ring
cpu: AMD EPYC
BenchmarkWrite/writers=1/frame=100-2   	1000	  50 ns/op	2000 MB/s	0 B/op	0 allocs/op
pkg: github.com/kte-dev/kinesis-telemetry-extension/bench/ingest
BenchmarkEndToEnd/body=events_1/impl=kte-2         	   59448	     22469 ns/op	  10.90 MB/s	         4.6 allocs/event	       262.4 cpu-ms/10k-events	     44506 events/s	    2533 B/op	       4 allocs/op
BenchmarkEndToEnd/body=events_1/impl=kte-2         	   59448	     22469 ns/op	  10.90 MB/s	         4.4 allocs/event	       250.0 cpu-ms/10k-events	     40000 events/s	    2533 B/op	       4 allocs/op
BenchmarkEndToEnd/body=1MiB/impl=kte-2             	     349	   3461021 ns/op	 302.97 MB/s	         4.611 allocs/event	        40 cpu-ms/10k-events	    300000 events/s	10267483 B/op	    4717 allocs/op
BenchmarkEndToEnd/body=events_1/impl=baseline-2    	   44676	     26106 ns/op	   9.38 MB/s	        32.58 allocs/event	       270.1 cpu-ms/10k-events	     38000 events/s	    5304 B/op	      32 allocs/op
BenchmarkEndToEnd/body=1MiB/impl=baseline-2        	     140	   9485351 ns/op	 110.55 MB/s	         5.714 allocs/event	       120.0 cpu-ms/10k-events	    100000 events/s	15130145 B/op	    5845 allocs/op
BenchmarkEndToEnd/body=events_1/impl=floor-2       	   60000	     20000 ns/op	  12.00 MB/s	         0.0001 allocs/event	       225.0 cpu-ms/10k-events	     50000 events/s	       0 B/op	       0 allocs/op
BenchmarkInProcess/body=events_1/impl=kte-2        	 5797850	       216.3 ns/op	1132.67 MB/s	         0 allocs/event	         2.762 cpu-ms/10k-events	   4623153 events/s	       0 B/op	       0 allocs/op
BenchmarkInProcess/body=events_1/impl=baseline-2   	  655430	      1914 ns/op	 128.02 MB/s	         6.014 allocs/event	        24.20 cpu-ms/10k-events	    522531 events/s	     521 B/op	       6 allocs/op
--- FAIL: BenchmarkEndToEnd/body=256KiB/impl=baseline-2
BenchmarkEndToEnd/body=256KiB/impl=baseline-2   	SDK 2026/11/27 WARN something
PASS
`

func TestParseBench(t *testing.T) {
	d, err := parseBench(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	f := func(k key, unit string, want float64, wantOK bool) {
		t.Helper()
		got, ok := d.median(k, unit)
		if ok != wantOK || (ok && math.Abs(got-want) > 1e-9) {
			t.Fatalf("unexpected median of %v %s; got %v, %v; want %v, %v", k, unit, got, ok, want, wantOK)
		}
	}
	f(key{"EndToEnd", "kte", "events_1"}, "events/s", 42253, true) // the mean of the two runs
	f(key{"EndToEnd", "kte", "events_1"}, "allocs/event", 4.5, true)
	f(key{"EndToEnd", "baseline", "1MiB"}, "cpu-ms/10k-events", 120, true)
	f(key{"InProcess", "kte", "events_1"}, "allocs/event", 0, true)
	f(key{"EndToEnd", "baseline", "256KiB"}, "events/s", 0, false) // failed: no figures
	f(key{"Write", "", ""}, "ns/op", 0, false)                     // not an ingest benchmark

	if got, want := strings.Join(d.bodies, ","), "events_1,1MiB"; got != want {
		t.Fatalf("unexpected bodies; got %s; want %s", got, want)
	}
	if got, want := strings.Join(d.families(), ","), "EndToEnd,InProcess"; got != want {
		t.Fatalf("unexpected families; got %s; want %s", got, want)
	}
	if d.header["cpu"] != "AMD EPYC" || d.header["goos"] != "linux" {
		t.Fatalf("unexpected header: %v", d.header)
	}
	if n := d.runs(key{"EndToEnd", "kte", "events_1"}); n != 2 {
		t.Fatalf("unexpected runs; got %d; want 2", n)
	}
}

func TestParseName(t *testing.T) {
	f := func(name string, want key, wantOK bool) {
		t.Helper()
		got, ok := parseName(name)
		if got != want || ok != wantOK {
			t.Fatalf("unexpected key of %q; got %v, %v; want %v, %v", name, got, ok, want, wantOK)
		}
	}
	f("BenchmarkEndToEnd/body=events_1/impl=kte-2", key{"EndToEnd", "kte", "events_1"}, true)
	f("BenchmarkEndToEnd/impl=kte/body=1MiB", key{"EndToEnd", "kte", "1MiB"}, true)
	f("BenchmarkEndToEnd/impl=kte-16", key{"EndToEnd", "kte", ""}, false)
	f("BenchmarkWrite/writers=1/frame=100-2", key{}, false)
	f("BenchmarkX/impl=a/extra/body=b", key{}, false)
}

func TestChartAndReport(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "latest.txt")
	if err := os.WriteFile(bench, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := results.ColdStart{Runs: 3, RingBytes: 8 << 20, Extensions: []results.ColdStartExt{
		{Name: "kte", FirstNextMs: results.Summarize([]float64{5, 6, 7}), PeakRSSMiB: results.Summarize([]float64{14}),
			OverFloorMs: results.MedianInterval([]float64{3, 3, 3})},
		{Name: "floor", FirstNextMs: results.Summarize([]float64{2, 3, 4}), PeakRSSMiB: results.Summarize([]float64{6})},
		{Name: "floor_with_deps", FirstNextMs: results.Summarize([]float64{4, 4.5, 5}), PeakRSSMiB: results.Summarize([]float64{9}),
			OverFloorMs: results.MedianInterval([]float64{1.5, 1.5, 1.5})},
	}}
	cs.Extensions[0].OverDepsFloorMs = results.MedianInterval([]float64{1.5, 1.5, 1.5})
	ld := results.Load{Runs: []results.LoadRate{{Rate: 1000, Invokes: 10, Generated: 1002, Acked: 1000, Received: 1000, PeakRSSMiB: 21, MedianRSSMiB: 19.5,
		Pending: 2, PendingTypes: map[string]int{"extension": 2}, Summary: "KTE_SUMMARY reason=spindown"}}}
	if err := results.Write(filepath.Join(dir, "cs.json"), cs); err != nil {
		t.Fatal(err)
	}
	if err := results.Write(filepath.Join(dir, "load.json"), ld); err != nil {
		t.Fatal(err)
	}
	zip := filepath.Join(dir, "layer.zip")
	if err := os.WriteFile(zip, make([]byte, 1234), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(options{bench: bench, coldstart: filepath.Join(dir, "cs.json"), load: filepath.Join(dir, "load.json"),
		layers: zip, note: "Conditions: test.", out: dir})
	if err != nil {
		t.Fatal(err)
	}

	svg, err := os.ReadFile(filepath.Join(dir, "ingest.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	polylines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("unexpected invalid SVG: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	// Three panels; EndToEnd has two bodies for both implementations
	// (lines), InProcess one body (points only).
	if polylines != 3*2 {
		t.Fatalf("unexpected polylines; got %d; want 6", polylines)
	}

	md, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Conditions: test.",
		"![ingest chart](ingest.svg)",
		"| events_1 | 42,253 | 38,000 | 1.11× | 256 | 270 | 1.05× | 4.50 | 32.6 | 10.9 | 9.38 |",
		"| 1MiB | 300,000 | 100,000 | 3.00× | 40.0 | 120 | 3.00× | 4.61 | 5.71 | 303 | 111 |",
		"| events_1 | 4,623,153 | 522,531 | 8.85× | 2.76 | 24.2 | 8.76× | 0 | 6.01 | 1,133 | 128 |",
		"| body | CPU ms/10k events floor | ceiling × (baseline ÷ floor) | KTE's × | CPU ms/10k events KTE − floor | baseline − floor |",
		"| events_1 | 225 | 1.20× | 1.05× | 31.2 | 45.1 |",
		"| process start → first `/event/next` | 6.00 ms | 7.00 ms | 3.00 ms | 4.00 ms | +3.00 ms |",
		"| peak RSS (VmHWM) | 14.00 MiB | 14.00 MiB | 6.00 MiB | 6.00 MiB | +8.00 MiB |",
		"median +3.00 ms over 3 rounds; a 75.0% confidence interval for it, distribution-free (binomial order statistics), is +3.00 to +3.00 ms.",
		"reaches its first `/event/next` in 4.50 ms (peak RSS 9.00 MiB): +1.50 ms",
		"KTE over that floor, its own share: +1.50 ms",
		"| 1000 | 10 |",
		"| 21.0 MiB | 19.5 MiB |",
		"median RSS: the middle of its resident set sampled every 20 ms",
		"- 1000/s: 2 pending (extension: 2); `KTE_SUMMARY reason=spindown`",
		"| layer.zip | 1234 | 0.00 |",
	} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("unexpected report: no %q in\n%s", want, md)
		}
	}
}

func TestNum(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		if got := num(v); got != want {
			t.Fatalf("unexpected num(%v); got %q; want %q", v, got, want)
		}
	}
	f(math.NaN(), "–")
	f(0, "0")
	f(0.01, "0.01")
	f(0.012345, "0.0123")
	f(4.603, "4.60")
	f(26.57, "26.6")
	f(262.4, "262")
	f(44506, "44,506")
	f(1907368, "1,907,368")
}

func TestLoadSections(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "load.json")
	large := filepath.Join(dir, "load-large.json")
	err := results.Write(small, results.Load{Runs: []results.LoadRate{{Rate: 1000, Seconds: 10, InvokeMs: 100,
		LineBytes: []int{150, 250}, RingBytes: 8 << 20, Generated: 1002, Acked: 1000, Received: 1000, Records: 1000, Calls: 10,
		PeakRSSMiB: 16.2, MedianRSSMiB: 15.9, Pending: 2, Summary: "KTE_SUMMARY small"}}})
	if err != nil {
		t.Fatal(err)
	}
	err = results.Write(large, results.Load{Runs: []results.LoadRate{
		{Rate: 1000, Seconds: 10, InvokeMs: 100, LineBytes: []int{20000}, RingBytes: 8 << 20, Invokes: 99, Generated: 9902,
			Acked: 9900, Received: 9900, Records: 9900, Calls: 99, PeakRSSMiB: 21.1, MedianRSSMiB: 19.8, Pending: 2,
			PendingTypes: map[string]int{"extension": 2}, Summary: "KTE_SUMMARY large 1000"},
		{Rate: 2500, Seconds: 10, InvokeMs: 100, LineBytes: []int{20000}, RingBytes: 8 << 20, Invokes: 98, Generated: 24502,
			Acked: 24500, Received: 24500, Records: 24500, Calls: 175, PeakRSSMiB: 26.4, MedianRSSMiB: 24.3, Pending: 2,
			Summary: "KTE_SUMMARY large 2500"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const (
		heading      = "\n## Sustained load\n"
		largeHeading = "\n## Sustained load, large events\n"
		columns      = "Peak RSS: the process's high-water mark (VmHWM)"
	)
	report := func(o options) string {
		t.Helper()
		o.out = dir
		if err := run(o); err != nil {
			t.Fatal(err)
		}
		md, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		return string(md)
	}
	contains := func(md string, want ...string) {
		t.Helper()
		for _, s := range want {
			if !strings.Contains(md, s) {
				t.Fatalf("unexpected report: no %q in\n%s", s, md)
			}
		}
	}

	// Without -load-large: the sustained-load section only.
	md := report(options{load: small})
	contains(md, heading, "`go run ./bench/load`: the release binary", "function log lines of 150, 250 bytes in turn",
		columns, "- 1000/s: 2 pending (); `KTE_SUMMARY small`")
	if strings.Contains(md, "large events") || strings.Contains(md, "-lines 20000") {
		t.Fatalf("unexpected large-events section without -load-large:\n%s", md)
	}

	// With both: the large-events section right after the sustained-load
	// one, described from its own data, with the same table.
	md = report(options{load: small, loadLarge: large, layers: func() string {
		zip := filepath.Join(dir, "layer.zip")
		if err := os.WriteFile(zip, make([]byte, 10), 0o644); err != nil {
			t.Fatal(err)
		}
		return zip
	}()})
	i, j, k := strings.Index(md, heading), strings.Index(md, largeHeading), strings.Index(md, "\n## Layer sizes\n")
	if i < 0 || j < i || k < j {
		t.Fatalf("unexpected section order; sustained load at %d, large events at %d, layer sizes at %d in\n%s", i, j, k, md)
	}
	largePart := md[j:k]
	contains(largePart,
		"`go run ./bench/load -rates 1000,2500 -lines 20000`: the release binary",
		"invocations of 100 ms back to back for about 10 s per rate, function log lines of 20000 bytes each,",
		"Records per PutRecords request, on average: 100 at 1000/s (at least 1.9 MiB of log lines), 140 at 2500/s (at least 2.7 MiB of log lines).",
		"| log lines/s | invokes |",
		"| 1000 | 99 |", "| 21.1 MiB | 19.8 MiB |", "| 9902 | 9900 | 9900 | 0 | 0 | 0 | 99 | 0 |",
		"| 2500 | 98 |", "| 26.4 MiB | 24.3 MiB |", "| 24502 | 24500 | 24500 | 0 | 0 | 0 | 175 | 0 |",
		"Columns as in the sustained-load table above.",
		"- 1000/s: 2 pending (extension: 2); `KTE_SUMMARY large 1000`",
		"- 2500/s: 2 pending (); `KTE_SUMMARY large 2500`")
	if strings.Contains(largePart, columns) || strings.Contains(largePart, "KTE_SUMMARY small") {
		t.Fatalf("unexpected large-events section:\n%s", largePart)
	}
	if strings.Contains(md[i:j], "KTE_SUMMARY large") {
		t.Fatalf("unexpected large-events runs in the sustained-load section:\n%s", md[i:j])
	}

	// -load-large alone: the section says what the columns mean itself.
	md = report(options{loadLarge: large})
	contains(md, largeHeading, columns, "- 2500/s: 2 pending (); `KTE_SUMMARY large 2500`")
	if strings.Contains(md, heading) || strings.Contains(md, "Columns as in") {
		t.Fatalf("unexpected report with -load-large alone:\n%s", md)
	}
}

func TestApart(t *testing.T) {
	for gap, want := range map[float64]string{0: "back to back", 300: "300 ms apart", 12.4: "12 ms apart"} {
		if got := apart(gap); got != want {
			t.Errorf("apart(%v): unexpected %q; want %q", gap, got, want)
		}
	}
}
