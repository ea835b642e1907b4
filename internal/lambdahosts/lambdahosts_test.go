package lambdahosts

import (
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	os.Exit(RunTests("lambdahosts", m.Run))
}

// TestMapped: the tests run again with /etc/hosts naming sandbox.localdomain
// and sandbox, readable by every user (the emulator's managed-instances
// mode runs extensions as uid 993), and the rest of the file kept.
func TestMapped(t *testing.T) {
	if !Mapped() {
		t.Skip("the mapping cannot be made here (TestMain said why; under CI=true it failed)")
	}
	b, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n"+Names+"\n") || !strings.Contains(string(b), "localhost") {
		t.Fatalf("unexpected /etc/hosts:\n%s", b)
	}
	fi, err := os.Stat("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o004 == 0 {
		t.Fatalf("unexpected /etc/hosts mode %v; want readable by all", fi.Mode())
	}
}
