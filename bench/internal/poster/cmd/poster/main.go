// Command poster is the child process of poster.Remote: it POSTs telemetry
// bodies to an endpoint as its parent asks, on stdin and stdout.
package main

import (
	"fmt"
	"os"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/internal/poster"
)

func main() {
	if err := poster.Serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "poster:", err)
		os.Exit(1)
	}
}
