package jsonesc_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// TestAppendStringRoundTrips: encoding/json reads back what AppendString
// writes, byte for byte for valid UTF-8 and with U+FFFD for invalid bytes,
// and EscapedLen is the length written.
func TestAppendStringRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "tab\tnl\nnul\x00\x1f\b\f\x7f", "ünïcødé ✓ 𝄞", "bad\xffutf8\xc3", "\u2028",
		strings.Repeat("k", 300)} {
		got := jsonesc.AppendString([]byte("x"), s)
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil {
			t.Fatalf("unexpected invalid JSON %q for %q: %v", got, s, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back != want && utf8.ValidString(s) {
			t.Fatalf("unexpected round trip %q; want %q", back, want)
		}
		if !utf8.Valid(got) {
			t.Fatalf("unexpected invalid UTF-8 in the JSON %q written for %q", got, s)
		}
		if n, valid := jsonesc.EscapedLen([]byte(s)); n != len(got)-3 || valid != utf8.ValidString(s) {
			t.Fatalf("unexpected EscapedLen %d, %v for %q; wrote %d", n, valid, s, len(got)-3)
		}
	}
	key := strings.Repeat("k", 256)
	dst := make([]byte, 0, 512)
	if a := testing.AllocsPerRun(100, func() { dst = jsonesc.AppendString(dst[:0], key) }); a != 0 {
		t.Fatalf("unexpected %.0f allocations; want 0", a)
	}
}

// TestAppendStringEncodings: the exact bytes written for each kind of
// character.
func TestAppendStringEncodings(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got := string(jsonesc.AppendString(nil, in))
		if got != want {
			t.Fatalf("unexpected encoding of %q; got %s; want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("unexpected invalid JSON %s: %v", got, err)
		}
	}
	f("", `""`)
	f("plain", `"plain"`)
	f("a\"b\\c", `"a\"b\\c"`)
	f("tab\tnl\ncr\r", `"tab\tnl\ncr\r"`)
	f("\x00\x1f", `"\u0000\u001f"`)
	f("héllo ✓", `"héllo ✓"`)
	f("bad\xffutf8", `"bad\ufffdutf8"`)
}

// TestASCIILen: the written-out table is the length of each ASCII byte as
// AppendEscaped writes it, and as encoding/json writes it when it does not
// escape HTML.
func TestASCIILen(t *testing.T) {
	for c := range utf8.RuneSelf {
		got := len(jsonesc.AppendEscaped(nil, []byte{byte(c)}))
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(string(rune(c))); err != nil {
			t.Fatal(err)
		}
		want := b.Len() - len(`""`+"\n")
		if jsonesc.ASCIILen[c] != want || got != want {
			t.Errorf("unexpected length of byte %#02x: table %d, AppendEscaped %d; want %d", c, jsonesc.ASCIILen[c], got, want)
		}
	}
}
