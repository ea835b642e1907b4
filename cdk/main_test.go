package main

import (
	"archive/zip"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/kte-dev/kinesis-telemetry-extension/cdk/ktecdk"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// writeLayerZip writes a layer zip whose executable is just an ELF header
// for machine: enough for the app's checks.
func writeLayerZip(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(machine))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	hdr := &zip.FileHeader{Name: "extensions/" + ktecdk.ExtensionName, Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err == nil {
		_, err = w.Write(h)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// appProps gives run the output folder and context that the CDK CLI would
// pass through CDK_OUTDIR and CDK_CONTEXT_JSON. (Setting those here would
// not work: the jsii runtime has already started with this process's
// environment.)
func appProps(outdir string, ctx map[string]any) *awscdk.AppProps {
	return &awscdk.AppProps{Outdir: jsii.String(outdir), Context: &ctx}
}

// TestSynth runs the app as `CDK_OUTDIR=cdk.out go run .` would, with the
// demo function, and reads the template it wrote.
func TestSynth(t *testing.T) {
	zips, out := t.TempDir(), t.TempDir()
	arm64, x8664 := filepath.Join(zips, "arm64.zip"), filepath.Join(zips, "amd64.zip")
	writeLayerZip(t, arm64, elf.EM_AARCH64)
	writeLayerZip(t, x8664, elf.EM_X86_64)
	ctx := map[string]any{
		ktecdk.CtxLayerZipArm64: arm64, ktecdk.CtxLayerZipX8664: x8664,
		ktecdk.CtxDemo: "true", ktecdk.CtxShardCount: "2",
	}
	if err := run(appProps(out, ctx)); err != nil {
		t.Fatalf("unexpected error; got %v; want nil", err)
	}
	b, err := os.ReadFile(filepath.Join(out, ktecdk.DefaultStackName+".template.json"))
	if err != nil {
		t.Fatalf("cannot read the template: %v", err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
		Outputs map[string]any
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatalf("cannot parse the template: %v", err)
	}
	count := map[string]int{}
	for _, r := range tmpl.Resources {
		count[r.Type]++
		if r.Type == "AWS::Kinesis::Stream" && r.Properties["ShardCount"] != float64(2) {
			t.Errorf("unexpected ShardCount; got %v; want 2", r.Properties["ShardCount"])
		}
	}
	for typ, want := range map[string]int{"AWS::Kinesis::Stream": 1, "AWS::Lambda::LayerVersion": 2, "AWS::IAM::ManagedPolicy": 1, "AWS::Lambda::Function": 1} {
		if count[typ] != want {
			t.Errorf("unexpected number of %s; got %d; want %d", typ, count[typ], want)
		}
	}
	for _, o := range []string{ktecdk.OutputStreamName, ktecdk.OutputStreamArn, ktecdk.OutputLayerArm64, ktecdk.OutputLayerX8664, ktecdk.OutputPolicyArn, ktecdk.OutputDemoFunction} {
		if tmpl.Outputs[o] == nil {
			t.Errorf("output %s missing", o)
		}
	}
	// The demo function's bootstrap is staged as an asset (its temporary
	// build folder is gone).
	staged, _ := filepath.Glob(filepath.Join(out, "asset.*", "bootstrap"))
	if len(staged) != 1 {
		t.Errorf("unexpected staged bootstrap files; got %v; want one", staged)
	}
}

// TestSynthErrors: invalid settings end run with an error (main prints it
// and exits 1), not a panic with a trace.
func TestSynthErrors(t *testing.T) {
	f := func(ctx map[string]any, wants ...string) {
		t.Helper()
		err := run(appProps(t.TempDir(), ctx))
		if err == nil {
			t.Fatalf("unexpected success for %v; want an error", ctx)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("unexpected error for %v; got %q; want it to contain %q", ctx, err, w)
			}
		}
	}
	missing := filepath.Join(t.TempDir(), "none.zip")
	f(map[string]any{ktecdk.CtxLayerZipArm64: missing, ktecdk.CtxLayerZipX8664: missing},
		"layer zip for arm64 not found at "+missing+": run `make layer` first")
	f(map[string]any{ktecdk.CtxShardCount: "-1", ktecdk.CtxLayerZipArm64: missing, ktecdk.CtxLayerZipX8664: missing},
		`context shardCount="-1": must be 0 (on-demand) or a positive number of shards`)
	f(map[string]any{ktecdk.CtxDemo: "sure"}, `context demo="sure"`)
	// `-c layerZipArm64=` names the key, rather than falling back to the
	// default zip (which may be a stale build).
	f(map[string]any{ktecdk.CtxLayerZipArm64: "", ktecdk.CtxLayerZipX8664: missing},
		`context layerZipArm64="": must be a path to the arm64 layer zip`)
}
