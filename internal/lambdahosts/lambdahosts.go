// Package lambdahosts runs a program again with /etc/hosts as Lambda's
// execution environment has it: sandbox.localdomain and sandbox name
// 127.0.0.1. The extension resolves sandbox.localdomain for its telemetry
// listener: right at the start of package initialisation (package
// earlysub) where /etc/hosts names it, elsewhere, as on a development
// machine, through net once net is initialised. The cold-start harness and
// the tests of processes run this way so that they take the path Lambda
// takes.
//
// It needs unshare(1) and root or user namespaces: the program runs again
// in a private mount namespace, over whose /etc/hosts a copy with the two
// names added is bind-mounted.
package lambdahosts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// marker is set in the environment of the program run again.
const marker = "KTE_LAMBDA_HOSTS"

// Names is the line added to /etc/hosts.
const Names = "127.0.0.1 sandbox.localdomain sandbox"

// Mapped reports whether this process runs with the mapping (Rerun's
// program).
func Mapped() bool { return os.Getenv(marker) != "" }

// Rerun runs this program again, with the same arguments, standard
// streams and environment, with the mapping, and returns its exit code. It
// returns an error, having run nothing, when the namespace cannot be set
// up.
func Rerun() (int, error) {
	if _, err := exec.LookPath("unshare"); err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	orig, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp("", "kte-lambda-hosts-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	_, err = fmt.Fprintf(f, "%s\n%s\n", orig, Names)
	if err == nil {
		err = f.Chmod(0o644) // as /etc/hosts: processes run as other users read it
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	args := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user")
	}
	// The shell mounts, says so on fd 3, then becomes the program; a
	// failure before the mount is told apart from the program's own.
	args = append(args, "sh", "-c", `mount --bind "$1" /etc/hosts && echo ok >&3 && shift && exec "$@"`, "sh", f.Name(), self)
	cmd := exec.Command("unshare", append(args, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), marker+"=1")
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd.ExtraFiles = []*os.File{pw}
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return 0, err
	}
	pw.Close()
	mounted, _ := io.ReadAll(pr)
	pr.Close()
	err = cmd.Wait()
	if string(mounted) != "ok\n" {
		return 0, fmt.Errorf("unshare and mount: %v", err)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// RunTests runs a test binary's tests with the mapping: unless it has it
// already, the binary runs again with it and RunTests returns its code.
// When the mapping cannot be made, the tests run without it (the
// extension then takes the path through net), said on stderr under the
// name given; under CI=true that is a failure, as a missing tool is there.
func RunTests(name string, run func() int) int {
	if Mapped() {
		return run()
	}
	code, err := Rerun()
	if err == nil {
		return code
	}
	fmt.Fprintf(os.Stderr, "%s: cannot give the tests Lambda's /etc/hosts (%v)", name, err)
	if os.Getenv("CI") == "true" {
		fmt.Fprintln(os.Stderr, "; failing, as CI=true")
		return 1
	}
	fmt.Fprintln(os.Stderr, "; running with this machine's, where the extension binds its socket through net (package earlysub/vianet)")
	return run()
}
