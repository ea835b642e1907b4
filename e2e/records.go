package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Identity is the "lambda" object the extension writes in front of every
// event when enrichment is on (KTE_ENRICH, the default).
type Identity struct {
	Function    string `json:"function"`
	Version     string `json:"version"`
	Region      string `json:"region"`
	Account     string `json:"account"`
	Environment string `json:"environment"`
}

// Part is one record of a payload the listener stored wrapped (quarantined)
// instead of as a plain event: its "kte" object and the decoded bytes it
// carries.
type Part struct {
	Quarantine string `json:"quarantine"` // oversize, malformed or overflow
	Reason     string `json:"reason"`
	Type       string `json:"type"`
	ID         string `json:"id"`
	Num        int    `json:"part"`
	Of         int    `json:"parts"`
	Offset     int    `json:"offset"`
	Bytes      int    `json:"bytes"`
	Chunk      []byte `json:"-"`
}

// Record is one Kinesis record (or one KTE_UNDELIVERED event) with the
// enrichment taken off.
type Record struct {
	// Event is the event exactly as Lambda POSTed it (nil for a wrapped part).
	Event []byte
	// Lambda is the enrichment; nil when the record carried none.
	Lambda *Identity
	// Part is set when the record is one part of a wrapped payload.
	Part *Part
}

// errNotObject marks data that is not a JSON object.
var errNotObject = errors.New("e2e: record is not a JSON object")

const lambdaKey = `{"lambda":`

// ParseRecord takes the enrichment prefix off data, byte for byte: the
// listener writes `{"lambda":{…},` + event[1:] (and `{"lambda":{…}` +
// event[1:] for an empty event such as `{}` or `{ }`), so the event is '{' +
// what follows the prefix. A
// record without the prefix is returned as is. Wrapped records ({"kte":…,
// "body"|"body_base64":…}) are decoded into Part.
func ParseRecord(data []byte) (Record, error) {
	if len(data) < 2 || data[0] != '{' {
		return Record{}, errNotObject
	}
	var r Record
	ev := data
	if rest, ok := bytes.CutPrefix(data, []byte(lambdaKey)); ok {
		dec := json.NewDecoder(bytes.NewReader(rest))
		var id Identity
		if err := dec.Decode(&id); err != nil {
			return Record{}, fmt.Errorf("cannot decode the lambda object of %.80q: %w", data, err)
		}
		r.Lambda = &id
		n := len(lambdaKey) + int(dec.InputOffset())
		switch {
		case n < len(data) && data[n] == ',':
			ev = append([]byte{'{'}, data[n+1:]...)
		case len(bytes.TrimLeft(data[n:], " \t\r\n")) == 1 && data[len(data)-1] == '}':
			ev = append([]byte{'{'}, data[n:]...) // an empty event, its white space kept
		default:
			return Record{}, fmt.Errorf("cannot find the event after the lambda object of %.80q", data)
		}
	}
	if bytes.HasPrefix(ev, []byte(`{"kte":{"quarantine":`)) {
		var w struct {
			Kte        Part    `json:"kte"`
			Body       *string `json:"body"`
			BodyBase64 *string `json:"body_base64"`
		}
		if err := json.Unmarshal(ev, &w); err != nil {
			return Record{}, fmt.Errorf("cannot decode a wrapped record: %w", err)
		}
		switch {
		case w.Body != nil:
			w.Kte.Chunk = []byte(*w.Body)
		case w.BodyBase64 != nil:
			b, err := base64.StdEncoding.DecodeString(*w.BodyBase64)
			if err != nil {
				return Record{}, fmt.Errorf("cannot decode body_base64 of part %d of %s: %w", w.Kte.Num, w.Kte.ID, err)
			}
			w.Kte.Chunk = b
		default:
			return Record{}, fmt.Errorf("wrapped record %s part %d has no body", w.Kte.ID, w.Kte.Num)
		}
		r.Part = &w.Kte
		return r, nil
	}
	r.Event = ev
	return r, nil
}

// Reassemble joins wrapped parts into the events they carry. An "oversize"
// payload is one event; a "malformed" or "overflow" payload is a whole POST
// body, split here into its events when it is a JSON array (else returned as
// one item). Incomplete or inconsistent groups are errors: a part that went
// missing is a lost event. Parts may be given in any order and more than once
// (at-least-once delivery); identical copies count once here, the caller
// counts duplicates on whole records. Two different parts with the same id
// and number (two payloads under one id) are an error.
func Reassemble(parts []*Part) ([][]byte, error) {
	groups := map[string][]*Part{}
	var ids []string
	for _, p := range parts {
		if _, ok := groups[p.ID]; !ok {
			ids = append(ids, p.ID)
		}
		groups[p.ID] = append(groups[p.ID], p)
	}
	var out [][]byte
	var errs []error
	for _, id := range ids {
		g := groups[id]
		slices.SortFunc(g, func(a, b *Part) int { return a.Num - b.Num })
		var conflict *Part
		g = slices.CompactFunc(g, func(a, b *Part) bool {
			if a.Num != b.Num {
				return false
			}
			if !samePart(a, b) {
				conflict = a
			}
			return true
		})
		if conflict != nil {
			errs = append(errs, fmt.Errorf("wrapped payload %s: two different parts numbered %d", id, conflict.Num))
			continue
		}
		if len(g) != g[0].Of {
			errs = append(errs, fmt.Errorf("wrapped payload %s: got %d of %d parts", id, len(g), g[0].Of))
			continue
		}
		var payload []byte
		for i, p := range g {
			if p.Num != i+1 || p.Offset != len(payload) || p.Of != g[0].Of || p.Bytes != g[0].Bytes {
				errs = append(errs, fmt.Errorf("wrapped payload %s: inconsistent part %d (offset %d, have %d bytes)", id, p.Num, p.Offset, len(payload)))
				payload = nil
				break
			}
			payload = append(payload, p.Chunk...)
		}
		if payload == nil {
			continue
		}
		if len(payload) != g[0].Bytes {
			errs = append(errs, fmt.Errorf("wrapped payload %s: got %d bytes; want %d", id, len(payload), g[0].Bytes))
			continue
		}
		if g[0].Quarantine == "oversize" {
			out = append(out, payload)
			continue
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(payload, &arr); err != nil {
			out = append(out, payload)
			continue
		}
		for _, ev := range arr {
			out = append(out, []byte(ev))
		}
	}
	return out, errors.Join(errs...)
}

// samePart reports whether a and b are copies of one part.
func samePart(a, b *Part) bool {
	return a.Quarantine == b.Quarantine && a.Reason == b.Reason && a.Type == b.Type && a.ID == b.ID &&
		a.Num == b.Num && a.Of == b.Of && a.Offset == b.Offset && a.Bytes == b.Bytes && bytes.Equal(a.Chunk, b.Chunk)
}

// Events turns raw records (Kinesis data or KTE_UNDELIVERED events) into
// Lambda's event bytes: enrichment stripped, wrapped parts reassembled. It
// returns the identities seen and every record it could not parse.
func Events(raw [][]byte) (events [][]byte, ids []Identity, err error) {
	var parts []*Part
	var errs []error
	for _, data := range raw {
		r, err := ParseRecord(data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Lambda != nil && !slices.Contains(ids, *r.Lambda) {
			ids = append(ids, *r.Lambda)
		}
		if r.Part != nil {
			parts = append(parts, r.Part)
			continue
		}
		events = append(events, r.Event)
	}
	whole, err := Reassemble(parts)
	if err != nil {
		errs = append(errs, err)
	}
	events = append(events, whole...)
	return events, ids, errors.Join(errs...)
}
