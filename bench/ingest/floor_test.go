package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/poster"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
)

// floorPipeline is the least any telemetry endpoint written in Go can do
// per POST: a TCP server that reads each request (headers, then a
// Content-Length body into one reused buffer) and answers 200, without
// looking at the body, storing it or sending it anywhere. Its CPU time per
// POST is the kernel's work (reads, the answer's write, the poller) and the
// Go runtime's around it, which KTE and the baseline both pay; the
// baseline's CPU time divided by the floor's is the highest ratio any
// implementation could reach at that body size. Over HTTP only; it counts
// the bodies it answers (floorCounter), not records.
type floorPipeline struct {
	ln     net.Listener
	bodies atomic.Uint64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	errs   chan error
}

func newFloor(tb testing.TB) *floorPipeline {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &floorPipeline{ln: ln, conns: map[net.Conn]struct{}{}, errs: make(chan error, 1)}
	f.wg.Go(f.accept)
	return f
}

func (f *floorPipeline) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = struct{}{}
		f.mu.Unlock()
		f.wg.Go(func() {
			if err := f.serve(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				select {
				case f.errs <- err:
				default:
				}
			}
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
			_ = c.Close()
		})
	}
}

var floorAnswer = []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

// serve answers the requests on c one after the other, as the Telemetry
// API sends them (no pipelining).
func (f *floorPipeline) serve(c net.Conn) error {
	buf := make([]byte, 0, 64<<10)
	for {
		// Headers: read until the blank line.
		end := -1
		for end < 0 {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := c.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				return err
			}
			end = bytes.Index(buf, []byte("\r\n\r\n"))
		}
		size, err := contentLength(buf[:end])
		if err != nil {
			return err
		}
		total := end + 4 + size
		if total > cap(buf) {
			buf = append(buf[:cap(buf)], make([]byte, total-cap(buf))...)[:len(buf)]
		}
		if len(buf) < total {
			if _, err := io.ReadFull(c, buf[len(buf):total]); err != nil {
				return err
			}
			buf = buf[:total]
		}
		f.bodies.Add(1)
		if _, err := c.Write(floorAnswer); err != nil {
			return err
		}
		buf = buf[:copy(buf, buf[total:])]
	}
}

// contentLength returns the Content-Length of a request's header block.
func contentLength(h []byte) (int, error) {
	for line := range bytes.SplitSeq(h, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("Content-Length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
			return n, nil
		}
	}
	return 0, errors.New("request without Content-Length")
}

func (f *floorPipeline) post([]byte) error { return errors.New("floor: over HTTP only") }

func (f *floorPipeline) endpoint() string { return f.ln.Addr().String() }

// flush has nothing to deliver; it reports a failed connection.
func (f *floorPipeline) flush(context.Context) error {
	select {
	case err := <-f.errs:
		return fmt.Errorf("floor: %w", err)
	default:
		return nil
	}
}

func (f *floorPipeline) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// floorCounter counts a floor's bodies as the events they hold.
type floorCounter struct {
	f      *floorPipeline
	events int
}

func (c floorCounter) delivered() uint64 { return c.f.bodies.Load() * uint64(c.events) }

// floorImpl runs the floor in BenchmarkEndToEnd, beside impls.
var floorImpl = impl{"floor", func(tb testing.TB, _ transport, _ batch.PutRecordsAPI) pipeline { return newFloor(tb) }}

// TestFloor checks that the floor answers every body of every size, with
// the same client as the benchmarks, counts each once, and reports a
// request it cannot read.
func TestFloor(t *testing.T) {
	f := newFloor(t)
	defer f.close()
	c := poster.New(f.endpoint(), listener.DefaultPath)
	defer c.Close()
	n := 0
	for _, b := range Bodies() {
		for range 2 {
			if err := c.Post(b.Data); err != nil {
				t.Fatalf("unexpected error posting %s: %v", b.Name, err)
			}
			n++
		}
	}
	if err := f.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.bodies.Load(); got != uint64(n) {
		t.Fatalf("unexpected bodies; got %d; want %d", got, n)
	}

	conn, err := net.Dial("tcp", f.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("unexpected answer to a request without Content-Length")
	}
	if err := f.flush(context.Background()); err == nil || !strings.Contains(err.Error(), "without Content-Length") {
		t.Fatalf("unexpected flush error; got %v; want one naming the missing Content-Length", err)
	}
}
