package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/results"
)

// key names one measured configuration: a benchmark family, an
// implementation and a body (sub-benchmark keys impl= and body=).
type key struct {
	family, impl, body string
}

// benchData holds the values of every metric of every configuration, across
// -count runs, and the header lines of the benchmark output.
type benchData struct {
	values map[key]map[string][]float64 // unit -> one value per run
	bodies []string                     // in first-seen order
	header map[string]string            // goos, goarch, cpu, pkg
}

// parseBench reads `go test -bench` output and keeps the lines of the
// ingest benchmarks (those with impl= and body= keys); other benchmarks and
// lines are skipped.
func parseBench(r io.Reader) (*benchData, error) {
	d := &benchData{values: map[key]map[string][]float64{}, header: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, "Benchmark") && !strings.Contains(k, " ") {
			d.header[k] = strings.TrimSpace(v)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a failed or interrupted line
		}
		k, ok := parseName(f[0])
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		m := d.values[k]
		if m == nil {
			m = map[string][]float64{}
			d.values[k] = m
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("cannot parse %q in %q: %w", f[i], line, err)
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
		if !slices.Contains(d.bodies, k.body) {
			d.bodies = append(d.bodies, k.body)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read benchmark output: %w", err)
	}
	return d, nil
}

// parseName splits BenchmarkFamily/impl=x/body=y-N into its key.
func parseName(name string) (key, bool) {
	name = strings.TrimPrefix(name, "Benchmark")
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i] // the GOMAXPROCS suffix
		}
	}
	parts := strings.Split(name, "/")
	k := key{family: parts[0]}
	for _, p := range parts[1:] {
		n, v, ok := strings.Cut(p, "=")
		if !ok {
			return key{}, false
		}
		switch n {
		case "impl":
			k.impl = v
		case "body":
			k.body = v
		default:
			return key{}, false
		}
	}
	return k, k.impl != "" && k.body != ""
}

// median returns the median of a metric, and whether it was measured.
func (d *benchData) median(k key, unit string) (float64, bool) {
	vs := d.values[k][unit]
	if len(vs) == 0 {
		return 0, false
	}
	return results.Summarize(vs).Median, true
}

// runs returns how many runs a configuration has.
func (d *benchData) runs(k key) int { return len(d.values[k]["ns/op"]) }

// families returns the benchmark families, in a fixed order: EndToEnd
// first, then the others by name.
func (d *benchData) families() []string {
	var fs []string
	for k := range d.values {
		if !slices.Contains(fs, k.family) {
			fs = append(fs, k.family)
		}
	}
	slices.SortFunc(fs, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "EndToEnd":
			return -1
		case b == "EndToEnd":
			return 1
		}
		return strings.Compare(a, b)
	})
	return fs
}
