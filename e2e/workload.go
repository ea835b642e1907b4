package e2e

import (
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// LineSizes are the function log event sizes the workloads cycle through:
// from a short line (about 100 bytes; the simulator's shortest is about 150)
// to a 20 KiB stack trace or payload dump.
var LineSizes = []int{100, 180, 250, 400, 700, 1200, 3000, 8000, 20 << 10}

// Workload returns n invocations of a realistic mix: text and JSON log
// formats alternating, lines per invocation varying between lines/2 and
// 3*lines/2, sizes cycling through LineSizes from a different start in each
// invocation, and each big size logged once, as the last line,, in invocations
// spread over the run (a large payload logged now and then). duration is
// each function's run time.
func Workload(n, lines int, duration time.Duration, big ...int) []lambdasim.Invocation {
	out := make([]lambdasim.Invocation, n)
	for i := range out {
		sizes := make([]int, 0, len(LineSizes)+1)
		for j := range LineSizes {
			sizes = append(sizes, LineSizes[(i+j)%len(LineSizes)])
		}
		k := lines/2 + (i*7)%(lines+1)
		out[i] = lambdasim.Invocation{
			Duration:      duration,
			LogLines:      max(k, 1),
			LogFormat:     lambdasim.LogFormat(i % 2),
			LineSizes:     sizes,
			ResponseBytes: 64 + 37*i,
		}
	}
	for j, b := range big {
		i := (j + 1) * n / (len(big) + 1)
		if i >= n {
			i = n - 1
		}
		// Sizes are cycled, so the usual sizes are repeated to cover the
		// invocation's lines and the big line comes once, last.
		inv := &out[i]
		base := inv.LineSizes
		var sizes []int
		for len(sizes) < inv.LogLines {
			sizes = append(sizes, base...)
		}
		inv.LineSizes = append(sizes, b)
		inv.LogLines = len(inv.LineSizes)
	}
	return out
}

// Lines counts the function log lines of a workload.
func Lines(w []lambdasim.Invocation) int {
	n := 0
	for _, inv := range w {
		n += inv.LogLines
	}
	return n
}
