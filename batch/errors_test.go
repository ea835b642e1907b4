package batch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

func TestClassify(t *testing.T) {
	f := func(err error, canceled bool, want failKind) {
		t.Helper()
		if got := classify(err, canceled); got != want {
			t.Fatalf("unexpected kind for %v; got %v; want %v", err, got, want)
		}
		if got, wantRetry := want.retryable(), want <= failCanceled; got != wantRetry {
			t.Fatalf("unexpected retryable for %v; got %v; want %v", want, got, wantRetry)
		}
	}
	f(errAPI(codeThroughput, 400), false, failThrottled)
	f(errAPI("LimitExceededException", 400), false, failThrottled)
	f(errAPI("KMSThrottlingException", 400), false, failThrottled)
	f(errAPI("InternalFailureException", 500), false, failServer)
	f(errAPI("UnknownError", 502), false, failServer)
	f(errAPI("UnknownError", 429), false, failThrottled)
	f(errAPI("ResourceNotFoundException", 400), false, failNotFound)
	f(errAPI("AccessDeniedException", 400), false, failAccess)
	f(errAPI("UnrecognizedClientException", 400), false, failAccess)
	f(errAPI("KMSAccessDeniedException", 400), false, failKMS)
	f(errAPI("KMSDisabledException", 400), false, failKMS)
	f(errAPI("KMSNotFoundException", 400), false, failKMS)
	f(errAPI("KMSInvalidStateException", 400), false, failKMS)
	f(errAPI("KMSOptInRequired", 400), false, failKMS)
	f(errAPI("InvalidArgumentException", 400), false, failInvalid)
	f(errAPI("ValidationException", 400), false, failInvalid)
	f(errAPI("UnknownError", 413), false, failRejected)
	f(errAPI("UnknownError", 403), false, failAccess)
	f(&v4.SigningError{Err: errors.New("failed to retrieve credentials")}, false, failCredentials)
	f(fmt.Errorf("get identity: %w", &credentialsError{errors.New("no EC2 IMDS role found")}), false, failCredentials)
	f(fmt.Errorf("get identity: %w", &credentialsError{fmt.Errorf("container endpoint: %w", context.DeadlineExceeded)}), false, failNetwork)
	f(fmt.Errorf("send: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), false, failNetwork)
	f(fmt.Errorf("send: %w", &url.Error{Op: "Post", URL: "https://kinesis.us-east-1.amazonaws.com/", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}), false, failNetwork)
	f(fmt.Errorf("send: %w", &url.Error{Op: "Post", URL: "http://127.0.0.1:4566/", Err: context.DeadlineExceeded}), false, failNetwork)
	f(fmt.Errorf("send: %w", &url.Error{Op: "Post", URL: "localhost:///", Err: errors.New(`unsupported protocol scheme "localhost"`)}), false, failEndpoint)
	f(fmt.Errorf("send: %w", &url.Error{Op: "Post", URL: "http:///", Err: errors.New("http: no Host in request URL")}), false, failEndpoint)
	f(fmt.Errorf("operation error Kinesis: PutRecords, %w", fmt.Errorf("failed to bind endpoint params, %w", errors.New("invalid input region us east"))), false, failEndpoint)
	f(fmt.Errorf("operation error Kinesis: PutRecords, %w", fmt.Errorf("failed to resolve service endpoint, %w", errors.New("endpoint rule error, Invalid Configuration: Missing Region"))), false, failEndpoint)
	f(fmt.Errorf("send: %w", context.DeadlineExceeded), false, failNetwork)
	f(fmt.Errorf("send: %w", context.Canceled), false, failCanceled)
	f(errAPI(codeThroughput, 400), true, failCanceled)
}

// TestClassifyEndpointSettings runs the production client with region and
// endpoint settings and checks that classify calls its failure an endpoint
// failure exactly when config.Load refuses the setting: what Load lets
// through reaches the server (which answers 500).
func TestClassifyEndpointSettings(t *testing.T) {
	fk := newFakeKinesis(t, func(int, *fakeRequest) fakeAnswer {
		return fakeAnswer{status: 500, errType: "InternalFailureException"}
	})
	hostPort := strings.TrimPrefix(fk.URL, "http://")
	_, port, _ := net.SplitHostPort(hostPort)
	f := func(region, endpoint string, loadJudges bool) {
		t.Helper()
		clientEnv(t, endpoint)
		t.Setenv("AWS_REGION", region)
		env := map[string]string{
			"KTE_STREAM": "test", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
			"AWS_REGION": region, "AWS_ENDPOINT_URL_KINESIS": endpoint,
		}
		_, loadErr := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		cfg := testConfig(500, 5*MiB, MiB, "k")
		cfg.Region = region
		c, err := NewKinesisClient(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}})
		want := failServer
		if loadErr != nil || !loadJudges {
			want = failEndpoint
		}
		if got := classify(err, false); got != want {
			t.Fatalf("unexpected kind for AWS_REGION=%q AWS_ENDPOINT_URL_KINESIS=%q; got %v (%v); want %v (config.Load: %v)", region, endpoint, got, err, want, loadErr)
		}
	}
	f("us-east-1", fk.URL, true)
	f("us-east-1", fk.URL+"/", true)
	f("us-east-1", "HTTP://"+hostPort, true)
	f("us-east-1", "http://localhost:"+port, true)
	f("local", fk.URL, true)
	f("us-east-1", hostPort, true)
	f("us-east-1", "localhost:"+port, true)
	f("us-east-1", "http//"+hostPort, true)
	f("us-east-1", "ftp://"+hostPort, true)
	f("us-east-1", "http://", true)
	f("us east 1", fk.URL, true)
	f("us_east_1", fk.URL, true)
	f("-us-east-1", fk.URL, true)
	// Combinations Load does not judge are still endpoint failures: a FIPS
	// region with a custom endpoint, no region at all (the AWS config file
	// could hold one).
	f("us-east-1-fips", fk.URL, false)
	f("", "", false)
}
