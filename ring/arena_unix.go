//go:build unix

package ring

import "syscall"

// mapArena maps size bytes of anonymous private memory, or returns nil when
// the mapping fails (New's heap arena is then used instead).
func mapArena(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return b
}
