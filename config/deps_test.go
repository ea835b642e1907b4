package config

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoLateImports: package earlysub loads the configuration during package
// initialisation, and Go initialises a package only after its imports, the
// ready one with the lowest import path first. These packages are
// initialised late (net, net/netip and log/slog after most of the program;
// fmt and strings after the dependencies under github.com), so config must
// not depend on them (see text.go and endpoint.go).
func TestNoLateImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, late := range []string{"net", "net/url", "net/netip", "log/slog", "fmt", "strings"} {
		if slices.Contains(deps, late) {
			t.Errorf("unexpected dependency of config on %s", late)
		}
	}
}
