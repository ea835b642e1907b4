// Package ring is a preallocated, lock-free byte ring of variable-length
// frames: many concurrent writers, exactly one reader, release in order.
//
// Writers reserve room for a whole block of frames at once (all or nothing),
// copy their bytes in, and commit. The reader sees committed frames in
// reservation order and releases them explicitly once they are no longer
// needed, so a frame can be referenced in place (for example by a PutRecords
// entry) until its delivery is settled. Nothing is ever overwritten before it
// is released: a writer that finds no room gets ErrFull.
//
// The arena is allocated once, on the Go heap (New) or mapped outside it
// (NewOffHeap, what the extension uses: the garbage collector does not pace
// itself by it, and its resident pages follow what it holds).
//
// The package imports the standard library only.
package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// restartAfter: an off-heap ring goes back to the arena's beginning only
// once the head is past size/restartAfter (see Reserve and restartEmpty).
const restartAfter = 16

// Sentinel errors returned by Reserve; compare with errors.Is.
var (
	// ErrFull means the ring has no room for the block now; room appears as
	// the reader releases frames.
	ErrFull = errors.New("ring: full")
	// ErrTooLarge means the block can never fit: it is larger than half the
	// ring (see MaxBlock).
	ErrTooLarge = errors.New("ring: block larger than half the ring")
	// ErrEmptyBlock means a reservation of zero frames.
	ErrEmptyBlock = errors.New("ring: reservation of zero frames")
)

const (
	// MinSize is the smallest ring New accepts.
	MinSize = 4 << 10
	// MaxSize is the largest ring New accepts (frame lengths are 32-bit).
	MaxSize = 1 << 32

	// BlockHeaderSize is the size of the header in front of every block.
	BlockHeaderSize = 8
	// FrameHeaderSize is the size of the length prefix in front of every frame.
	FrameHeaderSize = 4
	// Block header word: the low two bits say what the block is, the rest is
	// its length in bytes (header and frames, before rounding up to 8).
	// Zero means "reserved, not committed yet".
	kindBlock = 1
	kindPad   = 2
	kindMask  = 3
	kindShift = 2

	// cacheLine pads the indices apart, as sync.Pool does (128 bytes covers
	// adjacent-line prefetching on amd64 and the 128-byte lines of some arm64).
	cacheLine = 128
)

// BlockSize returns the bytes a block of n frames with payload bytes in
// total occupies in the ring, headers and alignment included.
func BlockSize(n, payload int) int {
	return alignUp(BlockHeaderSize + n*FrameHeaderSize + payload)
}

func alignUp(n int) int { return (n + 7) &^ 7 }

// Ring is a byte arena of framed blocks shared by many concurrent writers
// and exactly one reader.
//
// Writer methods (Reserve and the Reservation methods) are safe to call from
// any number of goroutines at once. Reader methods (Next, Release, Wait,
// Unread) must be called from one goroutine only, the reader. Stats and Wake
// are safe from any goroutine.
//
// Positions are byte offsets that only grow (uint64, wrapping modulo 2^64);
// the arena index is pos & mask. All bytes in [head, release+size) are zero:
// writers only write inside their reservation, and the reader zeroes what it
// releases (or hands its whole pages back to the kernel, which zeroes them)
// before publishing the release. A reserved block's header therefore
// reads 0 until its writer commits it.
//
// A Ring must not be copied after first use.
type Ring struct {
	_ noCopy

	// Read-only after New.
	buf      []byte
	mask     uint64
	size     uint64
	maxBlock int
	// frontWhenEmpty: the ring restarts at the arena's beginning
	// (NewOffHeap; see Reserve, frontFits and restartEmpty).
	frontWhenEmpty bool
	wake           chan struct{} // capacity 1: a pending wake-up for the reader
	ready          chan struct{} // closed at New: returned by Wait when data is already there

	_ [cacheLine]byte

	// head is the end of the last reservation. Writers CAS it forward; a
	// successful CAS hands [old, new) to that writer. Readers load it to
	// know how far reservations go.
	head atomic.Uint64
	// waiting is 1 while the reader is about to sleep or sleeping. The reader
	// stores 1 before its last check for data; a committing writer that
	// swaps it from 1 to 0 sends the wake-up. Sequentially consistent
	// atomics make this a Dekker pair: either the reader's check sees the
	// commit, or the writer sees waiting == 1.
	waiting atomic.Uint32
	// wakeAt is the position head must reach, and wakeFrames the count
	// framesWritten must reach, for a committing writer to wake the waiting
	// reader (WaitFor): either is enough. The reader stores them before
	// waiting; writers read them only while waiting is 1.
	wakeAt     atomic.Uint64
	wakeFrames atomic.Uint64
	// Counters written by writers, read by Stats.
	framesWritten atomic.Uint64
	blocksWritten atomic.Uint64
	refused       atomic.Uint64
	tooLarge      atomic.Uint64
	highWater     atomic.Uint64
	// frontFrom is where the pad of the last restart at the arena's
	// beginning starts (frontWhenEmpty); it ends at the next lap's start.
	// Until the reader frees it, the pad holds nothing and is left out of
	// the high-water mark. Written and read by writers, for that mark only.
	frontFrom atomic.Uint64
	restarts  atomic.Uint64

	_ [cacheLine]byte

	// release is the start of the oldest unreleased byte. Only the reader
	// stores it, after zeroing [old, new); that store synchronizes before a
	// writer's load of it, so a writer that sees the new value also sees the
	// zeroed bytes. [release, read) belongs to the reader.
	release atomic.Uint64

	// Reader-private state (no atomics: one goroutine).
	read       uint64 // next byte to parse
	lastEnd    uint64 // end of the last frame Next returned (see ReleaseTo)
	blockEnd   uint64 // end of the current block, rounded
	bodyEnd    uint64 // end of the current block's frames
	framesRead uint64 // frames Next has returned (see WaitFor)

	// Page dropping (zero), reader-private: pageMask is the page size - 1
	// for an arena mapped by NewOffHeap on Linux, else 0 (read-only after
	// New). The release rate is measured over windows of dropWindow.
	pageMask   uint64
	dropping   bool   // the last window's rate makes a lap slower than slowLap
	padSkipped uint64 // pad bytes Next skipped since the last release
	// [skipLo, skipHi): the interior of a pad to the arena's end that Next
	// skipped with bytes before it unreleased (0, 0 when none); ReleaseTo
	// leaves it out of the zeroing (see Next).
	skipLo, skipHi uint64
	winStart       time.Time // start of the current window
	winReleased    uint64    // frame bytes released in the current window

	_ [cacheLine]byte
}

// New returns a ring of size bytes, allocated once. size must be a power of
// two between MinSize and MaxSize. The largest block it accepts is size/2
// (MaxBlock), which guarantees that any such block fits once the ring is
// empty, wherever the head stands.
func New(size int) (*Ring, error) {
	return newAt(size, 0, false)
}

// NewOffHeap is New with the arena mapped outside the Go heap (anonymous
// private memory from the operating system, where it can): the garbage
// collector then neither counts the arena nor paces itself by it, so the
// heap's own goal stays a few MiB instead of growing by the ring's size.
// Past the arena's first sixteenth, the ring starts again at its beginning
// whenever it is empty (at a reservation, or at the release that empties
// it), and when what it holds lies behind a free front with room for the
// block and a quarter of the ring (see frontFits); the pages of the tail it
// skips go back to the kernel. So the pages written, and resident, follow
// what the ring holds, not the whole arena after its first lap. The arena
// is never unmapped: use it for a ring that lives as long as the process.
func NewOffHeap(size int) (*Ring, error) {
	return newAt(size, 0, true)
}

func newAt(size int, start uint64, offHeap bool) (*Ring, error) {
	if size < MinSize || size > MaxSize || bits.OnesCount(uint(size)) != 1 {
		return nil, fmt.Errorf("ring: size %d must be a power of two between %d and %d", size, MinSize, MaxSize)
	}
	var buf []byte
	if offHeap {
		buf = mapArena(size) // page-aligned, zeroed; nil where unsupported
	}
	if buf == nil {
		// Allocate as []uint64 so that every 8-aligned offset is 8-aligned
		// in memory and can hold an atomic header word.
		words := make([]uint64, size/8)
		buf = unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size)
	}
	r := &Ring{
		buf:            buf,
		mask:           uint64(size - 1),
		size:           uint64(size),
		maxBlock:       size / 2,
		pageMask:       pageMaskOf(buf, offHeap, size),
		frontWhenEmpty: offHeap,
		wake:           make(chan struct{}, 1),
		ready:          make(chan struct{}),
	}
	close(r.ready)
	start &^= 7
	r.head.Store(start)
	r.release.Store(start)
	r.read, r.blockEnd, r.bodyEnd = start, start, start
	return r, nil
}

// Size returns the arena size in bytes.
func (r *Ring) Size() int { return int(r.size) }

// MaxBlock returns the largest block size (see BlockSize) Reserve accepts.
func (r *Ring) MaxBlock() int { return r.maxBlock }

// header returns the atomic header word at arena offset off (8-aligned).
func (r *Ring) header(pos uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&r.buf[pos&r.mask]))
}

// Reservation is room for one block of frames, returned by Reserve. Fill it
// with exactly the announced frames through Frame or Append, then Commit (or
// Abandon) it. A Reservation is used by one goroutine; it must not be kept
// after Commit or Abandon.
type Reservation struct {
	r       *Ring
	pos     uint64 // block start
	block   []byte // the whole block, header included
	w       int    // next write offset in block
	body    int    // unrounded block length
	frames  int    // frames still to write
	written int    // frames written
}

// Reserve reserves room for a block of n frames whose payloads add up to
// payload bytes: all of it, or nothing. It never blocks: with no room it
// returns ErrFull; a block that could never fit gives ErrTooLarge.
// It does no allocation.
func (r *Ring) Reserve(n, payload int) (Reservation, error) {
	if n <= 0 {
		return Reservation{}, ErrEmptyBlock
	}
	body := BlockHeaderSize + n*FrameHeaderSize + payload
	need := uint64(alignUp(body))
	if payload < 0 || need > uint64(r.maxBlock) {
		r.tooLarge.Add(1)
		return Reservation{}, ErrTooLarge
	}
	for {
		// Load release before head: release only grows and never passes
		// head, so rel <= head holds for the values we compare.
		rel := r.release.Load()
		head := r.head.Load()
		off := head & r.mask
		var pad uint64
		restart := false
		switch {
		case off+need > r.size:
			pad = r.size - off // the block must not straddle the end
		case r.frontWhenEmpty && off >= r.size/restartAfter && r.frontFits(head, rel, need):
			// Start again at the arena's beginning, behind a pad to its
			// end, so that the bytes in use stay at the front of the arena
			// (warm in cache, and the only pages written) instead of
			// sweeping all of it. See frontFits for when.
			pad, restart = r.size-off, true
		}
		end := head + pad + need
		if end-rel > r.size {
			r.refused.Add(1)
			return Reservation{}, ErrFull
		}
		if restart {
			// Before the pad exists: a writer that sees head past it must
			// not count it as in use (a high-water mark never comes down).
			// If this CAS fails, the stale value only makes a later mark
			// count less.
			r.frontFrom.Store(head)
		}
		if !r.head.CompareAndSwap(head, end) {
			continue
		}
		// [head, end) is ours.
		if pad > 0 {
			r.header(head).Store(pad<<kindShift | kindPad)
		}
		if restart {
			r.restarts.Add(1)
		}
		// The pad of a restart holds nothing: while the reader has not
		// freed it, leave it out.
		used := end - rel
		if ps := r.frontFrom.Load(); ps&r.mask != 0 {
			pe := ps&^r.mask + r.size
			if int64(pe-rel) > 0 && int64(end-pe) >= 0 {
				from := ps
				if int64(rel-ps) > 0 {
					from = rel
				}
				used -= pe - from
			}
		}
		if used > r.highWater.Load() {
			r.raiseHighWater(used)
		}
		pos := head + pad
		o := pos & r.mask
		return Reservation{
			r:      r,
			pos:    pos,
			block:  r.buf[o : o+need : o+need],
			w:      BlockHeaderSize,
			body:   body,
			frames: n,
		}, nil
	}
}

// frontFits reports whether a block of need bytes may restart at the
// arena's beginning, head being off >= size/restartAfter into the arena.
// The bytes in use, [rel, head), must lie in this lap, behind the front:
// the block goes to [0, need) of the next lap, and the pad [head, lap end)
// keeps its room until the reader frees it. When the ring is empty the
// reader frees the pad as soon as it reaches it, so the block fitting is
// enough. Otherwise the pad is freed with the bytes before it, once they
// are sent, so at least a quarter of the ring must stay free for other
// writers meanwhile; a writer refused then waits for the reader (ErrFull).
func (r *Ring) frontFits(head, rel, need uint64) bool {
	off := head & r.mask
	inUse := head - rel
	if inUse > off {
		return false // the bytes in use wrap around the arena's end
	}
	front := off - inUse // the arena's free front: [0, release's offset)
	if inUse == 0 {
		return front >= need
	}
	return front >= need+r.size/4
}

func (r *Ring) raiseHighWater(used uint64) {
	for {
		hw := r.highWater.Load()
		if used <= hw || r.highWater.CompareAndSwap(hw, used) {
			return
		}
	}
}

// Frame returns the payload slice of the next frame, size bytes long, for
// the caller to fill before Commit. It panics if the reservation has no room
// left for it (a caller bug: Reserve announced the sizes).
func (w *Reservation) Frame(size int) []byte {
	if w.frames == 0 || size < 0 || w.w+FrameHeaderSize+size > w.body {
		panic(fmt.Sprintf("BUG: ring: frame of %d bytes does not fit the reservation (%d frames left, %d bytes left)",
			size, w.frames, w.body-w.w-FrameHeaderSize))
	}
	binary.LittleEndian.PutUint32(w.block[w.w:], uint32(size))
	p := w.block[w.w+FrameHeaderSize : w.w+FrameHeaderSize+size : w.w+FrameHeaderSize+size]
	w.w += FrameHeaderSize + size
	w.frames--
	w.written++
	return p
}

// Append writes p as the next frame.
func (w *Reservation) Append(p []byte) {
	copy(w.Frame(len(p)), p)
}

// Commit publishes the block: the reader may see its frames from now on. It
// panics unless exactly the announced frames and bytes were written.
func (w *Reservation) Commit() {
	if w.frames != 0 || w.w != w.body {
		panic(fmt.Sprintf("BUG: ring: commit with %d frames and %d bytes unwritten", w.frames, w.body-w.w))
	}
	r := w.r
	r.header(w.pos).Store(uint64(w.body)<<kindShift | kindBlock)
	r.framesWritten.Add(uint64(w.written))
	r.blocksWritten.Add(1)
	w.r = nil
	r.signal()
}

// Abandon gives the reservation back unused: the reader skips it and it is
// freed in order like any other block. Frames already written are dropped.
func (w *Reservation) Abandon() {
	r := w.r
	clear(w.block[BlockHeaderSize:])
	r.header(w.pos).Store(uint64(len(w.block))<<kindShift | kindPad)
	w.r = nil
	r.signal()
}

// signal wakes the reader if it is waiting and the reservations reach the
// position, or the commits the frame count, it waits for (WaitFor). When the
// reader is awake it costs one atomic load. Head and the commits of all
// writers, not this writer's own block, are compared: a block committed
// after a later one that crossed a mark still wakes the reader, which may
// have found the earlier one uncommitted.
func (r *Ring) signal() {
	if r.waiting.Load() != 0 && r.marksReached() && r.waiting.Swap(0) != 0 {
		r.Wake()
	}
}

// marksReached reports whether head or the committed frames reach the
// reader's marks (WaitFor).
func (r *Ring) marksReached() bool {
	return int64(r.head.Load()-r.wakeAt.Load()) >= 0 || int64(r.framesWritten.Load()-r.wakeFrames.Load()) >= 0
}

// Wake sends the reader a wake-up without data: its Wait channel becomes
// ready once. Safe from any goroutine.
func (r *Ring) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Frame is one committed frame as seen by the reader. Data points into the
// ring and stays valid until the frame is released.
type Frame struct {
	Data []byte
	end  uint64
}

// End returns the position just past the frame, for Release.
func (f Frame) End() uint64 { return f.end }

// Next returns the next committed frame in reservation order, or false when
// the next block is not committed yet or there is none. Reader only. It
// does no allocation.
func (r *Ring) Next() (Frame, bool) {
	for {
		if r.read == r.blockEnd {
			// At a block boundary. If read == head nothing is reserved here
			// (the bytes may be unreleased old data when the ring is full).
			if r.read == r.head.Load() {
				return Frame{}, false
			}
			h := r.header(r.read).Load()
			if h == 0 {
				return Frame{}, false // reserved, not committed yet
			}
			n := h >> kindShift
			switch h & kindMask {
			case kindPad:
				start := r.read
				r.read += n
				r.blockEnd, r.bodyEnd = r.read, r.read
				if r.release.Load() == start {
					// Nothing unreleased before the pad: free it now.
					r.header(start).Store(0)
					o := start & r.mask
					r.dropPad(o+BlockHeaderSize, o+n)
					r.release.Store(r.read)
				} else {
					r.padSkipped += n // released later, with the frames after it
					if r.read&r.mask == 0 {
						// A pad to the arena's end (a restart, or a block
						// that would have straddled it) lies beyond where
						// head stood: its interior is zero already and is
						// not written again when it is released.
						r.skipLo, r.skipHi = start+BlockHeaderSize, r.read
					}
				}
				continue
			case kindBlock:
				r.bodyEnd = r.read + n
				r.blockEnd = r.read + uint64(alignUp(int(n)))
				r.read += BlockHeaderSize
			default:
				panic(fmt.Sprintf("BUG: ring: corrupt block header %#x at position %d", h, r.read))
			}
		}
		off := r.read & r.mask
		size := uint64(binary.LittleEndian.Uint32(r.buf[off:]))
		data := r.buf[off+FrameHeaderSize : off+FrameHeaderSize+size : off+FrameHeaderSize+size]
		r.read += FrameHeaderSize + size
		if r.read == r.bodyEnd {
			r.read = r.blockEnd
		}
		r.framesRead++
		r.lastEnd = r.read
		return Frame{Data: data, end: r.read}, true
	}
}

// Release frees every frame up to and including f (everything before
// f.End()), zeroing the bytes for reuse. Frames must be released in order;
// releasing a frame already released is a no-op. Reader only. It does no
// allocation.
func (r *Ring) Release(f Frame) { r.ReleaseTo(f.end) }

// ReleaseTo frees everything before position end, which must not be past
// what Next has returned. Releasing the last frame Next returned also frees
// the pads Next skipped after it (abandoned blocks, the arena's tail): no
// later frame would free them. Reader only.
func (r *Ring) ReleaseTo(end uint64) {
	if end == r.lastEnd {
		end = r.read
	}
	rel := r.release.Load()
	if int64(end-rel) <= 0 {
		return
	}
	if end-rel > r.read-rel {
		panic(fmt.Sprintf("BUG: ring: release to %d past the read position %d", end, r.read))
	}
	r.measureRelease(end-rel, time.Now())
	if r.skipHi != 0 && int64(r.skipHi-rel) > 0 && int64(end-r.skipHi) >= 0 {
		// [skipLo, skipHi) ends at the arena's end: neither part wraps.
		a, lo := rel&r.mask, rel&r.mask+(r.skipLo-rel)
		r.zero(a, lo)
		r.dropPad(lo, r.size)
		r.zero(0, end&r.mask)
		r.skipLo, r.skipHi = 0, 0
	} else if a, b := rel&r.mask, end&r.mask; a < b {
		r.zero(a, b)
	} else {
		r.zero(a, r.size)
		r.zero(0, b)
	}
	r.release.Store(end)
	if r.frontWhenEmpty && end == r.read {
		r.restartEmpty(end)
	}
}

// restartEmpty moves an off-heap ring that this release left empty back to
// the arena's beginning, as Reserve does for a block that finds it empty:
// the reader claims the rest of the lap by moving head past it (a writer
// that reserved first wins, and nothing happens), and frees it at once. At
// high rates the ring is rarely empty at the moment a writer reserves, and
// without this the head swept the whole arena, all of it resident. A writer
// that loaded release just before it may see the claimed rest as in use and
// be refused once (ErrFull; the listener tries again). Reader only.
func (r *Ring) restartEmpty(end uint64) {
	off := end & r.mask
	if off < r.size/restartAfter {
		return
	}
	next := end + r.size - off
	if r.head.Load() != end {
		return
	}
	r.frontFrom.Store(end) // the claimed rest is a restart's pad (see Reserve)
	if !r.head.CompareAndSwap(end, next) {
		// A writer reserved first. frontFrom stays end: that writer
		// most likely restarted at end too and stored the same value,
		// which putting the old one back would wipe out (its pad then
		// counted in the high-water mark for good); if it did not, the
		// stale value can only make a later mark count less (see Reserve).
		return
	}
	// [end, next) is zero (nothing was reserved there in this lap) and no
	// writer can reserve it now.
	r.read, r.blockEnd, r.bodyEnd = next, next, next
	r.dropPad(off, r.size)
	r.restarts.Add(1)
	r.release.Store(next)
}

// Page dropping. An off-heap arena on Linux can hand released pages back to
// the kernel (dropPages) instead of clearing them: they read as zeros, and
// are resident again only when written. Positions sweep the whole arena, so
// without it every page of the ring stays resident after the first lap,
// however little the ring holds. Dropping costs a page fault when the page
// is written again, one lap later; so it is done only while a lap takes at
// least slowLap at the measured release rate (at 8 MiB: below about
// 0.8 MB/s, a few thousand events per second), where those faults cost
// nothing that shows, and the pages would otherwise sit idle for seconds.
const (
	slowLap    = 10 * time.Second
	dropWindow = time.Second
)

// pageMaskOf returns the page size - 1 when an off-heap arena of size
// bytes can drop pages, else 0.
func pageMaskOf(buf []byte, offHeap bool, size int) uint64 {
	ps := os.Getpagesize()
	if !offHeap || !canDropPages || ps > size || uintptr(unsafe.Pointer(&buf[0]))%uintptr(ps) != 0 {
		return 0
	}
	return uint64(ps - 1)
}

// dropPad gives the whole pages inside arena offsets [a, b), the interior
// of a freed pad of an off-heap ring, back to the kernel: a pad is the
// arena's tail that the head skipped (a restart at the arena's beginning,
// or a block that would have straddled the end), and its pages, written in
// an earlier lap, would otherwise stay resident although the ring now works
// at the front. At high rates restarts are a few per second, each one
// madvise call (and, should the head come this far again, the page faults
// to map the pages back). Reader only, before release moves past the pad;
// the interior is zero, as dropped pages read.
func (r *Ring) dropPad(a, b uint64) {
	if pa, pb := r.pagesIn(a, b); pa < pb {
		dropPages(r.buf[pa:pb])
	}
}

// pagesIn returns the whole pages inside arena offsets [a, b) as [pa, pb),
// empty (pa >= pb) when there are none or the arena cannot drop pages.
func (r *Ring) pagesIn(a, b uint64) (pa, pb uint64) {
	if r.pageMask == 0 {
		return 0, 0
	}
	return (a + r.pageMask) &^ r.pageMask, b &^ r.pageMask
}

// measureRelease adds n released bytes (pads excluded) to the current
// window and, once the window is over, decides whether to drop pages
// during the next one.
func (r *Ring) measureRelease(n uint64, now time.Time) {
	if r.pageMask == 0 {
		return
	}
	n -= min(n, r.padSkipped)
	r.padSkipped = 0
	if r.winStart.IsZero() {
		r.winStart = now
	}
	r.winReleased += n
	if el := now.Sub(r.winStart); el >= dropWindow {
		// lap time = size / rate = size * elapsed / released
		r.dropping = r.winReleased == 0 || float64(r.size)*float64(el)/float64(r.winReleased) >= float64(slowLap)
		r.winStart, r.winReleased = now, 0
	}
}

// zero clears the arena's bytes [a, b), dropping the whole pages inside
// the range while dropping is on. The pages at the edges are shared with
// bytes that are not released, or already reused by writers: those are
// cleared. Reader only.
func (r *Ring) zero(a, b uint64) {
	if r.dropping {
		if pa, pb := r.pagesIn(a, b); pa < pb && dropPages(r.buf[pa:pb]) {
			clear(r.buf[a:pa])
			clear(r.buf[pb:b])
			return
		}
	}
	clear(r.buf[a:b])
}

// Unread returns the bytes reserved but not yet returned by Next (committed
// or not). Reader only.
func (r *Ring) Unread() int {
	return int(r.head.Load() - r.read)
}

// Unreleased returns the bytes returned by Next but not yet released. Reader
// only.
func (r *Ring) Unreleased() int {
	return int(r.read - r.release.Load())
}

// Wait returns a channel that becomes ready when a committed frame may be
// available or Wake was called. Reader only. If a committed block is already
// waiting, the returned channel is ready at once. Spurious wake-ups are
// possible; call Next to see.
func (r *Ring) Wait() <-chan struct{} { return r.WaitFor(1, 1) }

// WaitFor is Wait for a reader that has no use for less than n bytes or
// frames more than it has read: the channel becomes ready when a committed
// frame may be available and at least n bytes are reserved past the read
// position or at least frames frames more than Next returned are
// committed, or when Wake is called. A writer that commits while less is
// there does not wake the reader, which saves a goroutine wake-up per
// small block. Reader only.
func (r *Ring) WaitFor(n, frames int) <-chan struct{} {
	r.wakeAt.Store(r.read + uint64(max(n, 1)))
	r.wakeFrames.Store(r.framesRead + uint64(max(frames, 1)))
	r.waiting.Store(1)
	if r.committedAhead() && r.marksReached() {
		r.waiting.Store(0)
		select { // drop a stale wake-up: the reader runs now anyway
		case <-r.wake:
		default:
		}
		return r.ready
	}
	return r.wake
}

// committedAhead reports whether Next would return a frame or skip a pad.
func (r *Ring) committedAhead() bool {
	if r.read != r.blockEnd {
		return true // inside a committed block
	}
	return r.read != r.head.Load() && r.header(r.read).Load() != 0
}

// Stats is a snapshot of the ring's counters. Reading them costs the writers
// nothing beyond the atomic adds they already do per block.
type Stats struct {
	Size          int    // arena bytes
	InUse         int    // reserved and not released (includes padding)
	HighWater     int    // largest InUse seen at a reservation
	FramesWritten uint64 // frames committed
	BlocksWritten uint64 // blocks committed
	Refused       uint64 // reservations refused with ErrFull
	TooLarge      uint64 // reservations refused with ErrTooLarge
	Restarts      uint64 // restarts at the arena's beginning (NewOffHeap)
}

// Stats returns the counters. Safe from any goroutine.
func (r *Ring) Stats() Stats {
	// head and release are read apart, and both move meanwhile: with
	// release read again unchanged after head, the pair is one moment's
	// (release only grows). A caller descheduled between the two reads
	// would otherwise report more in use than the ring holds. Under a
	// stream of releases it gives up after a few tries, bounded by Size.
	rel := r.release.Load()
	head := r.head.Load()
	for range 3 {
		again := r.release.Load()
		if again == rel {
			break
		}
		rel, head = again, r.head.Load()
	}
	return Stats{
		Size:          int(r.size),
		InUse:         int(min(head-rel, r.size)),
		HighWater:     int(r.highWater.Load()),
		FramesWritten: r.framesWritten.Load(),
		BlocksWritten: r.blocksWritten.Load(),
		Refused:       r.refused.Load(),
		TooLarge:      r.tooLarge.Load(),
		Restarts:      r.restarts.Load(),
	}
}

// noCopy lets `go vet` (copylocks) flag copies of a Ring.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
