package config

import (
	"slices"
	"strings"
	"testing"
)

// FuzzText: the string functions over bytes give what package strings
// gives.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", " a b ", ",", "a,b,,c", "KiB", "kIb", "\u212aiB", "\u00a0x\u0085", "arn:aws:kinesis:r:1:stream/s", "x|y", "\xff,"} {
		f.Add(s, ",", 2)
		f.Add(s, ":", -1)
		f.Add(s, "", 0)
	}
	f.Fuzz(func(t *testing.T, s, sep string, n int) {
		n = n%8 - 1
		check := func(name string, got, want any) {
			t.Helper()
			if !equalAny(got, want) {
				t.Fatalf("%s(%q, %q, %d): got %q; want %q", name, s, sep, n, got, want)
			}
		}
		check("trimSpace", trimSpace(s), strings.TrimSpace(s))
		check("equalFold", equalFold(s, sep), strings.EqualFold(s, sep))
		check("toLower", toLower(s), strings.ToLower(s))
		check("hasPrefix", hasPrefix(s, sep), strings.HasPrefix(s, sep))
		a, ok := cutPrefix(s, sep)
		b, wantOK := strings.CutPrefix(s, sep)
		check("cutPrefix", []string{a, boolText(ok)}, []string{b, boolText(wantOK)})
		if len(sep) > 0 {
			check("indexByte", indexByte(s, sep[0]), strings.IndexByte(s, sep[0]))
			check("lastIndexByte", lastIndexByte(s, sep[0]), strings.LastIndexByte(s, sep[0]))
		}
		check("splitN", splitN(s, sep, n), strings.SplitN(s, sep, n))
		check("split", split(s, sep), strings.Split(s, sep))
		parts := strings.Split(s, ",")
		check("join", join(parts, sep), strings.Join(parts, sep))
		check("replaceAll", replaceAll(s, sep, "|"), strings.ReplaceAll(s, sep, "|"))
	})
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func equalAny(a, b any) bool {
	if x, ok := a.([]string); ok {
		y := b.([]string)
		return (x == nil) == (y == nil) && slices.Equal(x, y)
	}
	return a == b
}
