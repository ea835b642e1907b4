package ring

import (
	"time"
	"unsafe"
)

// NewAt returns a ring whose positions start at start (rounded down to 8),
// so tests can run the indices across the 2^64 wraparound.
func NewAt(size int, start uint64) (*Ring, error) { return newAt(size, start, false) }

// Positions returns head, read and release for assertions.
func (r *Ring) Positions() (head, read, release uint64) {
	return r.head.Load(), r.read, r.release.Load()
}

// ZeroBeyondHead reports whether every byte in [head, release+size) is zero,
// the invariant that makes uncommitted headers read as 0.
func (r *Ring) ZeroBeyondHead() bool {
	head, rel := r.head.Load(), r.release.Load()
	for p := head; p != rel+r.size; p++ {
		if r.buf[p&r.mask] != 0 {
			return false
		}
	}
	return true
}

// OffsetHead and OffsetRelease expose the field layout for the padding test.
func OffsetHead(r *Ring) uintptr    { return unsafe.Offsetof(r.head) }
func OffsetRelease(r *Ring) uintptr { return unsafe.Offsetof(r.release) }

// NewAtOffHeap is NewAt with the arena outside the Go heap (NewOffHeap).
func NewAtOffHeap(size int, start uint64) (*Ring, error) { return newAt(size, start, true) }

// Arena returns the ring's whole byte arena.
func (r *Ring) Arena() []byte { return r.buf }

// SetDropping turns page dropping on or off until the next rate window ends.
func (r *Ring) SetDropping(on bool) { r.dropping = on }

// SetFront turns the restarts at the arena's beginning on or off (they are
// on for NewOffHeap). Before the first Reserve only.
func (r *Ring) SetFront(on bool) { r.frontWhenEmpty = on }

// Dropping reports whether released pages are dropped now.
func (r *Ring) Dropping() bool { return r.dropping }

// MeasureRelease feeds the release-rate measurement as if n bytes were
// released at now.
func (r *Ring) MeasureRelease(n uint64, now time.Time) { r.measureRelease(n, now) }
