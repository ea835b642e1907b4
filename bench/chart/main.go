// Command chart turns the bench outputs into the committed results: an SVG
// chart of the ingest benchmarks (throughput, CPU and allocations per event
// against the body, both implementations) and a Markdown report with every
// table (ingest benchmarks with KTE/baseline ratios, cold start, load, load
// with large events, layer sizes). Inputs that are not given are left out of
// the report.
//
//	go run ./bench/chart -bench bench/results/latest.txt \
//	    -coldstart bench/results/coldstart.json -load bench/results/load.json \
//	    -load-large bench/results/load-large.json \
//	    -layers build/kinesis-telemetry-extension-amd64.zip,build/kinesis-telemetry-extension-arm64.zip \
//	    -out bench/results
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/results"
)

func main() {
	var o options
	flag.StringVar(&o.bench, "bench", "", "`go test -bench` output holding the ingest benchmarks")
	flag.StringVar(&o.coldstart, "coldstart", "", "JSON written by bench/coldstart")
	flag.StringVar(&o.load, "load", "", "JSON written by bench/load")
	flag.StringVar(&o.loadLarge, "load-large", "", "JSON written by bench/load with large log lines (-lines 20000)")
	flag.StringVar(&o.layers, "layers", "", "comma list of layer zips whose sizes to report")
	flag.StringVar(&o.note, "note", "", "conditions of the run, printed under the title")
	flag.StringVar(&o.out, "out", "bench/results", "folder for ingest.svg and README.md")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

// bodyCaption says what the x axis shows (see ingest.Bodies).
const bodyCaption = "x: Telemetry API body per POST: events_N = N events of a busy function's mix (~370 B each); 256KiB, 1MiB = full bodies of ~1 KiB log lines. Log scales."

type options struct {
	bench, coldstart, load, loadLarge, layers, note, out string
}

func run(o options) error {
	var r report
	r.note = o.note
	if o.bench != "" {
		f, err := os.Open(o.bench)
		if err != nil {
			return fmt.Errorf("cannot open benchmark output: %w", err)
		}
		r.bench, err = parseBench(f)
		f.Close()
		if err != nil {
			return err
		}
		if len(r.bench.values) == 0 {
			return fmt.Errorf("no ingest benchmarks in %s", o.bench)
		}
		var svg bytes.Buffer
		if err := writeSVG(&svg, "KTE vs plain baseline: ingest path, medians", bodyCaption, r.bench.bodies, r.panels()); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "ingest.svg"), svg.Bytes(), 0o644); err != nil {
			return fmt.Errorf("cannot write the chart: %w", err)
		}
		r.chart = "ingest.svg"
	}
	if o.coldstart != "" {
		r.coldstart = new(results.ColdStart)
		if err := results.Read(o.coldstart, r.coldstart); err != nil {
			return err
		}
	}
	if o.load != "" {
		r.load = new(results.Load)
		if err := results.Read(o.load, r.load); err != nil {
			return err
		}
	}
	if o.loadLarge != "" {
		r.loadLarge = new(results.Load)
		if err := results.Read(o.loadLarge, r.loadLarge); err != nil {
			return err
		}
	}
	for p := range strings.SplitSeq(o.layers, ",") {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("cannot size layer: %w", err)
		}
		r.layers = append(r.layers, layer{name: filepath.Base(p), bytes: st.Size()})
	}
	if r.bench == nil && r.coldstart == nil && r.load == nil && r.loadLarge == nil && r.layers == nil {
		return errors.New("nothing to report: give -bench, -coldstart, -load, -load-large or -layers")
	}
	var md bytes.Buffer
	r.write(&md)
	if err := os.WriteFile(filepath.Join(o.out, "README.md"), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	return nil
}
