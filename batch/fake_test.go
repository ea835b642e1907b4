package batch

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// testConfig returns a valid configuration for stream "test" with the given
// limits and a fixed partition key.
func testConfig(maxRecords, maxBytes, recordMax int, key string) config.Config {
	return config.Config{
		StreamName:      "test",
		BatchMaxRecords: maxRecords,
		BatchMaxBytes:   maxBytes,
		RecordMaxBytes:  recordMax,
		PartitionKey:    config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: key},
		SendTimeout:     2 * time.Second,
	}
}

func newRing(tb testing.TB, size int) *ring.Ring {
	tb.Helper()
	r, err := ring.New(size)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func newPacker(tb testing.TB, r *ring.Ring, cfg config.Config, opts Options) *Packer {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := New(r, cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// event returns a size-byte event that starts with its id (8 hex digits,
// so size must be at least 8) and is filled with printable bytes.
func event(id, size int) []byte {
	b := make([]byte, size)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(id))
	hex.Encode(b, n[:])
	for i := 8; i < size; i++ {
		b[i] = byte('a' + (id+i)%26)
	}
	return b
}

func eventID(b []byte) int {
	var n [4]byte
	if _, err := hex.Decode(n[:], b[:8]); err != nil {
		return -1
	}
	return int(binary.BigEndian.Uint32(n[:]))
}

// memClient is an in-memory PutRecordsAPI: respond decides each call.
// Safe for concurrent use.
type memClient struct {
	mu      sync.Mutex
	calls   []memCall
	respond func(n int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)
}

type memCall struct {
	data [][]byte
	keys []string
	name string
	arn  string
	err  error
	out  *kinesis.PutRecordsOutput
}

func (c *memClient) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	call := memCall{name: aws.ToString(in.StreamName), arn: aws.ToString(in.StreamARN)}
	for _, e := range in.Records {
		call.data = append(call.data, bytes.Clone(e.Data))
		call.keys = append(call.keys, aws.ToString(e.PartitionKey))
	}
	c.mu.Lock()
	n := len(c.calls)
	c.calls = append(c.calls, call)
	c.mu.Unlock()
	var out *kinesis.PutRecordsOutput
	var err error
	if c.respond != nil {
		out, err = c.respond(n, in)
	} else {
		out = okOutput(len(in.Records))
	}
	c.mu.Lock()
	c.calls[n].out, c.calls[n].err = out, err
	c.mu.Unlock()
	return out, err
}

func (c *memClient) snapshot() []memCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]memCall(nil), c.calls...)
}

// okOutput is a response accepting n records.
func okOutput(n int) *kinesis.PutRecordsOutput {
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0), Records: make([]types.PutRecordsResultEntry, n)}
	for i := range out.Records {
		out.Records[i] = types.PutRecordsResultEntry{SequenceNumber: aws.String(strconv.Itoa(i)), ShardId: aws.String("shardId-000000000000")}
	}
	return out
}

// failOutput is a response for n records where fail(i) gives the error
// code of record i ("" for success).
func failOutput(n int, fail func(i int) string) *kinesis.PutRecordsOutput {
	out := okOutput(n)
	failed := int32(0)
	for i := range out.Records {
		if code := fail(i); code != "" {
			out.Records[i] = types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected")}
			failed++
		}
	}
	out.FailedRecordCount = aws.Int32(failed)
	return out
}

// fakeKinesis is an httptest server speaking the Kinesis JSON 1.1 protocol
// for PutRecords. handle decides each call: it returns the per-record error
// codes ("" = stored), or an HTTP status and error type for the whole call,
// or hang to hold the call until the client gives up. Stored records are
// kept in stored.
type fakeKinesis struct {
	*httptest.Server

	mu       sync.Mutex
	handle   func(n int, req *fakeRequest) fakeAnswer
	requests []*fakeRequest
	stored   [][]byte
	inFlight int
	hung     int // calls that ended because the client went away
}

type fakeRequest struct {
	StreamName string
	StreamARN  string
	Records    []struct {
		Data         []byte // base64 in JSON
		PartitionKey string
	}
	authorization string
}

type fakeAnswer struct {
	codes   []string // per record; nil: all stored
	status  int      // non-zero: fail the whole call with this status...
	errType string   // ...and this __type
	hang    bool     // hold the call until the client goes away
}

func newFakeKinesis(tb testing.TB, handle func(n int, req *fakeRequest) fakeAnswer) *fakeKinesis {
	tb.Helper()
	f := &fakeKinesis{handle: handle}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(f.Close)
	return f
}

func (f *fakeKinesis) setHandle(h func(n int, req *fakeRequest) fakeAnswer) {
	f.mu.Lock()
	f.handle = h
	f.mu.Unlock()
}

func (f *fakeKinesis) serve(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-Amz-Target"); got != "Kinesis_20131202.PutRecords" {
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
		return
	}
	req := &fakeRequest{authorization: r.Header.Get("Authorization")}
	if err := json.NewDecoder(r.Body).Decode(req); err != nil {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"SerializationException","message":%q}`, err.Error())
		return
	}
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, req)
	f.inFlight++
	h := f.handle
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	a := fakeAnswer{}
	if h != nil {
		a = h(n, req)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch {
	case a.hang:
		<-r.Context().Done()
		f.mu.Lock()
		f.hung++
		f.mu.Unlock()
		return
	case a.status != 0:
		w.Header().Set("X-Amzn-ErrorType", a.errType)
		w.WriteHeader(a.status)
		fmt.Fprintf(w, `{"__type":%q,"message":"injected"}`, a.errType)
		return
	}
	var b bytes.Buffer
	failed := 0
	b.WriteString(`{"Records":[`)
	for i, rec := range req.Records {
		if i > 0 {
			b.WriteByte(',')
		}
		if i < len(a.codes) && a.codes[i] != "" {
			failed++
			fmt.Fprintf(&b, `{"ErrorCode":%q,"ErrorMessage":"injected"}`, a.codes[i])
			continue
		}
		f.mu.Lock()
		f.stored = append(f.stored, rec.Data)
		seq := len(f.stored)
		f.mu.Unlock()
		fmt.Fprintf(&b, `{"SequenceNumber":"%d","ShardId":"shardId-000000000000"}`, seq)
	}
	fmt.Fprintf(&b, `],"FailedRecordCount":%d}`, failed)
	_, _ = w.Write(b.Bytes())
}

func (f *fakeKinesis) snapshot() (reqs []*fakeRequest, stored [][]byte, hung int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeRequest(nil), f.requests...), append([][]byte(nil), f.stored...), f.hung
}

// client returns an SDK client for f with the packer's retry choice (no SDK
// retries) and fake credentials.
func (f *fakeKinesis) client() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   newHTTPClient(2 * time.Second),
	}, WireOptions)
}

// countingClient wraps a PutRecordsAPI and counts calls in flight.
type countingClient struct {
	PutRecordsAPI
	mu       sync.Mutex
	inFlight int
	max      int
}

func (c *countingClient) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	c.mu.Lock()
	c.inFlight++
	c.max = max(c.max, c.inFlight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	return c.PutRecordsAPI.PutRecords(ctx, in, o...)
}

func (c *countingClient) current() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}

// runPacker starts p.Run and stops it at cleanup.
func runPacker(tb testing.TB, p *Packer) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			tb.Errorf("unexpected Run result; got %v; want context.Canceled", err)
		}
	})
}

// errAPI is an error as the SDK returns it for a refused call: an
// operation error wrapping the HTTP response error and the API error.
func errAPI(code string, status int) error {
	return &smithy.OperationError{ServiceID: "Kinesis", OperationName: "PutRecords", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "injected"},
		},
	}}
}

// writeAll writes events to p's ring as one block.
func writeAll(tb testing.TB, p *Packer, events [][]byte) {
	if err := ringtest.Write(p.r, events...); err != nil {
		tb.Fatal(err)
	}
}

// buildEvents returns events 0..n-1 of size bytes.
func buildEvents(n, size int) [][]byte {
	ev := make([][]byte, n)
	for i := range ev {
		ev[i] = event(i, size)
	}
	return ev
}
