package listener

import (
	"unicode/utf16"
	"unicode/utf8"
)

// unescapeInto decodes the content of a valid JSON string (between the
// quotes) into dst the way encoding/json decodes strings: escapes resolved,
// surrogate pairs joined, lone surrogates and invalid UTF-8 replaced by
// U+FFFD. It reports false when dst is too small. It does not allocate.
func unescapeInto(dst, raw []byte) (int, bool) {
	n := 0
	put := func(r rune) bool {
		if len(dst)-n < utf8.RuneLen(r) {
			return false
		}
		n += utf8.EncodeRune(dst[n:], r)
		return true
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			var r rune
			switch raw[i+1] {
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				r = hex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = hex4(raw[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				if !put(r) {
					return n, false
				}
				continue
			default: // '"', '\\', '/'
				r = rune(raw[i+1])
			}
			if !put(r) {
				return n, false
			}
			i += 2
		case c < utf8.RuneSelf:
			if n == len(dst) {
				return n, false
			}
			dst[n] = c
			n++
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if !put(r) { // RuneError for invalid bytes, as encoding/json
				return n, false
			}
			i += size
		}
	}
	return n, true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | rune(hexVal(c))
	}
	return r
}

// member returns the raw value of the last member called key (ASCII) of
// obj, a valid JSON object such as an Event's record, or nil when there is
// none. It does not allocate. Use it on rare events only: it rescans obj.
func member(obj []byte, key string) []byte {
	var s scanner
	s.b = obj
	i := skipWS(obj, 0)
	if i == len(obj) || obj[i] != '{' {
		return nil
	}
	var found []byte
	i = skipWS(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		end, esc, err := s.scanString(obj, i)
		if err != nil {
			return nil
		}
		k := obj[i+1 : end-1]
		i = skipWS(obj, end) + 1 // past ':'
		vs := skipWS(obj, i)
		if i, err = s.value(vs, 0); err != nil {
			return nil
		}
		if keyIs(k, esc, key) {
			found = obj[vs:i]
		}
		i = skipWS(obj, i)
		if i == len(obj) || obj[i] != ',' {
			break
		}
		i = skipWS(obj, i+1)
	}
	return found
}

// parseCount returns the value of a raw JSON number that is a non-negative
// integer (digits only, as Lambda writes counts); ok is false otherwise or
// on overflow.
func parseCount(raw []byte) (uint64, bool) {
	if len(raw) == 0 || len(raw) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
