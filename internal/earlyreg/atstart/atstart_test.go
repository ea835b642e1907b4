package atstart

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
)

func TestTakeOnce(t *testing.T) {
	saved := sent
	defer func() { sent = saved }()
	r := &earlyreg.Registration{Name: "x"}
	sent = r
	if got := Take(); got != r {
		t.Fatalf("unexpected first Take %v", got)
	}
	if got := Take(); got != nil {
		t.Fatalf("unexpected second Take %v; want nil", got)
	}
}

// TestOnlyMainImports: registering is a side effect of importing this
// package, so only the extension's main package may import it (a tool or a
// library importing it would register with any Runtime API its environment
// names).
func TestOnlyMainImports(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}`, "./...")
	cmd.Dir = "../../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg/atstart"
	var importers []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && slices.Contains(f[1:], self) {
			importers = append(importers, f[0])
		}
	}
	if !slices.Equal(importers, []string{"github.com/kte-dev/kinesis-telemetry-extension"}) {
		t.Fatalf("unexpected importers %v; want the extension's main package only", importers)
	}
}
