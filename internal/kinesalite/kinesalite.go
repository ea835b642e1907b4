// Package kinesalite starts kinesalite, a Kinesis implementation on Node, on
// loopback for tests and the demo, and gives a Kinesis client pointed at it.
//
// The Node package is installed by `npm ci` in tools/kinesalite (make deps).
// Outside CI a missing Node or kinesalite skips the calling test; with CI=true
// it fails it, so integration tests never pass by not running. The folder is
// found from the source path or, in a -trimpath build, from the working
// directory, which must then be inside the module's checkout.
package kinesalite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Server is a running kinesalite process. A Server with only Endpoint set
// stands for one started elsewhere: Client, CreateStream and ReadAll work on
// it, Close must not be called.
type Server struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:45143.
	Endpoint string

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// Errors of Start: node or the kinesalite package is missing, or the
// folder it is installed in cannot be found.
var (
	ErrUnavailable = errors.New("kinesalite: not installed (run `make deps`: needs node and npm)")
	ErrNoToolsDir  = errors.New("kinesalite: cannot locate tools/kinesalite (run from inside a checkout of " + modulePath + ")")
)

// modulePath is this module's path, as go.mod gives it.
const modulePath = "github.com/kte-dev/kinesis-telemetry-extension"

// ToolsDir returns the folder holding package.json and start.js,
// tools/kinesalite of this module's checkout: found from this source file's
// path or, where that is not a real path (a -trimpath build, or a binary
// moved elsewhere), from the working directory up to this module's go.mod.
func ToolsDir() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	wd, err := os.Getwd()
	if err != nil {
		wd = ""
	}
	return toolsDir(file, wd)
}

func toolsDir(srcFile, wd string) (string, error) {
	if filepath.IsAbs(srcFile) {
		dir := filepath.Join(filepath.Dir(srcFile), "..", "..", "tools", "kinesalite")
		if _, err := os.Stat(filepath.Join(dir, "start.js")); err == nil {
			return dir, nil
		}
	}
	for dir := wd; dir != ""; {
		if isModuleRoot(dir) {
			tools := filepath.Join(dir, "tools", "kinesalite")
			if _, err := os.Stat(filepath.Join(tools, "start.js")); err != nil {
				return "", fmt.Errorf("%w: %v", ErrNoToolsDir, err)
			}
			return tools, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("%w: no go.mod of it in %q or above", ErrNoToolsDir, wd)
}

// isModuleRoot reports whether dir holds this module's go.mod.
func isModuleRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == modulePath
		}
	}
	return false
}

// Start launches kinesalite on 127.0.0.1 with a free port and waits until it
// listens. Stop it with Close.
func Start() (*Server, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	dir, err := ToolsDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kinesalite")); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	cmd := exec.Command(node, "start.js")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start kinesalite: %w", err)
	}
	s := &Server{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	portc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "PORT "); ok {
				portc <- p
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case p := <-portc:
		s.Endpoint = "http://127.0.0.1:" + p
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("kinesalite exited before listening: %v", err)
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("kinesalite did not start listening within 20s")
	}
}

// Close stops the process and waits for it.
func (s *Server) Close() {
	_ = s.stdin.Close()
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Client returns a Kinesis client for this server with static fake
// credentials in us-east-1.
func (s *Server) Client() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", ""),
	})
}

// CreateStream creates a provisioned stream with the given shard count and
// waits until it is ACTIVE.
func (s *Server) CreateStream(ctx context.Context, name string, shards int32) error {
	c := s.Client()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		return fmt.Errorf("cannot create stream %q: %w", name, err)
	}
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	return w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 10*time.Second)
}
