package ktecdk

import (
	"archive/zip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ExtensionName is the executable's name inside a layer zip
// (extensions/<ExtensionName>); Lambda uses the file name as the extension
// name.
const ExtensionName = "kinesis-telemetry-extension"

// Default layer zip paths, relative to the cdk/ folder (the working directory
// of `go run .` and of the CDK CLI): what the repository's `make layer` writes.
const (
	DefaultLayerZipArm64 = "../build/" + ExtensionName + "-arm64.zip"
	DefaultLayerZipX8664 = "../build/" + ExtensionName + "-amd64.zip"
)

// Lambda architecture names, as in awslambda.Architecture.Name and the
// CompatibleArchitectures of a layer.
const (
	ArchArm64 = "arm64"
	ArchX8664 = "x86_64"
)

// checkLayerZip returns nil when path is a zip with an executable
// extensions/<ExtensionName> built for arch (ArchArm64 or ArchX8664). Its
// errors say what is wrong and how to fix it (`make layer`).
func checkLayerZip(path, arch string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	zr, err := zip.OpenReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: layer zip for %s not found at %s: run `make layer` first in the repository root, or give the path with -c %s=PATH",
			ErrInvalidProps, arch, abs, layerZipContextKey(arch))
	}
	if err != nil {
		return fmt.Errorf("%w: cannot read layer zip for %s at %s: %w (rebuild it with `make layer`)", ErrInvalidProps, arch, abs, err)
	}
	defer zr.Close()

	const dirEntry = "extensions/"
	const entry = dirEntry + ExtensionName
	var exe, dir *zip.File // dir: the folder's own entry, when the zip has one
	for _, f := range zr.File {
		switch f.Name {
		case entry:
			exe = f
		case dirEntry:
			dir = f
		}
	}
	if exe == nil {
		return fmt.Errorf("%w: layer zip %s has no %s: Lambda only starts extensions from /opt/extensions/ (rebuild it with `make layer`)", ErrInvalidProps, abs, entry)
	}
	// Lambda runs extensions as a user that owns none of the layer's files:
	// the executable, and its directory, must be readable and executable by
	// anyone (mode 755), whatever the umask it was built under.
	if exe.Mode()&0o555 != 0o555 {
		return fmt.Errorf("%w: %s in layer zip %s is not readable and executable by all (mode %v): Lambda cannot start it (rebuild it with `make layer`, which sets 755)", ErrInvalidProps, entry, abs, exe.Mode())
	}
	if dir != nil && dir.Mode()&0o555 != 0o555 {
		return fmt.Errorf("%w: %s in layer zip %s is not readable and searchable by all (mode %v): Lambda cannot find the extension (rebuild it with `make layer`, which sets 755)", ErrInvalidProps, dirEntry, abs, dir.Mode())
	}
	machine, err := elfMachine(exe)
	if err != nil {
		return fmt.Errorf("%w: %s in layer zip %s is not a Linux executable: %w", ErrInvalidProps, entry, abs, err)
	}
	want := elf.EM_AARCH64
	if arch == ArchX8664 {
		want = elf.EM_X86_64
	}
	if machine != want {
		return fmt.Errorf("%w: %s in layer zip %s is built for %v, but the layer is for %s (%v): check GOARCH and the zip paths",
			ErrInvalidProps, entry, abs, machine, arch, want)
	}
	return nil
}

// elfMachine reads the ELF header of a zip entry: a 64-bit little-endian
// executable (static or PIE), and its machine.
func elfMachine(f *zip.File) (elf.Machine, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var h [20]byte // e_ident (16 bytes), e_type, e_machine
	n, err := io.ReadFull(rc, h[:])
	if n < len(elf.ELFMAG) || string(h[:len(elf.ELFMAG)]) != elf.ELFMAG {
		return 0, errors.New("no ELF magic")
	}
	if err != nil {
		return 0, fmt.Errorf("cannot read its ELF header: %w", err)
	}
	if elf.Class(h[elf.EI_CLASS]) != elf.ELFCLASS64 || elf.Data(h[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return 0, fmt.Errorf("ELF %v %v: want a 64-bit little-endian executable", elf.Class(h[elf.EI_CLASS]), elf.Data(h[elf.EI_DATA]))
	}
	if t := elf.Type(binary.LittleEndian.Uint16(h[16:])); t != elf.ET_EXEC && t != elf.ET_DYN {
		return 0, fmt.Errorf("ELF type %v: want an executable", t)
	}
	return elf.Machine(binary.LittleEndian.Uint16(h[18:])), nil
}

func layerZipContextKey(arch string) string {
	if arch == ArchArm64 {
		return CtxLayerZipArm64
	}
	return CtxLayerZipX8664
}

// fileExists reports whether path names an existing regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
