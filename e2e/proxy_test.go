package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxyMode is what outageProxy does with a request.
type proxyMode int32

const (
	modeUp    proxyMode = iota // forward to kinesalite
	mode500                    // answer 500 InternalFailure
	modeHang                   // never answer (until the client gives up)
	modeReset                  // close the connection without an answer
	modeSlow                   // forward after a delay
)

func (m proxyMode) String() string {
	return [...]string{"up", "500", "hang", "reset", "slow"}[m]
}

// outageProxy sits between the extension and kinesalite and can be switched
// into an outage. It is safe for concurrent use.
type outageProxy struct {
	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	mode  atomic.Int32
	delay atomic.Int64 // modeSlow: nanoseconds before forwarding
	stop  chan struct{}
	once  sync.Once

	forwarded, failed atomic.Int64
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{rp: httputil.NewSingleHostReverseProxy(u), stop: make(chan struct{})}
	p.rp.ErrorLog = nil
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.once.Do(func() { close(p.stop) })
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

func (p *outageProxy) set(m proxyMode) { p.mode.Store(int32(m)) }

func (p *outageProxy) serve(w http.ResponseWriter, r *http.Request) {
	switch proxyMode(p.mode.Load()) {
	case modeUp:
		p.forwarded.Add(1)
		p.rp.ServeHTTP(w, r)
	case modeSlow:
		select {
		case <-time.After(time.Duration(p.delay.Load())):
		case <-r.Context().Done():
			p.failed.Add(1)
			return
		case <-p.stop:
			return
		}
		p.forwarded.Add(1)
		p.rp.ServeHTTP(w, r)
	case mode500:
		p.failed.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"__type":"InternalFailure","message":"injected outage"}`)
	case modeHang:
		p.failed.Add(1)
		select {
		case <-r.Context().Done():
		case <-p.stop:
		}
	case modeReset:
		p.failed.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
			}
		}
	}
}
