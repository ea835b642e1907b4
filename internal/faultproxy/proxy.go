// Package faultproxy is an HTTP proxy for the Kinesis API (AWS JSON 1.1)
// that injects faults into PutRecords calls, for tests of the sender and of
// the whole extension. Point the client at it (AWS_ENDPOINT_URL_KINESIS or
// BaseEndpoint) and the proxy at a real implementation such as kinesalite.
//
// Faults that keep delivery exactly-once (nothing is stored for a call or
// record that is answered as failed):
//
//   - Throttle, ServerError, Hang: decided before forwarding; the call is not
//     forwarded at all.
//   - RecordFailure: the chosen records are kept out of the forwarded request
//     and answered with ProvisionedThroughputExceededException or
//     InternalFailure (alternately) at their index in the response.
//   - Delay: waits, then forwards only if the client is still waiting. Keep
//     it well below the client's timeout: a client that gives up while the
//     call is being forwarded may find its records stored after all.
//
// LostResponse is the at-least-once case: the call is forwarded and stored,
// then answered with HTTP 500, so the client resends records that are
// already in the stream.
//
// Calls other than PutRecords are forwarded unchanged. The proxy signs
// nothing: the forwarded request keeps the client's Authorization header, so
// the target must not check signatures (kinesalite does not).
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target header values of the Kinesis JSON 1.1 protocol.
const (
	targetPrefix     = "Kinesis_20131202."
	targetPutRecords = targetPrefix + "PutRecords"
	contentType      = "application/x-amz-json-1.1"
)

// Error codes the proxy injects.
const (
	CodeThroughput = "ProvisionedThroughputExceededException"
	CodeInternal   = "InternalFailure"
	CodeServer     = "InternalFailureException"
)

// Faults says how often each fault is injected. Probabilities are in [0, 1];
// Throttle + ServerError + Hang + Delay must not exceed 1 (one draw per call
// picks at most one of them). Zero values inject nothing.
type Faults struct {
	// Seed makes the decisions reproducible. What happens to a call (its
	// fault, whether its response is lost) depends only on its place in the
	// order of calls: the failed records are drawn from a stream of their
	// own, so the number of records a call carries, which depends on timing,
	// does not shift the faults of the calls after it.
	Seed uint64

	Throttle    float64 // answer HTTP 400 ProvisionedThroughputExceededException, not forwarded
	ServerError float64 // answer HTTP 500 InternalFailureException, not forwarded
	Hang        float64 // hold the call until the client goes away, not forwarded
	Delay       float64 // wait DelayTime, then forward
	DelayTime   time.Duration

	// RecordFailure is the chance that each record of a forwarded call is
	// failed instead of forwarded.
	RecordFailure float64

	// LostResponse is the chance that a forwarded call is answered with
	// HTTP 500 although its records were stored (at-least-once).
	LostResponse float64
}

// The fault sets of the tests that check every kind of fault they inject
// happened. A call's fault depends only on its place in the order of
// calls, so their seeds are chosen to give each kind within the first 20
// calls, which any of their runs makes (TestSeedsInjectEveryKindEarly).
var (
	// EndToEndFaults is e2e's TestFaultProxy's, whose subtests set
	// LostResponse to 0 and to this.
	EndToEndFaults = Faults{Seed: 7, RecordFailure: 0.15, Throttle: 0.1, ServerError: 0.1, Hang: 0.08,
		Delay: 0.1, DelayTime: 30 * time.Millisecond, LostResponse: 0.25}
	// PackerFaults is batch's TestKinesaliteThroughFaultProxy's.
	PackerFaults = Faults{Seed: 8, RecordFailure: 0.1, Throttle: 0.1, ServerError: 0.1, Hang: 0.03,
		Delay: 0.1, DelayTime: 20 * time.Millisecond}
	// LostAnswerFaults is batch's TestKinesaliteLostResponsesAtLeastOnce's.
	LostAnswerFaults = Faults{Seed: 5, LostResponse: 0.2}
)

func (f Faults) validate() error {
	for _, p := range []float64{f.Throttle, f.ServerError, f.Hang, f.Delay, f.RecordFailure, f.LostResponse} {
		if p < 0 || p > 1 {
			return fmt.Errorf("faultproxy: probability %v out of [0, 1]", p)
		}
	}
	if f.Throttle+f.ServerError+f.Hang+f.Delay > 1 {
		return errors.New("faultproxy: Throttle + ServerError + Hang + Delay exceed 1")
	}
	return nil
}

// Stats counts what the proxy did. Records counts are records of
// PutRecords calls.
type Stats struct {
	Calls          uint64 // PutRecords calls received
	Forwarded      uint64 // PutRecords calls forwarded (in part or whole)
	Throttled      uint64
	ServerErrors   uint64
	Hung           uint64
	Delayed        uint64
	Abandoned      uint64 // delayed calls whose client left before forwarding
	RecordFailures uint64 // records failed by injection
	LostResponses  uint64 // forwarded calls answered with 500
	LostRecords    uint64 // records stored by calls answered with 500
	Other          uint64 // other calls passed through
}

// Proxy is the fault-injecting handler. It is safe for concurrent use.
type Proxy struct {
	target *url.URL
	client *http.Client

	mu      sync.Mutex // guards faults, callRNG and recRNG
	faults  Faults
	callRNG *rand.Rand // one call's fault and lost response, two draws per call
	recRNG  *rand.Rand // the failed records

	calls, forwarded, throttled, serverErrors, hung, delayed, abandoned atomic.Uint64
	recordFailures, lostResponses, lostRecords, other                   atomic.Uint64
}

// New returns a proxy forwarding to target (a base URL such as
// http://127.0.0.1:4567).
func New(target string, f Faults) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: bad target URL %q", target)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		target: u,
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}},
	}
	p.seed(f)
	return p, nil
}

// seed sets the faults and restarts both streams of decisions. Called with
// mu held, or before the proxy is shared.
func (p *Proxy) seed(f Faults) {
	p.faults = f
	p.callRNG = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	p.recRNG = rand.New(rand.NewPCG(f.Seed^0x2545f4914f6cdd1d, f.Seed))
}

// SetFaults replaces the faults (and reseeds) for the calls that follow.
func (p *Proxy) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	p.seed(f)
	p.mu.Unlock()
	return nil
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Calls: p.calls.Load(), Forwarded: p.forwarded.Load(), Throttled: p.throttled.Load(),
		ServerErrors: p.serverErrors.Load(), Hung: p.hung.Load(), Delayed: p.delayed.Load(),
		Abandoned: p.abandoned.Load(), RecordFailures: p.recordFailures.Load(),
		LostResponses: p.lostResponses.Load(), LostRecords: p.lostRecords.Load(), Other: p.other.Load(),
	}
}

// callFault is the whole-call decision.
type callFault uint8

const (
	faultNone callFault = iota
	faultThrottle
	faultServer
	faultHang
	faultDelay
)

// plan is every decision for one PutRecords call, drawn at once under mu.
type plan struct {
	call  callFault
	delay time.Duration
	fail  []string // per record: injected error code, or ""
	lost  bool
}

func (p *Proxy) plan(records int) plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	var pl plan
	x, lost := p.callRNG.Float64(), p.callRNG.Float64()
	switch {
	case x < f.Throttle:
		pl.call = faultThrottle
	case x < f.Throttle+f.ServerError:
		pl.call = faultServer
	case x < f.Throttle+f.ServerError+f.Hang:
		pl.call = faultHang
	case x < f.Throttle+f.ServerError+f.Hang+f.Delay:
		pl.call, pl.delay = faultDelay, f.DelayTime
	}
	if f.RecordFailure > 0 {
		pl.fail = make([]string, records)
		n := 0
		for i := range pl.fail {
			if p.recRNG.Float64() < f.RecordFailure {
				pl.fail[i] = CodeThroughput
				if n%2 == 1 {
					pl.fail[i] = CodeInternal
				}
				n++
			}
		}
	}
	pl.lost = lost < f.LostResponse
	return pl
}

// ServeHTTP handles one call.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("X-Amz-Target") != targetPutRecords {
		p.other.Add(1)
		p.pass(w, r, body)
		return
	}
	p.calls.Add(1)
	var req map[string]json.RawMessage
	var records []json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || json.Unmarshal(req["Records"], &records) != nil {
		p.pass(w, r, body) // let the target answer the malformed request
		return
	}
	pl := p.plan(len(records))
	switch pl.call {
	case faultThrottle:
		p.throttled.Add(1)
		writeError(w, http.StatusBadRequest, CodeThroughput, "Rate exceeded for stream (injected by faultproxy)")
		return
	case faultServer:
		p.serverErrors.Add(1)
		writeError(w, http.StatusInternalServerError, CodeServer, "injected by faultproxy")
		return
	case faultHang:
		p.hung.Add(1)
		<-r.Context().Done()
		return
	case faultDelay:
		p.delayed.Add(1)
		t := time.NewTimer(pl.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			p.abandoned.Add(1)
			return
		}
	}

	// Keep the failed records out of the forwarded request.
	var keep []json.RawMessage
	failed := 0
	for i, rec := range records {
		if pl.fail != nil && pl.fail[i] != "" {
			failed++
			continue
		}
		keep = append(keep, rec)
	}
	p.recordFailures.Add(uint64(failed))
	var fwd []json.RawMessage // results of the forwarded records, in order
	var encryption json.RawMessage
	if len(keep) > 0 {
		req["Records"], _ = json.Marshal(keep)
		fbody, _ := json.Marshal(req)
		// The client may leave while we forward; finish the call anyway, so
		// that what the target stored is what it answered.
		resp, rbody, err := p.forward(context.WithoutCancel(r.Context()), r, fbody)
		if err != nil {
			http.Error(w, "faultproxy: cannot forward: "+err.Error(), http.StatusBadGateway)
			return
		}
		p.forwarded.Add(1)
		if resp.StatusCode != http.StatusOK {
			copyResponse(w, resp, rbody) // the target's own error
			return
		}
		var out struct {
			Records        []json.RawMessage
			EncryptionType json.RawMessage
		}
		if err := json.Unmarshal(rbody, &out); err != nil || len(out.Records) != len(keep) {
			http.Error(w, "faultproxy: unexpected response from target", http.StatusBadGateway)
			return
		}
		fwd, encryption = out.Records, out.EncryptionType
		if pl.lost {
			p.lostResponses.Add(1)
			p.lostRecords.Add(uint64(len(keep)))
			writeError(w, http.StatusInternalServerError, CodeServer, "response lost (injected by faultproxy)")
			return
		}
	}

	// Merge: injected failures at their index, the target's results elsewhere.
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	j := 0
	for i := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		if pl.fail != nil && pl.fail[i] != "" {
			fmt.Fprintf(&b, `{"ErrorCode":%q,"ErrorMessage":"injected by faultproxy"}`, pl.fail[i])
			continue
		}
		res := fwd[j]
		j++
		var rr struct{ ErrorCode string }
		if json.Unmarshal(res, &rr) == nil && rr.ErrorCode != "" {
			failed++
		}
		b.Write(res)
	}
	b.WriteString(`],"FailedRecordCount":` + strconv.Itoa(failed))
	if len(encryption) > 0 {
		b.WriteString(`,"EncryptionType":`)
		b.Write(encryption)
	}
	b.WriteByte('}')
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	_, _ = w.Write(b.Bytes())
}

// pass forwards a call unchanged.
func (p *Proxy) pass(w http.ResponseWriter, r *http.Request, body []byte) {
	resp, rbody, err := p.forward(r.Context(), r, body)
	if err != nil {
		http.Error(w, "faultproxy: cannot forward: "+err.Error(), http.StatusBadGateway)
		return
	}
	copyResponse(w, resp, rbody)
}

// forward sends r's method, path and headers with body to the target.
func (p *Proxy) forward(ctx context.Context, r *http.Request, body []byte) (*http.Response, []byte, error) {
	u := *p.target
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Accept-Encoding", "Connection":
			continue
		}
		out.Header[k] = append([]string(nil), vs...)
	}
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	rbody, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, rbody, nil
}

func copyResponse(w http.ResponseWriter, resp *http.Response, body []byte) {
	for k, vs := range resp.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Transfer-Encoding":
			continue
		}
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	body := fmt.Sprintf(`{"__type":%q,"message":%q}`, code, msg)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Server is a Proxy listening on loopback.
type Server struct {
	*Proxy
	// URL is the proxy's base URL, e.g. http://127.0.0.1:39113.
	URL string

	srv *http.Server
	ln  net.Listener
}

// Start listens on 127.0.0.1 with a free port and serves p's calls until
// Close.
func Start(target string, f Faults) (*Server, error) {
	p, err := New(target, f)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: cannot listen: %w", err)
	}
	s := &Server{Proxy: p, URL: "http://" + ln.Addr().String(), ln: ln,
		srv: &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server at once (hung calls are cut) and closes idle
// connections to the target.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.client.CloseIdleConnections()
	return err
}
