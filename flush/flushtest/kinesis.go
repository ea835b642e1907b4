// Package flushtest holds what the flush-strategy tests and measurements
// share: a fake Kinesis endpoint that records when each PutRecords arrived
// and what it carried. Its own tests run the real extension binary in the
// Lambda simulator (package lambdasim) under each KTE_FLUSH strategy.
package flushtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Call is one PutRecords the fake answered.
type Call struct {
	// At is when the request arrived; Done when the answer was written
	// (At plus the configured latency): the moment the records count as
	// delivered.
	At, Done time.Time
	// Stream is the request's StreamName.
	Stream string
	// Records holds each record's data, in request order.
	Records [][]byte
}

// Kinesis is a fake Kinesis Data Streams endpoint (AWS JSON 1.1) that
// accepts every PutRecords in full after a fixed latency, and refuses every
// other operation. It is safe for concurrent use.
type Kinesis struct {
	srv     *httptest.Server
	latency time.Duration

	mu    sync.Mutex
	calls []Call
}

// NewKinesis starts a fake endpoint whose every answer takes latency (the
// in-region PutRecords round trip it stands for). Close it when done.
func NewKinesis(latency time.Duration) *Kinesis {
	k := &Kinesis{latency: latency}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	return k
}

// URL is the endpoint, for AWS_ENDPOINT_URL_KINESIS.
func (k *Kinesis) URL() string { return k.srv.URL }

// Env returns the environment entries that point the extension's SDK at the
// fake with dummy credentials.
func (k *Kinesis) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_KINESIS=" + k.srv.URL,
		"AWS_ACCESS_KEY_ID=AKIDFAKE",
		"AWS_SECRET_ACCESS_KEY=fake-secret",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Close stops the endpoint.
func (k *Kinesis) Close() { k.srv.Close() }

// Calls returns the PutRecords calls answered so far, in arrival order.
func (k *Kinesis) Calls() []Call {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Call(nil), k.calls...)
}

// Records returns every record's data received so far, in arrival order.
func (k *Kinesis) Records() [][]byte {
	var out [][]byte
	for _, c := range k.Calls() {
		out = append(out, c.Records...)
	}
	return out
}

// Count returns the number of records received so far.
func (k *Kinesis) Count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.calls {
		n += len(c.Records)
	}
	return n
}

func (k *Kinesis) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "Kinesis_20131202.PutRecords" {
		fail(w, 400, "UnknownOperationException", "the fake only knows PutRecords, not "+target)
		return
	}
	var req struct {
		StreamName string
		Records    []struct {
			Data         []byte
			PartitionKey string
		}
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Records) == 0 {
		fail(w, 400, "InvalidArgumentException", fmt.Sprintf("bad PutRecords body: %v", err))
		return
	}
	if k.latency > 0 {
		time.Sleep(k.latency)
	}
	c := Call{At: at, Stream: req.StreamName, Records: make([][]byte, len(req.Records))}
	var b strings.Builder
	b.WriteString(`{"FailedRecordCount":0,"Records":[`)
	for i, rec := range req.Records {
		c.Records[i] = rec.Data
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"SequenceNumber":"%d","ShardId":"shardId-000000000000"}`, i)
	}
	b.WriteString(`]}`)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = io.WriteString(w, b.String())
	c.Done = time.Now()
	k.mu.Lock()
	k.calls = append(k.calls, c)
	k.mu.Unlock()
}

func fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":%q,"message":%q}`, typ, msg)
}
