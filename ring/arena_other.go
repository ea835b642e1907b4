//go:build !unix

package ring

// mapArena is unsupported here: New's heap arena is used.
func mapArena(int) []byte { return nil }
