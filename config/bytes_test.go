package config

import (
	"errors"
	"testing"
)

func TestParseBytes(t *testing.T) {
	f := func(s string, want int64) {
		t.Helper()
		got, err := ParseBytes(s)
		if err != nil {
			t.Fatalf("unexpected error for %q: %v", s, err)
		}
		if got != want {
			t.Fatalf("unexpected size for %q; got %d; want %d", s, got, want)
		}
	}
	f("0", 0)
	f("1", 1)
	f("1048576", 1<<20)
	f("1000B", 1000)
	f("1000b", 1000)
	f("1KiB", 1024)
	f("1kib", 1024)
	f("256KiB", 256<<10)
	f("1MiB", 1<<20)
	f("1 MiB", 1<<20)
	f("5MiB", 5<<20)
	f("1GiB", 1<<30)
	f("4294967296GiB", 1<<62)
	f("4611686018427387904", 1<<62)
}

func TestParseBytesInvalid(t *testing.T) {
	f := func(s string, want error) {
		t.Helper()
		got, err := ParseBytes(s)
		if !errors.Is(err, want) {
			t.Fatalf("unexpected error for %q; got %v (value %d); want %v", s, err, got, want)
		}
	}
	f("", ErrBadSize)
	f("MiB", ErrBadSize)
	f("-1", ErrBadSize)
	f("+1", ErrBadSize)
	f(" 1", ErrBadSize)
	f("1.5MiB", ErrBadSize)
	f("1  MiB", ErrBadSize)
	f("1MiB ", ErrBadSize)
	f("1TiB", ErrBadSize)
	f("1MiBs", ErrBadSize)
	f("0x10", ErrBadSize)
	f("4294967297GiB", ErrBadSize)
	f("4611686018427387905", ErrBadSize)
	f("99999999999999999999", ErrBadSize)
	f("1MB", ErrAmbiguousUnit)
	f("1mb", ErrAmbiguousUnit)
	f("1KB", ErrAmbiguousUnit)
	f("1K", ErrAmbiguousUnit)
	f("1M", ErrAmbiguousUnit)
	f("1G", ErrAmbiguousUnit)
	f("1GB", ErrAmbiguousUnit)
	f("1Mi", ErrAmbiguousUnit)
}

func TestFormatBytes(t *testing.T) {
	f := func(n int64, want string) {
		t.Helper()
		if got := FormatBytes(n); got != want {
			t.Fatalf("unexpected text for %d; got %q; want %q", n, got, want)
		}
	}
	f(0, "0B")
	f(1, "1B")
	f(1000, "1000B")
	f(1024, "1KiB")
	f(1536, "1536B")
	f(264<<10, "264KiB")
	f(1<<20, "1MiB")
	f(3<<19, "1536KiB")
	f(8<<20, "8MiB")
	f(1<<30, "1GiB")
	f(1<<62, "4294967296GiB")
}
