package lambdasim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Subscription limits [TEL-REF][DG-TEL]; RIE's managed-instances JSON schema
// agrees.
const (
	minMaxItems, maxMaxItems, defMaxItems    = 1000, 10000, 10000
	minMaxBytes, maxMaxBytes, defMaxBytes    = 262144, 1048576, 262144
	minTimeoutMs, maxTimeoutMs, defTimeoutMs = 25, 30000, 1000
	reservedPort                             = 9001
)

var schemaVersions = []string{"2022-07-01", "2022-12-13", "2025-01-29"}

var telemetryTypes = []string{"platform", "function", "extension"}

// subscription is a validated Telemetry API subscription request.
type subscription struct {
	schema   string
	types    []string
	uri      string // as requested
	target   string // where the simulator POSTs: 127.0.0.1 at the URI's port and path
	maxItems int
	maxBytes int
	timeout  time.Duration
}

func (s *subscription) wants(cat string) bool { return slices.Contains(s.types, cat) }

// parseSubscription validates a subscription body as Lambda documents it and
// returns the first violation, worded for a 400 ValidationError.
func parseSubscription(body []byte) (subscription, error) {
	sub := subscription{maxItems: defMaxItems, maxBytes: defMaxBytes, timeout: defTimeoutMs * time.Millisecond}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return sub, fmt.Errorf("failed to parse JSON: %v", err)
	}
	if top == nil {
		return sub, errors.New("the request body must be a JSON object")
	}

	raw, ok := top["schemaVersion"]
	if !ok {
		return sub, errors.New("schemaVersion is required")
	}
	if err := json.Unmarshal(raw, &sub.schema); err != nil {
		return sub, errors.New("schemaVersion must be a string")
	}
	if !slices.Contains(schemaVersions, sub.schema) {
		return sub, fmt.Errorf("schemaVersion %q is not one of %v", sub.schema, schemaVersions)
	}

	raw, ok = top["types"]
	if !ok {
		return sub, errors.New("types is required")
	}
	if err := json.Unmarshal(raw, &sub.types); err != nil {
		return sub, errors.New("types must be an array of strings")
	}
	if len(sub.types) == 0 {
		return sub, errors.New("types must not be empty")
	}
	for _, t := range sub.types {
		if !slices.Contains(telemetryTypes, t) {
			return sub, fmt.Errorf("types: %q is not one of %v", t, telemetryTypes)
		}
	}

	raw, ok = top["destination"]
	if !ok {
		return sub, errors.New("destination is required")
	}
	var dst map[string]json.RawMessage
	if err := json.Unmarshal(raw, &dst); err != nil || dst == nil {
		return sub, errors.New("destination must be an object")
	}
	var protocol string
	if err := json.Unmarshal(dst["protocol"], &protocol); err != nil {
		return sub, errors.New("destination.protocol must be a string")
	}
	switch protocol {
	case "HTTP":
	case "TCP":
		return sub, errors.New("destination.protocol TCP is not modelled by the simulator; use HTTP")
	default:
		return sub, fmt.Errorf("destination.protocol %q is not HTTP", protocol)
	}
	if err := json.Unmarshal(dst["URI"], &sub.uri); err != nil || sub.uri == "" {
		return sub, errors.New("destination.URI must be a non-empty string")
	}
	target, err := deliveryTarget(sub.uri)
	if err != nil {
		return sub, err
	}
	sub.target = target

	if raw, ok := top["buffering"]; ok {
		var buf map[string]json.RawMessage
		if err := json.Unmarshal(raw, &buf); err != nil || buf == nil {
			return sub, errors.New("buffering must be an object")
		}
		fields := []struct {
			name     string
			lo, hi   int
			dst      *int
			isTimout bool
		}{
			{"maxItems", minMaxItems, maxMaxItems, &sub.maxItems, false},
			{"maxBytes", minMaxBytes, maxMaxBytes, &sub.maxBytes, false},
			{"timeoutMs", minTimeoutMs, maxTimeoutMs, nil, true},
		}
		for _, f := range fields {
			raw, ok := buf[f.name]
			if !ok {
				continue
			}
			v, err := parseInt(raw)
			if err != nil {
				return sub, fmt.Errorf("buffering.%s: %v", f.name, err)
			}
			if v < f.lo || v > f.hi {
				return sub, fmt.Errorf("buffering.%s: %d is outside %d-%d", f.name, v, f.lo, f.hi)
			}
			if f.isTimout {
				sub.timeout = time.Duration(v) * time.Millisecond
			} else {
				*f.dst = v
			}
		}
	}
	return sub, nil
}

// parseInt accepts a JSON integer (1000 or 1000.0, not 1000.5 or "1000").
func parseInt(raw json.RawMessage) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var n any
	if err := dec.Decode(&n); err != nil {
		return 0, err
	}
	num, ok := n.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s is not a number", raw)
	}
	f, err := num.Float64()
	if err != nil || f != float64(int64(f)) || f > 1<<31 || f < -1<<31 {
		return 0, fmt.Errorf("%s is not an integer", raw)
	}
	return int(f), nil
}

// deliveryTarget checks a destination URI and returns where to POST: the
// URI names sandbox.localdomain (or sandbox, as the Go sample uses), which
// does not resolve here, so the simulator delivers to 127.0.0.1 at the same
// port and path, as RIE's managed-instances mode does.
func deliveryTarget(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("destination.URI: %v", err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("destination.URI %q: the scheme must be http", uri)
	}
	if h := u.Hostname(); h != "sandbox.localdomain" && h != "sandbox" {
		return "", fmt.Errorf("destination.URI %q: the host must be sandbox.localdomain (inside the execution environment)", uri)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 {
		return "", fmt.Errorf("destination.URI %q: a port between 1 and 65535 is required", uri)
	}
	if port == reservedPort {
		return "", fmt.Errorf("destination.URI %q: port %d is reserved by Lambda", uri, reservedPort)
	}
	return "http://127.0.0.1:" + strconv.Itoa(port) + u.RequestURI(), nil
}
