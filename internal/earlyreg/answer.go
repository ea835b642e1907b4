package earlyreg

import (
	"bytes"
	"strconv"
	"syscall"
)

// HeaderExtensionIdentifier is the header of the registration's answer that
// carries the extension id.
const HeaderExtensionIdentifier = "Lambda-Extension-Identifier"

// maxAnswerBytes bounds what ReadAnswer and Exchange read: the answers of the
// register and subscribe calls are well under 1 KiB.
const maxAnswerBytes = 64 << 10

// ReadAnswer reads the registration's answer into r.Answer and returns its
// status and extension id. It understands answers framed by Content-Length,
// as the Runtime API sends them; on anything else (another framing, more
// than 64 KiB, an error, no answer within the send timeout) it returns
// false, r.Answer holding what was read, and the caller reads the rest from
// r.Conn with a full HTTP client (extapi does).
func (r *Registration) ReadAnswer() (status int, id string, ok bool) {
	if r.Conn == nil || r.Complete {
		return 0, "", false
	}
	fd := int(r.Conn.Fd())
	tv := syscall.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return 0, "", false
	}
	var hdr []byte
	r.Answer, hdr, ok = readResponse(fd, r.Answer)
	if !ok {
		return 0, "", false
	}
	r.Complete = true
	status, _ = statusCode(hdr)
	return status, string(headerValue(hdr, HeaderExtensionIdentifier)), true
}

// Exchange writes req on r.Conn, after the registration's answer was read
// whole, and reads its answer within the send timeout. It returns what it
// read and whether that is the complete answer (Content-Length framed).
// When req could not be written the connection's state is unknown:
// Exchange closes it, sets r.Conn to nil and returns nil. When the answer
// is not complete (slow, framed otherwise, an error), the request was sent:
// Exchange leaves r.Conn open for a full HTTP client to read the rest of
// the answer from it (or to fail on), as ReadAnswer does; it returns what
// it read, not nil.
func (r *Registration) Exchange(req []byte) (answer []byte, complete bool) {
	if !r.Send(req) {
		return nil, false
	}
	answer, _, complete = readResponse(int(r.Conn.Fd()), []byte{})
	return answer, complete
}

// Send writes req on r.Conn, after the registration's answer was read
// whole (and the answer of any request sent since), for Await to read its
// answer. After a failed write the connection's state is unknown: Send
// closes it and sets r.Conn to nil.
func (r *Registration) Send(req []byte) bool {
	if r.Conn == nil || !r.Complete {
		return false
	}
	if !writeAll(int(r.Conn.Fd()), req) {
		r.drop()
		return false
	}
	return true
}

// Await reads the answer to the request Send wrote with no time limit
// (Interrupt ends it): it is for /event/next, which Lambda answers when
// there is an event (the process may be frozen in between). It returns the answer and true when
// it is framed by Content-Length, as the Runtime API frames it; on
// anything else, or an error, it returns what it read and false, and
// leaves r.Conn open for a full HTTP client to read the rest (or to fail
// on).
func (r *Registration) Await() ([]byte, bool) {
	if r.Conn == nil {
		return nil, false
	}
	fd := int(r.Conn.Fd())
	var none syscall.Timeval
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &none); err != nil {
		return nil, false
	}
	answer, _, ok := readResponse(fd, nil)
	return answer, ok
}

// Interrupt ends the read Await is blocked in (or would block in) at once,
// by shutting the socket down both ways: closing the descriptor would not
// end the read, which would hold its thread and the connection for as long
// as no answer comes. It may be called while Await runs in another
// goroutine; afterwards the connection is of no use, and its owner closes
// it once Await has returned.
func (r *Registration) Interrupt() {
	if r.Conn != nil {
		_ = syscall.Shutdown(int(r.Conn.Fd()), syscall.SHUT_RDWR)
	}
}

// Status returns the status code of a complete answer returned by
// Exchange, or 0.
func Status(answer []byte) int {
	hdr, _, _ := bytes.Cut(answer, []byte("\r\n"))
	if code, ok := statusCode(hdr); ok {
		return code
	}
	return 0
}

func (r *Registration) drop() {
	_ = r.Conn.Close()
	r.Conn = nil
}

// readResponse reads one HTTP/1.1 response framed by Content-Length from
// the blocking socket fd, appending to dst, and returns it with its header
// (the status line and header lines). The server sends nothing past the
// answer before the next request; if it did, the answer is not ok.
func readResponse(fd int, dst []byte) (resp, hdr []byte, ok bool) {
	start := len(dst)
	end := -1 // of the header, in dst
	for {
		if i := bytes.Index(dst[start:], []byte("\r\n\r\n")); i >= 0 {
			end = start + i
			break
		}
		if len(dst)-start >= maxAnswerBytes {
			return dst, nil, false
		}
		var ok bool
		if dst, ok = readSome(fd, dst); !ok {
			return dst, nil, false
		}
	}
	hdr = dst[start:end]
	if _, ok := statusCode(hdr); !ok || headerValue(hdr, "Transfer-Encoding") != nil {
		return dst, nil, false
	}
	length, ok := contentLength(hdr)
	total := end + 4 + length - start
	if !ok || total > maxAnswerBytes {
		return dst, nil, false
	}
	for len(dst)-start < total {
		if dst, ok = readSome(fd, dst); !ok {
			return dst, nil, false
		}
	}
	if len(dst)-start != total {
		return dst, nil, false // more than the answer
	}
	return dst, dst[start:end], true
}

// readSome appends what one read of fd returns, at most 4 KiB.
func readSome(fd int, dst []byte) ([]byte, bool) {
	var b [4096]byte
	for {
		n, err := syscall.Read(fd, b[:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return dst, false
		}
		return append(dst, b[:n]...), true
	}
}

// statusCode parses "HTTP/1.x NNN ..." at the start of hdr.
func statusCode(hdr []byte) (int, bool) {
	if len(hdr) < 12 || string(hdr[:7]) != "HTTP/1." || hdr[8] != ' ' {
		return 0, false
	}
	code := 0
	for _, c := range hdr[9:12] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 200 && (len(hdr) == 12 || hdr[12] == ' ' || hdr[12] == '\r')
}

// contentLength returns the Content-Length header's value.
func contentLength(hdr []byte) (int, bool) {
	v := headerValue(hdr, "Content-Length")
	if len(v) == 0 || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.Atoi(string(v))
	return n, err == nil
}

// headerValue returns the value of the header name (case-insensitive,
// spaces trimmed) in hdr, or nil. It skips the status line.
func headerValue(hdr []byte, name string) []byte {
	_, rest, _ := bytes.Cut(hdr, []byte("\r\n"))
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte(name)) {
			return bytes.Trim(v, " \t")
		}
	}
	return nil
}
