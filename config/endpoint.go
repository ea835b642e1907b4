package config

import "github.com/kte-dev/kinesis-telemetry-extension/internal/ipv4"

// The checks of the two addresses Load reads: the Runtime API's host:port
// and the Kinesis endpoint URL. They give the answers of net.SplitHostPort
// and url.Parse (with netip.ParseAddr behind it) without importing net,
// net/url or net/netip, which Go initialises late: package earlysub loads
// the configuration during package initialisation, and this package's
// imports would hold it back (see text.go). FuzzValidHostPort and
// FuzzValidEndpoint hold these functions to the standard library's answers
// for every string; keep them in step when Go changes its rules.

// validHostPort accepts the host:port strings that net.SplitHostPort splits
// into a non-empty host and a port of decimal digits in 1–65535: "h:9001",
// "127.0.0.1:9001" or "[::1]:9001". The host is not checked further.
func validHostPort(s string) bool {
	colon := lastIndexByte(s, ':') // the port follows the last ':'
	if colon < 0 {
		return false
	}
	host, port := s[:colon], s[colon+1:]
	if hasPrefix(host, "[") {
		// "[host]:port": the first ']' must be the one just before the last ':'.
		if host[len(host)-1] != ']' {
			return false
		}
		host = host[1 : len(host)-1]
	} else if indexByte(host, ':') >= 0 {
		return false
	}
	if host == "" || indexByte(host, '[') >= 0 || indexByte(host, ']') >= 0 {
		return false
	}
	p, ok := parseUint(port)
	return ok && p >= 1 && p <= 65535
}

// ValidEndpoint accepts an absolute http or https URL with a host name, as
// the SDK's HTTP client needs its endpoint: exactly the strings s for which
// url.Parse(s) succeeds with the scheme "http" or "https" (in any case) and
// a non-empty Hostname(). So "http://localhost:4566" and
// "https://[fe80::1%25en0]/" are valid; "localhost:4566", "ftp://h",
// "http://:80" and "http://h:x" are not.
func ValidEndpoint(s string) bool {
	u, frag := s, ""
	if i := indexByte(s, '#'); i >= 0 {
		u, frag = s[:i], s[i+1:]
	}
	if hasControlByte(u) || !validEscapes(frag) {
		return false
	}
	rest, ok := cutHTTPScheme(u)
	if !ok {
		return false
	}
	if i := indexByte(rest, '?'); i >= 0 {
		rest = rest[:i] // url.Parse does not check the query
	}
	if rest, ok = cutPrefix(rest, "//"); !ok {
		return false // no authority, so no host
	}
	authority, path := rest, ""
	if i := indexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	return validAuthority(authority) && validEscapes(path)
}

// cutHTTPScheme returns what follows "http:" or "https:", in any case, at
// the start of s.
func cutHTTPScheme(s string) (string, bool) {
	for _, scheme := range [...]string{"http:", "https:"} {
		if len(s) < len(scheme) {
			continue
		}
		i := 0
		for i < len(scheme) && (s[i] == scheme[i] || 'A' <= s[i] && s[i] <= 'Z' && s[i]+('a'-'A') == scheme[i]) {
			i++
		}
		if i == len(scheme) {
			return s[i:], true
		}
	}
	return "", false
}

// validAuthority accepts the [userinfo@]host[:port] of an http URL as
// url.Parse does, with a non-empty host name.
func validAuthority(a string) bool {
	host := a
	if i := lastIndexByte(a, '@'); i >= 0 {
		if !validUserinfo(a[:i]) {
			return false
		}
		host = a[i+1:]
	}
	if hasPrefix(host, "[") {
		return validIPLiteral(host)
	}
	return validRegName(host)
}

// validUserinfo accepts what url.Parse accepts before the last '@' of the
// authority: ASCII letters, digits and -._:~!$&'()*+,;=@, and %-escapes.
func validUserinfo(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && indexByte("-._:~!$&'()*+,;=%@", c) < 0 {
			return false
		}
	}
	return validEscapes(s)
}

// validRegName accepts a host name with an optional port, name[:digits],
// as url.Parse does for http: name is not empty and holds no '[', every
// ASCII byte in it is one url.Parse allows in a host, and a %-escape
// stands for a non-ASCII byte or is "%25". A second ':' is refused, as Go
// has done since 1.26 for http and https (GODEBUG urlstrictcolons).
func validRegName(h string) bool {
	name, port := h, ""
	if i := indexByte(h, ':'); i >= 0 {
		name, port = h[:i], h[i+1:]
	}
	if name == "" || !allDigits(port) {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '%':
			if i+2 >= len(name) || !isHex(name[i+1]) || !isHex(name[i+2]) {
				return false
			}
			if unhex(name[i+1]) < 8 && name[i:i+3] != "%25" {
				return false // an escaped ASCII byte
			}
			i += 2
		case c == '[':
			return false
		case c < 0x80 && !isHostByte(c):
			return false
		}
	}
	return true
}

// validIPLiteral accepts a bracketed IPv6 address with an optional zone and
// port, "[addr%25zone]:digits", as url.Parse does: addr is an IPv6 address
// that netip.ParseAddr accepts (IPv4-mapped ones too, not IPv4), and the
// zone, if present, is not empty and holds bytes url.Parse allows in a
// host, a space, or %-escapes of those.
func validIPLiteral(h string) bool {
	if lastIndexByte(h, '[') != 0 {
		return false
	}
	end := lastIndexByte(h, ']')
	if end < 0 {
		return false
	}
	if port := h[end+1:]; port != "" && (port[0] != ':' || !allDigits(port[1:])) {
		return false
	}
	addr := h[1:end]
	for i := 0; i+3 <= len(addr); i++ {
		if addr[i:i+3] == "%25" {
			zone := addr[i+3:]
			if zone == "" || !validZone(zone) {
				return false
			}
			addr = addr[:i]
			break
		}
	}
	return validIPv6(addr)
}

// validZone accepts the text after "%25" in a bracketed host as url.Parse
// does: bytes allowed in a host, non-ASCII bytes, and %-escapes of host
// bytes, of a space and of '%'.
func validZone(z string) bool {
	for i := 0; i < len(z); i++ {
		c := z[i]
		if c != '%' {
			if c < 0x80 && !isHostByte(c) {
				return false
			}
			continue
		}
		if i+2 >= len(z) || !isHex(z[i+1]) || !isHex(z[i+2]) {
			return false
		}
		if v := unhex(z[i+1])<<4 | unhex(z[i+2]); v != '%' && v != ' ' && (v >= 0x80 || !isHostByte(v)) {
			return false
		}
		i += 2
	}
	return true
}

// validIPv6 accepts an IPv6 address without a zone as netip.ParseAddr does:
// up to eight groups of 1–4 hex digits joined by ':', at most one "::"
// standing for one or more zero groups, and optionally a dotted IPv4
// address in place of the last two groups.
func validIPv6(s string) bool {
	groups := 0 // 16-bit groups read; an IPv4 address counts two
	ellipsis := false
	if s, ellipsis = cutPrefix(s, "::"); ellipsis && s == "" {
		return true
	}
	for groups < 8 {
		n := 0
		for n < len(s) && isHex(s[n]) {
			n++
			if n > 4 {
				return false
			}
		}
		if n == 0 {
			return false
		}
		if n < len(s) && s[n] == '.' {
			if !ellipsis && groups != 6 || groups > 6 || !isIPv4(s) {
				return false
			}
			groups += 2
			s = ""
			break
		}
		groups++
		s = s[n:]
		if s == "" {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis {
				return false
			}
			ellipsis = true
			if s = s[1:]; s == "" {
				break
			}
		}
	}
	if s != "" {
		return false
	}
	if ellipsis {
		return groups < 8 // "::" stands for at least one zero group
	}
	return groups == 8
}

// validEscapes reports whether every '%' in s starts a %-escape of two hex
// digits, as url.Parse wants in the userinfo, path and fragment.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// hasControlByte reports whether s holds an ASCII control byte, which
// url.Parse refuses anywhere before the fragment.
func hasControlByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// isHostByte reports whether url.Parse allows the ASCII byte c unescaped in
// a host: letters, digits and -_.~!$&'()*+,;=:[]<>".
func isHostByte(c byte) bool {
	return isAlnum(c) || indexByte(`-_.~!$&'()*+,;=:[]<>"`, c) >= 0
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex is the value of the hex digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isIPv4 reports whether s is a dotted IPv4 address as netip.ParseAddr
// reads one.
func isIPv4(s string) bool {
	_, ok := ipv4.Parse(s)
	return ok
}
