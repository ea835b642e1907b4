// Package emftest checks CloudWatch Embedded Metric Format documents against
// the structure the specification documents, for tests. It is independent
// of package metrics' writer: it decodes with encoding/json and checks every
// rule a test can check without CloudWatch.
//
// Source: "Specification: Embedded metric format", Amazon CloudWatch User
// Guide (CloudWatch_Embedded_Metric_Format_Specification), read 2026-11.
package emftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Units lists the valid CloudWatch metric units (MetricDatum.Unit).
var Units = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true, "Megabits": true,
	"Gigabits": true, "Terabits": true, "Percent": true, "Count": true, "Bytes/Second": true,
	"Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true, "Terabytes/Second": true,
	"Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true,
	"Terabits/Second": true, "Count/Second": true, "None": true,
}

// Metric is one metric of a document.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Document is a checked EMF document with one MetricDirective.
type Document struct {
	Timestamp  int64
	Namespace  string
	Dimensions [][]string         // the DimensionSets
	DimValues  map[string]string  // dimension name -> value
	Metrics    []Metric           // in directive order
	Values     map[string]float64 // metric name -> value
	Root       map[string]json.RawMessage
}

// Parse checks that line (one line, with or without its newline) is a valid
// EMF document and returns it:
//
//   - a JSON object and nothing else;
//   - "_aws" is an object with an integer "Timestamp" (ms since the epoch,
//     not negative) and a non-empty "CloudWatchMetrics" array of directives;
//   - each directive has a non-empty string "Namespace", "Dimensions" (at
//     least one DimensionSet, each at most 30 non-empty strings) and
//     "Metrics" (at most 100 objects with a non-empty "Name" and, when
//     present, a valid "Unit"), and no other members;
//   - every dimension key is a root member with a string value of 1 to 1024
//     characters; every metric name is a root member with a number value
//     (the writer never uses the array form);
//   - no name is both a metric and a dimension.
func Parse(line []byte) (*Document, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if bytes.ContainsAny(line, "\n\r") {
		return nil, errors.New("emftest: document spans several lines")
	}
	var root map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("emftest: not a JSON object: %w", err)
	}
	if dec.More() || dec.InputOffset() != int64(len(line)) {
		return nil, errors.New("emftest: data after the JSON object")
	}
	rawAWS, ok := root["_aws"]
	if !ok {
		return nil, errors.New("emftest: no _aws member")
	}
	var aws map[string]json.RawMessage
	if err := json.Unmarshal(rawAWS, &aws); err != nil {
		return nil, fmt.Errorf("emftest: _aws is not an object: %w", err)
	}
	doc := &Document{DimValues: map[string]string{}, Values: map[string]float64{}, Root: root}
	var ts json.Number
	if err := strictUnmarshal(aws["Timestamp"], &ts); err != nil {
		return nil, fmt.Errorf("emftest: _aws.Timestamp is not a number: %w", err)
	}
	n, err := ts.Int64()
	if err != nil || n < 0 {
		return nil, fmt.Errorf("emftest: _aws.Timestamp %s is not a non-negative integer (ms)", ts)
	}
	doc.Timestamp = n
	var directives []map[string]json.RawMessage
	if err := json.Unmarshal(aws["CloudWatchMetrics"], &directives); err != nil || len(directives) == 0 {
		return nil, fmt.Errorf("emftest: _aws.CloudWatchMetrics is not a non-empty array of objects (%v)", err)
	}
	if len(directives) != 1 {
		return nil, fmt.Errorf("emftest: %d directives; this checker expects one", len(directives))
	}
	d := directives[0]
	for k := range d {
		if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
			return nil, fmt.Errorf("emftest: unexpected directive member %q", k)
		}
	}
	if err := json.Unmarshal(d["Namespace"], &doc.Namespace); err != nil || doc.Namespace == "" {
		return nil, fmt.Errorf("emftest: Namespace is not a non-empty string (%v)", err)
	}
	if err := json.Unmarshal(d["Dimensions"], &doc.Dimensions); err != nil || len(doc.Dimensions) == 0 {
		return nil, fmt.Errorf("emftest: Dimensions is not a non-empty array of string arrays (%v)", err)
	}
	for _, set := range doc.Dimensions {
		if len(set) > 30 {
			return nil, fmt.Errorf("emftest: DimensionSet of %d keys; at most 30", len(set))
		}
		for _, key := range set {
			var v string
			if key == "" {
				return nil, errors.New("emftest: empty dimension key")
			}
			if err := json.Unmarshal(root[key], &v); err != nil {
				return nil, fmt.Errorf("emftest: dimension %q is not a root string member (%v)", key, err)
			}
			if v == "" || utf8.RuneCountInString(v) > 1024 {
				return nil, fmt.Errorf("emftest: dimension %q has value %q; want 1 to 1024 characters", key, v)
			}
			doc.DimValues[key] = v
		}
	}
	var defs []map[string]json.RawMessage
	if err := json.Unmarshal(d["Metrics"], &defs); err != nil {
		return nil, fmt.Errorf("emftest: Metrics is not an array of objects: %w", err)
	}
	if len(defs) > 100 {
		return nil, fmt.Errorf("emftest: %d metric definitions; at most 100", len(defs))
	}
	for _, def := range defs {
		var m Metric
		for k := range def {
			if k != "Name" && k != "Unit" && k != "StorageResolution" {
				return nil, fmt.Errorf("emftest: unexpected metric definition member %q", k)
			}
		}
		if err := json.Unmarshal(def["Name"], &m.Name); err != nil || m.Name == "" {
			return nil, fmt.Errorf("emftest: metric Name is not a non-empty string (%v)", err)
		}
		if u, ok := def["Unit"]; ok {
			if err := json.Unmarshal(u, &m.Unit); err != nil || !Units[m.Unit] {
				return nil, fmt.Errorf("emftest: metric %s has unit %s; not a CloudWatch unit", m.Name, u)
			}
		}
		if _, dup := doc.Values[m.Name]; dup {
			return nil, fmt.Errorf("emftest: metric %s defined twice", m.Name)
		}
		if _, dim := doc.DimValues[m.Name]; dim {
			return nil, fmt.Errorf("emftest: %s is both a metric and a dimension", m.Name)
		}
		var num json.Number
		if err := strictUnmarshal(root[m.Name], &num); err != nil {
			return nil, fmt.Errorf("emftest: metric %s is not a root number member (%v)", m.Name, err)
		}
		if m.Value, err = num.Float64(); err != nil {
			return nil, fmt.Errorf("emftest: metric %s: %w", m.Name, err)
		}
		doc.Metrics = append(doc.Metrics, m)
		doc.Values[m.Name] = m.Value
	}
	return doc, nil
}

// strictUnmarshal decodes a JSON number into n, refusing strings.
func strictUnmarshal(raw json.RawMessage, n *json.Number) error {
	if len(raw) == 0 {
		return errors.New("missing")
	}
	if raw[0] == '"' {
		return errors.New("a string, not a number")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	num, ok := v.(json.Number)
	if !ok {
		return fmt.Errorf("%s is not a number", raw)
	}
	*n = num
	return nil
}
