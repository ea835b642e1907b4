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
// package, and subscribing of importing package earlysub, so only earlysub
// may import this one and only the extension's main package earlysub and
// earlysub/vianet (which only main may import), as a tool or a library
// importing any of them would register with any Runtime API its
// environment names.
func TestOnlyMainImports(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}`, "./...")
	cmd.Dir = "../../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const (
		module   = "github.com/kte-dev/kinesis-telemetry-extension"
		self     = module + "/internal/earlyreg/atstart"
		earlysub = module + "/internal/earlysub"
		vianet   = earlysub + "/vianet"
	)
	importers := func(pkg string) []string {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && slices.Contains(f[1:], pkg) {
				got = append(got, f[0])
			}
		}
		return got
	}
	if got := importers(self); !slices.Equal(got, []string{earlysub}) {
		t.Fatalf("unexpected importers of atstart %v; want earlysub only", got)
	}
	if got := importers(earlysub); !slices.Equal(got, []string{module, vianet}) {
		t.Fatalf("unexpected importers of earlysub %v; want the extension's main package and earlysub/vianet only", got)
	}
	if got := importers(vianet); !slices.Equal(got, []string{module}) {
		t.Fatalf("unexpected importers of earlysub/vianet %v; want the extension's main package only", got)
	}
}
