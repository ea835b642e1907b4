// Package ipv4 parses dotted-decimal IPv4 addresses as netip.ParseAddr
// does, for packages config and earlysub, which Go must initialise before
// net and net/netip (see earlysub's TestInitialisedRightAfterAtstart): it
// imports nothing.
package ipv4

// Parse parses s as four decimal fields of 0–255 joined by '.', without
// leading zeros, and reports whether it is one.
func Parse(s string) (ip [4]byte, ok bool) {
	for i := range ip {
		n, v := 0, 0
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			v = v*10 + int(s[n]-'0')
			n++
			if n > 3 {
				return ip, false
			}
		}
		if n == 0 || n > 1 && s[0] == '0' || v > 255 {
			return ip, false
		}
		ip[i] = byte(v)
		s = s[n:]
		if i < 3 {
			if s == "" || s[0] != '.' {
				return ip, false
			}
			s = s[1:]
		}
	}
	return ip, s == ""
}
