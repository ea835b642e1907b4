// Command kinesis-telemetry-extension is a Lambda external extension that
// subscribes to the Lambda Telemetry API and ships every event to a Kinesis
// data stream with PutRecords.
//
// The lifecycle, as steps (see run):
//
//  1. read the Lambda environment and register with the Extensions API;
//  2. load the configuration (errors go to /init/error, naming every bad variable);
//  3. start the telemetry listener and the packer on a preallocated ring,
//     while the Kinesis client is built concurrently;
//  4. subscribe to the Telemetry API (202 from a local emulator: keep working);
//  5. loop on /event/next: on INVOKE deliver what is buffered, concurrently
//     with the function, and call /event/next again only when nothing is in
//     flight; on SHUTDOWN (or SIGTERM outside Lambda) drain late telemetry,
//     flush within the deadline, report what could not be delivered on
//     stderr, print the summary and exit 0.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// processStart is taken as early as Go lets a program: package
// initialisation. The start-up line reports init time from here.
var processStart = time.Now()

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, env{lookup: os.LookupEnv, stdout: os.Stdout, stderr: os.Stderr, name: filepath.Base(os.Args[0]), start: processStart})
	stop()
	os.Exit(code)
}

// env is everything run takes from the process, so tests can run the whole
// lifecycle in-process.
type env struct {
	lookup func(string) (string, bool)
	stdout io.Writer
	stderr io.Writer
	name   string    // extension name = executable file name
	start  time.Time // process start, for the init duration
}
