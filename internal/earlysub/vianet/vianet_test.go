package vianet

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// TestBind: the socket is bound as the listener binds it (here, where
// sandbox.localdomain may not resolve, on the loopback address), handed on
// as a file that net.FileListener takes, with the port bound; a port in
// use is an error.
func TestBind(t *testing.T) {
	f, port, err := Bind(0, config.LevelError)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if port == 0 || ln.Addr().(*net.TCPAddr).Port != port {
		t.Fatalf("unexpected port %d for %v", port, ln.Addr())
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	if _, _, err := Bind(port, config.LevelError); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("unexpected error binding port %s in use: %v", strconv.Itoa(port), err)
	}
}
