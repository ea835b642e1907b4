package config

import (
	"fmt"
	"testing"
)

// TestValidEndpoint shows what ValidEndpoint makes of the endpoints people
// set; FuzzValidEndpoint holds it to url.Parse for everything else.
func TestValidEndpoint(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := ValidEndpoint(s); got != want {
			t.Fatalf("unexpected ValidEndpoint(%q); got %v; want %v", s, got, want)
		}
	}
	f("http://localhost:4567", true)
	f("https://kinesis.us-east-1.amazonaws.com", true)
	f("http://127.0.0.1:4567/", true)
	f("https://vpce-0123-abcd.kinesis.us-east-1.vpce.amazonaws.com", true)
	f("HTTPS://kinesis.us-east-1.amazonaws.com", true)
	f("http://[::1]:4566", true)
	f("http://[fe80::1%25en0]:4566", true)
	f("http://user:pass@localhost:4566/path?q#frag", true)
	f("http://h:", true)
	f("ftp://h", false)
	f("localhost:4567", false)
	f("", false)
	f("http://", false)
	f("http://:4566", false)
	f("http:localhost", false)
	f("http://h:port", false)
	f("http://h:1:2", false)
	f("http://[1.2.3.4]", false)
	f("http://[::1", false)
	f("http://h/%zz", false)
	f("http://h#%zz", false)
	f("http://h?%zz", true)
}

// TestValidHostPort shows what validHostPort makes of Runtime API addresses;
// FuzzValidHostPort holds it to net.SplitHostPort for everything else.
func TestValidHostPort(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := validHostPort(s); got != want {
			t.Fatalf("unexpected validHostPort(%q); got %v; want %v", s, got, want)
		}
	}
	f("127.0.0.1:9001", true)
	f("localhost:9001", true)
	f("[::1]:9001", true)
	f("h:65535", true)
	f("h:65536", false)
	f("h:0", false)
	f("h:+1", false)
	f(":9001", false)
	f("[]:9001", false)
	f("a:b:9001", false)
	f("[a]b:9001", false)
	f("localhost", false)
	f("", false)
}

// TestValidEndpointSeeds checks FuzzValidEndpoint's seeds against url.Parse
// in every run, and FuzzValidHostPort's likewise.
func TestValidEndpointSeeds(t *testing.T) {
	for _, s := range endpointSeeds {
		if got, want := ValidEndpoint(s), refValidEndpoint(s); got != want {
			t.Fatalf("unexpected ValidEndpoint(%q); got %v; want %v (url.Parse)", s, got, want)
		}
	}
}

// TestValidEndpointBytes puts every byte, and every %-escape, in each part of
// a URL and compares ValidEndpoint with url.Parse: the character rules of
// the host, zone, userinfo, path, query and fragment, exhaustively.
func TestValidEndpointBytes(t *testing.T) {
	templates := []string{
		"http://a%sb", "http://%s", "http://a%s:80", "http://a:8%s", "http://[::1%%25a%sb]", "http://[::1%%25%s]",
		"http://[::%s1]", "http://[::1]%s", "http://u%sv@h", "http://h/%s", "http://h?%s", "http://h#%s", "%shttp://h",
		"http%s://h", "http:%s//h", "http:/%s/h",
	}
	var parts []string
	for c := 0; c < 256; c++ {
		parts = append(parts, string(rune(c)), string([]byte{byte(c)}), fmt.Sprintf("%%%02x", c), fmt.Sprintf("%%%02X", c))
	}
	parts = append(parts, "%", "%2", "%%", "%g0", "%0g", "%C3%A9", "%c3%a9", "\u20ac")
	for _, tmpl := range templates {
		for _, p := range parts {
			s := fmt.Sprintf(tmpl, p)
			if got, want := ValidEndpoint(s), refValidEndpoint(s); got != want {
				t.Fatalf("unexpected ValidEndpoint(%q); got %v; want %v (url.Parse)", s, got, want)
			}
		}
	}
}
