package batch

import (
	"context"
	"errors"
	"net/url"
	"strings"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// Per-record error codes of PutRecords (the only two the API documents; see
// protocol.md section 4). Both are transient.
const (
	codeThroughput = "ProvisionedThroughputExceededException"
	codeInternal   = "InternalFailure"
)

// failKind classifies a failed PutRecords call.
type failKind uint8

const (
	failNetwork     failKind = iota // no response: connection error, attempt timeout
	failThrottled                   // throttling: retry with backoff
	failServer                      // HTTP 5xx or InternalFailureException: retry
	failCanceled                    // our own flush deadline or GiveUp cut it short
	failNotFound                    // ResourceNotFoundException
	failAccess                      // AccessDeniedException and friends
	failKMS                         // KMS* except KMSThrottlingException
	failInvalid                     // InvalidArgumentException, ValidationException
	failCredentials                 // no credentials could be obtained
	failEndpoint                    // no usable endpoint: region or endpoint URL misconfigured
	failRejected                    // any other 4xx: not retryable as far as we know
	numFailKinds
)

// retryable reports whether the failure is expected to go away by itself.
// Not-retryable failures are retried too (the data is kept while there is
// room), but at the backoff ceiling, and they are logged; a flush does not
// wait for their backoff (see Packer.rejected).
func (k failKind) retryable() bool {
	return k <= failCanceled
}

func (k failKind) String() string {
	switch k {
	case failNetwork:
		return "network"
	case failThrottled:
		return "throttled"
	case failServer:
		return "server"
	case failCanceled:
		return "canceled"
	case failNotFound:
		return "stream-not-found"
	case failAccess:
		return "access-denied"
	case failKMS:
		return "kms"
	case failInvalid:
		return "invalid"
	case failCredentials:
		return "credentials"
	case failEndpoint:
		return "endpoint"
	case failRejected:
		return "rejected"
	}
	return "unknown"
}

// classify returns the kind of a PutRecords call error. canceled tells that
// our own context was canceled (flush deadline, GiveUp, Run stopping), as
// opposed to the per-attempt timeout.
func classify(err error, canceled bool) failKind {
	if canceled {
		return failCanceled
	}
	var se *v4.SigningError
	if errors.As(err, &se) {
		return failCredentials
	}
	// The provider failed (markedCredentials); a timeout fetching them is
	// the attempt's timeout, as for any network failure.
	var ce *credentialsError
	if errors.As(err, &ce) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return failCredentials
	}
	if endpointError(err) {
		return failEndpoint
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case codeThroughput, "LimitExceededException", "KMSThrottlingException", "ThrottlingException",
			"Throttling", "ThrottledException", "RequestThrottled", "RequestThrottledException",
			"TooManyRequestsException", "SlowDown", "RequestLimitExceeded":
			return failThrottled
		case "InternalFailureException", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException":
			return failServer
		case "ResourceNotFoundException":
			return failNotFound
		case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
			"IncompleteSignature", "MissingAuthenticationToken", "ExpiredTokenException":
			return failAccess
		case "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException",
			"KMSNotFoundException", "KMSOptInRequired":
			return failKMS
		case "InvalidArgumentException", "ValidationException", "SerializationException":
			return failInvalid
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch s := re.HTTPStatusCode(); {
		case s == 429:
			return failThrottled
		case s >= 500:
			return failServer
		case s == 401 || s == 403:
			return failAccess
		case s >= 400:
			return failRejected
		}
	}
	if errors.Is(err, context.Canceled) {
		return failCanceled
	}
	return failNetwork
}

// endpointError reports whether err says that the client has no usable
// endpoint, which every call would repeat: the SDK could not resolve one
// from the region (its endpoint middleware's "failed to bind endpoint
// params", e.g. "invalid input region", and "failed to resolve service
// endpoint", e.g. "Missing Region": wrapped strings, with no type to test),
// or the URL it built is not http or https with a host (the HTTP client's
// "unsupported protocol scheme" for an endpoint such as localhost:4566, "no
// Host in request URL"). Such failures are configuration, not the network.
func endpointError(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) && !config.ValidEndpoint(ue.URL) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "failed to bind endpoint params") || strings.Contains(msg, "failed to resolve service endpoint")
}
