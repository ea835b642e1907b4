package e2e

import (
	"fmt"
	"strings"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// Reconciliation accounts for every generated event: where each one ended up.
type Reconciliation struct {
	// Expected are the events the extension had to ship (see Reconcile).
	Expected int
	// InKinesis and OnStderr count the expected events found there at least
	// once; an event may be in both (a cut-short call may have been stored
	// before it was given up on).
	InKinesis, OnStderr int
	// Missing are expected events found neither in Kinesis nor on stderr.
	Missing []lambdasim.Event
	// Duplicates counts extra copies in Kinesis; InBoth counts events found
	// in Kinesis and on stderr.
	Duplicates, InBoth int
	// Unexpected holds received events that match no generated event.
	Unexpected [][]byte
	// Excluded are generated events not expected (see Reconcile), by type.
	Excluded map[string]int
}

// OK reports that nothing expected is missing and nothing unknown arrived.
func (r Reconciliation) OK() bool { return len(r.Missing) == 0 && len(r.Unexpected) == 0 }

// ExactlyOnce reports OK, every event in Kinesis once and none on stderr.
func (r Reconciliation) ExactlyOnce() bool {
	return r.OK() && r.Duplicates == 0 && r.OnStderr == 0 && r.InKinesis == r.Expected
}

// String is a one-line summary for test logs.
func (r Reconciliation) String() string {
	return fmt.Sprintf("expected %d, in Kinesis %d, on stderr %d, in both %d, missing %d, duplicates %d, unexpected %d, excluded %v",
		r.Expected, r.InKinesis, r.OnStderr, r.InBoth, len(r.Missing), r.Duplicates, len(r.Unexpected), r.Excluded)
}

// Reconcile matches generated events, byte for byte and as multisets,
// against the events read back from Kinesis and those written to stderr as
// KTE_UNDELIVERED (both as returned by Events). An event is expected when
// keep returns true for it; the others are counted in Excluded (for example
// the extension's own log lines written after its final flush, which it
// cannot ship, or events the platform dropped). Received copies of excluded
// events are not unexpected.
func Reconcile(gen []lambdasim.Event, keep func(lambdasim.Event) bool, kinesis, stderr [][]byte) Reconciliation {
	r := Reconciliation{Excluded: map[string]int{}}
	// Events with identical bytes are distinct events: match copies as
	// multisets, per group of identical bytes, expected events first.
	type group struct {
		events   []int // indexes into gen, expected ones first
		expected int
		k, e     int // copies received from Kinesis and from stderr
	}
	groups := make(map[string]*group, len(gen))
	order := make([]*group, 0, len(gen))
	for i, ev := range gen {
		g := groups[string(ev.Bytes)]
		if g == nil {
			g = &group{}
			groups[string(ev.Bytes)] = g
			order = append(order, g)
		}
		if keep == nil || keep(ev) {
			g.events = append(g.events, 0)
			copy(g.events[g.expected+1:], g.events[g.expected:])
			g.events[g.expected] = i
			g.expected++
			r.Expected++
		} else {
			g.events = append(g.events, i)
			r.Excluded[ev.Type]++
		}
	}
	for _, b := range kinesis {
		if g := groups[string(b)]; g != nil {
			g.k++
		} else {
			r.Unexpected = append(r.Unexpected, b)
		}
	}
	for _, b := range stderr {
		if g := groups[string(b)]; g != nil {
			g.e++
		} else {
			r.Unexpected = append(r.Unexpected, b)
		}
	}
	for _, g := range order {
		n := len(g.events)
		inK := min(g.k, n)            // events 0..inK-1 have a copy in Kinesis
		onlyE := min(g.e, n-inK)      // events inK..inK+onlyE-1 only on stderr
		both := min(g.e-onlyE, inK)   // events 0..both-1 are in both
		r.Duplicates += max(0, g.k-n) // extra copies in Kinesis
		for j, i := range g.events[:g.expected] {
			switch {
			case j < inK:
				r.InKinesis++
				if j < both {
					r.OnStderr++
					r.InBoth++
				}
			case j < inK+onlyE:
				r.OnStderr++
			default:
				r.Missing = append(r.Missing, gen[i])
			}
		}
	}
	return r
}

// Describe renders a few missing events for an error message.
func Describe(evs []lambdasim.Event, limit int) string {
	var b strings.Builder
	for i, ev := range evs {
		if i == limit {
			fmt.Fprintf(&b, "\n  ... and %d more", len(evs)-limit)
			break
		}
		fmt.Fprintf(&b, "\n  #%d %s at %s (%d bytes): %.120s", ev.ID, ev.Type, ev.At, len(ev.Bytes), ev.Bytes)
	}
	return b.String()
}
