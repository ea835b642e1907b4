// Package socket binds the telemetry listener's socket: the half of
// starting a listener.Listener that needs neither fasthttp nor the ring, so
// that it can be done before either exists, by the lifecycle while it
// builds them, and during package initialisation by package earlysub.
package socket

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// DefaultHost is the host the Telemetry API reaches extensions at.
const DefaultHost = "sandbox.localdomain"

const (
	fallbackHost   = "127.0.0.1"
	resolveTimeout = 2 * time.Second
)

// Listen resolves host (DefaultHost if empty) and listens on port there.
// It listens on 127.0.0.1 when host does not resolve (logged at info level
// on log, if not nil) and refuses an all-interfaces address.
func Listen(host string, port int, log *slog.Logger) (net.Listener, error) {
	if host == "" {
		host = DefaultHost
	}
	ip, err := resolve(host, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("cannot listen for telemetry: %w", err)
	}
	return ln, nil
}

// resolve returns the IP to listen on: host's first address (IPv4 first),
// or 127.0.0.1 when host does not resolve. All-interfaces addresses are
// refused.
func resolve(host string, log *slog.Logger) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		if log != nil {
			log.Info("telemetry listener host does not resolve; using the loopback address",
				"host", host, "address", fallbackHost, "error", err)
		}
		return fallbackHost, nil
	}
	ip := ips[0]
	for _, cand := range ips {
		if cand.To4() != nil {
			ip = cand
			break
		}
	}
	if ip.IsUnspecified() {
		return "", fmt.Errorf("cannot listen for telemetry on %s (%s): refusing to listen on all interfaces", host, ip)
	}
	return ip.String(), nil
}
