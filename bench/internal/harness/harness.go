// Package harness is what the cold-start and load harnesses share: building
// the extensions, the environment that points KTE at a fake Kinesis
// endpoint, and capturing the extensions' output.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/fakekinesis"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// Module is the extension's main package.
const Module = "github.com/kte-dev/kinesis-telemetry-extension"

// Names of the built executables (an extension's name is its file name).
const (
	KTEName       = "kinesis-telemetry-extension"
	FloorName     = "floor-extension"
	DepsFloorName = "floor-deps-extension"
)

// Build compiles into dir, with the Makefile's release flags
// (lambdasim.Build), KTE, the floor extension, and the floor with KTE's
// dependencies imported (lambdasim.FloorDepsTag), and returns their paths.
func Build(ctx context.Context, dir string) (kte, floor, depsFloor string, err error) {
	kte, err = lambdasim.Build(ctx, Module, dir, KTEName)
	if err != nil {
		return "", "", "", err
	}
	floor, err = lambdasim.Build(ctx, lambdasim.FloorExtensionPackage, dir, FloorName)
	if err != nil {
		return "", "", "", err
	}
	depsFloor, err = lambdasim.Build(ctx, lambdasim.FloorExtensionPackage, dir, DepsFloorName, lambdasim.FloorDepsTag)
	if err != nil {
		return "", "", "", err
	}
	return kte, floor, depsFloor, nil
}

// KTEEnv returns the environment of a KTE run against fake: the endpoint and
// static credentials, the stream, a free listener port, then extra.
func KTEEnv(fake *fakekinesis.Server, port int, extra ...string) []string {
	env := append(fake.Env(), "KTE_STREAM=bench", "KTE_LISTEN_PORT="+strconv.Itoa(port),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	return append(env, extra...)
}

// Output collects the lines lambdasim forwards from the extensions
// (Config.Output). Safe for concurrent use.
type Output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
}

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for {
		i := bytes.IndexByte(o.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		o.lines = append(o.lines, string(o.buf.Next(i + 1)[:i]))
	}
	return len(p), nil
}

// Lines returns the complete lines so far.
func (o *Output) Lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.lines...)
}

// RSS is a resident set sample of a process, in bytes: the current total
// and its anonymous and file-backed parts, and the high-water mark.
// PeakRSS also sets Median: the median total over its samples, the
// resident set most of the time, where HWM includes the briefest peak.
type RSS struct {
	Total, Anon, File int64
	HWM               int64
	Median            int64
}

// ReadRSS reads the resident set of process pid from /proc.
func ReadRSS(pid int) (RSS, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return RSS{}, fmt.Errorf("cannot read the resident set: %w", err)
	}
	var r RSS
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			r.Total = n << 10
		case "RssAnon":
			r.Anon = n << 10
		case "RssFile":
			r.File = n << 10
		case "VmHWM":
			r.HWM = n << 10
		}
	}
	return r, nil
}

// PeakRSS samples pid's resident set every interval until stop is closed or
// the process is gone, and returns the sample with the largest total, with
// HWM set to the last high-water mark read (VmHWM: the peak over the
// process's life up to that read, between samples included) and Median to
// the median of the sampled totals.
//
// The high-water mark is read from /proc rather than taken from wait4's
// ru_maxrss: for a child started with vfork (as os/exec does), Linux seeds
// ru_maxrss with the parent's resident set at exec, so a harness holding
// hundreds of MiB would report them as the extension's.
func PeakRSS(pid int, interval time.Duration, stop <-chan struct{}) RSS {
	var peak RSS
	var hwm int64
	var totals []int64
	done := func() RSS {
		peak.HWM = hwm
		if len(totals) > 0 {
			slices.Sort(totals)
			peak.Median = totals[len(totals)/2]
		}
		return peak
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := ReadRSS(pid)
		if err != nil {
			return done()
		}
		hwm = max(hwm, r.HWM)
		totals = append(totals, r.Total)
		if r.Total > peak.Total {
			peak = r
		}
		select {
		case <-stop:
			return done()
		case <-t.C:
		}
	}
}
