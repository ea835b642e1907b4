package batch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
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
	f(fmt.Errorf("send: %w", context.DeadlineExceeded), false, failNetwork)
	f(fmt.Errorf("send: %w", context.Canceled), false, failCanceled)
	f(errAPI(codeThroughput, 400), true, failCanceled)
}
