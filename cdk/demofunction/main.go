// Command demofunction is the KTE demo Lambda function (provided.al2023,
// arm64). Each invocation writes a few log lines, which the Telemetry API
// delivers to the KTE extension as "function" events, next to the platform
// events of the invocation; the extension ships all of them to Kinesis.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// response is what an invocation returns.
type response struct {
	RequestID string `json:"requestId"`
	Lines     int    `json:"lines"`
}

// handle writes one log line per step to w and reports how many it wrote.
func handle(ctx context.Context, w io.Writer, event json.RawMessage) (response, error) {
	id := "unknown"
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		id = lc.AwsRequestID
	}
	lines := []string{
		fmt.Sprintf("kte demo: invocation %s started", id),
		fmt.Sprintf("kte demo: event is %d bytes", len(event)),
		"kte demo: these lines travel as Telemetry API function events to Kinesis",
		fmt.Sprintf("kte demo: invocation %s done", id),
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return response{}, fmt.Errorf("cannot write log line: %w", err)
		}
	}
	return response{RequestID: id, Lines: len(lines)}, nil
}

func main() {
	lambda.Start(func(ctx context.Context, event json.RawMessage) (response, error) {
		return handle(ctx, os.Stdout, event)
	})
}
