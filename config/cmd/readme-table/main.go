// Command readme-table prints the README's configuration table, generated
// from config.Vars.
package main

import (
	"fmt"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

func main() { fmt.Print(config.MarkdownTable()) }
