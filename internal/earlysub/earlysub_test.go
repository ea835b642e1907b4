package earlysub

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/extapi/wire"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// runtimeAPI is a Runtime API that answers the registration with
// registerStatus and the subscription with subscribeStatus, records the
// subscriptions and the /event/next calls, and answers /event/next with
// what the test sends on event.
type runtimeAPI struct {
	srv                             *httptest.Server
	registerStatus, subscribeStatus int
	event                           chan string

	mu    sync.Mutex
	subs  []*http.Request
	body  [][]byte
	nexts []*http.Request
}

func newRuntimeAPI(t *testing.T, registerStatus, subscribeStatus int) *runtimeAPI {
	a := &runtimeAPI{registerStatus: registerStatus, subscribeStatus: subscribeStatus, event: make(chan string)}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/2020-01-01/extension/register":
			w.Header().Set(earlyreg.HeaderExtensionIdentifier, "id-1")
			w.WriteHeader(a.registerStatus)
			_, _ = io.WriteString(w, `{"functionName":"f"}`)
		case wire.PathTelemetry:
			a.mu.Lock()
			a.subs, a.body = append(a.subs, r), append(a.body, body)
			a.mu.Unlock()
			w.WriteHeader(a.subscribeStatus)
			_, _ = io.WriteString(w, `"OK"`)
		case wire.PathNext:
			a.mu.Lock()
			a.nexts = append(a.nexts, r)
			a.mu.Unlock()
			select {
			case ev := <-a.event:
				_, _ = io.WriteString(w, ev)
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(404)
		}
	}))
	a.srv.Start()
	t.Cleanup(func() {
		a.srv.CloseClientConnections()
		a.srv.Close()
	})
	return a
}

func (a *runtimeAPI) counts() (subs, nexts int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.subs), len(a.nexts)
}

func (a *runtimeAPI) env(port string) map[string]string {
	return map[string]string{
		"AWS_LAMBDA_RUNTIME_API": strings.TrimPrefix(a.srv.URL, "http://"),
		"AWS_REGION":             "us-east-1",
		"KTE_STREAM":             "s",
		"KTE_LISTEN_PORT":        port,
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// lambdaHosts are host files as Lambda's: /etc/hosts maps Host to the
// loopback address, and nsswitch.conf reads files first.
func lambdaHosts(t *testing.T) hostFiles {
	t.Helper()
	return writeHostFiles(t, "127.0.0.1 localhost\n127.0.0.1 "+Host+" sandbox\n", "hosts: files dns\n")
}

// writeHostFiles writes hosts and, unless it is "-", nsswitch.
func writeHostFiles(t *testing.T, hosts, nsswitch string) hostFiles {
	t.Helper()
	dir := t.TempDir()
	f := hostFiles{hosts: filepath.Join(dir, "hosts"), nsswitch: filepath.Join(dir, "nsswitch.conf")}
	if err := os.WriteFile(f.hosts, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	if nsswitch != "-" {
		if err := os.WriteFile(f.nsswitch, []byte(nsswitch), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// listening returns the port sock listens on, taking it as main does.
func listening(t *testing.T, sock *os.File) int {
	t.Helper()
	ln, err := net.FileListener(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// initialise writes the registration as atstart does and runs what init
// runs, in an environment with Lambda's host files.
func initialise(t *testing.T, env map[string]string) Result {
	t.Helper()
	return initialiseWith(t, env, lambdaHosts(t), noNet())
}

// noNet is a netBinding that never binds: main took the Result.
func noNet() *netBinding {
	n := &netBinding{ready: make(chan struct{}), gone: make(chan struct{})}
	close(n.gone)
	return n
}

// initialiseWith is initialise with the host files and the binding through
// net given.
func initialiseWith(t *testing.T, env map[string]string, files hostFiles, late *netBinding) Result {
	t.Helper()
	reg := earlyreg.Send(lookup(env), "/opt/extensions/kte")
	if reg == nil {
		t.Fatal("unexpected: no registration written")
	}
	r, subscribe := start(reg, lookup(env), files, late)
	go subscribe()
	t.Cleanup(func() {
		if r.Socket != nil {
			r.Socket.Close()
		}
		if reg.Conn != nil {
			reg.Conn.Close()
		}
	})
	if r.Registration != reg {
		t.Fatal("unexpected: the registration is not handed on")
	}
	return r
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := lambdasim.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestSubscribes: the registration's answer is read, the socket bound for
// the configured port, and the configuration's subscription sent with the
// extension id on the same connection, its answer kept.
func TestSubscribes(t *testing.T) {
	for _, status := range []int{200, 202, 400} {
		api := newRuntimeAPI(t, 200, status)
		port := freePort(t)
		env := api.env(strconv.Itoa(port))
		r := initialise(t, env)
		if !r.Registration.Complete || !bytes.Contains(r.Registration.Answer, []byte(`{"functionName":"f"}`)) {
			t.Fatalf("unexpected registration answer %q", r.Registration.Answer)
		}
		if r.Socket == nil || r.Port != port || listening(t, r.Socket) != port {
			t.Fatalf("unexpected socket %v for port %d", r.Socket, r.Port)
		}
		cfg, err := config.Load(lookup(env))
		if err != nil {
			t.Fatal(err)
		}
		want := wire.AppendSubscribeBody(nil, Subscription(cfg, port))
		if !bytes.Equal(r.Body, want) {
			t.Fatalf("unexpected body %s; want %s", r.Body, want)
		}
		if a, complete := r.Answer(); !complete || !bytes.HasPrefix(a, []byte("HTTP/1.1 "+strconv.Itoa(status)+" ")) || !bytes.HasSuffix(a, []byte(`"OK"`)) {
			t.Fatalf("unexpected answer %q (complete %v)", a, complete)
		}
		api.mu.Lock()
		if len(api.subs) != 1 || api.subs[0].Method != "PUT" || api.subs[0].Header.Get(earlyreg.HeaderExtensionIdentifier) != "id-1" ||
			api.subs[0].Header.Get("Content-Type") != "application/json" || !bytes.Equal(api.body[0], want) {
			t.Fatalf("unexpected subscriptions received %v", api.subs)
		}
		api.mu.Unlock()
		if r.Registration.Conn == nil {
			t.Fatal("unexpected: the connection was dropped")
		}
		// /event/next goes out after a 200 only, once, with the id.
		at, sent := r.NextSent()
		if sent != (status == 200) || sent == at.IsZero() {
			t.Fatalf("status %d: unexpected next sent %v at %v", status, sent, at)
		}
		if !sent {
			<-r.NextDone()
			if a, complete := r.NextAnswer(); a != nil || complete {
				t.Fatalf("status %d: unexpected next answer %q", status, a)
			}
			if _, n := api.counts(); n != 0 {
				t.Fatalf("status %d: unexpected %d /event/next calls", status, n)
			}
			continue
		}
		select {
		case <-r.NextDone():
			t.Fatal("unexpected: /event/next answered before there was an event")
		case <-time.After(20 * time.Millisecond):
		}
		const event = `{"eventType":"INVOKE","requestId":"r1"}`
		api.event <- event
		<-r.NextDone()
		if a, complete := r.NextAnswer(); !complete || !bytes.HasPrefix(a, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(a, []byte(event)) {
			t.Fatalf("unexpected next answer %q, complete %v", a, complete)
		}
		api.mu.Lock()
		if len(api.nexts) != 1 || api.nexts[0].Method != "GET" || api.nexts[0].Header.Get(earlyreg.HeaderExtensionIdentifier) != "id-1" {
			t.Fatalf("unexpected /event/next calls %v", api.nexts)
		}
		api.mu.Unlock()
	}
}

// TestStops: where a step cannot be done, nothing after it is, and what
// was read is handed on for main to parse.
func TestStops(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	lambda := lambdaHosts(t)
	for _, c := range []struct {
		name     string
		register int
		port     string
		files    hostFiles
	}{
		{"registration refused", 403, strconv.Itoa(freePort(t)), lambda},
		{"invalid configuration", 200, "http", lambda},
		{"port in use", 200, busyPort, lambda},
		{"host not in /etc/hosts, no binding through net", 200, strconv.Itoa(freePort(t)), writeHostFiles(t, "127.0.0.1 localhost\n", "-")},
		{"DNS first", 200, strconv.Itoa(freePort(t)), writeHostFiles(t, "127.0.0.1 "+Host+"\n", "hosts: dns files\n")},
	} {
		api := newRuntimeAPI(t, c.register, 200)
		r := initialiseWith(t, api.env(c.port), c.files, noNet())
		if !r.Registration.Complete {
			t.Fatalf("%s: unexpected: the registration's answer was not read", c.name)
		}
		a, _ := r.Answer()
		if _, sent := r.NextSent(); r.Socket != nil || r.Body != nil || a != nil || sent || r.NextDone() != nil {
			t.Fatalf("%s: unexpected result %+v", c.name, r)
		}
		if subs, nexts := api.counts(); subs != 0 || nexts != 0 {
			t.Fatalf("%s: unexpected %d subscriptions, %d /event/next calls", c.name, subs, nexts)
		}
	}
}

// TestTakeWithoutRegistration: in a process without a Runtime API (this
// test's), init did nothing and Take returns a zero Result.
func TestTakeWithoutRegistration(t *testing.T) {
	if r := Take(); r.Registration != nil || r.Socket != nil || r.Body != nil {
		t.Fatalf("unexpected %+v", r)
	}
}

// TestSubscribesThroughNet: where /etc/hosts does not name Host, the
// subscription waits until the binding through net is set (package
// vianet's init, after net's), binds through it with the configured port
// and log level, and goes on as with a socket bound here.
func TestSubscribesThroughNet(t *testing.T) {
	api := newRuntimeAPI(t, 200, 200)
	port := freePort(t)
	env := api.env(strconv.Itoa(port))
	env["KTE_LOG_LEVEL"] = "debug"
	late := &netBinding{ready: make(chan struct{}), gone: make(chan struct{})}
	type call struct {
		port  int
		level config.Level
	}
	calls := make(chan call, 1)
	set := make(chan struct{})
	go func() {
		<-set
		late.bind = func(port int, level config.Level) (*os.File, int, error) {
			calls <- call{port, level}
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				return nil, 0, err
			}
			defer ln.Close()
			f, err := ln.(*net.TCPListener).File()
			return f, port, err
		}
		close(late.ready)
	}()
	done := make(chan Result, 1)
	go func() { done <- initialiseWith(t, env, writeHostFiles(t, "127.0.0.1 localhost\n", "-"), late) }()
	select {
	case r := <-done:
		t.Fatalf("unexpected result before the binding through net was set: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(set)
	r := <-done
	if c := <-calls; c.port != port || c.level != config.LevelDebug {
		t.Fatalf("unexpected bind through net for port %d, level %d; want %d, %d", c.port, c.level, port, config.LevelDebug)
	}
	if r.Socket == nil || r.Port != port || listening(t, r.Socket) != port {
		t.Fatalf("unexpected socket %v for port %d", r.Socket, r.Port)
	}
	if a, complete := r.Answer(); !complete || !bytes.HasPrefix(a, []byte("HTTP/1.1 200 ")) {
		t.Fatalf("unexpected answer %q (complete %v)", a, complete)
	}
	if _, sent := r.NextSent(); !sent {
		t.Fatal("unexpected: no /event/next after the subscription's 200")
	}
	// Answered before the connection is closed, which Await reads.
	api.event <- `{"eventType":"INVOKE","requestId":"r1"}`
	<-r.NextDone()
}
