// Package metrics writes counters as CloudWatch Embedded Metric Format (EMF)
// lines: one JSON object per line that CloudWatch Logs turns into metrics.
// On Lambda, writing the line to stdout is enough; Lambda may prepend
// metadata (time, request id) to the log event and the document after it is
// still valid.
//
// The structure follows the EMF specification ("Specification: Embedded
// metric format", Amazon CloudWatch User Guide,
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html,
// read 2026-11):
//
//   - the root object has an "_aws" member holding "Timestamp" (an integer,
//     milliseconds since the Unix epoch) and "CloudWatchMetrics", an array of
//     MetricDirective objects;
//   - a MetricDirective has "Namespace" (string), "Dimensions" (an array of
//     DimensionSets; a DimensionSet is an array of at most 30 dimension
//     keys and may be empty) and "Metrics" (at most 100 MetricDefinitions,
//     each {"Name", "Unit"}, Unit a CloudWatch MetricDatum unit, NONE when
//     absent);
//   - every name a directive refers to is a member of the root ("target
//     members", not nested): a number for a metric, a string of at most 1024
//     characters for a dimension; the root may hold other members (here the
//     properties), which CloudWatch keeps as log fields.
//
// An Emitter writes one line per Emit with one directive and one
// DimensionSet. Counters are emitted as the change since the previous line
// (per-interval counts, which is what graphs and alarms sum up); gauges as
// given.
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// Unit is a CloudWatch metric unit (MetricDatum.Unit).
type Unit string

// The units the extension uses.
const (
	Count        Unit = "Count"
	Bytes        Unit = "Bytes"
	Milliseconds Unit = "Milliseconds"
	Percent      Unit = "Percent"
	None         Unit = "None"
)

// Kind says how a value given to Emit becomes the value on the line.
type Kind uint8

const (
	// Counter values are cumulative (since start); the line carries the
	// change since the previous line.
	Counter Kind = iota
	// Gauge values are written as given (a level, or a figure the caller
	// computed for the interval).
	Gauge
)

// Def defines one metric.
type Def struct {
	Name string
	Unit Unit
	Kind Kind
}

// Dimension is one dimension of every metric of the line.
type Dimension struct {
	Name, Value string
}

// Property is an extra string member of the line: a log field, not a metric.
type Property struct {
	Name, Value string
}

// Limits of the EMF specification.
const (
	MaxMetrics        = 100
	MaxDimensions     = 30
	MaxDimensionValue = 1024
)

// DefaultInterval is the shortest time between two lines that Due allows
// unless Options.Interval says otherwise: CloudWatch's standard resolution.
const DefaultInterval = time.Minute

// ErrInvalid is wrapped by New's errors.
var ErrInvalid = errors.New("metrics: invalid options")

// Options configure an Emitter.
type Options struct {
	// Namespace is the CloudWatch namespace; required.
	Namespace string
	// Dimensions are applied to every metric (at most MaxDimensions; none
	// is allowed: the metrics then have no dimension).
	Dimensions []Dimension
	// Metrics, in the order Emit takes their values; at most MaxMetrics.
	Metrics []Def
	// Interval is what Due waits between lines. Default DefaultInterval.
	Interval time.Duration
}

// Emitter writes EMF lines. It is safe for concurrent use; each line is
// written with one Write call.
type Emitter struct {
	mu   sync.Mutex
	w    io.Writer
	defs []Def
	// head is everything of the line after the Timestamp's digits up to
	// and including the dimension members: it never changes.
	head     []byte
	names    map[string]bool // dimension and metric names, "_aws"
	interval time.Duration
	prev     []float64
	last     time.Time
	buf      []byte
}

// New returns an Emitter writing to w, whose first Due interval starts at
// start. It checks o against the specification's limits.
func New(w io.Writer, o Options, start time.Time) (*Emitter, error) {
	if o.Namespace == "" {
		return nil, fmt.Errorf("%w: empty namespace", ErrInvalid)
	}
	if len(o.Metrics) == 0 || len(o.Metrics) > MaxMetrics {
		return nil, fmt.Errorf("%w: %d metrics; want 1 to %d", ErrInvalid, len(o.Metrics), MaxMetrics)
	}
	if len(o.Dimensions) > MaxDimensions {
		return nil, fmt.Errorf("%w: %d dimensions; want at most %d", ErrInvalid, len(o.Dimensions), MaxDimensions)
	}
	e := &Emitter{
		w:        w,
		defs:     append([]Def(nil), o.Metrics...),
		names:    map[string]bool{"_aws": true},
		interval: o.Interval,
		prev:     make([]float64, len(o.Metrics)),
		last:     start,
	}
	if e.interval <= 0 {
		e.interval = DefaultInterval
	}
	claim := func(name string) error {
		if name == "" || e.names[name] {
			return fmt.Errorf("%w: empty or repeated member name %q", ErrInvalid, name)
		}
		e.names[name] = true
		return nil
	}
	h := []byte(`,"CloudWatchMetrics":[{"Namespace":`)
	h = appendString(h, o.Namespace)
	h = append(h, `,"Dimensions":[[`...)
	for i, d := range o.Dimensions {
		if err := claim(d.Name); err != nil {
			return nil, err
		}
		if d.Value == "" || len([]rune(d.Value)) > MaxDimensionValue {
			return nil, fmt.Errorf("%w: dimension %s has value %q; want 1 to %d characters", ErrInvalid, d.Name, d.Value, MaxDimensionValue)
		}
		if i > 0 {
			h = append(h, ',')
		}
		h = appendString(h, d.Name)
	}
	h = append(h, `]],"Metrics":[`...)
	for i, m := range o.Metrics {
		if err := claim(m.Name); err != nil {
			return nil, err
		}
		if i > 0 {
			h = append(h, ',')
		}
		h = append(h, `{"Name":`...)
		h = appendString(h, m.Name)
		if m.Unit != "" {
			h = append(h, `,"Unit":`...)
			h = appendString(h, string(m.Unit))
		}
		h = append(h, '}')
	}
	h = append(h, `]}]}`...)
	for _, d := range o.Dimensions {
		h = append(h, ',')
		h = appendString(h, d.Name)
		h = append(h, ':')
		h = appendString(h, d.Value)
	}
	e.head = h
	return e, nil
}

// Due reports whether the interval has passed since the last line (or
// since start).
func (e *Emitter) Due(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return now.Sub(e.last) >= e.interval
}

// Emit writes one line stamped now. values holds one value per Def, in
// order: cumulative totals for counters (the line carries the change since
// the previous Emit), current values for gauges. NaN and infinities are
// written as 0 (JSON has no such numbers). props are written as extra
// string members; a property named like a metric or dimension is refused.
func (e *Emitter) Emit(now time.Time, values []float64, props ...Property) error {
	if len(values) != len(e.defs) {
		return fmt.Errorf("cannot emit metrics: %d values for %d metrics", len(values), len(e.defs))
	}
	for _, p := range props {
		if p.Name == "" || e.names[p.Name] {
			return fmt.Errorf("cannot emit metrics: property name %q is empty or taken", p.Name)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := append(e.buf[:0], `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, e.head...)
	for i, d := range e.defs {
		v := values[i]
		if d.Kind == Counter {
			v, e.prev[i] = max(v-e.prev[i], 0), v
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		b = append(b, ',')
		b = appendString(b, d.Name)
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	for _, p := range props {
		b = append(b, ',')
		b = appendString(b, p.Name)
		b = append(b, ':')
		b = appendString(b, p.Value)
	}
	b = append(b, '}', '\n')
	e.buf = b
	e.last = now
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("cannot write the metrics line: %w", err)
	}
	return nil
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
