// Command kinesis-telemetry-extension is a Lambda external extension that
// subscribes to the Lambda Telemetry API and ships every event to a Kinesis
// data stream with PutRecords.
//
// The lifecycle, as steps (see run):
//
//  1. register with the Extensions API: the request is written during
//     package initialisation (package earlyreg/atstart), so that Lambda
//     handles it while the AWS SDK initialises, and its answer read then too,
//     in a goroutine that also binds the telemetry socket and subscribes
//     (package earlysub); its answer is parsed here (or, when it could not be
//     written then, it is sent here); meanwhile read the Lambda environment
//     and the configuration and bind the telemetry socket, unless earlysub
//     did;
//  2. report configuration errors to /init/error, naming every bad variable;
//  3. build the ring, the packer and the listener (with the registration's
//     identity), serve on the socket (extension.prepare) and start the
//     packer (extension.start);
//  4. subscribe to the Telemetry API (202 from a local emulator: keep
//     working), or take the answer to the subscription earlysub sent;
//  5. loop on /event/next (after a 200 subscription earlysub wrote the
//     first request: its answer is taken), building the Kinesis client once
//     the first request is on its way (extension.buildClient); under
//     SnapStart, draw the environment's random ids and keys again at the
//     first event after the restore (extension.redrawAfterRestore); on
//     INVOKE deliver what is buffered as KTE_FLUSH says (package flush),
//     within KTE_FLUSH_MAX_MS and the deadline, and call /event/next again
//     only when nothing is in flight; end at SHUTDOWN, at SIGTERM or SIGINT
//     outside Lambda (with a 2 s deadline), or when /event/next fails
//     (likewise).
//
// The end, as steps (extension.shutdown; the README's Shutdown section):
//
//  1. keep listening until no telemetry has arrived for
//     KTE_BUFFER_TIMEOUT_MS + 30 ms, no POST is in hand and no delivery
//     refused with 503 awaits Lambda's retry, for at most half of the time
//     left (extension.waitQuiet): Lambda delivers the last platform.report
//     after SHUTDOWN;
//  2. stop the listener (extension.stopListener);
//  3. deliver what is buffered until the deadline minus
//     KTE_SHUTDOWN_MARGIN_MS, less the time writing what is left to stderr
//     would take at 16 MiB/s: all of it while the last calls delivered
//     nothing (batch.Packer.Stalled), at most half of the time left while
//     the stream delivers (extension.finalFlush);
//  4. write what is left to stderr as KTE_UNDELIVERED
//     reason=shutdown_deadline lines (batch.Packer.GiveUp), the last
//     metrics line to stdout (unless KTE_METRICS=false) and the KTE_SUMMARY
//     line to stderr;
//  5. exit 0; when /event/next failed, report the error to /exit/error
//     first and exit 1.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/extapi"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlysub"
	_ "github.com/kte-dev/kinesis-telemetry-extension/internal/earlysub/vianet" // earlysub binds through net where /etc/hosts does not name sandbox.localdomain
	"github.com/kte-dev/kinesis-telemetry-extension/listener/socket"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	os.Exit(run(ctx, env{lookup: os.LookupEnv, stdout: os.Stdout, stderr: os.Stderr, name: filepath.Base(os.Args[0]), start: earlysub.Started(),
		setGCPercent: debug.SetGCPercent, watchSignals: func() { watchSignals(cancel) }, early: earlysub.Take()}))
}

// watchSignals makes SIGTERM and SIGINT (outside Lambda) cancel the root
// context, which ends the extension in order (as SHUTDOWN does). The
// lifecycle calls it once Init is over (extension.afterInit): the first call
// of signal.Notify starts the runtime's signal thread and a thread of its
// own, which on 2 vCPUs delayed the first /event/next by 0.14 ms (-0.24 to
// -0.01, go run ./bench/coldstart -also). Until then the signals end the
// process at once, when nothing has been sent or is due (Lambda ends
// extensions with SHUTDOWN, not with signals).
func watchSignals(cancel context.CancelFunc) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		cancel()
	}()
}

// env is everything run takes from the process, so tests can run the whole
// lifecycle in-process.
type env struct {
	lookup func(string) (string, bool)
	stdout io.Writer
	stderr io.Writer
	name   string    // extension name = executable file name
	start  time.Time // process start, for the init duration
	// setGCPercent is debug.SetGCPercent in the process; nil in tests that
	// run the lifecycle in-process (the test binary's GC is its own).
	setGCPercent func(int) int
	// watchSignals makes SIGTERM and SIGINT cancel the root context; nil
	// in tests that run the lifecycle in-process.
	watchSignals func()
	// early is what package initialisation did (package earlysub): the
	// registration written, the socket bound, the subscription sent; zero
	// in tests that run the lifecycle in-process.
	early earlysub.Result
}

// run is the whole life of the extension; it returns the exit code.
func run(ctx context.Context, e env) int {
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// Step 1: the Lambda environment, the configuration, then register.
	// Without the Runtime API address nothing can be reported to Lambda:
	// log and exit.
	lam, err := config.LoadLambda(e.lookup)
	if err != nil {
		log.Error("kte: cannot start: " + err.Error())
		return 1
	}
	// During package initialisation, atstart wrote the registration
	// (Lambda handles it while the AWS SDK initialises) and earlysub read
	// its answer and subscribed; the client parses the answers. Without
	// them, Register and Subscribe send the requests now.
	x := &extension{env: e, log: log, done: newRuntimeDone(),
		api: extapi.New(lam.RuntimeAPI, extapi.WithRegistration(e.early.Registration),
			extapi.WithSubscription(e.early.Body, e.early.Answer),
			extapi.WithNext(e.early.NextSent, e.early.NextDone(), e.early.NextAnswer))}

	// The configuration is read before the registration's answer (only its
	// errors wait for the registration, which /init/error needs), so that
	// the telemetry socket is bound meanwhile, in its own goroutine:
	// resolving sandbox.localdomain and binding take 0.2-0.35 ms of a cold
	// start, the longest part of what comes before the subscription. When
	// earlysub bound it for the configured port, the listener serves it
	// (net.FileListener takes a duplicate; the file is closed below).
	var cfgErr error
	var bound chan boundSocket
	x.cfg, cfgErr = config.Load(e.lookup)
	early := e.early.Socket
	if cfgErr == nil {
		x.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.Level(x.cfg.LogLevel)}))
		bound = make(chan boundSocket, 1)
		if early != nil && e.early.Port == x.cfg.ListenPort {
			ln, err := net.FileListener(early) // bound during package initialisation
			bound <- boundSocket{ln, err}
		} else {
			go func() {
				ln, err := socket.Listen("", x.cfg.ListenPort, x.log)
				bound <- boundSocket{ln, err}
			}()
		}
	}
	if early != nil {
		// Taken by the listener (a duplicate), bound for another port, or
		// the configuration is invalid.
		_ = early.Close()
	}
	// The events are those the early registration sent (SHUTDOWN only
	// under Managed Instances, as config's LMI says): one decision.
	var events []extapi.EventType
	for _, ev := range earlyreg.Events(e.lookup) {
		events = append(events, extapi.EventType(ev))
	}
	x.reg, err = x.api.Register(ctx, e.name, events)
	if err != nil {
		if bound != nil {
			if b := <-bound; b.ln != nil {
				_ = b.ln.Close()
			}
		}
		x.log.Error("kte: cannot register with the Extensions API", "name", e.name, "error", err)
		return 1
	}
	if x.reg.BodyError != nil {
		x.log.Warn("kte: registered, but the answer's body is unusable: events carry the function name and version of the environment and no account id",
			"error", x.reg.BodyError)
	}

	// Step 2: configuration, every bad variable reported at once.
	if cfgErr != nil {
		return x.initError(ctx, errTypeConfig, fmt.Errorf("invalid configuration:\n%w", cfgErr))
	}

	// Step 3: the ring, the packer and the listener, serving on the socket
	// bound meanwhile, with the registration's identity.
	if err := x.prepare(bound); err != nil {
		return x.initError(ctx, errTypeListen, err)
	}
	if err := x.start(ctx); err != nil {
		x.stopListener()
		return x.initError(ctx, errTypeListen, err)
	}

	// Step 4: subscribe. A 202 is a local emulator without telemetry.
	if err := x.subscribe(ctx); err != nil {
		x.stopListener()
		return x.initError(ctx, errTypeSubscribe, err)
	}
	x.startMetricsTicker()

	// Step 5: the event loop. The start-up line is written once the first
	// /event/next request is out (extension.afterInit).
	return x.loop(ctx)
}
