// Package poster stands in for Lambda's Telemetry API in the ingest
// benchmarks: one fasthttp connection, one POST at a time, as Lambda
// delivers to a subscriber. Post runs it in this process; Remote runs it in
// a child process (cmd/poster), so that the benchmark's own CPU time and
// allocations are the implementation's, without the load generator's.
package poster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// Client POSTs bodies to one address.
type Client struct {
	c    *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
}

// New returns a client for the telemetry endpoint at addr (host:port) and
// path.
func New(addr, path string) *Client {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 1, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	return &Client{c: c, req: req, resp: fasthttp.AcquireResponse()}
}

// Post POSTs body, again while the answer is 503 (the ring is full and
// Lambda would retry), and fails on any other status than 200.
func (c *Client) Post(body []byte) error {
	c.req.SetBodyRaw(body)
	for {
		if err := c.c.Do(c.req, c.resp); err != nil {
			return fmt.Errorf("cannot post: %w", err)
		}
		switch c.resp.StatusCode() {
		case fasthttp.StatusOK:
			return nil
		case fasthttp.StatusServiceUnavailable:
			time.Sleep(time.Millisecond)
		default:
			return fmt.Errorf("unexpected status %d: %s", c.resp.StatusCode(), c.resp.Body())
		}
	}
}

// Close closes the connection.
func (c *Client) Close() { c.c.CloseIdleConnections() }

// Package is the command Remote runs.
const Package = "github.com/kte-dev/kinesis-telemetry-extension/bench/internal/poster/cmd/poster"

// Remote is a poster in a child process. Its protocol, on the child's
// stdin: a line "addr path", then jobs "n size\n" followed by size bytes of
// body; the child POSTs the body n times, one after the other, and answers
// "ok\n" or "error <message>\n" on its stdout.
type Remote struct {
	cmd *exec.Cmd
	in  *bufio.Writer
	inC io.Closer
	out *bufio.Reader
}

// StartRemote builds the poster command into dir (once per dir) and starts
// it for the endpoint at addr and path.
func StartRemote(ctx context.Context, dir, addr, path string) (*Remote, error) {
	bin := dir + "/poster"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = lambdasim.Build(ctx, Package, dir, "poster"); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the poster: %w", err)
	}
	r := &Remote{cmd: cmd, in: bufio.NewWriter(in), inC: in, out: bufio.NewReader(out)}
	if _, err := fmt.Fprintf(r.in, "%s %s\n", addr, path); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Post has the child POST body n times and waits until it has.
func (r *Remote) Post(body []byte, n int) error {
	if _, err := fmt.Fprintf(r.in, "%d %d\n", n, len(body)); err != nil {
		return err
	}
	if _, err := r.in.Write(body); err != nil {
		return err
	}
	if err := r.in.Flush(); err != nil {
		return err
	}
	line, err := r.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("poster: %w", err)
	}
	if line = strings.TrimSuffix(line, "\n"); line != "ok" {
		return errors.New("poster: " + strings.TrimPrefix(line, "error "))
	}
	return nil
}

// Close ends the child.
func (r *Remote) Close() error {
	_ = r.inC.Close()
	return r.cmd.Wait()
}

// Serve is the child's side of Remote: it reads jobs from in and answers on
// out until in ends.
func Serve(in io.Reader, out io.Writer) error {
	br := bufio.NewReaderSize(in, 64<<10)
	head, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("poster: no address: %w", err)
	}
	addr, path, ok := strings.Cut(strings.TrimSuffix(head, "\n"), " ")
	if !ok {
		return fmt.Errorf("poster: bad first line %q", head)
	}
	c := New(addr, path)
	defer c.Close()
	var body []byte
	for {
		job, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && job == "" {
			return nil
		}
		if err != nil {
			return err
		}
		ns, ss, _ := strings.Cut(strings.TrimSuffix(job, "\n"), " ")
		n, err1 := strconv.Atoi(ns)
		size, err2 := strconv.Atoi(ss)
		if err1 != nil || err2 != nil || n < 0 || size < 0 {
			return fmt.Errorf("poster: bad job %q", job)
		}
		if cap(body) < size {
			body = make([]byte, size)
		}
		body = body[:size]
		if _, err := io.ReadFull(br, body); err != nil {
			return err
		}
		answer := "ok\n"
		for range n {
			if err := c.Post(body); err != nil {
				answer = "error " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
				break
			}
		}
		if _, err := io.WriteString(out, answer); err != nil {
			return err
		}
	}
}
