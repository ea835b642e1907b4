package listener

// Member exposes member for tests.
func Member(obj []byte, key string) []byte { return member(obj, key) }

// Unescape decodes the content of a valid JSON string into a fresh slice.
func Unescape(raw []byte) ([]byte, bool) {
	dst := make([]byte, 3*len(raw))
	n, ok := unescapeInto(dst, raw)
	return dst[:n], ok
}

// AppendEscaped exposes appendEscaped and escapedLen for tests.
func AppendEscaped(dst, p []byte) []byte { return appendEscaped(dst, p) }
func EscapedLen(p []byte) (int, bool)    { return escapedLen(p) }
