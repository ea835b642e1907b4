// Package jsonesc writes JSON string contents: what the listener's
// enrichment and wrapped records, the packer's PutRecords bodies and the
// local Lambda simulator's events share.
// Quotes, backslashes and control characters are escaped, and invalid UTF-8
// is replaced by U+FFFD, as encoding/json does. It allocates nothing when
// dst has room.
package jsonesc

import (
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// EscapedLen returns the length of p encoded by AppendEscaped (without the
// quotes) and whether p is valid UTF-8.
func EscapedLen(p []byte) (int, bool) {
	n, valid := 0, true
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			n += ASCIILen[c]
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			valid = false
			n += 6 // \ufffd
		} else {
			n += size
		}
		i += size
	}
	return n, valid
}

// AppendEscaped appends p as the content of a JSON string (no quotes):
// '"' and '\\' and control characters escaped, invalid UTF-8 replaced by
// \ufffd. Callers that must not lose bytes check validity first (EscapedLen).
func AppendEscaped(dst, p []byte) []byte {
	start := 0
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if ASCIILen[c] == 1 {
				i++
				continue
			}
			dst = append(dst, p[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, p[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(dst, p[start:]...)
}

// AppendString appends s as a quoted JSON string.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// A read-only view of s: AppendEscaped does not write p, and the view
	// spares a copy (an allocation for keys over 32 bytes) per call.
	dst = AppendEscaped(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
	return append(dst, '"')
}

// ASCIILen is the encoded length of each ASCII byte in a JSON string. It
// is written out rather than computed so that it is data in the executable,
// not an initialiser that every cold start runs.
var ASCIILen = [utf8.RuneSelf]int{
	6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 6, 2, 2, 6, 6, // 0x00-0x0f: \b \t \n \f \r are two bytes, the rest \u00XX
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, // 0x10-0x1f
	1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x20-0x2f: '"'
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, // 0x50-0x5f: '\\'
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
}
