package ktecdk

// Helpers shared by the tests: fake layer zips, template access, and
// wrappers that turn the panics of jsii assertions into readable test
// failures.

import (
	"archive/zip"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// TestMain stops the jsii runtime (a node process) after the tests. Set
// JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 in the environment of
// `go test` to silence its banner on Node 20: the runtime starts during
// package initialisation, before TestMain could set it.
func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// elfHeader returns the 64-byte header of a 64-bit little-endian ELF
// executable for machine: enough for checkLayerZip, far from a program.
func elfHeader(machine elf.Machine) []byte {
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(machine))
	return h
}

// writeZip writes a zip at dir/name holding one file entry with mode and
// content, and returns its path. With dirMode, the entry's directory comes
// first as an entry of its own with that mode, as zip -r writes it.
func writeZip(t *testing.T, dir, name, entry string, mode os.FileMode, content []byte, dirMode ...os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("cannot create %s: %v", path, err)
	}
	zw := zip.NewWriter(f)
	if len(dirMode) > 0 {
		dh := &zip.FileHeader{Name: filepath.Dir(entry) + "/"}
		dh.SetMode(dirMode[0] | os.ModeDir)
		_, err = zw.CreateHeader(dh)
	}
	var w io.Writer
	if err == nil {
		hdr := &zip.FileHeader{Name: entry, Method: zip.Deflate}
		hdr.SetMode(mode)
		w, err = zw.CreateHeader(hdr)
	}
	if err == nil {
		_, err = w.Write(content)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatalf("cannot write %s: %v", path, err)
	}
	return path
}

// layerZips writes a valid layer zip per architecture in a temporary folder,
// so the tests do not depend on `make layer`.
func layerZips(t *testing.T) (arm64, x8664 string) {
	t.Helper()
	dir := t.TempDir()
	const entry = "extensions/" + ExtensionName
	arm64 = writeZip(t, dir, "kte-arm64.zip", entry, 0o755, elfHeader(elf.EM_AARCH64))
	x8664 = writeZip(t, dir, "kte-amd64.zip", entry, 0o755, elfHeader(elf.EM_X86_64))
	return arm64, x8664
}

// newTestStack creates a TelemetryStack in a new app, with test layer zips
// unless props name others, and returns it with its template.
func newTestStack(t *testing.T, props TelemetryStackProps) (*TelemetryStack, assertions.Template) {
	t.Helper()
	arm64, x8664 := layerZips(t)
	if props.LayerZipArm64 == "" {
		props.LayerZipArm64 = arm64
	}
	if props.LayerZipX8664 == "" {
		props.LayerZipX8664 = x8664
	}
	app := awscdk.NewApp(nil)
	var ts *TelemetryStack
	if msg := panicText(func() { ts = NewTelemetryStack(app, jsii.String("Test"), &props) }); msg != "" {
		t.Fatalf("unexpected panic from NewTelemetryStack: %s", msg)
	}
	return ts, templateOf(t, ts.Stack)
}

// templateOf synthesises stack, failing the test (not panicking) on error.
func templateOf(t *testing.T, stack awscdk.Stack) assertions.Template {
	t.Helper()
	var tmpl assertions.Template
	if msg := panicText(func() { tmpl = assertions.Template_FromStack(stack, nil) }); msg != "" {
		t.Fatalf("cannot synthesise %s: %s", *stack.StackName(), msg)
	}
	return tmpl
}

// panicText runs f and returns the text of its panic, or "" if it did not
// panic. jsii reports CDK and assertion failures as panics.
func panicText(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
			if msg == "" {
				msg = "(empty panic)"
			}
		}
	}()
	f()
	return ""
}

// check runs a jsii assertion and reports its failure with t.Errorf.
func check(t *testing.T, what string, assertion func()) {
	t.Helper()
	if msg := panicText(assertion); msg != "" {
		t.Errorf("%s: %s", what, msg)
	}
}

// resources returns the template's resources of type typ by logical id.
func resources(t *testing.T, tmpl assertions.Template, typ string) map[string]map[string]any {
	t.Helper()
	res := map[string]map[string]any{}
	for id, r := range *tmpl.FindResources(jsii.String(typ), nil) {
		res[id] = *r
	}
	return res
}

// onlyResource returns the one resource of type typ and its logical id.
func onlyResource(t *testing.T, tmpl assertions.Template, typ string) (string, map[string]any) {
	t.Helper()
	res := resources(t, tmpl, typ)
	if len(res) != 1 {
		t.Fatalf("unexpected number of %s resources; got %d; want 1 (%v)", typ, len(res), keys(res))
	}
	for id, r := range res {
		return id, r
	}
	panic("BUG: unreachable")
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// props returns a resource's Properties.
func props(t *testing.T, resource map[string]any) map[string]any {
	t.Helper()
	p, _ := resource["Properties"].(map[string]any)
	if p == nil {
		t.Fatalf("resource has no Properties: %v", resource)
	}
	return p
}

// jsonOf parses a JSON literal (for expected values in the template's shape).
func jsonOf(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("BUG: bad JSON in test %q: %v", s, err)
	}
	return v
}

// equalJSON fails the test unless got equals the JSON literal want.
func equalJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	w := jsonOf(t, want)
	// Round-trip got so numbers and nested types compare like the literal.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("cannot marshal %s: %v", what, err)
	}
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("cannot unmarshal %s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("unexpected %s;\ngot  %s\nwant %s", what, b, mustMarshal(w))
	}
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// wantPanic runs f and fails unless it panics with a text containing every
// one of wants.
func wantPanic(t *testing.T, what string, f func(), wants ...string) {
	t.Helper()
	msg := panicText(f)
	if msg == "" {
		t.Errorf("%s: unexpected success; want a panic containing %q", what, wants)
		return
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: unexpected panic text; got %q; want it to contain %q", what, msg, w)
		}
	}
}

// ref and getAtt build the template's intrinsic references.
func ref(id string) map[string]any { return map[string]any{"Ref": id} }

func getAttArn(id string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, "Arn"}}
}

// checkMessage fails unless find (an assertions.Annotations FindWarning or
// FindError) gives exactly one message for the construct at path, and it
// contains every one of wants. The message is matched by the CDK
// (Match_StringLikeRegexp), not read here: SynthesisMessage.Entry is
// deprecated, and so is its type, hence M.
func checkMessage[M any](t *testing.T, find func(path *string, message any) *[]M, path string, wants ...string) {
	t.Helper()
	all := *find(jsii.String(path), assertions.Match_AnyValue())
	if len(all) != 1 {
		t.Errorf("unexpected messages on %s; got %s; want one", path, mustMarshal(all))
		return
	}
	for _, w := range wants {
		if len(*find(jsii.String(path), assertions.Match_StringLikeRegexp(jsii.String(regexp.QuoteMeta(w))))) != 1 {
			t.Errorf("unexpected message on %s; got %s; want it to contain %q", path, mustMarshal(all), w)
		}
	}
}
