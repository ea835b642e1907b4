package flushtest

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// ExtensionName is the file name the extension binary must have: the
// extension registers under its executable's name.
const ExtensionName = "kinesis-telemetry-extension"

// Scenario is one run of the real extension in the simulator against the
// fake Kinesis.
type Scenario struct {
	// Binary is the extension executable, named ExtensionName (build it
	// with lambdasim.Build).
	Binary string
	// Flush is KTE_FLUSH.
	Flush string
	// Env holds more "KEY=value" entries for the extension; they win over
	// the defaults (KTE_STREAM, KTE_LISTEN_PORT, KTE_BUFFER_TIMEOUT_MS=25,
	// KTE_ENRICH=false so that records are the events' exact bytes,
	// KTE_METRICS=false).
	Env []string
	// Timeout is the function timeout (default 3 s).
	Timeout time.Duration
	// Latency of every PutRecords answer.
	Latency time.Duration
	// Invocations are run in order.
	Invocations []lambdasim.Invocation
	// Every is the time from one INVOKE to the next (the arrival rate);
	// when an invocation takes longer, the next starts at once. 0: back to
	// back.
	Every time.Duration
	// Idle is how long the environment stays frozen after the last
	// invocation before SHUTDOWN (default Every).
	Idle time.Duration
	// Output receives the extension's stdout and stderr.
	Output io.Writer
}

// Result is what a Scenario produced. Offsets are from Sim.Epoch().
type Result struct {
	Sim      *lambdasim.Sim // closed; its accessors still work
	Invokes  []lambdasim.InvokeResult
	Shutdown lambdasim.ShutdownResult
	Calls    []Call
	// Sent maps an event ID to the arrival offset of the first PutRecords
	// that carried it, and Delivered to the offset of that call's answer.
	Sent, Delivered map[int]time.Duration
	// Unknown counts records that match no generated event.
	Unknown int
}

// Run runs sc: start and Init, the invocations at the given rate, the idle
// time, SHUTDOWN (2 s), then maps every record Kinesis received to the
// generated events.
func Run(ctx context.Context, sc Scenario, port int) (*Result, error) {
	k := NewKinesis(sc.Latency)
	defer k.Close()
	timeout := sc.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	env := append(k.Env(),
		"AWS_REGION=us-east-1",
		"KTE_STREAM=telemetry",
		"KTE_LISTEN_PORT="+strconv.Itoa(port),
		"KTE_BUFFER_TIMEOUT_MS=25",
		"KTE_ENRICH=false",
		"KTE_METRICS=false",
		"KTE_FLUSH="+sc.Flush,
	)
	env = append(env, sc.Env...)
	s, err := lambdasim.New(lambdasim.Config{
		Extensions: []lambdasim.Extension{{Path: sc.Binary}},
		Env:        env,
		Timeout:    timeout,
		Output:     sc.Output,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create the simulator: %w", err)
	}
	defer s.Close()
	r := &Result{Sim: s}
	if err := s.Start(ctx); err != nil {
		return nil, fmt.Errorf("cannot start: %w", err)
	}
	if _, err := s.Init(ctx); err != nil {
		return nil, fmt.Errorf("cannot init: %w", err)
	}
	next := time.Now()
	for i, inv := range sc.Invocations {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = time.Now().Add(sc.Every)
		res, err := s.Invoke(ctx, inv)
		if err != nil {
			return nil, fmt.Errorf("invocation %d: %w", i, err)
		}
		r.Invokes = append(r.Invokes, res)
	}
	idle := sc.Idle
	if idle == 0 {
		idle = sc.Every
	}
	time.Sleep(time.Until(next.Add(idle - sc.Every)))
	if r.Shutdown, err = s.Shutdown(ctx, "spindown", 2*time.Second); err != nil {
		return nil, fmt.Errorf("cannot shut down: %w", err)
	}
	r.Calls = k.Calls()
	r.Sent, r.Delivered = map[int]time.Duration{}, map[int]time.Duration{}
	epoch := s.Epoch()
	for _, c := range r.Calls {
		for _, rec := range c.Records {
			ids := s.Lookup(rec)
			if len(ids) == 0 {
				r.Unknown++
			}
			for _, id := range ids {
				if _, ok := r.Sent[id]; !ok {
					r.Sent[id] = c.At.Sub(epoch)
					r.Delivered[id] = c.Done.Sub(epoch)
				}
			}
		}
	}
	return r, nil
}

// Window is the part of an invocation during which the extension worked on
// it: from the INVOKE to its /event/next (or the deadline if it never came).
func (r *Result) Window(i int) (from, to time.Duration) {
	res := r.Invokes[i]
	from = res.Start
	if len(res.Extensions) > 0 && res.Extensions[0].Next > 0 {
		return from, res.Extensions[0].Next
	}
	return from, res.Deadline.Sub(r.Sim.Epoch())
}

// WindowOf returns the invocation whose window contains offset at, -1 for
// a SHUTDOWN phase (from SHUTDOWN, or from the reset after a failed
// invocation, to the next INVOKE), or -2 for none: a call outside every
// window was in flight while the environment could be frozen.
func (r *Result) WindowOf(at time.Duration) int {
	for i := range r.Invokes {
		if from, to := r.Window(i); from <= at && at <= to {
			return i
		}
	}
	for i, res := range r.Invokes {
		if res.Reset == nil || at < res.Reset.Start {
			continue
		}
		if i+1 == len(r.Invokes) || at < r.Invokes[i+1].Start {
			return -1
		}
	}
	if r.Shutdown.Start > 0 && at >= r.Shutdown.Start {
		return -1
	}
	return -2
}

// EventsOf returns the generated events of the invocation with requestID
// of the given types (all types when none are given).
func (r *Result) EventsOf(requestID string, types ...string) []lambdasim.Event {
	var out []lambdasim.Event
	for _, ev := range r.Sim.Generated() {
		if ev.RequestID != requestID {
			continue
		}
		if len(types) == 0 {
			out = append(out, ev)
			continue
		}
		for _, t := range types {
			if ev.Type == t {
				out = append(out, ev)
				break
			}
		}
	}
	return out
}
