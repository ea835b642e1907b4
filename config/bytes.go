package config

import (
	"errors"
	"strconv"
)

// Binary size units accepted by ParseBytes.
const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// Sentinel errors of ParseBytes; compare with errors.Is.
var (
	// ErrBadSize means the text is not a size such as 1048576, 512KiB or 1MiB.
	ErrBadSize = errors.New("config: not a size")
	// ErrAmbiguousUnit means a decimal-looking unit (KB, MB, GB, K, M, G) whose
	// meaning (1000 or 1024) is ambiguous; write KiB, MiB or GiB instead.
	ErrAmbiguousUnit = errors.New("config: ambiguous size unit")
)

// maxSize bounds what ParseBytes accepts so that n*unit never overflows.
const maxSize = 1 << 62

// ParseBytes parses a byte size: a decimal integer optionally followed by one
// of the units B, KiB, MiB or GiB (exact binary multiples; unit names are
// case-insensitive, an optional space may separate number and unit). Decimal
// units (KB, MB, GB and the bare K, M, G) are rejected with ErrAmbiguousUnit
// rather than guessed. Fractions and signs are rejected.
//
// It does not allocate on success.
func ParseBytes(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, ErrBadSize
	}
	digits, unit := s[:i], s[i:]
	if len(unit) > 0 && unit[0] == ' ' {
		unit = unit[1:]
	}
	var mul int64
	switch {
	case unit == "" || equalFold(unit, "B"):
		mul = 1
	case equalFold(unit, "KiB"):
		mul = KiB
	case equalFold(unit, "MiB"):
		mul = MiB
	case equalFold(unit, "GiB"):
		mul = GiB
	case isAmbiguousUnit(unit):
		return 0, ErrAmbiguousUnit
	default:
		return 0, ErrBadSize
	}
	if len(digits) > 19 {
		return 0, ErrBadSize
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > maxSize/mul {
		return 0, ErrBadSize
	}
	return n * mul, nil
}

func isAmbiguousUnit(u string) bool {
	switch toLower(u) {
	case "k", "kb", "m", "mb", "g", "gb", "ki", "mi", "gi":
		return true
	}
	return false
}

// FormatBytes formats n with the largest binary unit that represents it
// exactly ("8MiB", "264KiB", "1000B"), so that ParseBytes(FormatBytes(n)) == n
// for every n in [0, 2^62].
func FormatBytes(n int64) string {
	switch {
	case n != 0 && n%GiB == 0:
		return strconv.FormatInt(n/GiB, 10) + "GiB"
	case n != 0 && n%MiB == 0:
		return strconv.FormatInt(n/MiB, 10) + "MiB"
	case n != 0 && n%KiB == 0:
		return strconv.FormatInt(n/KiB, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
