package lambdasim

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// selfCPU returns the CPU time of this process (the simulator).
func selfCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchSim(b *testing.B, cfg Config) *Sim {
	b.Helper()
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Init(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkInvokeCycle measures the simulator's own cost of one invocation
// with the floor extension and no telemetry: thaw (SIGCONT), INVOKE, the
// extension's /event/next, report, freeze (SIGSTOP). ns/op is the whole
// cycle; overhead-ns is runtimeDone to the extension's /event/next.
func BenchmarkInvokeCycle(b *testing.B) {
	for _, freeze := range []bool{true, false} {
		b.Run(fmt.Sprintf("freeze=%v", freeze), func(b *testing.B) {
			s := benchSim(b, Config{Extensions: []Extension{{Path: floorextBin}}, NoFreeze: !freeze})
			ctx := context.Background()
			b.ReportAllocs()
			var overhead time.Duration
			for b.Loop() {
				res, err := s.Invoke(ctx, Invocation{})
				if err != nil {
					b.Fatal(err)
				}
				overhead += res.Overhead
			}
			b.ReportMetric(float64(overhead.Nanoseconds())/float64(b.N), "overhead-ns")
		})
	}
}

// BenchmarkTelemetryRate drives a sustained function log rate at the test
// extension (100 ms invocations back to back) and reports the simulator's
// CPU per event and what was delivered. Nothing may be lost.
func BenchmarkTelemetryRate(b *testing.B) {
	for _, rate := range []int{1_000, 10_000, 50_000} {
		b.Run(fmt.Sprintf("events_per_s=%d", rate), func(b *testing.B) {
			x := Extension{Path: testextBin, Env: []string{
				"TESTEXT_TYPES=function", "TESTEXT_BUFFERING=10000,1048576,25", "TESTEXT_SHUTDOWN_WAIT=300ms",
			}}
			s := benchSim(b, Config{Extensions: []Extension{x}, NoRetain: true})
			ctx := context.Background()
			const dur = 100 * time.Millisecond
			lines := rate / 10
			b.SetBytes(int64(lines) * 200)
			cpu0, t0 := selfCPU(b), time.Now()
			for b.Loop() {
				if _, err := s.Invoke(ctx, Invocation{Duration: dur, LogLines: lines, LineSizes: []int{200}}); err != nil {
					b.Fatal(err)
				}
			}
			cpu, wall := selfCPU(b)-cpu0, time.Since(t0)
			b.StopTimer()
			if _, err := s.Shutdown(ctx, "", 0); err != nil {
				b.Fatal(err)
			}
			st, _ := s.Subscriber("testext")
			if n := len(st.Pending) + len(st.Dropped); n != 0 {
				b.Fatalf("unexpected loss: %d pending, %d dropped", len(st.Pending), len(st.Dropped))
			}
			events := b.N * lines
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "sim-cpu-ns/event")
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "sim-cpu-%")
			b.ReportMetric(float64(len(st.Acked))/wall.Seconds(), "delivered-events/s")
			b.ReportMetric(float64(st.Posts)/float64(b.N), "posts/invoke")
		})
	}
}
