package earlyreg

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
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
		prefix string
		events []string
		body   string
	}{
		{"on demand", nil, "", []string{"INVOKE", "SHUTDOWN"}, `{"events":["INVOKE","SHUTDOWN"]}`},
		{"http:// prefix", nil, "http://", []string{"INVOKE", "SHUTDOWN"}, `{"events":["INVOKE","SHUTDOWN"]}`},
		{"managed instances", map[string]string{envInitializationType: initializationTypeLMI}, "", []string{"SHUTDOWN"}, `{"events":["SHUTDOWN"]}`},
		{"max concurrency", map[string]string{envMaxConcurrency: "8"}, "", []string{"SHUTDOWN"}, `{"events":["SHUTDOWN"]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, reqs := received(t)
			env := map[string]string{envRuntimeAPI: c.prefix + addr}
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
