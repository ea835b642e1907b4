package main

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// newEnvironmentID returns a random id for this execution environment: the
// enrichment's "environment" and the default partition key. It needs to be
// unique, not secret: math/rand/v2's generator, seeded by the runtime from
// the kernel, costs nothing at start, where crypto/rand's first use took
// 0.05-0.08 ms of the cold start.
func newEnvironmentID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
