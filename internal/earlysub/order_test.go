package earlysub

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// TestInitialisedRightAfterAtstart: in the built extension, this package
// initialises right after earlyreg/atstart, before any dependency's package
// with work to do (the AWS SDK, fasthttp, goccy/go-json, net, log/slog),
// so that the subscription overlaps their initialisation. Go initialises
// the ready package with the lowest import path first: one import of a
// package that sorts late (strings, fmt, net, log/slog), here or in
// package config, puts this one behind every ready github.com/aws,
// github.com/goccy and github.com/klauspost package, 5-10 ms later on a
// 2-core machine. Package earlysub/vianet, which binds through net where
// /etc/hosts does not name Host, initialises after net.
func TestInitialisedRightAfterAtstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the extension")
	}
	bin, err := lambdasim.Build(context.Background(), ".", t.TempDir(), "kinesis-telemetry-extension")
	if err != nil {
		t.Fatal(err)
	}
	// Without AWS_LAMBDA_RUNTIME_API it writes no registration and exits
	// at once; the initialisation order is the same.
	cmd := exec.Command(bin)
	cmd.Env = []string{"GODEBUG=inittrace=1", "PATH=" + os.Getenv("PATH")}
	out, _ := cmd.CombinedOutput()
	var pkgs []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "init" && strings.HasPrefix(f[2], "@") {
			pkgs = append(pkgs, f[1])
		}
	}
	const module = "github.com/kte-dev/kinesis-telemetry-extension/"
	at, sub, nt, via := -1, -1, -1, -1
	for i, p := range pkgs {
		switch p {
		case module + "internal/earlyreg/atstart":
			at = i
		case module + "internal/earlysub":
			sub = i
		case "net":
			nt = i
		case module + "internal/earlysub/vianet":
			via = i
		}
	}
	// The binding through net, for where /etc/hosts does not name Host, is
	// linked and set once net is initialised.
	if nt < 0 || via < nt {
		t.Fatalf("unexpected init trace: net at %d, earlysub/vianet at %d; want vianet after net:\n%s", nt, via, out)
	}
	if at < 0 || sub < 0 {
		t.Fatalf("unexpected init trace without atstart or earlysub:\n%s", out)
	}
	if sub != at+1 {
		t.Fatalf("unexpected packages initialised between atstart and earlysub: %v", pkgs[at+1:max(sub, at+1)])
	}
}
