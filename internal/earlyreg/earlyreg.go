// Package earlyreg writes the extension's registration to the Lambda
// Extensions API during package initialisation, so that Lambda handles it
// while the rest of the program initialises: the AWS SDK, fasthttp and
// goccy/go-json take 1.2-1.4 ms of a cold start before main runs (go run
// ./bench/coldstart: the floor built with KTE's dependencies), and the
// registration's round trip then overlaps them instead of following them.
//
// Package earlyreg/atstart does it: importing it is what sends the request
// (package earlysub is its only importer). It initialises early because it
// depends only on this package, bytes, os, strconv, syscall and time (Go
// initialises a package as soon as its imports are, the lowest import path
// first): before the SDK's packages and before net. The request is written
// with system calls on a blocking socket. Package earlysub then reads the
// answer (Registration.ReadAnswer), subscribes on the same connection
// (Registration.Exchange) and writes the first /event/next
// (Registration.Send, Await); extapi.Client.Register parses the answer read,
// reading the rest from the connection if earlysub could not (it is given
// both with extapi.WithRegistration), and uses the connection for its later
// calls.
//
// Nothing here fails the extension: when the Runtime API address is not an
// IPv4 address and port, or the socket cannot be opened or written, no
// registration is kept, and Register sends it the usual way.
package earlyreg

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// The request, as extapi.Client.Register sends it (extapi's tests compare
// the two).
const (
	envRuntimeAPI         = "AWS_LAMBDA_RUNTIME_API"
	envInitializationType = "AWS_LAMBDA_INITIALIZATION_TYPE"
	envMaxConcurrency     = "AWS_LAMBDA_MAX_CONCURRENCY"
	initializationTypeLMI = "lambda-managed-instances"
	pathRegister          = "/2020-01-01/extension/register"
)

// sendTimeout bounds connecting and writing (tests shorten it).
var sendTimeout = time.Second

// Registration is a register request written to the Runtime API whose
// answer has not been read.
type Registration struct {
	// Conn is the connection, a blocking socket; its owner closes it. Nil
	// once an exchange on it failed midway (Exchange closed it).
	Conn *os.File
	// Name is the extension name sent (the executable's file name).
	Name string
	// Host is the Runtime API's address, as in the request's Host header.
	Host string
	// Events are the events registered for, as sent.
	Events []string
	// Answer is what ReadAnswer read of the registration's answer: all of
	// it when Complete, else the start of it, the rest still on Conn.
	Answer   []byte
	Complete bool
}

// ManagedInstances reports whether the environment is Lambda Managed
// Instances (AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances, or
// AWS_LAMBDA_MAX_CONCURRENCY a positive integer, as the Runtime Interface
// Emulator's managed-instances mode sets it), where extensions register for
// SHUTDOWN only. The configuration (config.LoadLambda) asks the same
// function.
func ManagedInstances(lookup func(string) (string, bool)) bool {
	initType, _ := lookup(envInitializationType)
	maxConc, _ := lookup(envMaxConcurrency)
	return initType == initializationTypeLMI || positiveInt(maxConc)
}

// positiveInt reports whether s is decimal digits only (no sign, no
// spaces) with a value above 0.
func positiveInt(s string) bool {
	nonZero := false
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		nonZero = nonZero || s[i] != '0'
	}
	return nonZero
}

// Events returns the events the extension registers for: INVOKE and
// SHUTDOWN, or SHUTDOWN only under Managed Instances.
func Events(lookup func(string) (string, bool)) []string {
	if ManagedInstances(lookup) {
		return []string{"SHUTDOWN"}
	}
	return []string{"INVOKE", "SHUTDOWN"}
}

// Send connects to the Runtime API named by AWS_LAMBDA_RUNTIME_API and
// writes the registration of the executable at exe (its file name is the
// extension name), asking for the account id as extapi does. It returns nil
// when the variable is unset or not an IPv4 address and port (no scheme, a
// port of digits only: what main's configuration accepts too, so that it
// never registers where main would refuse to go on), when the name cannot
// be a header value, or when the connection or the write fails.
func Send(lookup func(string) (string, bool), exe string) *Registration {
	api, _ := lookup(envRuntimeAPI)
	ip, port, ok := parseAddr(api)
	if !ok {
		return nil
	}
	name := exe
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			name = name[i+1:]
			break
		}
	}
	if !ValidHeaderValue(name) {
		return nil
	}
	events := Events(lookup)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	req := appendRequest(make([]byte, 0, 256), api, name, events)
	// On Linux the send timeout bounds a blocking connect too: a Runtime
	// API that does not accept costs this much here, then Register tries.
	tv := syscall.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); err != nil ||
		!connect(fd, &syscall.SockaddrInet4{Port: port, Addr: ip}) || !writeAll(fd, req) {
		_ = syscall.Close(fd)
		return nil
	}
	return &Registration{Conn: os.NewFile(uintptr(fd), "runtime-api"), Name: name, Host: api, Events: events}
}

// appendRequest appends the HTTP/1.1 register request.
func appendRequest(dst []byte, host, name string, events []string) []byte {
	body := `{"events":[`
	for i, e := range events {
		if i > 0 {
			body += ","
		}
		body += `"` + e + `"`
	}
	body += `]}`
	dst = append(dst, "POST "+pathRegister+" HTTP/1.1\r\nHost: "+host+"\r\nLambda-Extension-Name: "+name+
		"\r\nLambda-Extension-Accept-Feature: accountId\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// connect connects the blocking socket fd to sa within sendTimeout. With a
// send timeout set, a signal (the Go runtime's preemption signal, for
// one) interrupts connect with EINTR whatever SA_RESTART says (signal(7)),
// while the connection goes on being established: connect is called
// again, which waits for it (EISCONN if it is already there).
func connect(fd int, sa syscall.Sockaddr) bool {
	deadline := time.Now().Add(sendTimeout)
	for {
		switch err := syscall.Connect(fd, sa); err {
		case nil, syscall.EISCONN:
			return true
		case syscall.EINTR, syscall.EALREADY:
			if time.Now().After(deadline) {
				return false
			}
		default:
			return false
		}
	}
}

func writeAll(fd int, p []byte) bool {
	for len(p) > 0 {
		n, err := syscall.Write(fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return false
		}
		p = p[n:]
	}
	return true
}

// parseAddr parses "a.b.c.d:port".
func parseAddr(s string) (ip [4]byte, port int, ok bool) {
	colon := -1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return ip, 0, false
	}
	ps := s[colon+1:]
	for i := 0; i < len(ps); i++ {
		if ps[i] < '0' || ps[i] > '9' {
			return ip, 0, false // strconv.Atoi would take a sign
		}
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return ip, 0, false
	}
	n, v, digits := 0, 0, 0
	for i := 0; i <= colon; i++ {
		if i == colon || s[i] == '.' {
			if digits == 0 || n > 3 {
				return ip, 0, false
			}
			ip[n] = byte(v)
			n, v, digits = n+1, 0, 0
			continue
		}
		if s[i] < '0' || s[i] > '9' || digits == 3 {
			return ip, 0, false
		}
		v, digits = v*10+int(s[i]-'0'), digits+1
		if v > 255 {
			return ip, 0, false
		}
	}
	return ip, port, n == 4
}

// ValidHeaderValue reports whether s can be a header value here: visible
// ASCII and spaces only, not empty.
func ValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return s != ""
}
