//go:build !linux

package ring

// dropPages is not used here (MADV_DONTNEED does not promise zeros on every
// system): released bytes are cleared instead.
func dropPages([]byte) bool { return false }
