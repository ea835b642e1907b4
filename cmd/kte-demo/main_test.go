package main

import (
	"strings"
	"testing"
)

func TestIndent(t *testing.T) {
	f := func(in string, maxStr int, elide, want string) {
		t.Helper()
		got := indent([]byte(in), 2, maxStr, elide)
		if got != want {
			t.Fatalf("unexpected indent of %s;\ngot\n%s\nwant\n%s", in, got, want)
		}
	}
	f(`{"b":1,"a":[1,{"c":"xyz"}],"e":{},"f":[]}`, 10, "",
		"  {\n    \"b\": 1,\n    \"a\": [\n      1,\n      {\n        \"c\": \"xyz\"\n      }\n    ],\n    \"e\": {},\n    \"f\": []\n  }")
	f(`{"lambda":{"x":[1,2]},"s":"abcdef"}`, 3, "lambda",
		"  {\n    \"lambda\": {…},\n    \"s\": \"abc… (3 more bytes)\"\n  }")
	f(`{"a":`, 3, "", `  {"a`)
}

func TestSamples(t *testing.T) {
	long := `{"type":"function","record":"` + strings.Repeat("x", 1200) + `"}`
	raw := [][]byte{
		[]byte(`{"type":"function","record":"short"}`),
		[]byte(`{"type":"platform.report","record":{}}`),
		[]byte(long),
		[]byte(`{"type":"function","record":{"message":"m"}}`),
	}
	got := samples(raw)
	if len(got) != 3 || string(got[0]) != string(raw[1]) || string(got[1]) != long || string(got[2]) != string(raw[3]) {
		t.Fatalf("unexpected samples; got %q", got)
	}
}
