package baseline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// memClient records every call; fail decides which entries of call n fail.
type memClient struct {
	mu    sync.Mutex
	calls [][]types.PutRecordsRequestEntry
	fail  func(n, i int) bool
}

func (c *memClient) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	c.mu.Lock()
	n := len(c.calls)
	c.calls = append(c.calls, append([]types.PutRecordsRequestEntry(nil), in.Records...))
	c.mu.Unlock()
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i := range in.Records {
		var r types.PutRecordsResultEntry
		if c.fail != nil && c.fail(n, i) {
			r.ErrorCode = aws.String("ProvisionedThroughputExceededException")
			*out.FailedRecordCount++
		} else {
			r.SequenceNumber, r.ShardId = aws.String("1"), aws.String("shardId-000000000000")
		}
		out.Records = append(out.Records, r)
	}
	return out, nil
}

func (c *memClient) snapshot() [][]types.PutRecordsRequestEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]types.PutRecordsRequestEntry(nil), c.calls...)
}

func start(t *testing.T, c PutRecordsAPI) (*Extension, string) {
	t.Helper()
	e := New(c, Options{Stream: "s", PartitionKey: "k"})
	addr, err := e.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	t.Cleanup(func() {
		_ = e.Shutdown(context.Background())
		cancel()
		<-done
	})
	for e.Flush(context.Background()) != nil {
		time.Sleep(time.Millisecond)
	}
	return e, "http://" + addr.String() + "/telemetry"
}

func body(from, n, size int) []byte {
	b := []byte{'['}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		ev := fmt.Sprintf(`{"i":%d,"pad":"`, from+i)
		b = append(b, ev...)
		b = append(b, bytes.Repeat([]byte{'x'}, max(0, size-len(ev)-2))...)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

func post(t *testing.T, url string, b []byte) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestDeliversEverythingInBatches(t *testing.T) {
	c := &memClient{}
	e, url := start(t, c)
	var want []string
	for p := range 4 {
		b := body(p*300, 300, 100)
		if st := post(t, url, b); st != http.StatusOK {
			t.Fatalf("unexpected status; got %d; want 200", st)
		}
		for i := range 300 {
			want = append(want, fmt.Sprintf(`{"i":%d,`, p*300+i))
		}
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, call := range c.snapshot() {
		if len(call) > MaxRecords {
			t.Fatalf("unexpected call %d of %d records; want at most %d", i, len(call), MaxRecords)
		}
		for _, r := range call {
			if aws.ToString(r.PartitionKey) != "k" {
				t.Fatalf("unexpected partition key %q", aws.ToString(r.PartitionKey))
			}
			got = append(got, string(r.Data[:bytes.IndexByte(r.Data, ',')+1]))
		}
	}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("unexpected records: got %d, want %d, or out of order", len(got), len(want))
	}
	if n := len(c.snapshot()); n != 3 { // 500 + 500 while streaming, 200 at the flush
		t.Fatalf("unexpected calls; got %d; want 3", n)
	}
	if st := e.Stats(); st.Received != 1200 || st.Sent != 1200 || st.Dropped != 0 {
		t.Fatalf("unexpected stats: %+v", st)
	}
}

func TestByteLimits(t *testing.T) {
	c := &memClient{}
	e, url := start(t, c)
	// 12 events of 600 KiB: at most 8 fit 5 MiB; one event over 1 MiB is
	// dropped.
	for i := range 12 {
		if st := post(t, url, body(i, 1, 600<<10)); st != http.StatusOK {
			t.Fatalf("unexpected status; got %d; want 200", st)
		}
	}
	if st := post(t, url, body(99, 1, MaxRecordBytes)); st != http.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", st)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, call := range c.snapshot() {
		size := 0
		for _, r := range call {
			size += len(r.Data) + len(aws.ToString(r.PartitionKey))
		}
		if size > MaxRequestBytes {
			t.Fatalf("unexpected call %d of %d bytes; want at most %d", i, size, MaxRequestBytes)
		}
		total += len(call)
	}
	if total != 12 {
		t.Fatalf("unexpected records sent; got %d; want 12", total)
	}
	if st := e.Stats(); st.Dropped != 1 {
		t.Fatalf("unexpected dropped; got %d; want 1", st.Dropped)
	}
}

func TestResendsFailedEntries(t *testing.T) {
	// The first call fails its even entries, the second succeeds.
	c := &memClient{fail: func(n, i int) bool { return n == 0 && i%2 == 0 }}
	e, url := start(t, c)
	if st := post(t, url, body(0, 10, 50)); st != http.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", st)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := c.snapshot()
	if len(calls) != 2 || len(calls[0]) != 10 || len(calls[1]) != 5 {
		t.Fatalf("unexpected calls: %d", len(calls))
	}
	if !bytes.HasPrefix(calls[1][0].Data, []byte(`{"i":0,`)) || !bytes.HasPrefix(calls[1][4].Data, []byte(`{"i":8,`)) {
		t.Fatalf("unexpected resent records: %s ... %s", calls[1][0].Data, calls[1][4].Data)
	}
	if st := e.Stats(); st.Sent != 10 || st.Calls != 2 {
		t.Fatalf("unexpected stats: %+v", st)
	}
}

func TestRefusals(t *testing.T) {
	_, url := start(t, &memClient{})
	f := func(method, b string, want int) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("unexpected status for %s %q; got %d; want %d", method, b, resp.StatusCode, want)
		}
	}
	f(http.MethodGet, "", http.StatusMethodNotAllowed)
	f(http.MethodPost, `{"not":"an array"}`, http.StatusBadRequest)
	f(http.MethodPost, `[{"a":1}`, http.StatusBadRequest)
	f(http.MethodPost, `[]`, http.StatusOK)
}

func TestFlushWithoutRun(t *testing.T) {
	e := New(&memClient{}, Options{})
	if err := e.Flush(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("unexpected error; got %v; want %v", err, ErrNotRunning)
	}
}
