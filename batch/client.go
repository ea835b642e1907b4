package batch

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// PutRecordsAPI is the one call the packer makes; *kinesis.Client
// implements it. Tests and benchmarks pass fakes.
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, params *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// HTTP timeouts of the Kinesis client. The per-attempt context deadline
// (config.SendTimeout, and a flush's own deadline) bounds every call as a
// whole; these bound the phases below it, so that a dead endpoint is found
// out before the whole attempt budget is spent.
const (
	dialTimeout         = 2 * time.Second
	tlsHandshakeTimeout = 2 * time.Second
	keepAlive           = 30 * time.Second
	idleConnTimeout     = 60 * time.Second
)

// NewKinesisClient builds the Kinesis client from the standard SDK
// configuration chain: credentials from the environment (Lambda sets them),
// region cfg.StreamRegion() (the ARN's region, else AWS_REGION), and the
// endpoint from AWS_ENDPOINT_URL_KINESIS or AWS_ENDPOINT_URL when set (local
// stand-ins, VPC endpoints).
//
// The SDK's own retries are off (aws.NopRetryer, one attempt per call): the
// packer retries itself, so that every attempt is bounded by the packer's
// deadlines (the SDK's standard retryer sleeps up to 20 s between attempts
// inside one call, and its retry token bucket can refuse retries for reasons
// of its own), so that a retried request can be repacked (only failed
// entries, joined by new ones), and so that one place keeps the backoff and
// the counters.
//
// Building it reads the environment and files only (no network; credentials
// are fetched at the first call): a few milliseconds. The client is safe for
// concurrent use and is meant to be built once.
func NewKinesisClient(ctx context.Context, cfg config.Config) (*kinesis.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		awsconfig.WithHTTPClient(newHTTPClient(cfg.SendTimeout)),
	}
	if r := cfg.StreamRegion(); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot load AWS configuration for Kinesis: %w", err)
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = markedCredentials{awsCfg.Credentials}
	}
	// Wrapped after loading, so that AWS_CA_BUNDLE can still configure the
	// buildable client's transport.
	return kinesis.NewFromConfig(awsCfg, WireOptions), nil
}

// markedCredentials wraps the configuration's credentials provider (its
// cache) so that a failure to obtain credentials reaches classify as a
// credentialsError: the SDK returns it as a plain wrapped error ("get
// identity: ..."), which would otherwise look like a network failure.
type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err}
	}
	return c, nil
}

// ProviderSources passes on where the credentials come from (the SDK
// reports it in its user agent).
func (m markedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := m.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

// credentialsError is a failure of the credentials provider.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// WireOptions is what the packer needs of a Kinesis client beyond the
// SDK's defaults: PutRecords bodies and answers handled by wireProtocol, and
// the request-body wrapper readOnlyBodies.
func WireOptions(o *kinesis.Options) {
	o.HTTPClient = readOnlyBodies{o.HTTPClient}
	o.Protocol = wireProtocol{o.Protocol}
}

// newHTTPClient returns the SDK's buildable client with explicit dial, TLS
// and response-header timeouts.
func newHTTPClient(sendTimeout time.Duration) *awshttp.BuildableClient {
	header := sendTimeout
	if header <= 0 {
		header = 10 * time.Second
	}
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = dialTimeout
			d.KeepAlive = keepAlive
		}).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = tlsHandshakeTimeout
			tr.ResponseHeaderTimeout = header
			tr.IdleConnTimeout = idleConnTimeout
		})
}

// readOnlyBodies passes requests on with a body that offers only Read and
// Close. smithy-go closes the request body when the response headers
// arrive; its closed body's WriteTo then returns io.EOF, which net/http's
// write loop, still draining the body, takes for a write error: it closes
// the connection under the response being read. Against a fast endpoint
// that broke about one call in ten (a new connection each time, and calls
// failing after Kinesis had stored their records, hence duplicates). With
// only Read visible, io.EOF after the close is a normal end of body.
type readOnlyBodies struct{ c kinesis.HTTPClient }

type readCloser struct{ io.ReadCloser }

func (r readOnlyBodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = readCloser{req.Body}
	}
	return r.c.Do(req)
}
