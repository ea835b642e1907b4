package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func TestHandle(t *testing.T) {
	f := func(ctx context.Context, event string, wantID string) {
		t.Helper()
		var out bytes.Buffer
		resp, err := handle(ctx, &out, json.RawMessage(event))
		if err != nil {
			t.Fatalf("unexpected error; got %v; want nil", err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if resp.Lines != len(lines) {
			t.Fatalf("unexpected line count; got %d; want %d (output %q)", resp.Lines, len(lines), out.String())
		}
		if resp.RequestID != wantID {
			t.Fatalf("unexpected request id; got %q; want %q", resp.RequestID, wantID)
		}
		if !strings.Contains(lines[0], wantID) || !strings.Contains(lines[len(lines)-1], wantID) {
			t.Fatalf("unexpected output; got %q; want the request id %q in the first and last line", out.String(), wantID)
		}
	}
	f(context.Background(), `{}`, "unknown")
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "0b7e4b1e"})
	f(ctx, `{"hello":"world"}`, "0b7e4b1e")
}
