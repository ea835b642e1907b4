package lambdasim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago: for
// an extension's listener (KTE_LISTEN_PORT), so that runs do not collide on
// a default port, and for emulators' addresses.
//
// The port is below the kernel's ephemeral range (ip_local_port_range), as
// a configured port in Lambda is: outgoing connections and port-0 listeners
// take theirs from that range, so none of them can take the port between
// FreePort and the bind that follows (with an ephemeral port, the
// extension's own connection to the Runtime API could, and its listener
// then failed with "address already in use"). Within a process, FreePort
// does not return the same port twice.
func FreePort() (int, error) {
	lo, hi := fixedRange()
	portsMu.Lock()
	defer portsMu.Unlock()
	n := hi - lo
	start := rand.IntN(n)
	for i := range n {
		port := lo + (start+i)%n
		if portsGiven[port] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // in use
		}
		ln.Close()
		portsGiven[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("cannot find a free port in %d-%d below the ephemeral range", lo, hi-1)
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// fixedRange is the range FreePort draws from: [lo, hi), the 12,000 ports
// below the ephemeral range (from 20,000 below Linux's default 32768), or
// below 32768 when the range cannot be read.
func fixedRange() (lo, hi int) {
	hi = 32768
	if first, err := ephemeralStart(); err == nil && first > 2048 {
		hi = first
	}
	return max(1024, hi-12000), hi
}

// ephemeralStart reads the first port of the kernel's ephemeral range.
func ephemeralStart() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, errors.New("unexpected ip_local_port_range: " + string(b))
	}
	return strconv.Atoi(f[0])
}
