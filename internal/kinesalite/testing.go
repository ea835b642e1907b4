package kinesalite

import (
	"context"
	"errors"
	"os"
	"testing"
)

// StartT starts kinesalite for a test and stops it at cleanup. When it is
// not installed the test is skipped, except under CI=true where it fails;
// when tools/kinesalite cannot be found it fails.
func StartT(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start()
	if err != nil {
		if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
			tb.Skipf("skipping integration test: %v", err)
		}
		tb.Fatalf("cannot start kinesalite: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// StreamT creates a stream on s for the test and returns its name.
func (s *Server) StreamT(tb testing.TB, name string, shards int32) string {
	tb.Helper()
	if err := s.CreateStream(context.Background(), name, shards); err != nil {
		tb.Fatal(err)
	}
	return name
}
