package kinesalite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestRoundTrip(t *testing.T) {
	s := StartT(t)
	stream := s.StreamT(t, "roundtrip", 2)
	ctx := context.Background()
	var entries []types.PutRecordsRequestEntry
	for i := range 10 {
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte{byte(i)}, PartitionKey: aws.String(string(rune('a' + i)))})
	}
	res, err := s.Client().PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(res.FailedRecordCount); n != 0 {
		t.Fatalf("unexpected failed records; got %d; want 0", n)
	}
	got, err := s.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("unexpected record count; got %d; want 10", len(got))
	}
}

func TestToolsDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.Abs(filepath.Join("..", "..", "tools", "kinesalite"))
	if err != nil {
		t.Fatal(err)
	}
	// With -trimpath the source path is "module/path/file.go", not a
	// real path: the working directory leads to the module.
	const trimmed = modulePath + "/internal/kinesalite/kinesalite.go"
	f := func(srcFile, wd, want string, wantErr error) {
		t.Helper()
		got, err := toolsDir(srcFile, wd)
		if !errors.Is(err, wantErr) || got != want {
			t.Fatalf("unexpected toolsDir(%q, %q); got %q, %v; want %q, %v", srcFile, wd, got, err, want, wantErr)
		}
	}
	f(filepath.Join(wd, "kinesalite.go"), "/", filepath.Join(wd, "..", "..", "tools", "kinesalite"), nil)
	f(trimmed, wd, want, nil)
	f(trimmed, filepath.Join(want, "node_modules"), want, nil)
	f(trimmed, "/", "", ErrNoToolsDir)
	f("", "", "", ErrNoToolsDir)
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f(trimmed, other, "", ErrNoToolsDir)
	// This module's go.mod without tools/kinesalite beside it.
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("// a copy\nmodule "+modulePath+"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f(trimmed, other, "", ErrNoToolsDir)
	if errors.Is(ErrNoToolsDir, ErrUnavailable) {
		t.Fatal("a missing tools folder must not read as kinesalite not installed")
	}
}

// A port in use ends start.js with one line on stderr and status 1.
func TestStartPortInUse(t *testing.T) {
	StartT(t) // skips or fails as the other tests when kinesalite is missing
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dir, err := ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "start.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KINESALITE_PORT="+strconv.Itoa(port), "KINESALITE_EXIT_ON_STDIN_CLOSE=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("unexpected end of start.js; got %v; want exit status 1; stderr:\n%s", err, &stderr)
	}
	got, prefix := stderr.String(), fmt.Sprintf("kinesalite: cannot listen on 127.0.0.1:%d: ", port)
	if !strings.HasPrefix(got, prefix) || !strings.Contains(got, "EADDRINUSE") || strings.Count(got, "\n") != 1 {
		t.Fatalf("unexpected stderr; got %q; want one line starting %q and naming EADDRINUSE", got, prefix)
	}
}
