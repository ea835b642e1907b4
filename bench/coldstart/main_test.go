package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/harness"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/results"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// TestRun runs the whole harness with two runs of each extension, and the
// floor extension a second time through -also: the binaries build and
// start, every figure is measured, and the report is written.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts both extensions")
	}
	shutdownDeadline = 10 * time.Second // a loaded CI machine must not turn into a kill
	dir := t.TempDir()
	floor2, err := lambdasim.Build(context.Background(), lambdasim.FloorExtensionPackage, dir, "floor2")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cs.json")
	var out strings.Builder
	if err := run(2, path, []string{"floor2=" + floor2}, &out); err != nil {
		t.Fatal(err)
	}
	var r results.ColdStart
	if err := results.Read(path, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Extensions) != 4 || r.Extensions[0].Name != "kte" || r.Extensions[1].Name != "floor" ||
		r.Extensions[2].Name != "floor_with_deps" || r.Extensions[3].Name != "floor2" {
		t.Fatalf("unexpected extensions: %+v", r.Extensions)
	}
	k, f, d, f2 := r.Extensions[0], r.Extensions[1], r.Extensions[2], r.Extensions[3]
	for name, s := range map[string]results.Summary{
		"kte first next": k.FirstNextMs, "kte subscribed": k.SubscribedMs, "kte rss": k.PeakRSSMiB,
		"kte init_ms": k.LoggedInitMs, "floor first next": f.FirstNextMs, "floor rss": f.PeakRSSMiB,
		"floor2 first next": f2.FirstNextMs, "deps floor first next": d.FirstNextMs, "deps floor rss": d.PeakRSSMiB,
	} {
		if s.N != 2 || s.Min <= 0 {
			t.Fatalf("unexpected %s: %+v", name, s)
		}
	}
	if f.SubscribedMs.N != 0 || f.LoggedInitMs.N != 0 {
		t.Fatalf("unexpected floor figures: %+v", f)
	}
	if k.SubscribedMs.Max > k.FirstNextMs.Max {
		t.Fatalf("unexpected order: subscribed %v after first next %v", k.SubscribedMs, k.FirstNextMs)
	}
	for _, c := range []struct {
		name string
		iv   results.Interval
		a, b results.Summary
	}{
		{"kte over the floor", k.OverFloorMs, k.FirstNextMs, f.FirstNextMs},
		{"deps floor over the floor", d.OverFloorMs, d.FirstNextMs, f.FirstNextMs},
		{"kte over the deps floor", k.OverDepsFloorMs, k.FirstNextMs, d.FirstNextMs},
		{"floor2 over the floor", f2.OverFloorMs, f2.FirstNextMs, f.FirstNextMs},
		{"floor2 over kte", f2.OverKTEMs, f2.FirstNextMs, k.FirstNextMs},
	} {
		// Two rounds: the interval is the two differences, which lie
		// within the samples' extremes.
		const eps = 1e-6 // ms; the summaries are in float ms, the differences from durations
		if c.iv.N != 2 || c.iv.Lo > c.iv.Hi || c.iv.Lo < c.a.Min-c.b.Max-eps || c.iv.Hi > c.a.Max-c.b.Min+eps {
			t.Fatalf("unexpected %s: %+v (from %+v and %+v)", c.name, c.iv, c.a, c.b)
		}
	}
	if f.OverFloorMs.N != 0 || k.OverKTEMs.N != 0 || d.OverKTEMs.N != 0 || f2.OverDepsFloorMs.N != 0 {
		t.Fatalf("unexpected paired figures: floor %+v, kte %+v, deps floor %+v, floor2 %+v", f.OverFloorMs, k.OverKTEMs, d.OverKTEMs, f2.OverDepsFloorMs)
	}
	if r.RingBytes != 8<<20 {
		t.Fatalf("unexpected ring; got %d; want 8 MiB", r.RingBytes)
	}
	if !strings.Contains(out.String(), "process start → first /event/next") || !strings.Contains(out.String(), "Also measured, floor2:") ||
		!strings.Contains(out.String(), "paired by round") || !strings.Contains(out.String(), "of which KTE's dependencies, imported by the floor") {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
}

// TestDepsFloorImportsKTEDependencies: the floor built with
// lambdasim.FloorDepsTag links the same third-party packages as KTE, so
// that it stands for KTE's dependencies, all of them and nothing else.
func TestDepsFloorImportsKTEDependencies(t *testing.T) {
	thirdParty := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, args...)...)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		var pkgs []string
		for _, p := range strings.Fields(string(out)) {
			if !strings.HasPrefix(p, harness.Module) {
				pkgs = append(pkgs, p)
			}
		}
		slices.Sort(pkgs)
		return pkgs
	}
	kte := thirdParty(harness.Module)
	floor := thirdParty("-tags", lambdasim.FloorDepsTag, lambdasim.FloorExtensionPackage)
	if len(kte) == 0 || !slices.Equal(kte, floor) {
		t.Fatalf("unexpected third-party packages; the floor with KTE's dependencies has %d, KTE %d:\nonly the floor: %v\nonly KTE: %v",
			len(floor), len(kte), minus(floor, kte), minus(kte, floor))
	}
	if plain := thirdParty(lambdasim.FloorExtensionPackage); len(plain) != 0 {
		t.Fatalf("unexpected third-party packages in the plain floor: %v", plain)
	}
}

// minus is what of a (sorted) is not in b (sorted).
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok {
			out = append(out, s)
		}
	}
	return out
}
