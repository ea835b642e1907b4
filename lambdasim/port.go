package lambdasim

import (
	"fmt"
	"net"
)

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago: for
// an extension's listener (KTE_LISTEN_PORT), so that runs do not collide on
// a default port, and for emulators' addresses.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
