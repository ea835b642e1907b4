// Package vianet gives package earlysub a way to bind the telemetry socket
// through net (earlysub.SetNetBind), for where /etc/hosts does not name
// sandbox.localdomain (a development machine, the AWS emulator in Docker):
// earlysub cannot import net without being initialised late everywhere,
// Lambda included. main imports this package; Go initialises it once net
// and log/slog are, and earlysub's goroutine, waiting for it, then binds
// and subscribes as it did when it imported net itself.
package vianet

import (
	"errors"
	"log/slog"
	"net"
	"os"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlysub"
	"github.com/kte-dev/kinesis-telemetry-extension/listener/socket"
)

func init() { earlysub.SetNetBind(Bind) }

// Bind binds the telemetry socket for port as the listener would
// (socket.Listen, its fallback to the loopback address logged on stderr at
// info level when level lets it) and returns it as a file, and the port
// bound.
func Bind(port int, level config.Level) (*os.File, int, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(level)}))
	ln, err := socket.Listen("", port, log)
	if err != nil {
		return nil, 0, err
	}
	defer ln.Close() // the file is a duplicate
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, 0, errors.New("vianet: the telemetry socket is not TCP")
	}
	f, err := tl.File()
	if err != nil {
		return nil, 0, err
	}
	return f, tl.Addr().(*net.TCPAddr).Port, nil
}
