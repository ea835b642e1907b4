package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
// enrichment's "environment" and the default partition key.
func newEnvironmentID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
