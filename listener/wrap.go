package listener

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// Wrapped records. Bytes the listener cannot store as plain events are
// stored, never dropped, as one or more "wrapped" records, each a JSON object
// of at most MaxFrameBytes bytes:
//
//	{"lambda":{…},"kte":{"quarantine":"malformed","reason":"…","id":"…","part":1,"parts":2,"offset":0,"bytes":123456},"body":"…"}
//
// "lambda" is there when enrichment is on. kte.quarantine says why:
//   - "malformed": the POST body is not a JSON array of objects (for example
//     one half of a record Lambda cut across two POSTs); the payload is the
//     whole body. reason is the splitter's error.
//   - "oversize": one event is larger than MaxFrameBytes once enriched; the
//     payload is the event exactly as Lambda sent it (without the "lambda"
//     object) and kte.type gives its type (as the event spells it, for a
//     type of up to maxTypeBytes that is valid UTF-8; none when the event
//     has no such string type, so that every wrapped record is valid UTF-8).
//     The POST's other events are stored as usual, in the same ring block.
//   - "overflow": the body is valid but its events do not fit one ring block
//     (far more events than Lambda sends in one POST); the payload is the
//     whole body.
//
// kte.id is the same for all parts of one payload (16 hex digits, unique per
// execution environment); part runs from 1 to parts; offset is the position
// of this part's bytes in the payload and bytes the payload's total length.
// The payload travels in "body" as a JSON string when it is valid UTF-8 and
// that is no longer than base64, else in "body_base64" (standard base64 with
// padding); all parts of one payload use the same field. Decoding each part's
// field and concatenating the parts in part order gives the payload back byte
// for byte.
const (
	QuarantineMalformed = "malformed"
	QuarantineOversize  = "oversize"
	QuarantineOverflow  = "overflow"
)

// The reasons given for wrapped payloads other than malformed bodies (whose
// reason is the splitter's error). Read only.
var (
	reasonOversize = []byte("event larger than the record size limit")
	reasonOverflow = []byte("events do not fit one ring block")
)

const (
	// maxReasonBytes bounds kte.reason (before escaping).
	maxReasonBytes = 256
	// maxTypeBytes bounds kte.type for a type the listener does not know
	// (its raw JSON string content); a longer one, or one that is not valid
	// UTF-8, is left out.
	maxTypeBytes = 64
	// minChunkBytes is the least payload room a wrapped record must have;
	// New checks MaxFrameBytes against it.
	minChunkBytes = 1024
)

// group is one payload to wrap: payload = body[start:end].
type group struct {
	kind       string
	reason     []byte // kte.reason: one of the reason variables, or the scratch's reason
	typ        Type
	typRaw     []byte // the event's raw "type" string content (points into the body), if kte.type may show it
	id         uint64
	start, end int
	base64     bool
}

// part is one wrapped record of group g: payload[off:end], encoded in enc
// bytes, numbered num of of, size bytes in the ring.
type part struct {
	g        int
	off, end int
	enc      int
	num, of  int
	size     int
}

// appendHeader appends everything of a wrapped record before the payload
// bytes: prefix (or '{'), the kte object and the opening of the payload
// string. The record ends with the encoded chunk and `"}`.
func appendHeader(dst, pre []byte, g *group, p *part) []byte {
	if pre == nil {
		dst = append(dst, '{')
	} else {
		dst = append(dst, pre...)
	}
	dst = append(dst, `"kte":{"quarantine":"`...)
	dst = append(dst, g.kind...)
	dst = append(dst, `","reason":"`...)
	dst = jsonesc.AppendEscaped(dst, g.reason)
	dst = append(dst, '"')
	if name := g.typ.String(); name != "" {
		dst = append(dst, `,"type":"`...)
		dst = append(dst, name...)
		dst = append(dst, '"')
	} else if len(g.typRaw) > 0 {
		// A type the listener does not know: its content is already valid
		// JSON string content (the splitter checked the body), and newGroup
		// kept it only if it is short and valid UTF-8.
		dst = append(dst, `,"type":"`...)
		dst = append(dst, g.typRaw...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"id":"`...)
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, "0123456789abcdef"[g.id>>uint(shift)&0xf])
	}
	dst = append(dst, `","part":`...)
	dst = strconv.AppendInt(dst, int64(p.num), 10)
	dst = append(dst, `,"parts":`...)
	dst = strconv.AppendInt(dst, int64(p.of), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, int64(p.off), 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, int64(g.end-g.start), 10)
	if g.base64 {
		return append(dst, `},"body_base64":"`...)
	}
	return append(dst, `},"body":"`...)
}

// maxHeaderLen bounds appendHeader's output for a prefix of up to maxPrefix
// bytes and any payload the listener can see.
func maxHeaderLen(maxPrefix int) int {
	g := group{
		kind:   QuarantineMalformed, // the longest kind
		reason: bytes.Repeat([]byte{1}, maxReasonBytes),
		typ:    TypeOther,
		typRaw: make([]byte, maxTypeBytes), // longer than every known name
		end:    1 << 62,
		base64: true,
	}
	p := part{num: 1 << 62, of: 1 << 62, off: 1 << 62}
	return len(appendHeader(nil, make([]byte, maxPrefix), &g, &p))
}

// MaxQuarantineBlock returns the largest ring block (in ring.BlockSize
// terms) that wrapping one payload of up to maxBody bytes can need, with
// records of at most maxFrame bytes and an enrichment prefix of up to
// maxPrefix bytes. New refuses a ring whose MaxBlock is smaller, so that
// every body the server accepts can be stored; a ring of at least twice this
// size passes.
func MaxQuarantineBlock(maxBody, maxFrame, maxPrefix int) int {
	hdr := maxHeaderLen(maxPrefix) + 2 // header and the closing `"}`
	room := maxFrame - hdr - 8         // JSON chunks stop up to 5 bytes short
	if room < 1 {
		room = 1
	}
	enc := base64.StdEncoding.EncodedLen(maxBody) // the longer encoding
	parts := enc/room + 2
	return ring.BlockSize(parts, enc+parts*hdr)
}

// newGroup adds a payload to wrap and returns its index.
func (l *Listener) newGroup(s *scratch, kind string, reason []byte, typ Type, typRaw, body []byte, start, end int) int {
	if len(reason) > maxReasonBytes {
		cut := maxReasonBytes
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	if len(typRaw) > maxTypeBytes || !utf8.Valid(typRaw) {
		typRaw = nil
	}
	payload := body[start:end]
	esc, valid := jsonesc.EscapedLen(payload)
	s.groups = append(s.groups, group{
		kind:   kind,
		reason: reason,
		typ:    typ,
		typRaw: typRaw,
		id:     l.idBase + l.idSeq.Add(1),
		start:  start,
		end:    end,
		base64: !valid || esc > base64.StdEncoding.EncodedLen(len(payload)),
	})
	return len(s.groups) - 1
}

// plan cuts group gi's payload into parts that fit MaxFrameBytes, appends
// them to s.parts, and returns their count and total frame bytes.
func (l *Listener) plan(s *scratch, pre, body []byte, gi int) (n, total int) {
	g := &s.groups[gi]
	payload := body[g.start:g.end]
	first := len(s.parts)
	worst := part{num: len(payload) + 1, of: len(payload) + 1, off: len(payload)}
	s.hdr = appendHeader(s.hdr[:0], pre, g, &worst)
	room := l.maxFrame - len(s.hdr) - 2 // New guarantees room >= minChunkBytes
	if g.base64 {
		step := room / 4 * 3
		for off := 0; ; off += step {
			end := min(off+step, len(payload))
			s.parts = append(s.parts, part{g: gi, off: off, end: end, enc: base64.StdEncoding.EncodedLen(end - off)})
			if end == len(payload) {
				break
			}
		}
	} else {
		off, enc := 0, 0
		for i := 0; i < len(payload); {
			size, el := 1, 0
			if c := payload[i]; c < utf8.RuneSelf {
				el = jsonesc.ASCIILen[c]
			} else {
				_, size = utf8.DecodeRune(payload[i:])
				el = size
			}
			if enc+el > room {
				s.parts = append(s.parts, part{g: gi, off: off, end: i, enc: enc})
				off, enc = i, 0
			}
			enc += el
			i += size
		}
		s.parts = append(s.parts, part{g: gi, off: off, end: len(payload), enc: enc})
	}
	parts := s.parts[first:]
	for i := range parts {
		p := &parts[i]
		p.num, p.of = i+1, len(parts)
		s.hdr = appendHeader(s.hdr[:0], pre, g, p)
		p.size = len(s.hdr) + p.enc + 2
		total += p.size
	}
	return len(parts), total
}

// writeParts writes the planned parts of group gi, s.parts[from:to], into w.
func writeParts(w *ring.Reservation, s *scratch, pre, body []byte, gi, from, to int) {
	g := &s.groups[gi]
	payload := body[g.start:g.end]
	for i := from; i < to; i++ {
		p := &s.parts[i]
		f := w.Frame(p.size)
		out := appendHeader(f[:0], pre, g, p)
		chunk := payload[p.off:p.end]
		if g.base64 {
			k := len(out)
			out = out[:k+p.enc]
			base64.StdEncoding.Encode(out[k:], chunk)
		} else {
			out = jsonesc.AppendEscaped(out, chunk)
		}
		out = append(out, '"', '}')
		if len(out) != len(f) || &out[0] != &f[0] {
			panic("BUG: listener: wrapped record of " + strconv.Itoa(len(out)) + " bytes planned as " + strconv.Itoa(len(f)))
		}
	}
}
