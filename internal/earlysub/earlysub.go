// Package earlysub subscribes the extension to the Telemetry API during
// package initialisation, when package earlyreg/atstart wrote the
// registration then. In a goroutine of its own it reads the registration's
// answer, loads the configuration, binds the telemetry socket and sends the
// subscription on the registration's connection, on the second core while
// the AWS SDK, fasthttp and goccy/go-json initialise on the first; main then
// takes the answer and the socket and goes on while the subscription's
// answer is on its way (extapi.Client.Subscribe waits for it).
//
// When the subscription is answered 200, the goroutine then writes the first
// /event/next on the same connection and waits for its answer
// (Result.NextSent, NextAnswer): everything Lambda waits for in the
// extension's Init phase is done by then (registered, subscribed, the socket
// bound), so main's remaining work, building the ring, the packer and the
// listener, overlaps the function's start instead of delaying it. An event
// answered meanwhile waits for main (extapi.Client.NextWith returns it),
// and so do the Telemetry API's POSTs, in the socket's backlog: nothing is
// taken before it can be stored. Should main's remaining work fail, it
// reports to /exit/error instead of /init/error.
//
// Otherwise it decides nothing: main loads the configuration again and
// reports its errors, serves on the socket only if it was bound for the
// configured port, and extapi.Client.Subscribe uses the answer only for the
// same request (extapi.WithSubscription), which, from the same environment,
// it is. When any step cannot be done here (an answer that is not 200, a
// configuration error, a socket that cannot be bound, no answer within a
// second), it stops, and main does that step and the rest the usual way. A
// socket bound before the listener serves is safe: the Telemetry API's
// connections wait in its backlog meanwhile.
//
// It initialises right after package earlyreg/atstart, ahead of the
// dependencies' packages. Go initialises the ready package with the lowest
// import path first, so a package waits behind every ready package that
// sorts before it: this package, and config, wire and earlyreg, which it
// imports, import only packages initialised by then (bytes rather than
// strings; not fmt, net or log/slog), as TestInitialisedRightAfterAtstart
// checks. For that it binds the socket itself, with syscall, where
// /etc/hosts names Host, as Lambda's does (hostFiles.lookup), and hands it
// on as a file. Elsewhere (a development machine, the AWS emulator in
// Docker) it waits for package earlysub/vianet, which main imports and Go
// initialises after net, and binds through net (socket.Listen, with its
// fallback to the loopback address), as it did when it imported net; main
// takes the Result only after that (netBinding). When it imported net and
// config imported fmt, strings and net/url, it initialised after about 80%
// of the dependencies' initialisation:
// measured with go run ./bench/coldstart -n 100 -also on a 2-vCPU machine
// where a minimal Go extension's first /event/next comes 13.5 ms after
// process start, the first /event/next is now 8.8 ms earlier (96.5%
// interval 7.7 to 9.8), 0.9 ms after the minimal extension's (0.3 to 1.8)
// instead of 10.0.
package earlysub

import (
	"os"
	"strconv"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/extapi/wire"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg/atstart"
)

// Host is the destination host the Telemetry API requires; it delivers to
// this environment's loopback whatever it resolves to. It is
// socket.DefaultHost, which this package cannot import (package socket
// needs net).
const Host = "sandbox.localdomain"

// Path is the listener's only path. It is "/" because the AWS emulator's
// managed-instances mode keeps only the port of the destination URI and
// POSTs to "/"; Lambda POSTs to the URI as given.
const Path = "/"

// Subscription is the subscription the configuration asks for, to the
// listener bound on port (which differs from cfg.ListenPort when that is 0).
func Subscription(cfg config.Config, port int) wire.Subscription {
	return wire.Subscription{
		SchemaVersion: cfg.SchemaVersion,
		Types:         cfg.Types,
		MaxItems:      cfg.BufferMaxItems,
		MaxBytes:      cfg.BufferMaxBytes,
		TimeoutMs:     cfg.BufferTimeoutMs,
		URI:           "http://" + Host + ":" + strconv.Itoa(port) + Path,
	}
}

// Result is what was done during package initialisation.
type Result struct {
	// Registration is the registration written (package earlyreg), its
	// answer read into Registration.Answer when it could be; nil when none
	// was written. While a subscription is on its way (Body is not nil),
	// its connection is in use until Answer returns.
	Registration *earlyreg.Registration
	// Socket is the telemetry socket, bound and listening for port Port
	// (KTE_LISTEN_PORT), for net.FileListener; nil when none was bound.
	// Whoever takes it closes it.
	Socket *os.File
	Port   int
	// Body is the subscription's request body, nil when none was sent.
	Body []byte
	sub  *pending
}

// pending is a subscription's answer, once done is closed, and the
// /event/next request sent after it.
type pending struct {
	done     chan struct{}
	answer   []byte
	complete bool
	next     nextPending
}

// nextPending is /event/next's answer, once done is closed. sent and sentAt
// are set before the subscription's done is closed.
type nextPending struct {
	done     chan struct{}
	sent     bool
	sentAt   time.Time
	answer   []byte
	complete bool
}

// Answer waits for the answer to the subscription and returns what was
// read of it within the connection's timeouts (a second per read or write),
// and whether that is all of it; when it is not, the rest is to be read
// from Registration.Conn (the request was sent: sending it again would
// subscribe twice). It returns nil when no subscription was sent (the
// connection is then closed: Registration.Conn is nil).
func (r Result) Answer() (answer []byte, complete bool) {
	if r.sub == nil {
		return nil, false
	}
	<-r.sub.done
	return r.sub.answer, r.sub.complete
}

// NextSent waits for the answer to the subscription, as Answer does, and
// reports whether the first /event/next request was then written on the
// registration's connection, and when. It is written when the subscription
// was answered 200: the extension has then done everything Lambda waits
// for in its Init phase (registered, subscribed, its telemetry socket
// bound: the Telemetry API's POSTs wait in its backlog until the listener
// serves it), and main's remaining work (building the ring, the packer and
// the listener, 0.3-0.6 ms) overlaps the function's start instead of
// delaying it. Until NextDone is closed the connection is in use.
func (r Result) NextSent() (time.Time, bool) {
	if r.sub == nil {
		return time.Time{}, false
	}
	<-r.sub.done
	return r.sub.next.sentAt, r.sub.next.sent
}

// NextDone is closed once the answer to the /event/next request is read,
// or when none was sent (nil when no subscription was sent).
func (r Result) NextDone() <-chan struct{} {
	if r.sub == nil {
		return nil
	}
	return r.sub.next.done
}

// NextAnswer returns, once NextDone is closed, the answer to the
// /event/next request and whether it is whole; when not, the rest is on
// the registration's connection (unless it failed).
func (r Result) NextAnswer() ([]byte, bool) {
	if r.sub == nil {
		return nil, false
	}
	<-r.sub.next.done
	return r.sub.next.answer, r.sub.next.complete
}

// Started is when package initialisation reached KTE's first package
// (earlyreg/atstart), before its dependencies' packages: the process's
// start as near as Go code can take it, from which the start-up line
// counts init_ms. Main's own package variables are initialised last, after
// the goroutine here may have sent the first /event/next.
func Started() time.Time { return atstart.Started }

// results gets init's goroutine's Result.
var results chan Result

func init() {
	if reg := atstart.Take(); reg != nil {
		results = make(chan Result, 1)
		go func() {
			r, subscribe := start(reg, os.LookupEnv, systemFiles, viaNet)
			results <- r
			subscribe()
		}()
	}
}

// Take waits for the registration's answer and the socket, and returns
// them and the subscription on its way: the first call gets them, later
// ones a zero Result, as when no registration was written. The wait is
// bounded by the connection's timeouts. Not safe for concurrent use (main
// calls it once).
func Take() Result {
	if results == nil {
		return Result{}
	}
	close(viaNet.gone)
	r := <-results
	results = nil
	return r
}

// start reads reg's answer and, if it is a registration, loads the
// configuration from lookup and binds the socket where files say Host is
// (hostFiles.lookup), else through late once it can. It returns what it
// did and what sends the subscription, to be called once the Result is
// handed on.
func start(reg *earlyreg.Registration, lookup func(string) (string, bool), files hostFiles, late *netBinding) (Result, func()) {
	r := Result{Registration: reg}
	nothing := func() {}
	status, id, ok := reg.ReadAnswer()
	if !ok || status != 200 || !earlyreg.ValidHeaderValue(id) {
		return r, nothing
	}
	cfg, err := config.Load(lookup)
	if err != nil {
		return r, nothing
	}
	var sock *os.File
	var port int
	if ip, ok := files.lookup(Host); ok {
		sock, port, err = bind(ip, cfg.ListenPort)
	} else if b := late.wait(); b != nil {
		sock, port, err = b(cfg.ListenPort, cfg.LogLevel)
	} else {
		return r, nothing
	}
	if err != nil {
		return r, nothing
	}
	r.Socket, r.Port = sock, cfg.ListenPort
	r.Body = wire.AppendSubscribeBody(nil, Subscription(cfg, port))
	sub := &pending{done: make(chan struct{}), next: nextPending{done: make(chan struct{})}}
	r.sub = sub
	req := appendRequest(nil, reg.Host, id, r.Body)
	return r, func() {
		sub.answer, sub.complete = reg.Exchange(req)
		if sub.complete && earlyreg.Status(sub.answer) == 200 {
			if sub.next.sent = reg.Send(appendNextRequest(req[:0], reg.Host, id)); sub.next.sent {
				sub.next.sentAt = time.Now()
			}
		}
		close(sub.done)
		if sub.next.sent {
			sub.next.answer, sub.next.complete = reg.Await()
		}
		close(sub.next.done)
	}
}

// appendNextRequest appends the /event/next HTTP/1.1 request, as
// extapi.Client.Next sends it.
func appendNextRequest(dst []byte, host, id string) []byte {
	return append(dst, "GET "+wire.PathNext+" HTTP/1.1\r\nHost: "+host+"\r\n"+earlyreg.HeaderExtensionIdentifier+": "+id+"\r\n\r\n"...)
}

// appendRequest appends the subscription's HTTP/1.1 request, as
// extapi.Client.Subscribe sends it.
func appendRequest(dst []byte, host, id string, body []byte) []byte {
	dst = append(dst, "PUT "+wire.PathTelemetry+" HTTP/1.1\r\nHost: "+host+"\r\n"+earlyreg.HeaderExtensionIdentifier+": "+id+
		"\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}
