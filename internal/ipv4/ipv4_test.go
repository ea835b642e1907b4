package ipv4

import (
	"net/netip"
	"testing"
)

// FuzzParse: Parse accepts exactly the IPv4 addresses netip.ParseAddr
// accepts (Go's resolver parses /etc/hosts with it, and url.Parse the tail
// of an IPv6 literal), with the same value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
		"1..2.3", "::1", "1.2.3.4%eth0", "", "+1.2.3.4", "1.2.3.-4", "0x1.2.3.4", "1.2.3.4 ", "1.2.3.4.", "1234.1.1.1", "1.2.3.0000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, ok := Parse(s)
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Is4()
		if ok != wantOK || ok && ip != want.As4() {
			t.Fatalf("%q: unexpected %v, %v; netip.ParseAddr gives %v, %v", s, ip, ok, want, err)
		}
	})
}
