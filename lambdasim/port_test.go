package lambdasim

import (
	"net"
	"os"
	"strconv"
	"testing"
)

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("unexpected error listening on the free port %d: %v", port, err)
	}
	ln.Close()
}

// TestFreePortOutsideEphemeralRange: no outgoing connection or port-0
// listener can take the port FreePort gives, and a process never gets the
// same port twice.
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	first, err := ephemeralStart()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no ephemeral range to compare with: %v", err)
		}
		t.Skipf("no ephemeral range to compare with: %v", err)
	}
	seen := map[int]bool{}
	for range 200 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port >= first || port < 1024 {
			t.Fatalf("FreePort gave %d; want 1024 <= port < %d (the ephemeral range's start)", port, first)
		}
		if seen[port] {
			t.Fatalf("FreePort gave %d twice", port)
		}
		seen[port] = true
	}
}
