package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseBytes checks that ParseBytes never panics, that every size it
// accepts formats back to text that parses to the same size, and that the
// result stays in [0, 2^62].
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"0", "1", "1024", "1KiB", "1 MiB", "5MiB", "1GiB", "1MB", "1.5MiB", "-1", "", "4294967296GiB", "99999999999999999999B", "1kib", "12 kB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 {
			return
		}
		n, err := ParseBytes(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("unexpected value with error for %q; got %d; want 0", s, n)
			}
			return
		}
		if n < 0 || n > maxSize {
			t.Fatalf("unexpected size for %q; got %d; want in [0, 2^62]", s, n)
		}
		text := FormatBytes(n)
		back, err := ParseBytes(text)
		if err != nil || back != n {
			t.Fatalf("unexpected round trip for %q: FormatBytes(%d) = %q parses to %d, %v", s, n, text, back, err)
		}
	})
}

// FuzzFormatBytes checks the other direction: every size in range formats to
// text that parses back exactly.
func FuzzFormatBytes(f *testing.F) {
	for _, n := range []int64{0, 1, 1023, 1024, 1 << 20, 5 << 20, 1 << 30, 1 << 62} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		if n < 0 {
			n = -(n + 1)
		}
		n %= maxSize + 1
		got, err := ParseBytes(FormatBytes(n))
		if err != nil || got != n {
			t.Fatalf("unexpected round trip of %d via %q; got %d, %v", n, FormatBytes(n), got, err)
		}
	})
}

// FuzzLoad sets one variable (picked by index) to arbitrary text and checks
// that Load never panics, and that any error names exactly that variable with
// its quoted value.
func FuzzLoad(f *testing.F) {
	for i, v := range Vars {
		f.Add(uint8(i), v.value)
		f.Add(uint8(i), v.value+"x")
	}
	f.Add(uint8(0), "arn:aws:kinesis:eu-west-1:111122223333:stream/s")
	f.Fuzz(func(t *testing.T, idx uint8, value string) {
		if len(value) > 512 {
			return
		}
		name := Vars[int(idx)%len(Vars)].Name
		env := map[string]string{"KTE_STREAM": "s", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", name: value}
		_, err := Load(mapLookup(env))
		if err == nil {
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, name+"="+strconv.Quote(value)+": must be ") {
			t.Fatalf("unexpected error for %s=%q: %v", name, value, err)
		}
		if strings.Contains(msg, "\n") {
			t.Fatalf("unexpected several errors for one variable %s=%q: %v", name, value, err)
		}
	})
}

// FuzzValidHostPort checks that validHostPort gives, for every string, the
// answer of the net.SplitHostPort code it replaces.
func FuzzValidHostPort(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:9001", "localhost:9001", "[::1]:80", "[fe80::1%en0]:80", "a:b:c", "[a]b:1", ":1", "h:", "[]:1",
		"h:65535", "h:65536", "h:0", "h:00080", "h:+1", "h:-1", "h:0x1", "h: 1", "h:1 ", "[h]:1", "[h:1", "h]:1",
		"[h]]:1", "[[h]:1", "h[:1", "[h]:[1", "[h]1:2", "[h]:1]", "[h]x:1", "[h]::1", "[:1", "[]", "[", "]:1", "",
		":", "h", "h:1:2", "[a:b]:1", "h:1234567890", "h:999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validHostPort(s), refValidHostPort(s); got != want {
			t.Fatalf("unexpected validHostPort(%q); got %v; want %v (net.SplitHostPort)", s, got, want)
		}
	})
}

// refValidHostPort is validHostPort as it was written over net.SplitHostPort.
func refValidHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	p, ok := parseUint(port)
	return ok && p >= 1 && p <= 65535
}

// FuzzValidEndpoint checks that ValidEndpoint gives, for every string, the
// answer of the url.Parse code it replaces.
func FuzzValidEndpoint(f *testing.F) {
	for _, s := range endpointSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidEndpoint(s), refValidEndpoint(s); got != want {
			t.Fatalf("unexpected ValidEndpoint(%q); got %v; want %v (url.Parse)", s, got, want)
		}
	})
}

// refValidEndpoint is ValidEndpoint as it was written over url.Parse.
func refValidEndpoint(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}

// endpointSeeds are FuzzValidEndpoint's seeds; TestValidEndpointSeeds runs
// them without -fuzz too.
var endpointSeeds = []string{
	// Common endpoints.
	"http://localhost:4566", "https://kinesis.us-east-1.amazonaws.com", "http://127.0.0.1:4567/",
	"https://vpce-0123-abcd.kinesis.us-east-1.vpce.amazonaws.com", "ftp://h", "localhost:4567", "",
	// Schemes.
	"HTTPS://x", "HtTp://x", "http:x", "http:/x", "http:///x", "http:", "http://", "https:", "httpx://h",
	"htt://h", "1http://h", ":http://h", "://h", "*", "http//h", "xhttp://h", "http:\u017f//h", "httpſ://h",
	// Hosts and ports.
	"http://:80", "http://h:", "http://h:80", "http://h:8x", "http://h:x", "http://h::80", "http://h:80:90",
	"http://h:+1", "http://h:0", "http://h:99999999999", "http://a:b@h", "http://h]", "http://h]:1", "http://h[",
	"http://h[]", "http://[", "http://]", "http://[]", "http://[]:80", "http://h%41", "http://%41", "http://%e2%82%ac",
	"http://%E2%82%AC", "http://h%25", "http://h%2", "http://h%", "http://h%zz", "http://h%80", "http://h%7f",
	"http://%25", "http://h\u20ac", "http://h\xff", "http://h\x00", "http://h\x7f", "http://h h", "http://h\\x",
	"http://h^", "http://h`", "http://h{", "http://h|", "http://h}", "http://h<>\"", "http://!$&'()*+,;=",
	"http://h-_.~", "http://h:80?", "http://h?:x", "http://h#:x", "http://?", "http://#",
	// IPv6 literals.
	"http://[::1]", "http://[::1]:80", "http://[::1]:", "http://[::1]:x", "http://[::1]x", "http://[::1]]",
	"http://[::1]]:80", "http://x[::1]", "http://[[::1]", "http://[::]", "http://[:]", "http://[:::]",
	"http://[1::2::3]", "http://[1:2:3:4:5:6:7:8]", "http://[1:2:3:4:5:6:7:8:9]", "http://[1:2:3:4:5:6:7]",
	"http://[1:2:3:4:5:6:7::]", "http://[::1:2:3:4:5:6:7]", "http://[1:2:3:4:5:6:7:8::]", "http://[::1:2:3:4:5:6:7:8]",
	"http://[12345::]", "http://[ffff::]", "http://[FFFF::]", "http://[g::]", "http://[::ffff:1.2.3.4]",
	"http://[::1.2.3.4]", "http://[1.2.3.4]", "http://[1.2.3.4%25x]", "http://[1:2:3:4:5:6:1.2.3.4]",
	"http://[1:2:3:4:5:1.2.3.4]", "http://[1:2:3:4:5:6:7:1.2.3.4]", "http://[1::1.2.3.4]", "http://[::1.2.3]",
	"http://[::1.2.3.4.5]", "http://[0:0:0:0:0::0.0.0.0]", "http://[1:2:3:4:5::1.2.3.4]",
	"http://[1:2:3:4:5:6::1.2.3.4]", "http://[1:2:3:4::5:1.2.3.4]", "http://[::01.2.3.4]", "http://[::1.2.3.256]", "http://[::1.2.3.4:5]",
	"http://[::1.2.3.]", "http://[::1..3.4]", "http://[::0.0.0.0]", "http://[::a.2.3.4]", "http://[::1234.2.3.4]",
	"http://[fe80::1%25en0]", "http://[fe80::1%25en0]:80", "http://[fe80::1%25]", "http://[fe80::1%en0]",
	"http://[fe80::1%2]", "http://[fe80::1%25%25]", "http://[fe80::1%25%20]", "http://[fe80::1%25%41]",
	"http://[fe80::1%25%00]", "http://[fe80::1%25%80]", "http://[fe80::1%25%zz]", "http://[fe80::1%25a%2]",
	"http://[fe80::1%25a b]", "http://[fe80::1%25a]b]", "http://[fe80::1%25a:]", "http://[fe80::1%25\u20ac]",
	"http://[fe80::1%25a/b]", "http://[%25en0]", "http://[:%25x]", "http://[::%25x]", "http://[::1%25x%25y]",
	"http://[::%41]", "http://[::1%41]", "http://[::ffff:1.2.3.4%25x]", "http://[::1]%41",
	// Userinfo.
	"http://u@h", "http://u:p@h", "http://u:p@ss@h", "http://@h", "http://u@", "http://u@:80", "http://u%41@h",
	"http://u%4@h", "http://u%@h", "http://u%zz:p@h", "http://u:p%zz@h", "http://u p@h", "http://u\u20ac@h",
	"http://u/p@h", "http://u[@h", "http://u]@h", "http://-._:~!$&'()*+,;=%41@h", "http://u@[::1]",
	"http://[::1]@h", "http://h@[::1", "http://u\"@h",
	// Path, query and fragment.
	"http://h/%zz", "http://h/%41", "http://h/%4", "http://h/a b", "http://h/\u20ac", "http://h/%",
	"http://h?%zz", "http://h?a\x00", "http://h#%zz", "http://h#%41", "http://h#a\x00", "http://h#\x7f",
	"http://x?y#%zz", "http://x?y#%", "http://h/p?q#f#g", "http://h#/%zz", "http://h?#", "http://h/?/%zz",
	"http://h\t", "\x00http://h", "http://h/\n",
}
