package earlysub

import (
	"bytes"
	"os"
	"strconv"
	"syscall"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/ipv4"
)

// NetBind binds the telemetry socket for port through net, as main would
// (listener/socket: Go's resolver, the loopback address when Host does not
// resolve, logged at info level when level lets it), and returns it and
// the port bound.
type NetBind func(port int, level config.Level) (*os.File, int, error)

// netBinding is how start binds the socket where /etc/hosts does not name
// Host: through net, once package earlysub/vianet, which imports it, has
// been initialised and has set bind (SetNetBind). main imports vianet, so
// that is during package initialisation, later than this package (with
// net), as this package did before it bound sockets itself. gone is closed
// when main takes the Result (Take): by then any bind there is to be is
// set.
type netBinding struct {
	ready, gone chan struct{}
	bind        NetBind
}

var viaNet = &netBinding{ready: make(chan struct{}), gone: make(chan struct{})}

// SetNetBind sets how the socket is bound through net; package
// earlysub/vianet calls it once, from its init.
func SetNetBind(bind NetBind) {
	viaNet.bind = bind
	close(viaNet.ready)
}

// wait returns the NetBind once it is set, or nil if main took the Result
// without one.
func (n *netBinding) wait() NetBind {
	select {
	case <-n.ready:
	case <-n.gone:
	}
	return n.bind
}

// hostFiles names the files Go's resolver reads to resolve Host.
type hostFiles struct {
	hosts, nsswitch string
}

var systemFiles = hostFiles{hosts: "/etc/hosts", nsswitch: "/etc/nsswitch.conf"}

// lookup returns name's address as net.DefaultResolver (socket.Listen's
// lookup) finds it, when /etc/hosts alone decides it without doubt:
// nsswitch.conf is absent or lists files first for hosts (Go's resolver
// then answers from /etc/hosts when the name is there), and the name has
// exactly one address there (more are sorted by RFC 6724, which depends on
// the routes), a dotted IPv4 address other than 0.0.0.0. Anything else
// returns false, and main binds the socket through net as usual: this is
// for the case Lambda's environment is, not a resolver. It needs neither
// net nor its name lookup, so that package earlysub initialises before
// them.
func (f hostFiles) lookup(name string) (ip [4]byte, ok bool) {
	if ns, err := os.ReadFile(f.nsswitch); err == nil {
		if !filesFirst(ns) {
			return ip, false
		}
	} else if !os.IsNotExist(err) {
		return ip, false
	}
	hosts, err := os.ReadFile(f.hosts)
	if err != nil {
		return ip, false
	}
	found := 0
	for line := range bytes.SplitSeq(hosts, []byte("\n")) {
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := bytes.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
		if len(fields) < 2 {
			continue
		}
		named := false
		for _, h := range fields[1:] {
			named = named || equalFoldASCII(string(bytes.TrimSuffix(h, []byte("."))), name)
		}
		if !named {
			continue
		}
		found++
		var valid bool
		ip, valid = ipv4.Parse(string(fields[0]))
		if !valid {
			// Go skips what it cannot parse, but may parse what this
			// does not (IPv6): let it decide.
			return ip, false
		}
	}
	return ip, found == 1 && ip != [4]byte{}
}

// equalFoldASCII compares as Go's resolver compares host names: ASCII
// letters in either case, every other byte as it is.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// filesFirst reports whether Go's resolver reads /etc/hosts first, as
// nsswitch.conf ns says: its first source for hosts is files (with no
// criteria, which Go may leave to libc), or it names none. Whatever Go may
// read otherwise (a line without a colon, another source first) is false.
func filesFirst(ns []byte) bool {
	for line := range bytes.SplitSeq(ns, []byte("\n")) {
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		db, srcs, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false
		}
		if srcs = bytes.TrimSpace(srcs); string(bytes.TrimSpace(db)) != "hosts" || len(srcs) == 0 {
			continue
		}
		first, rest, _ := bytes.Cut(srcs, []byte(" "))
		return string(first) == "files" && !bytes.HasPrefix(bytes.TrimSpace(rest), []byte("["))
	}
	return true
}

// bind binds a listening TCP socket on ip:port as net.Listen does
// (SO_REUSEADDR, non-blocking, close-on-exec, the system's backlog) and
// returns it, for main to take with net.FileListener, and the port bound
// (port 0 binds an ephemeral one).
func bind(ip [4]byte, port int) (*os.File, int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return nil, 0, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (*os.File, int, error) {
		_ = syscall.Close(fd)
		return nil, 0, os.NewSyscallError(call, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: ip}); err != nil {
		return fail("bind", err)
	}
	if err := syscall.Listen(fd, backlog()); err != nil {
		return fail("listen", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	a, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		return fail("getsockname", syscall.EAFNOSUPPORT)
	}
	return os.NewFile(uintptr(fd), "telemetry"), a.Port, nil
}

// backlog is the listen backlog net.Listen uses: the kernel's somaxconn,
// at most 65535.
func backlog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return syscall.SOMAXCONN
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || n <= 0 {
		return syscall.SOMAXCONN
	}
	return min(n, 1<<16-1)
}
