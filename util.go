package main

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/kte-dev/kinesis-telemetry-extension/listener"
)

// subscriptionHost is the destination host the Telemetry API requires; it
// delivers to this environment's loopback whatever it resolves to.
const subscriptionHost = "sandbox.localdomain"

// telemetryPath is the listener's only path. It is "/" because the AWS
// emulator's managed-instances mode keeps only the port of the destination
// URI and POSTs to "/"; Lambda POSTs to the URI as given.
const telemetryPath = "/"

// subscriptionURI is the Telemetry API destination for the listener's port.
func subscriptionURI(l *listener.Listener) string {
	port := 0
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	return fmt.Sprintf("http://%s:%d%s", subscriptionHost, port, telemetryPath)
}

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
