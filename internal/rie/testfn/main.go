// Command testfn is the function of the emulator conformance tests (package
// e2e): for each invocation it prints the requested number of marker lines
// on stdout, which Lambda turns into function telemetry, and answers with
// what it printed. Build it with -tags lambda.norpc.
//
// Payload: {"id":"<unique>","lines":N,"size":B}; each line is
//
//	KTE_MARK <id> <i> <padding to about B bytes>
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

type request struct {
	ID    string `json:"id"`
	Lines int    `json:"lines"`
	Size  int    `json:"size"`
}

type response struct {
	ID    string `json:"id"`
	Lines int    `json:"lines"`
	PID   int    `json:"pid"`
}

func handle(_ context.Context, r request) (response, error) {
	for i := range r.Lines {
		line := fmt.Sprintf("KTE_MARK %s %d ", r.ID, i)
		if pad := r.Size - len(line); pad > 0 {
			line += strings.Repeat("x", pad)
		}
		fmt.Println(line)
	}
	return response{ID: r.ID, Lines: r.Lines, PID: os.Getpid()}, nil
}

func main() {
	lambda.Start(handle)
}
