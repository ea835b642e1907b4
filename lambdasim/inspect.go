package lambdasim

import "slices"

// Generated returns every event generated so far, in generation order
// (Event.ID is the index). The Bytes slices are shared and must not be
// modified.
func (s *Sim) Generated() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Events returns the generated events with the given IDs, in that order.
// Unknown IDs are skipped.
func (s *Sim) Events(ids []int) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < len(s.events) {
			out = append(out, s.events[id])
		}
	}
	return out
}

// Lookup returns the IDs of the generated events whose bytes are exactly b
// (usually one; identical platform events in the same millisecond are
// possible in principle). The first call builds an index.
func (s *Sim) Lookup(b []byte) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index == nil {
		s.index = make(map[string][]int, len(s.events))
		for _, ev := range s.events {
			if ev.Bytes != nil {
				s.index[string(ev.Bytes)] = append(s.index[string(ev.Bytes)], ev.ID)
			}
		}
	}
	return slices.Clone(s.index[string(b)])
}

// Timeline returns a copy of the timeline, in recording order (At is
// nondecreasing except for MarkPost, whose At is the POST's start, and
// MarkLaunch, whose At is the fork).
func (s *Sim) Timeline() []Mark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.marks)
}

// Processes returns the figures of every extension process launched so far,
// in launch order, across environment generations.
func (s *Sim) Processes() []ProcessStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProcessStats, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p.stats())
	}
	return out
}

// Subscribers returns the delivery statistics of every Telemetry API
// subscriber so far, in subscription order, across generations.
func (s *Sim) Subscribers() []SubscriberStats {
	s.mu.Lock()
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	out := make([]SubscriberStats, 0, len(subs))
	for _, sub := range subs {
		out = append(out, sub.snapshot())
	}
	return out
}

// Subscriber returns the statistics of the latest subscriber named name.
func (s *Sim) Subscriber(name string) (SubscriberStats, bool) {
	all := s.Subscribers()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Name == name {
			return all[i], true
		}
	}
	return SubscriberStats{}, false
}

// Delivery returns the first POST to subscriber name that carried event id
// and was answered 2xx: its Mark.At is when that POST started (for example
// to assert that runtimeDone reached an extension before its /event/next).
func (s *Sim) Delivery(name string, id int) (Mark, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.marks {
		if m.Kind != MarkPost || m.Ext != name || m.Status/100 != 2 {
			continue
		}
		if slices.Contains(m.Events, id) {
			return m, true
		}
	}
	return Mark{}, false
}

// Diff is the result of Compare.
type Diff struct {
	// Want and Got count the expected events and the received records.
	Want, Got int
	// Missing lists expected events never received; Duplicated those
	// received more than once (once per extra copy).
	Missing, Duplicated []Event
	// Unexpected holds received records that match no expected event.
	Unexpected [][]byte
}

// OK reports an exactly-once match.
func (d Diff) OK() bool {
	return len(d.Missing) == 0 && len(d.Duplicated) == 0 && len(d.Unexpected) == 0
}

// Compare matches received records against expected events byte for byte,
// as multisets: each expected event must be received exactly once. Events
// without Bytes (Config.NoRetain) cannot be matched and count as missing.
func Compare(want []Event, got [][]byte) Diff {
	d := Diff{Want: len(want), Got: len(got)}
	byBytes := make(map[string][]int, len(want)) // -> indexes into want
	for i, ev := range want {
		byBytes[string(ev.Bytes)] = append(byBytes[string(ev.Bytes)], i)
	}
	seen := make([]int, len(want))
	for _, b := range got {
		idx := byBytes[string(b)]
		if len(idx) == 0 {
			d.Unexpected = append(d.Unexpected, b)
			continue
		}
		// Identical bytes: fill the copies in order before counting duplicates.
		j := idx[0]
		for _, k := range idx {
			if seen[k] == 0 {
				j = k
				break
			}
		}
		seen[j]++
		if seen[j] > 1 {
			d.Duplicated = append(d.Duplicated, want[j])
		}
	}
	for i, n := range seen {
		if n == 0 {
			d.Missing = append(d.Missing, want[i])
		}
	}
	return d
}
