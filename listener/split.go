package listener

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
)

// Sentinel errors wrapped by every *SyntaxError SplitArray returns; compare
// with errors.Is. All three mean "malformed" to the listener.
var (
	// ErrMalformed means the body is not valid JSON.
	ErrMalformed = errors.New("listener: malformed JSON")
	// ErrNotArray means the body does not start with '[' (after whitespace).
	ErrNotArray = errors.New("listener: body is not a JSON array")
	// ErrNotObject means an element of the array is not a JSON object.
	ErrNotObject = errors.New("listener: array element is not a JSON object")
)

// SyntaxError says why and where SplitArray rejected a body.
type SyntaxError struct {
	Err    error  // ErrMalformed, ErrNotArray or ErrNotObject
	Offset int    // byte offset in the body where the problem was found
	Msg    string // what was wrong there, e.g. "unexpected end of body"
}

func (e *SyntaxError) Error() string {
	b, _ := e.AppendText(nil)
	return string(b)
}

// AppendText appends Error's text to b. With room in b it does not
// allocate. The error is always nil.
func (e *SyntaxError) AppendText(b []byte) ([]byte, error) {
	b = append(b, e.Err.Error()...)
	b = append(b, " at byte "...)
	b = strconv.AppendInt(b, int64(e.Offset), 10)
	b = append(b, ": "...)
	return append(b, e.Msg...), nil
}

// Unwrap returns Err.
func (e *SyntaxError) Unwrap() error { return e.Err }

// errSplit is what the scanner returns for a syntax error, which it keeps
// in scanner.fail: finding one then allocates nothing (SplitArray hands out
// a copy, SplitArrayTo writes it where its caller says).
var errSplit = errors.New("listener: syntax error")

// malformed notes ErrMalformed at off, and returns errSplit.
func (s *scanner) malformed(off int, msg string) error { return s.failed(ErrMalformed, off, msg) }

// failed notes the syntax error err at off, and returns errSplit.
func (s *scanner) failed(err error, off int, msg string) error {
	s.fail = SyntaxError{Err: err, Offset: off, Msg: msg}
	return errSplit
}

// maxDepth is the deepest nesting SplitArray accepts, counting the top-level
// array as 1. It is encoding/json's limit (maxNestingDepth in
// encoding/json/scanner.go), so that both accept the same bodies.
const maxDepth = 10000

// Event is one element of the top-level array, as offsets into the body
// given to SplitArray.
type Event struct {
	// body[Start:End] is the element: from its '{' to its '}', without the
	// surrounding whitespace and comma.
	Start, End int
	// body[TypeStart:TypeEnd] is the raw content (between the quotes, escapes
	// not decoded) of the element's top-level "type" member when that member
	// is a string; empty otherwise. With duplicate members the last one
	// counts, as in encoding/json.
	TypeStart, TypeEnd int
	// body[RecordStart:RecordEnd] is the raw value of the top-level "record"
	// member (an object, a string, or any JSON value); empty when absent.
	RecordStart, RecordEnd int
	// Type is the decoded "type" value, or TypeNone / TypeOther.
	Type Type
}

// Type is the "type" of a Telemetry API event (protocol.md section 2).
type Type uint8

// Event types. TypeNone: the event has no string "type" member; TypeOther:
// a type this package does not know (Event.TypeStart/TypeEnd give its bytes).
const (
	TypeNone Type = iota
	TypeOther
	TypeFunction
	TypeExtension
	TypePlatformInitStart
	TypePlatformInitRuntimeDone
	TypePlatformInitReport
	TypePlatformStart
	TypePlatformRuntimeDone
	TypePlatformReport
	TypePlatformRestoreStart
	TypePlatformRestoreRuntimeDone
	TypePlatformRestoreReport
	TypePlatformExtension
	TypePlatformTelemetrySubscription
	TypePlatformLogsDropped
	numTypes
)

var typeNames = [numTypes]string{
	TypeNone:                          "",
	TypeOther:                         "",
	TypeFunction:                      "function",
	TypeExtension:                     "extension",
	TypePlatformInitStart:             "platform.initStart",
	TypePlatformInitRuntimeDone:       "platform.initRuntimeDone",
	TypePlatformInitReport:            "platform.initReport",
	TypePlatformStart:                 "platform.start",
	TypePlatformRuntimeDone:           "platform.runtimeDone",
	TypePlatformReport:                "platform.report",
	TypePlatformRestoreStart:          "platform.restoreStart",
	TypePlatformRestoreRuntimeDone:    "platform.restoreRuntimeDone",
	TypePlatformRestoreReport:         "platform.restoreReport",
	TypePlatformExtension:             "platform.extension",
	TypePlatformTelemetrySubscription: "platform.telemetrySubscription",
	TypePlatformLogsDropped:           "platform.logsDropped",
}

// String returns the event type as Lambda spells it, "" for TypeNone and
// TypeOther.
func (t Type) String() string {
	if t < numTypes {
		return typeNames[t]
	}
	return ""
}

// lookupType maps a decoded type value to its Type. The switch on a
// converted []byte does not allocate.
func lookupType(s []byte) Type {
	switch string(s) {
	case "function":
		return TypeFunction
	case "extension":
		return TypeExtension
	case "platform.initStart":
		return TypePlatformInitStart
	case "platform.initRuntimeDone":
		return TypePlatformInitRuntimeDone
	case "platform.initReport":
		return TypePlatformInitReport
	case "platform.start":
		return TypePlatformStart
	case "platform.runtimeDone":
		return TypePlatformRuntimeDone
	case "platform.report":
		return TypePlatformReport
	case "platform.restoreStart":
		return TypePlatformRestoreStart
	case "platform.restoreRuntimeDone":
		return TypePlatformRestoreRuntimeDone
	case "platform.restoreReport":
		return TypePlatformRestoreReport
	case "platform.extension":
		return TypePlatformExtension
	case "platform.telemetrySubscription":
		return TypePlatformTelemetrySubscription
	case "platform.logsDropped":
		return TypePlatformLogsDropped
	}
	return TypeOther
}

// typeOf decodes the raw content of a "type" string (escaped tells whether it
// holds a backslash) and returns its Type.
func typeOf(raw []byte, escaped bool) Type {
	if !escaped {
		return lookupType(raw)
	}
	var buf [64]byte // longer than every known type
	n, ok := unescapeInto(buf[:], raw)
	if !ok {
		return TypeOther
	}
	return lookupType(buf[:n])
}

// SplitArray validates body as a JSON array of objects and appends one Event
// per element to dst, returning the extended slice.
//
// It accepts exactly what encoding/json accepts as a JSON array whose
// elements are all objects: whitespace anywhere JSON allows it, any nesting
// up to encoding/json's depth limit, strings with every escape (\uXXXX
// included, lone surrogates too). Like encoding/json it does not validate
// UTF-8: bytes 0x80-0xFF inside strings are accepted as they are, and the
// listener passes them on unchanged. Anything else (invalid JSON, trailing
// data, a top-level value that is not an array, an element that is not an
// object) gives a *SyntaxError, and dst is returned with its original
// length (its capacity may have grown).
//
// SplitArray builds no tree and does not allocate, except to grow dst and
// for the error (SplitArrayTo not even for that). The returned offsets
// refer to body; it is safe to call from concurrent goroutines.
func SplitArray(body []byte, dst []Event) ([]Event, error) {
	var se SyntaxError
	events, err := SplitArrayTo(body, dst, &se)
	if err != nil {
		e := se // only the error's copy escapes
		return events, &e
	}
	return events, nil
}

// SplitArrayTo is SplitArray that writes a syntax error to *se and returns
// se as the error, so that a malformed body costs no allocation either.
func SplitArrayTo(body []byte, dst []Event, se *SyntaxError) ([]Event, error) {
	s := scanner{b: body}
	events, err := s.split(dst)
	if err != nil {
		*se = s.fail
		return events, se
	}
	return events, nil
}

// split is SplitArray's work; it returns errSplit with the error in s.fail.
func (s *scanner) split(dst []Event) ([]Event, error) {
	n0 := len(dst)
	body := s.b
	i := skipWS(body, 0)
	if i == len(body) {
		return dst, s.malformed(i, "empty body")
	}
	if body[i] != '[' {
		return dst, s.failed(ErrNotArray, i, "the body must start with '['")
	}
	i = skipWS(body, i+1)
	if i < len(body) && body[i] == ']' {
		i++
	} else {
		for {
			if i == len(body) {
				return dst[:n0], s.malformed(i, "unexpected end of body")
			}
			if body[i] != '{' {
				return dst[:n0], s.failed(ErrNotObject, i, "each element must start with '{'")
			}
			var ev Event
			var err error
			ev, i, err = s.event(i)
			if err != nil {
				return dst[:n0], err
			}
			dst = append(dst, ev)
			i = skipWS(body, i)
			if i == len(body) {
				return dst[:n0], s.malformed(i, "unexpected end of body")
			}
			if body[i] == ']' {
				i++
				break
			}
			if body[i] != ',' {
				return dst[:n0], s.malformed(i, "expected ',' or ']' after an element")
			}
			i = skipWS(body, i+1)
		}
	}
	if i = skipWS(body, i); i != len(body) {
		return dst[:n0], s.malformed(i, "data after the array")
	}
	return dst, nil
}

// scanner validates JSON values. It lives on the caller's stack; objects
// records, bit per nesting depth, whether the container open at that depth
// is an object (1) or an array (0).
type scanner struct {
	b       []byte
	fail    SyntaxError // the syntax error found, when a method returned errSplit
	objects [maxDepth/64 + 1]uint64
}

func (s *scanner) push(depth int, object bool) {
	w, m := depth>>6, uint64(1)<<(depth&63)
	if object {
		s.objects[w] |= m
	} else {
		s.objects[w] &^= m
	}
}

func (s *scanner) isObject(depth int) bool {
	return s.objects[depth>>6]&(uint64(1)<<(depth&63)) != 0
}

// event scans the object at b[i] == '{', an element of the top-level array
// (depth 2), noting its "type" and "record" members. It returns the index
// just past the object.
func (s *scanner) event(i int) (Event, int, error) {
	b := s.b
	ev := Event{Start: i}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		ev.End = i + 1
		return ev, i + 1, nil
	}
	for {
		if i == len(b) {
			return ev, i, s.malformed(i, "unexpected end of body")
		}
		if b[i] != '"' {
			return ev, i, s.malformed(i, "expected a string key")
		}
		ks := i + 1
		end, kesc, err := s.scanString(b, i)
		if err != nil {
			return ev, end, err
		}
		key := b[ks : end-1]
		if i = skipWS(b, end); i == len(b) || b[i] != ':' {
			return ev, i, s.malformed(i, "expected ':' after a key")
		}
		i = skipWS(b, i+1)
		vs := i
		switch {
		case keyIs(key, kesc, "type"):
			if i < len(b) && b[i] == '"' {
				var vesc bool
				if i, vesc, err = s.scanString(b, i); err != nil {
					return ev, i, err
				}
				ev.TypeStart, ev.TypeEnd = vs+1, i-1
				ev.Type = typeOf(b[vs+1:i-1], vesc)
			} else {
				if i, err = s.value(i, 2); err != nil {
					return ev, i, err
				}
				ev.TypeStart, ev.TypeEnd, ev.Type = 0, 0, TypeNone
			}
		case keyIs(key, kesc, "record"):
			if i, err = s.value(i, 2); err != nil {
				return ev, i, err
			}
			ev.RecordStart, ev.RecordEnd = vs, i
		default:
			if i, err = s.value(i, 2); err != nil {
				return ev, i, err
			}
		}
		i = skipWS(b, i)
		if i == len(b) {
			return ev, i, s.malformed(i, "unexpected end of body")
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			ev.End = i + 1
			return ev, i + 1, nil
		default:
			return ev, i, s.malformed(i, "expected ',' or '}' in an object")
		}
	}
}

// keyIs reports whether the raw key content equals want (ASCII), decoding
// escapes when there are any.
func keyIs(raw []byte, escaped bool, want string) bool {
	if !escaped {
		return string(raw) == want
	}
	if len(raw) > 6*len(want) {
		return false
	}
	var buf [64]byte
	n, ok := unescapeInto(buf[:], raw)
	return ok && string(buf[:n]) == want
}

// value validates the JSON value starting at b[i] (after optional
// whitespace), found inside a container at nesting depth base. It returns
// the index just past the value. It walks nested containers with an explicit
// stack, never recursion.
func (s *scanner) value(i, base int) (int, error) {
	b := s.b
	depth := base
	for {
		// A value starts at b[i] (after whitespace).
		i = skipWS(b, i)
		if i == len(b) {
			return i, s.malformed(i, "unexpected end of body")
		}
		var err error
		switch c := b[i]; c {
		case '{':
			if depth++; depth > maxDepth {
				return i, s.malformed(i, "nesting too deep")
			}
			s.push(depth, true)
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				depth--
				break
			}
			if i, err = s.key(i); err != nil {
				return i, err
			}
			continue // the member's value
		case '[':
			if depth++; depth > maxDepth {
				return i, s.malformed(i, "nesting too deep")
			}
			s.push(depth, false)
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				depth--
				break
			}
			continue // the first element
		case '"':
			if i, _, err = s.scanString(b, i); err != nil {
				return i, err
			}
		case 't':
			if i, err = s.literal(b, i, "true"); err != nil {
				return i, err
			}
		case 'f':
			if i, err = s.literal(b, i, "false"); err != nil {
				return i, err
			}
		case 'n':
			if i, err = s.literal(b, i, "null"); err != nil {
				return i, err
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return i, s.malformed(i, "invalid character where a value was expected")
			}
			if i, err = s.scanNumber(b, i); err != nil {
				return i, err
			}
		}
		// A value ended at b[i]: close containers until one continues.
	closing:
		for {
			if depth == base {
				return i, nil
			}
			i = skipWS(b, i)
			if i == len(b) {
				return i, s.malformed(i, "unexpected end of body")
			}
			c := b[i]
			if s.isObject(depth) {
				switch c {
				case ',':
					if i, err = s.key(skipWS(b, i+1)); err != nil {
						return i, err
					}
					break closing
				case '}':
					i++
					depth--
				default:
					return i, s.malformed(i, "expected ',' or '}' in an object")
				}
			} else {
				switch c {
				case ',':
					i++
					break closing
				case ']':
					i++
					depth--
				default:
					return i, s.malformed(i, "expected ',' or ']' in an array")
				}
			}
		}
	}
}

// key scans `"key" :` at b[i] and returns the index just past the colon.
func (s *scanner) key(i int) (int, error) {
	b := s.b
	if i == len(b) {
		return i, s.malformed(i, "unexpected end of body")
	}
	if b[i] != '"' {
		return i, s.malformed(i, "expected a string key")
	}
	i, _, err := s.scanString(b, i)
	if err != nil {
		return i, err
	}
	if i = skipWS(b, i); i == len(b) || b[i] != ':' {
		return i, s.malformed(i, "expected ':' after a key")
	}
	return i + 1, nil
}

func skipWS(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return i
		}
	}
	return i
}

func (s *scanner) literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, s.malformed(i, "invalid literal")
	}
	return i + len(lit), nil
}

// scanNumber scans a JSON number at b[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// What follows it is checked by the caller.
func (s *scanner) scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return i, s.malformed(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, s.malformed(start, "invalid number")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, s.malformed(start, "invalid number")
		}
		i = j
	}
	return i, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// SWAR constants: one byte repeated across a word.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = '"' * ones
	slashs = '\\' * ones
	ctrls  = 0x20 * ones
)

// special returns a word whose lowest set bit is the high bit of the first
// byte of x (little-endian) that is '"', '\\' or below 0x20, or 0 when there
// is none. Higher bits may be false positives (borrows), the lowest is not.
func special(x uint64) uint64 {
	q := x ^ quotes
	s := x ^ slashs
	return ((q - ones) &^ q & highs) | ((s - ones) &^ s & highs) | ((x - ctrls) &^ x & highs)
}

// scanString scans the JSON string at b[i] == '"'. It returns the index just
// past the closing quote and whether the string holds escapes. Bytes 0x80 and
// above pass unchecked, as in encoding/json.
func (s *scanner) scanString(b []byte, i int) (int, bool, error) {
	start := i
	i++
	escaped := false
	for {
		// Fast path: eight bytes at a time while none needs a look.
		for i+8 <= len(b) {
			if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return i, escaped, s.malformed(start, "unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 == len(b) {
				return i + 1, escaped, s.malformed(start, "unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 {
					return len(b), escaped, s.malformed(start, "unterminated string")
				}
				for _, h := range b[i+2 : i+6] {
					if hexVal(h) < 0 {
						return i, escaped, s.malformed(i, "invalid \\u escape")
					}
				}
				i += 6
			default:
				return i, escaped, s.malformed(i, "invalid escape")
			}
		case c < 0x20:
			return i, escaped, s.malformed(i, "control character in string")
		default:
			i++
		}
	}
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
