package config

import "bytes"

// The string functions this package needs, as package strings has them,
// written over package bytes. Package earlysub loads the configuration
// during package initialisation, from a goroutine that overlaps the
// dependencies' initialisation only if it starts before them. Go
// initialises the ready package with the lowest import path first, and
// strings (like fmt, net and log/slog) sorts after github.com: with it,
// this package, and earlysub, would wait for every ready package of the
// AWS SDK, goccy/go-json and klauspost/compress (earlysub's
// TestInitialisedRightAfterAtstart fails). bytes sorts before them. The
// copies cost nothing that matters: Load runs twice per process.

func trimSpace(s string) string { return string(bytes.TrimSpace([]byte(s))) }

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

func toLower(s string) string { return string(bytes.ToLower([]byte(s))) }

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

func cutPrefix(s, prefix string) (string, bool) {
	if !hasPrefix(s, prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

func indexByte(s string, c byte) int { return bytes.IndexByte([]byte(s), c) }

func lastIndexByte(s string, c byte) int { return bytes.LastIndexByte([]byte(s), c) }

// splitN is strings.SplitN.
func splitN(s, sep string, n int) []string {
	parts := bytes.SplitN([]byte(s), []byte(sep), n)
	if parts == nil {
		return nil
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// split is strings.Split.
func split(s, sep string) []string { return splitN(s, sep, -1) }

// join is strings.Join.
func join(elems []string, sep string) string {
	var b []byte
	for i, e := range elems {
		if i > 0 {
			b = append(b, sep...)
		}
		b = append(b, e...)
	}
	return string(b)
}

func replaceAll(s, old, new string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(old), []byte(new)))
}
