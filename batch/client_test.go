package batch

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// clientEnv points the SDK's standard configuration chain at endpoint with
// fake credentials and nothing from the machine's files.
func clientEnv(t *testing.T, endpoint string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_MAX_ATTEMPTS", "5") // must not turn the SDK's retries back on
}

// productionClient returns NewKinesisClient's client for us-east-1 (and
// the stream arn, if any) as the environment configures it, and a
// one-record request for it.
func productionClient(t *testing.T, arn string) (*kinesis.Client, *kinesis.PutRecordsInput) {
	t.Helper()
	cfg := testConfig(500, 5*MiB, MiB, "k")
	cfg.Region = "us-east-1"
	cfg.StreamARN = arn
	c, err := NewKinesisClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}}
}

func TestNewKinesisClient(t *testing.T) {
	f := func(arn, wantScope string) {
		t.Helper()
		fk := newFakeKinesis(t, func(k int, _ *fakeRequest) fakeAnswer {
			if k == 0 {
				return fakeAnswer{status: 500, errType: "InternalFailureException"}
			}
			return fakeAnswer{}
		})
		clientEnv(t, fk.URL)
		c, in := productionClient(t, arn)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.PutRecords(ctx, in); classify(err, false) != failServer {
			t.Fatalf("unexpected first call result; got %v; want the injected 500", err)
		}
		reqs, _, _ := fk.snapshot()
		if len(reqs) != 1 {
			t.Fatalf("unexpected requests for one failed call; got %d; want 1 (no SDK retries)", len(reqs))
		}
		if _, err := c.PutRecords(ctx, in); err != nil {
			t.Fatal(err)
		}
		reqs, stored, _ := fk.snapshot()
		if len(stored) != 1 || !strings.Contains(reqs[1].authorization, wantScope) {
			t.Fatalf("unexpected request; got %d stored, authorization %q; want scope %q", len(stored), reqs[1].authorization, wantScope)
		}
	}
	f("", "/us-east-1/kinesis/aws4_request")
	// The client uses the ARN's region, not AWS_REGION.
	f("arn:aws:kinesis:eu-west-1:123456789012:stream/test", "/eu-west-1/kinesis/aws4_request")
}

func TestHTTPClientTimeouts(t *testing.T) {
	tr := newHTTPClient(1500 * time.Millisecond).GetTransport()
	if tr.TLSHandshakeTimeout != tlsHandshakeTimeout || tr.ResponseHeaderTimeout != 1500*time.Millisecond || tr.IdleConnTimeout != idleConnTimeout {
		t.Fatalf("unexpected transport timeouts; got TLS %v, header %v, idle %v", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout, tr.IdleConnTimeout)
	}
	if d := newHTTPClient(time.Second).GetDialer(); d.Timeout != dialTimeout || d.KeepAlive != keepAlive {
		t.Fatalf("unexpected dialer; got timeout %v keep-alive %v", d.Timeout, d.KeepAlive)
	}
}

// TestClientKeepsItsConnection: back-to-back calls against a fast endpoint
// reuse one connection and never fail. Without readOnlyBodies about one call
// in ten lost its connection (smithy-go's closed body vs net/http's writer).
func TestClientKeepsItsConnection(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	clientEnv(t, srv.URL)
	cfg := testConfig(500, 5*MiB, MiB, "k")
	cfg.Region = "us-east-1"
	c, err := NewKinesisClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 200 calls with a held body, then 20 with a streamed one.
	held := &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: []types.PutRecordsRequestEntry{{Data: make([]byte, 64<<10), PartitionKey: aws.String("k")}}}
	streamed := &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: []types.PutRecordsRequestEntry{{Data: make([]byte, heldMax), PartitionKey: aws.String("k")}}}
	for i := range 220 {
		in := held
		if i >= 200 {
			in = streamed
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.PutRecords(ctx, in)
		cancel()
		if err != nil {
			t.Fatalf("call %d failed: %v", i, err)
		}
	}
	if n := conns.Load(); n > 2 {
		t.Fatalf("unexpected connections for 220 sequential calls; got %d; want 1", n)
	}
}

// TestClientWithoutCredentials: when no credentials can be obtained, the
// production client's error is classified as such (the SDK returns it as a
// plain wrapped error, not a SigningError), so the packer logs the advice
// instead of retrying it as a network failure; no request is sent.
func TestClientWithoutCredentials(t *testing.T) {
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer { return fakeAnswer{} })
	clientEnv(t, fk.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true") // no instance metadata service to ask
	c, in := productionClient(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.PutRecords(ctx, in)
	if got := classify(err, false); got != failCredentials {
		t.Fatalf("unexpected class %v for %v; want credentials", got, err)
	}
	if reqs, _, _ := fk.snapshot(); len(reqs) != 0 {
		t.Fatalf("unexpected requests without credentials: %d", len(reqs))
	}
}
