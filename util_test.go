package main

import (
	"encoding/hex"
	"testing"
)

// TestNewEnvironmentID: 16 random bytes in hex, different each time.
func TestNewEnvironmentID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newEnvironmentID()
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("unexpected id %q", id)
		}
		if seen[id] {
			t.Fatalf("unexpected repeated id %q", id)
		}
		seen[id] = true
	}
}
