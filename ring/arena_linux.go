//go:build linux

package ring

import "syscall"

// canDropPages: MADV_DONTNEED on private anonymous memory makes the pages
// read as zeros.
const canDropPages = true

// dropPages hands whole pages of a mapped arena back to the kernel
// (MADV_DONTNEED): they read as zeros from now on and are resident again
// only once written. It reports false when the kernel refused.
func dropPages(b []byte) bool {
	return syscall.Madvise(b, syscall.MADV_DONTNEED) == nil
}
