package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// TestREADMEConfigurationTable keeps the README's configuration table equal
// to the variables Load reads (regenerate it with `go run ./config/cmd/readme-table`).
func TestREADMEConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := config.MarkdownTable(); !strings.Contains(string(readme), want) {
		t.Fatalf("README.md does not contain the current configuration table; replace it with:\n%s", want)
	}
}
