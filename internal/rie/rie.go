// Package rie runs AWS's Lambda Runtime Interface Emulator (aws-lambda-rie,
// a `go tool` of this module) for the conformance tests in e2e: it builds the
// emulator and the test function (testfn), lays out a layer folder as Lambda
// unpacks layers in /opt (bootstrap, extensions/<name>), and starts the
// emulator as root in a private mount namespace with that folder
// bind-mounted on /opt, so the machine's own /opt is never touched.
//
// The emulator has two modes (see ../shared/tools/README.md): classic (the
// default; extensions start at the first invoke, the Telemetry API answers
// 202 and delivers nothing) and managed instances (Config.Managed: the
// environment variable AWS_LAMBDA_MAX_CONCURRENCY=1; eager init, SHUTDOWN-only
// registration, schema 2025-01-29, real telemetry delivery; runtime and
// extensions run as uid 993, so /var is a fresh tmpfs with /var/task).
//
// An Emulator is safe for concurrent use.
package rie

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// Package paths of what Build compiles.
const (
	EmulatorPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	FunctionPackage = "github.com/kte-dev/kinesis-telemetry-extension/internal/rie/testfn"
)

// InvokePath is the emulator's invoke endpoint.
const InvokePath = "/2015-03-31/functions/function/invocations"

// ErrUnavailable means the emulator cannot run here: it needs root (for the
// mount namespace and, in managed-instances mode, to run processes as uid
// 993) and the unshare and mount commands.
var ErrUnavailable = errors.New("rie: cannot run the emulator here")

// Check reports ErrUnavailable (wrapped, with the reason) when the emulator
// cannot run on this machine.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root for a private mount namespace (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	for _, c := range []string{"unshare", "mount", "sh"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	return nil
}

// Build compiles the emulator into dir/aws-lambda-rie and the test function
// into dir/bootstrap (static, -tags lambda.norpc), and returns both paths.
func Build(ctx context.Context, dir string) (emulator, function string, err error) {
	emulator = filepath.Join(dir, "aws-lambda-rie")
	function = filepath.Join(dir, "bootstrap")
	if err := goBuild(ctx, emulator, EmulatorPackage); err != nil {
		return "", "", err
	}
	if err := goBuild(ctx, function, FunctionPackage, "-tags", "lambda.norpc"); err != nil {
		return "", "", err
	}
	return emulator, function, nil
}

func goBuild(ctx context.Context, out, pkg string, flags ...string) error {
	args := append([]string{"build", "-trimpath", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	if root := moduleRoot(); root != "" {
		cmd.Dir = root
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// moduleRoot is the folder of go.mod, found from this source file, or "".
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}

// Layer fills dir (created if needed) as a layer unpacked in /opt: the
// bootstrap executable and extensions/<base name> for each extension, all
// world-readable and executable (the managed-instances mode runs them as
// uid 993).
func Layer(dir, bootstrap string, extensions ...string) error {
	if err := os.MkdirAll(filepath.Join(dir, "extensions"), 0o755); err != nil {
		return fmt.Errorf("cannot create the layer: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "extensions")} {
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("cannot create the layer: %w", err)
		}
	}
	if err := copyFile(bootstrap, filepath.Join(dir, "bootstrap")); err != nil {
		return err
	}
	for _, e := range extensions {
		if err := copyFile(e, filepath.Join(dir, "extensions", filepath.Base(e))); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("cannot copy %s into the layer: %w", src, err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		return fmt.Errorf("cannot copy %s into the layer: %w", src, err)
	}
	return os.Chmod(dst, 0o755) // WriteFile keeps the mode of an existing file
}

// Config configures Start.
type Config struct {
	// Emulator is the aws-lambda-rie binary (Build).
	Emulator string
	// Layer is the folder mounted on /opt (Layer).
	Layer string
	// Env is the emulator's environment, which it passes on to the runtime
	// and the extensions (PATH is added).
	Env []string
	// Managed selects the managed-instances mode.
	Managed bool
	// LogLevel is the emulator's --log-level (default "debug": the tests
	// read its request log).
	LogLevel string
	// Output receives the emulator's stdout and stderr: its own log and, in
	// both modes, the output of the function and the extensions.
	Output io.Writer
}

// Emulator is a running aws-lambda-rie.
type Emulator struct {
	// InvokeURL is where Invoke POSTs.
	InvokeURL string
	// RuntimeAPI is the Runtime API address given to runtime and extensions.
	RuntimeAPI string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed

	stopOnce sync.Once
}

// Start launches the emulator: `unshare -m --propagation private sh -c
// 'mount --bind LAYER /opt && exec aws-lambda-rie ... /opt/bootstrap'`, on
// two free loopback ports. It returns once the process is started; Invoke
// waits for the emulator to listen.
func Start(cfg Config) (*Emulator, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	p1, err := lambdasim.FreePort()
	if err != nil {
		return nil, err
	}
	p2, err := lambdasim.FreePort()
	if err != nil {
		return nil, err
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "debug"
	}
	e := &Emulator{
		InvokeURL:  "http://127.0.0.1:" + strconv.Itoa(p1) + InvokePath,
		RuntimeAPI: "127.0.0.1:" + strconv.Itoa(p2),
		done:       make(chan struct{}),
	}
	// The script's arguments are passed as positional parameters, so paths
	// need no quoting.
	script := `mount --bind "$1" /opt && `
	if cfg.Managed {
		script += `mount -t tmpfs -o mode=0755 tmpfs /var && mkdir -p /var/task && cd /var/task && `
	}
	script += `exec "$2" --log-level "$3" --runtime-interface-emulator-address "$4" --runtime-api-address "$5" /opt/bootstrap`
	e.cmd = exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
		cfg.Layer, cfg.Emulator, cfg.LogLevel, "127.0.0.1:"+strconv.Itoa(p1), e.RuntimeAPI)
	e.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, cfg.Env...)
	if cfg.Managed {
		e.cmd.Env = append(e.cmd.Env, "AWS_LAMBDA_MAX_CONCURRENCY=1")
	}
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	e.cmd.Stdout, e.cmd.Stderr = out, out
	e.cmd.Dir = "/"
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the emulator: %w", err)
	}
	go func() {
		e.err = e.cmd.Wait()
		close(e.done)
	}()
	return e, nil
}

// Invoke POSTs payload to the function and returns the response body. It
// retries while the emulator is not listening yet, and while it answers
// Runtime.Unavailable (in managed-instances mode, until the runtime asks for
// the next invocation), until ctx ends.
func (e *Emulator) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.InvokeURL, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr != nil {
				return nil, fmt.Errorf("cannot read the invoke response: %w", rerr)
			}
			switch {
			case resp.StatusCode == http.StatusOK:
				return body, nil
			case !bytes.Contains(body, []byte(`"Runtime.Unavailable"`)):
				return body, fmt.Errorf("cannot invoke: status %d: %s", resp.StatusCode, body)
			}
			// Managed-instances mode: the runtime has not asked for the
			// next invocation yet ("no idle runtimes"); try again.
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("cannot invoke: %w", err)
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("cannot invoke: the emulator exited: %v", e.err)
		case <-ctx.Done():
			return nil, fmt.Errorf("cannot invoke: the emulator is not listening: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM (the emulator then sends SHUTDOWN to the extensions)
// and waits up to timeout for the emulator to exit, then kills it. It
// returns how long the emulator took and whether it had to be killed.
func (e *Emulator) Stop(timeout time.Duration) (took time.Duration, killed bool) {
	start := time.Now()
	e.stopOnce.Do(func() { _ = e.cmd.Process.Signal(syscall.SIGTERM) })
	select {
	case <-e.done:
		return time.Since(start), false
	case <-time.After(timeout):
		e.Kill()
		return time.Since(start), true
	}
}

// Kill ends the emulator and every process it started (the runtime and the
// extensions run in their own process groups) with SIGKILL, and waits for
// the emulator. It is idempotent.
func (e *Emulator) Kill() {
	select {
	case <-e.done:
		return
	default:
	}
	for _, pid := range descendants(e.cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.done
}

// descendants returns the processes below pid, read from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, de := range entries {
		p, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(string(f[1])); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Done is closed when the emulator has exited.
func (e *Emulator) Done() <-chan struct{} { return e.done }
