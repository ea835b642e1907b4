// Package fakekinesis is an in-process Kinesis endpoint that speaks just
// enough of the JSON 1.1 protocol for PutRecords to stand in for Kinesis in
// benchmarks and harnesses, where kinesalite (about 5,000 records/s) would
// cap every figure.
//
// It answers every PutRecords with success for all its records. By default it
// only counts the records (one scan of the body for the "PartitionKey" member,
// which the SDK writes once per record and which cannot occur unescaped inside
// a JSON string), so that its cost, shared by every implementation under test,
// stays small. With Options.Keep it decodes every record and keeps its data,
// for harnesses that check what arrived.
package fakekinesis

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Target is the X-Amz-Target of PutRecords, the only operation served.
const Target = "Kinesis_20131202.PutRecords"

// MaxRecords is the most records Kinesis accepts in one PutRecords; the fake
// refuses more, as Kinesis does, so a packing bug cannot go unnoticed.
const MaxRecords = 500

// Options configure a Server.
type Options struct {
	// Keep decodes every request and keeps each record's data (Data).
	// Off: records are counted only.
	Keep bool
}

// Stats are the server's counters.
type Stats struct {
	Calls   uint64 // PutRecords calls answered with success
	Records uint64 // records in those calls
	Bytes   uint64 // request body bytes of those calls
	Refused uint64 // requests answered with an error (wrong target, bad body, too many records)
	Conns   uint64 // TCP connections accepted
}

// Server is a fake Kinesis endpoint on 127.0.0.1. Its handler runs on many
// goroutines at once; Stats, Data and URL are safe from any goroutine.
type Server struct {
	srv  *httptest.Server
	keep bool

	calls, records, bytes, refused, conns atomic.Uint64

	bufs sync.Pool // *bytes.Buffer for request bodies

	mu   sync.Mutex
	data [][]byte // kept record data, in arrival order (Keep only)
}

// New starts a Server; Close stops it.
func New(o Options) *Server {
	s := &Server{keep: o.Keep}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	return s
}

// URL is the endpoint, for AWS_ENDPOINT_URL_KINESIS or BaseEndpoint.
func (s *Server) URL() string { return s.srv.URL }

// HideWriteTo wraps the AWS SDK's HTTP client (kinesis.Options.HTTPClient)
// to work around a race between smithy-go and net/http that, against a fast
// endpoint, closes the connection of about one call in ten and can make the
// call fail, so that its records are sent twice: smithy-go closes the request
// body as soon as the response headers arrive, and its closed body's WriteTo
// returns io.EOF, which net/http's writeLoop, still draining the body after
// the Content-Length bytes, takes for a write error; it then closes the
// connection under the response being read ("use of closed network
// connection"). The wrapper hides every method of the body but Read and
// Close; net/http then reads it with Read, whose io.EOF after close is a
// normal end.
func HideWriteTo(c kinesis.HTTPClient) kinesis.HTTPClient { return hideWriteTo{c} }

type hideWriteTo struct{ kinesis.HTTPClient }

// readCloser hides every method of a body but Read and Close.
type readCloser struct{ io.ReadCloser }

func (c hideWriteTo) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = readCloser{req.Body}
	}
	return c.HTTPClient.Do(req)
}

// Env returns the environment entries ("KEY=value") that point the AWS SDK,
// in this process or in an extension process, at s with static fake
// credentials (so that no credential provider reaches for the network).
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_KINESIS=" + s.URL(),
		"AWS_ACCESS_KEY_ID=AKIAFAKEKINESIS",
		"AWS_SECRET_ACCESS_KEY=fake-secret",
	}
}

// Close stops the server and waits for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Calls: s.calls.Load(), Records: s.records.Load(), Bytes: s.bytes.Load(), Refused: s.refused.Load(), Conns: s.conns.Load()}
}

// Data returns the data of every record received so far, in arrival order
// (Options.Keep only; nil otherwise). The slices are the server's own and must
// not be modified.
func (s *Server) Data() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[:len(s.data):len(s.data)]
}

var partitionKeyMember = []byte(`"PartitionKey":`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != Target {
		s.refuse(w, "UnknownOperationException", "only PutRecords is served")
		return
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.bufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r.Body); err != nil {
		s.refuse(w, "SerializationException", "cannot read the body")
		return
	}
	body := buf.Bytes()
	var n int
	if s.keep {
		var in struct {
			Records []struct{ Data []byte } // encoding/json decodes base64 into []byte
		}
		if err := json.Unmarshal(body, &in); err != nil {
			s.refuse(w, "SerializationException", "cannot decode the body")
			return
		}
		n = len(in.Records)
		if n > 0 && n <= MaxRecords {
			s.mu.Lock()
			for _, rec := range in.Records {
				s.data = append(s.data, rec.Data)
			}
			s.mu.Unlock()
		}
	} else {
		n = bytes.Count(body, partitionKeyMember)
	}
	if n == 0 || n > MaxRecords {
		s.refuse(w, "ValidationException", "a request holds 1 to 500 records")
		return
	}
	s.calls.Add(1)
	s.records.Add(uint64(n))
	s.bytes.Add(uint64(len(body)))
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(okPrefix)+n*len(okEntry)-1+len(okSuffix)))
	_, _ = w.Write(okPrefix)
	_, _ = w.Write(okEntries[:n*len(okEntry)-1]) // without the last comma
	_, _ = w.Write(okSuffix)
}

func (s *Server) refuse(w http.ResponseWriter, typ, msg string) {
	s.refused.Add(1)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"__type":"` + typ + `","message":"` + msg + `"}`))
}

// A success response is okPrefix, n entries joined by commas, okSuffix. The
// entries have the size of real ones (56-digit sequence numbers), so the
// SDK's decoding work is what it is against Kinesis.
var (
	okPrefix  = []byte(`{"FailedRecordCount":0,"Records":[`)
	okEntry   = `{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"},`
	okSuffix  = []byte(`]}`)
	okEntries = bytes.Repeat([]byte(okEntry), MaxRecords)
)
