//go:build !linux

package ring

// canDropPages is false here: MADV_DONTNEED does not promise zeros on
// every system, so released bytes are cleared.
const canDropPages = false

func dropPages([]byte) bool { return false }
