package earlysub

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/listener/socket"
)

// TestLookup: Host's address is taken from /etc/hosts only where Go's
// resolver would answer from it, with one plain IPv4 address; everything
// else is left to main.
func TestLookup(t *testing.T) {
	f := func(hosts, nsswitch string, want string) {
		t.Helper()
		ip, ok := writeHostFiles(t, hosts, nsswitch).lookup(Host)
		got := ""
		if ok {
			got = netip.AddrFrom4(ip).String()
		}
		if got != want {
			t.Fatalf("hosts %q, nsswitch %q: unexpected address %q; want %q", hosts, nsswitch, got, want)
		}
	}
	lambda := "127.0.0.1 localhost\n127.0.0.1 " + Host + " sandbox\n"
	f(lambda, "hosts: files dns\n", "127.0.0.1")
	f(lambda, "-", "127.0.0.1")
	f(lambda, "passwd: files\n# hosts: dns\n\nhosts:   files   dns\n", "127.0.0.1")
	f(lambda, "hosts:\n", "127.0.0.1")
	f(lambda, "passwd: files\n", "127.0.0.1")
	f("169.254.100.1\t"+Host+"\n", "-", "169.254.100.1")
	f("127.0.0.1 SANDBOX.LocalDomain.\n", "-", "127.0.0.1")
	f("10.0.0.1 "+Host+" "+Host+"\n", "-", "10.0.0.1")

	// Go's resolver asks DNS first, or its order is unknown here.
	f(lambda, "hosts: dns files\n", "")
	f(lambda, "hosts: files [NOTFOUND=return] dns\n", "")
	f(lambda, "hosts: myhostname files\n", "")
	f(lambda, "passwd files\nhosts: files\n", "")
	// Not there, or not one plain IPv4 address.
	f("127.0.0.1 localhost\n", "-", "")
	f("# 127.0.0.1 "+Host+"\n", "-", "")
	f("127.0.0.1 localhost # "+Host+"\n", "-", "")
	f("127.0.0.1 "+Host+"x\n", "-", "")
	f("127.0.0.1 "+Host+"\n10.0.0.1 "+Host+"\n", "-", "")
	f("::1 "+Host+"\n", "-", "")
	f("::ffff:127.0.0.1 "+Host+"\n", "-", "")
	f("0.0.0.0 "+Host+"\n", "-", "")
	f("127.000.0.1 "+Host+"\n", "-", "")
	f("127.0.0.256 "+Host+"\n", "-", "")
	f(Host+"\n", "-", "")
	f("127.0.0.1 \u017fandbox.localdomain\n", "-", "")

	// No /etc/hosts at all.
	files := lambdaHosts(t)
	files.hosts += ".missing"
	if _, ok := files.lookup(Host); ok {
		t.Fatal("unexpected address without /etc/hosts")
	}
}

// TestBind: the socket listens as net.Listen's would (close-on-exec, the
// port asked for or an ephemeral one), net.FileListener takes it, and a
// port in use is an error.
func TestBind(t *testing.T) {
	sock, port, err := bind([4]byte{127, 0, 0, 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if port <= 0 {
		t.Fatalf("unexpected port %d", port)
	}
	flags, err := fcntl(int(sock.Fd()), syscall.F_GETFD)
	if err != nil || flags&syscall.FD_CLOEXEC == 0 {
		t.Fatalf("unexpected descriptor flags %#x, %v; want close-on-exec", flags, err)
	}
	ln, err := net.FileListener(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := ln.Addr().String(); got != "127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("unexpected address %s; want port %d", got, port)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}

	_, _, err = bind([4]byte{127, 0, 0, 1}, port)
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "bind" || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("unexpected error binding a port in use: %v", err)
	}
}

func fcntl(fd, cmd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// TestHostIsTheListeners: Host is the listener's default host, which this
// package cannot import.
func TestHostIsTheListeners(t *testing.T) {
	if Host != socket.DefaultHost {
		t.Fatalf("unexpected Host %q; want socket.DefaultHost %q", Host, socket.DefaultHost)
	}
}
