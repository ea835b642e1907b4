package ktecdk

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckLayerZip(t *testing.T) {
	dir := t.TempDir()
	const entry = "extensions/" + ExtensionName
	f := func(path, arch, want string) {
		t.Helper()
		err := checkLayerZip(path, arch)
		if want == "" {
			if err != nil {
				t.Errorf("unexpected error for %s (%s); got %v; want nil", filepath.Base(path), arch, err)
			}
			return
		}
		if !errors.Is(err, ErrInvalidProps) || !strings.Contains(err.Error(), want) {
			t.Errorf("unexpected error for %s (%s); got %v; want ErrInvalidProps containing %q", filepath.Base(path), arch, err, want)
		}
	}
	arm := writeZip(t, dir, "arm.zip", entry, 0o755, elfHeader(elf.EM_AARCH64))
	x86 := writeZip(t, dir, "x86.zip", entry, 0o755, elfHeader(elf.EM_X86_64))
	f(arm, ArchArm64, "")
	f(x86, ArchX8664, "")
	f(arm, ArchX8664, "is built for EM_AARCH64, but the layer is for x86_64 (EM_X86_64)")
	f(x86, ArchArm64, "is built for EM_X86_64, but the layer is for arm64 (EM_AARCH64)")
	f(filepath.Join(dir, "missing.zip"), ArchArm64, "not found at "+filepath.Join(dir, "missing.zip")+": run `make layer` first")

	notZip := filepath.Join(dir, "not.zip")
	if err := os.WriteFile(notZip, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	f(notZip, ArchArm64, "cannot read layer zip for arm64")
	f(writeZip(t, dir, "root.zip", ExtensionName, 0o755, elfHeader(elf.EM_AARCH64)), ArchArm64, "has no "+entry)
	f(writeZip(t, dir, "other.zip", "extensions/other", 0o755, elfHeader(elf.EM_AARCH64)), ArchArm64, "has no "+entry)
	f(writeZip(t, dir, "noexec.zip", entry, 0o644, elfHeader(elf.EM_AARCH64)), ArchArm64, "is not readable and executable by all")
	// Built under umask 077: executable by its owner only, which Lambda's user is not.
	f(writeZip(t, dir, "dir.zip", entry, 0o755, elfHeader(elf.EM_AARCH64), 0o755), ArchArm64, "")
	f(writeZip(t, dir, "ownerdir.zip", entry, 0o755, elfHeader(elf.EM_AARCH64), 0o700), ArchArm64, "extensions/ in layer zip")
	f(writeZip(t, dir, "owner.zip", entry, 0o700, elfHeader(elf.EM_AARCH64)), ArchArm64, "is not readable and executable by all (mode -rwx------)")
	f(writeZip(t, dir, "script.zip", entry, 0o755, []byte("#!/bin/sh\nexit 0\n")), ArchArm64, "not a Linux executable: no ELF magic")
	f(writeZip(t, dir, "short.zip", entry, 0o755, []byte("\x7fELF")), ArchArm64, "cannot read its ELF header")

	h := elfHeader(elf.EM_AARCH64)
	h[elf.EI_CLASS] = byte(elf.ELFCLASS32)
	f(writeZip(t, dir, "32.zip", entry, 0o755, h), ArchArm64, "want a 64-bit little-endian executable")
	h = elfHeader(elf.EM_AARCH64)
	h[16] = byte(elf.ET_REL)
	f(writeZip(t, dir, "obj.zip", entry, 0o755, h), ArchArm64, "ELF type ET_REL")
}
