package earlyreg

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair returns a Registration on one end of a socket pair and the other end,
// to which the test writes answers.
func pair(t *testing.T) (*Registration, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &Registration{Conn: os.NewFile(uintptr(fds[0]), "conn")}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() {
		if r.Conn != nil {
			r.Conn.Close()
		}
		peer.Close()
	})
	return r, peer
}

func shortTimeout(t *testing.T) {
	saved := sendTimeout
	sendTimeout = 100 * time.Millisecond
	t.Cleanup(func() { sendTimeout = saved })
}

// TestReadAnswer: an answer framed by Content-Length is read whole, however
// it arrives, and nothing after it; its status and id are returned.
func TestReadAnswer(t *testing.T) {
	const answer = "HTTP/1.1 200 OK\r\nlambda-extension-identifier:  id-1 \r\nContent-Type: application/json\r\n" +
		"content-length: 22\r\n\r\n{\"functionName\":\"f\"}\r\n"
	for _, split := range []int{len(answer), 5, 40, len(answer) - 3} {
		r, peer := pair(t)
		go func() {
			_, _ = peer.WriteString(answer[:split])
			time.Sleep(5 * time.Millisecond)
			_, _ = peer.WriteString(answer[split:])
		}()
		status, id, ok := r.ReadAnswer()
		if !ok || status != 200 || id != "id-1" || string(r.Answer) != answer || !r.Complete {
			t.Fatalf("split %d: unexpected %d %q %v, answer %q, complete %v", split, status, id, ok, r.Answer, r.Complete)
		}
	}
}

// TestReadAnswerDeclines: what ReadAnswer does not take is left to extapi,
// with what it read in Answer: other framings, no length, more than the
// answer, too large, no answer in time, a closed connection.
func TestReadAnswerDeclines(t *testing.T) {
	shortTimeout(t)
	for _, c := range []struct{ name, answer string }{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"},
		{"no length", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n{}"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"},
		{"interim", "HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n"},
		{"more than the answer", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1"},
		{"too large", "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n{}"},
		{"header too large", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxAnswerBytes) + "\r\n\r\n"},
		{"no answer in time", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{"},
		{"closed", ""},
	} {
		r, peer := pair(t)
		go func() {
			_, _ = peer.WriteString(c.answer)
			if c.name == "closed" {
				peer.Close()
			}
		}()
		if status, id, ok := r.ReadAnswer(); ok || r.Complete {
			t.Fatalf("%s: unexpected %d %q %v", c.name, status, id, ok)
		}
		if !strings.HasPrefix(c.answer, string(r.Answer)) {
			t.Fatalf("%s: Answer %q is not what was read of %q", c.name, r.Answer, c.answer)
		}
		if r.Conn == nil {
			t.Fatalf("%s: unexpected: the connection was dropped", c.name)
		}
	}
}

// TestExchange: a request on the connection after the answer, its answer
// read whole; a slow answer leaves the connection open for the rest; a
// failed write closes the connection.
func TestExchange(t *testing.T) {
	shortTimeout(t)
	r, peer := pair(t)
	if _, ok := r.Exchange([]byte("PUT / HTTP/1.1\r\n\r\n")); ok {
		t.Fatal("unexpected exchange before the registration's answer was read")
	}
	const reg, sub = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\n\"OK\""
	_, _ = peer.WriteString(reg)
	if _, _, ok := r.ReadAnswer(); !ok {
		t.Fatal("unexpected: answer not read")
	}
	const req = "PUT /2022-07-01/telemetry HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
	go func() {
		b := make([]byte, len(req))
		n, _ := peer.Read(b)
		if string(b[:n]) == req {
			_, _ = peer.WriteString(sub)
		}
	}()
	if got, ok := r.Exchange([]byte(req)); !ok || string(got) != sub {
		t.Fatalf("unexpected exchange %q %v", got, ok)
	}
	// An answer slower than the send timeout: what came is returned, and
	// the rest is read from the connection, which stays open (the request
	// was sent: sending it again would subscribe twice).
	go func() {
		b := make([]byte, len(req))
		n, _ := peer.Read(b)
		if string(b[:n]) == req {
			_, _ = peer.WriteString(sub[:10])
		}
	}()
	got, ok := r.Exchange([]byte(req))
	if ok || got == nil || string(got) != sub[:10] || r.Conn == nil {
		t.Fatalf("unexpected slow exchange %q %v, connection %v", got, ok, r.Conn)
	}
	_, _ = peer.WriteString(sub[10:])
	rest := make([]byte, len(sub)-10)
	if _, err := io.ReadFull(r.Conn, rest); err != nil || string(rest) != sub[10:] {
		t.Fatalf("unexpected rest on the connection %q: %v", rest, err)
	}
	// A failed write: the connection is closed and dropped.
	_ = r.Conn.Close()
	if got, ok := r.Exchange([]byte(req)); ok || got != nil || r.Conn != nil {
		t.Fatalf("unexpected exchange %q %v, connection %v", got, ok, r.Conn)
	}
}

// TestSendAwait: a request sent after the answers were read, its answer
// awaited with no time limit (it comes after the send timeout), whole when
// framed by Content-Length; other framings are left on the connection.
func TestSendAwait(t *testing.T) {
	shortTimeout(t)
	r, peer := pair(t)
	if r.Send([]byte("GET / HTTP/1.1\r\n\r\n")) {
		t.Fatal("unexpected send before the registration's answer was read")
	}
	_, _ = peer.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	if _, _, ok := r.ReadAnswer(); !ok {
		t.Fatal("unexpected: answer not read")
	}
	const req = "GET /2020-01-01/extension/event/next HTTP/1.1\r\n\r\n"
	const event = "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"eventType\":\"INVOKE\"}"
	if !r.Send([]byte(req)) {
		t.Fatal("unexpected: not sent")
	}
	b := make([]byte, len(req))
	if n, _ := peer.Read(b); string(b[:n]) != req {
		t.Fatalf("unexpected request %q", b[:n])
	}
	go func() {
		time.Sleep(3 * sendTimeout / 2)
		_, _ = peer.WriteString(event[:30])
		time.Sleep(5 * time.Millisecond)
		_, _ = peer.WriteString(event[30:])
	}()
	if got, ok := r.Await(); !ok || string(got) != event {
		t.Fatalf("unexpected answer %q %v", got, ok)
	}
	const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	if !r.Send([]byte(req)) {
		t.Fatal("unexpected: not sent")
	}
	_, _ = peer.WriteString(chunked)
	if got, ok := r.Await(); ok || string(got) != chunked || r.Conn == nil {
		t.Fatalf("unexpected answer %q %v, connection %v", got, ok, r.Conn)
	}
	peer.Close()
	if !r.Send([]byte(req)) { // the peer's end is closed: a write may still succeed
		if r.Conn != nil {
			t.Fatal("unexpected: failed send kept the connection")
		}
		return
	}
	if got, ok := r.Await(); ok || len(got) != 0 {
		t.Fatalf("unexpected answer %q %v from a closed connection", got, ok)
	}
}

// TestInterrupt: Interrupt ends an Await that no answer would end.
func TestInterrupt(t *testing.T) {
	r, peer := pair(t)
	_, _ = peer.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	if _, _, ok := r.ReadAnswer(); !ok || !r.Send([]byte("GET /2020-01-01/extension/event/next HTTP/1.1\r\n\r\n")) {
		t.Fatal("unexpected: answer not read or request not sent")
	}
	done := make(chan bool, 1)
	go func() {
		_, ok := r.Await()
		done <- ok
	}()
	r.Interrupt()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("unexpected answer after Interrupt")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Await still blocked 5s after Interrupt")
	}
}

// TestStatus: the status of a complete answer, 0 for anything else.
func TestStatus(t *testing.T) {
	for answer, want := range map[string]int{
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":       200,
		"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n": 202,
		"HTTP/1.1 400\r\n\r\n":                               400,
		"HTTP/1.1 2000 OK\r\n\r\n":                           0,
		"SSH-2.0\r\n":                                        0,
		"":                                                   0,
	} {
		if got := Status([]byte(answer)); got != want {
			t.Errorf("Status(%q) = %d, want %d", answer, got, want)
		}
	}
}
