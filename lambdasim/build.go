package lambdasim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Packages of the extensions shipped for tests and harnesses. Build them with
// Build; the internal/ path only restricts imports, not `go build`.
const (
	// TestExtensionPackage registers, subscribes to telemetry, records every
	// POST body and event, and is configured by TESTEXT_* variables (see its
	// package doc).
	TestExtensionPackage = "github.com/kte-dev/kinesis-telemetry-extension/lambdasim/internal/testext"
	// FloorExtensionPackage only registers and loops on /event/next until
	// SHUTDOWN: what any Go extension costs (issue 8's cold-start floor).
	FloorExtensionPackage = "github.com/kte-dev/kinesis-telemetry-extension/lambdasim/internal/floorext"
	// FloorDepsTag, a build tag, makes FloorExtensionPackage also import
	// the third-party packages KTE imports, calling none of them: the
	// floor with KTE's dependencies, which bench/coldstart measures to
	// tell their cost from KTE's own.
	FloorDepsTag = "kte_floor_deps"
)

// Build compiles the Go main package pkg into dir/name with the flags the
// Makefile uses for the extension (CGO_ENABLED=0, -trimpath, -ldflags "-s
// -w"), and the build tags given, so cold-start comparisons are fair, and
// returns the binary's path. It runs in this module, so pkg may be an
// import path or a ./relative path from the module root.
func Build(ctx context.Context, pkg, dir, name string, tags ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goBin = filepath.Join(root, "bin", "go")
		} else {
			return "", fmt.Errorf("cannot build %s: %w", pkg, err)
		}
	}
	out, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("cannot build %s: %w", pkg, err)
	}
	args := []string{"build", "-trimpath", "-ldflags", "-s -w"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, goBin, append(args, "-o", out, pkg)...)
	if root := moduleRoot(); root != "" {
		cmd.Dir = root
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// moduleRoot is the folder of go.mod, found from this source file, or ""
// when the source path is not available (a -trimpath build): then the
// caller's working directory must be inside the module.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}
