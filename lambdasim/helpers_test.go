package lambdasim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/testsupport"
)

// Binaries built once by TestMain.
var testextBin, floorextBin string

func TestMain(m *testing.M) {
	os.Exit(testsupport.Main(m, "lambdasim-test-", func(ctx context.Context, dir string) error {
		var err error
		if testextBin, err = Build(ctx, TestExtensionPackage, dir, "testext"); err != nil {
			return err
		}
		floorextBin, err = Build(ctx, FloorExtensionPackage, dir, "floorext")
		return err
	}))
}

// slow scales waits under the race detector.
func slow(d time.Duration) time.Duration {
	if raceEnabled {
		return 3 * d
	}
	return d
}

// extAs links the binary under another file name: the extension's name.
func extAs(t *testing.T, bin, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(bin, p); err != nil {
		t.Fatalf("cannot link %s: %v", p, err)
	}
	return p
}

// testExt is a testext launch with files for its output in a temp folder.
type testExt struct {
	Extension
	dir string
}

func newTestExt(t *testing.T, name string, env ...string) testExt {
	t.Helper()
	dir := t.TempDir()
	x := testExt{dir: dir}
	x.Path = extAs(t, testextBin, name)
	x.Env = append([]string{
		"TESTEXT_OUT=" + x.file("out"),
		"TESTEXT_EVENTS_OUT=" + x.file("events"),
		"TESTEXT_ID_OUT=" + x.file("id"),
	}, env...)
	return x
}

func (x testExt) file(name string) string { return filepath.Join(x.dir, name) }

// received returns every array element of every POST body the extension accepted.
func (x testExt) received(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, body := range readLines(t, x.file("out")) {
		var elems []json.RawMessage
		if err := json.Unmarshal(body, &elems); err != nil {
			t.Fatalf("unexpected POST body %q: %v", body, err)
		}
		for _, e := range elems {
			out = append(out, e)
		}
	}
	return out
}

// lines returns the extension's event log ("register ...", "event ...").
func (x testExt) lines(t *testing.T) [][]byte { return readLines(t, x.file("events")) }

// events returns the /event/next bodies the extension received.
func (x testExt) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range x.lines(t) {
		if b, ok := bytes.CutPrefix(l, []byte("event ")); ok {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("unexpected event %q: %v", b, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
}

// newSim creates a Sim closed at the end of the test.
func newSim(t *testing.T, cfg Config) *Sim {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("cannot create the simulator: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("unexpected Close error: %v", err)
		}
		if t.Failed() {
			for _, m := range s.Timeline() {
				t.Log(m)
			}
		}
	})
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), slow(30*time.Second))
	t.Cleanup(cancel)
	return ctx
}

// startInit runs Start and Init and fails the test on error.
func startInit(t *testing.T, s *Sim) InitResult {
	t.Helper()
	ctx := testCtx(t)
	if err := s.Start(ctx); err != nil {
		t.Fatalf("unexpected Start error: %v", err)
	}
	res, err := s.Init(ctx)
	if err != nil {
		t.Fatalf("unexpected Init error: %v", err)
	}
	return res
}

func invoke(t *testing.T, s *Sim, inv Invocation) InvokeResult {
	t.Helper()
	res, err := s.Invoke(testCtx(t), inv)
	if err != nil {
		t.Fatalf("unexpected Invoke error: %v", err)
	}
	return res
}

// marks returns the timeline marks of a kind (and extension, if given).
func marks(s *Sim, kind MarkKind, ext string) []Mark {
	var out []Mark
	for _, m := range s.Timeline() {
		if m.Kind == kind && (ext == "" || m.Ext == ext) {
			out = append(out, m)
		}
	}
	return out
}

// eventsOf returns the generated events of a type.
func eventsOf(s *Sim, typ string) []Event {
	var out []Event
	for _, ev := range s.Generated() {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// record decodes an event's record object.
func record(t *testing.T, ev Event) map[string]any {
	t.Helper()
	var env struct {
		Record map[string]any `json:"record"`
	}
	if err := json.Unmarshal(ev.Bytes, &env); err != nil {
		t.Fatalf("unexpected event %s: %v", ev.Bytes, err)
	}
	return env.Record
}

// postOf returns the first successful POST carrying event id.
func postOf(s *Sim, ext string, id int) (Mark, bool) { return s.Delivery(ext, id) }

// waitFile waits until path exists and returns its content.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(slow(10 * time.Second))
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", path)
	return nil
}

// do sends one request and returns the status and body.
func do(t *testing.T, method, url string, hdr map[string]string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("unexpected error from %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
