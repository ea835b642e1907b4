package config

import (
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
