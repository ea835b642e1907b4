package config_test

import (
	"errors"
	"fmt"
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
	want := config.MarkdownTable()
	if err := checkConfigurationTable(string(readme), want); err != nil {
		t.Fatalf("README.md: %v; replace the table with:\n%s", err, want)
	}
}

// checkConfigurationTable checks that the Configuration section of readme
// (up to the next heading) holds table exactly, from its header to the first
// blank line, and no other row for a KTE_ variable.
func checkConfigurationTable(readme, table string) error {
	_, section, ok := strings.Cut(readme, "\n## Configuration\n")
	if !ok {
		return errors.New("no Configuration section")
	}
	var lines []string
	for line := range strings.Lines(section) {
		if strings.HasPrefix(line, "#") {
			break
		}
		lines = append(lines, line)
	}
	header, _, _ := strings.Cut(table, "\n")
	start := -1
	for i, line := range lines {
		if line == header+"\n" {
			start = i
			break
		}
	}
	if start < 0 {
		return errors.New("no configuration table in the Configuration section")
	}
	end := start
	for end < len(lines) && strings.TrimSpace(lines[end]) != "" {
		end++
	}
	if got := strings.Join(lines[start:end], ""); got != table {
		return fmt.Errorf("the configuration table is not the one generated from config.Vars:\n%s", got)
	}
	for i, line := range lines {
		if (i < start || i >= end) && strings.HasPrefix(line, "| `KTE_") {
			return fmt.Errorf("a KTE_ row outside the generated table: %q", line)
		}
	}
	return nil
}

func TestCheckConfigurationTable(t *testing.T) {
	table := "| Variable | Default | Accepted values | Meaning |\n|---|---|---|---|\n| `KTE_A` | 1 | 1–2 | A. |\n"
	f := func(readme string, wantOK bool) {
		t.Helper()
		err := checkConfigurationTable(readme, table)
		if (err == nil) != wantOK {
			t.Fatalf("unexpected result for\n%s\ngot %v; want ok %v", readme, err, wantOK)
		}
	}
	const intro = "# KTE\n\n## Configuration\n\nText.\n\n"
	const later = "\n### Partition keys\n\n| `KTE_PARTITION_KEY` | What happens |\n|---|---|\n"
	f(intro+table+"\nMore text.\n"+later, true)
	f(intro+table, true)
	f(intro+table+"| `KTE_STALE` | 1 | 1 | Gone. |\n\nMore text.\n", false)
	f(intro+table+"| `KTE_A` | 1 | 1–2 | A. |\n", false)
	f(intro+table+"\n| `KTE_STALE` | 1 | 1 | Gone. |\n"+later, false)
	f(intro+strings.Replace(table, "| 1 |", "| 2 |", 1), false)
	f(intro+"Text.\n"+later, false)
	f("# KTE\n\n"+table, false)
}
