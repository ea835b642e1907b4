package earlyreg

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// lookup serves env as a variable lookup.
func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// received starts a TCP server and returns its address and a channel with
// the first request it reads.
func received(t *testing.T) (string, <-chan *http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *http.Request, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			t.Errorf("unexpected unreadable request: %v", err)
			close(ch)
			return
		}
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(nil)
		req.Header.Set("X-Test-Body", string(body))
		ch <- req
	}()
	return ln.Addr().String(), ch
}

func TestSend(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    map[string]string
		events []string
		body   string
	}{
		{"on demand", nil, []string{"INVOKE", "SHUTDOWN"}, `{"events":["INVOKE","SHUTDOWN"]}`},
		{"managed instances", map[string]string{envInitializationType: initializationTypeLMI}, []string{"SHUTDOWN"}, `{"events":["SHUTDOWN"]}`},
		{"max concurrency", map[string]string{envMaxConcurrency: "8"}, []string{"SHUTDOWN"}, `{"events":["SHUTDOWN"]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, reqs := received(t)
			env := map[string]string{envRuntimeAPI: addr}
			for k, v := range c.env {
				env[k] = v
			}
			r := Send(lookup(env), "/opt/extensions/kinesis-telemetry-extension")
			if r == nil {
				t.Fatal("unexpected nil registration")
			}
			defer r.Conn.Close()
			if r.Name != "kinesis-telemetry-extension" || !slices.Equal(r.Events, c.events) {
				t.Fatalf("unexpected registration %q %v; want kinesis-telemetry-extension %v", r.Name, r.Events, c.events)
			}
			req := <-reqs
			if req == nil {
				t.FailNow()
			}
			if req.Method != http.MethodPost || req.URL.Path != pathRegister || req.Host != addr || req.ContentLength != int64(len(c.body)) {
				t.Fatalf("unexpected request %s %s, host %q, length %d", req.Method, req.URL.Path, req.Host, req.ContentLength)
			}
			for k, want := range map[string]string{
				"Lambda-Extension-Name": "kinesis-telemetry-extension", "Lambda-Extension-Accept-Feature": "accountId",
				"Content-Type": "application/json", "X-Test-Body": c.body,
			} {
				if got := req.Header.Get(k); got != want {
					t.Fatalf("unexpected %s; got %q; want %q", k, got, want)
				}
			}
		})
	}
}

// TestSendDeclines: no registration, and nothing sent, where the address
// is not an IPv4 address and port, the name cannot be a header value, or
// nothing listens.
func TestSendDeclines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, c := range []struct{ api, exe string }{
		{"", "/opt/extensions/kte"},
		{"localhost:9001", "/opt/extensions/kte"},
		{"[::1]:9001", "/opt/extensions/kte"},
		{"127.0.0.1", "/opt/extensions/kte"},
		{"127.0.0.1:0", "/opt/extensions/kte"},
		{"127.0.0.1:70000", "/opt/extensions/kte"},
		{"127.0.0.1:+9001", "/opt/extensions/kte"},
		{"http://127.0.0.1:9001", "/opt/extensions/kte"}, // config refuses it: main would not go on
		{"127.0.0.256:9001", "/opt/extensions/kte"},
		{"127.0.0.1.1:9001", "/opt/extensions/kte"},
		{"127.0..1:9001", "/opt/extensions/kte"},
		{"0127.0.0.1:9001", "/opt/extensions/kte"},
		{"127.0.0.1:9001", "/opt/extensions/bad\nname"},
		{"127.0.0.1:9001", "/opt/extensions/"},
		{closed, "/opt/extensions/kte"},
	} {
		if r := Send(lookup(map[string]string{envRuntimeAPI: c.api}), c.exe); r != nil {
			r.Conn.Close()
			t.Fatalf("unexpected registration for %q, %q: %+v", c.api, c.exe, r)
		}
	}
}

func TestParseAddr(t *testing.T) {
	ip, port, ok := parseAddr("169.254.100.1:9001")
	if !ok || ip != [4]byte{169, 254, 100, 1} || port != 9001 {
		t.Fatalf("unexpected %v %d %v", ip, port, ok)
	}
}

func TestManagedInstances(t *testing.T) {
	for env, want := range map[[2]string]bool{
		{"", ""}: false, {"on-demand", ""}: false, {initializationTypeLMI, ""}: true, {"", "4"}: true,
		{"", "1"}: true, {"", "64"}: true, {"", "007"}: true, {initializationTypeLMI, "0"}: true,
		// Only a positive integer selects the mode: the emulator always
		// sets one there.
		{"", "0"}: false, {"", "00"}: false, {"", "no"}: false, {"", "-1"}: false, {"", "+4"}: false,
		{"", " 4"}: false, {"", "4 "}: false, {"on-demand", "false"}: false,
	} {
		m := map[string]string{envMaxConcurrency: env[1]}
		if env[0] != "" {
			m[envInitializationType] = env[0]
		}
		if got := ManagedInstances(lookup(m)); got != want {
			t.Fatalf("unexpected ManagedInstances(%v): %v", env, got)
		}
	}
}

// notAccepting returns the address of a listener that never accepts, its
// accept queue full: its kernel drops new connections' SYNs.
func notAccepting(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // never accepted
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue.
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestSendTimesOut: a Runtime API that does not accept (its accept queue
// full, so its kernel drops the SYN) costs sendTimeout, not the minutes of
// TCP's retries, and no registration.
func TestSendTimesOut(t *testing.T) {
	addr := notAccepting(t)
	saved := sendTimeout
	defer func() { sendTimeout = saved }()
	sendTimeout = 100 * time.Millisecond
	start := time.Now()
	r := Send(lookup(map[string]string{envRuntimeAPI: addr}), "/opt/extensions/kte")
	took := time.Since(start)
	if r != nil {
		r.Conn.Close()
		t.Fatalf("unexpected registration to a Runtime API that does not accept")
	}
	if took < 50*time.Millisecond || took > 2*time.Second {
		t.Fatalf("unexpected time to give up: %v; want about 100ms", took)
	}
}

// TestSendConnectInterrupted: signals to the thread that connects (the Go
// runtime's preemption signal) do not make Send give up early: with a send
// timeout set, the kernel ends connect with EINTR on each, and Send
// connects again until the timeout. Against a Runtime API that does not
// accept, Send still takes its timeout (it gave up at the first signal,
// in microseconds, before).
func TestSendConnectInterrupted(t *testing.T) {
	addr := notAccepting(t)
	saved := sendTimeout
	defer func() { sendTimeout = saved }()
	sendTimeout = 200 * time.Millisecond

	tid := make(chan int, 1)
	stop := make(chan struct{})
	done := make(chan time.Duration, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- syscall.Gettid()
		start := time.Now()
		if r := Send(lookup(map[string]string{envRuntimeAPI: addr}), "/opt/extensions/kte"); r != nil {
			r.Conn.Close()
			t.Errorf("unexpected registration to a Runtime API that does not accept")
		}
		done <- time.Since(start)
	}()
	thread := <-tid
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = syscall.Tgkill(os.Getpid(), thread, syscall.SIGURG)
			}
		}
	}()
	took := <-done
	close(stop)
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Fatalf("unexpected time to give up under signals: %v; want about 200ms", took)
	}
}
