package ring_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

const (
	nearWrap        = ^uint64(0) - 3000      // not aligned to the arena
	nearWrapAligned = ^uint64(0) - 1<<14 + 1 // a multiple of the arena size
)

func mustNew(t *testing.T, size int, start uint64) *ring.Ring {
	t.Helper()
	r, err := ring.NewAt(size, start)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func frame(i, size int) []byte {
	b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
	if size >= 8 {
		copy(b, fmt.Sprintf("%08d", i%100000000))
	}
	return b
}

func TestNewRejectsBadSizes(t *testing.T) {
	f := func(size int, wantErr bool) {
		t.Helper()
		_, err := ring.New(size)
		if (err != nil) != wantErr {
			t.Fatalf("unexpected error for size %d; got %v; want error: %v", size, err, wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "power of two") {
			t.Fatalf("unexpected error text for size %d; got %q", size, err)
		}
	}
	f(0, true)
	f(-4096, true)
	f(ring.MinSize/2, true)
	f(ring.MinSize, false)
	f(ring.MinSize+8, true)
	f(3<<20, true)
	f(8<<20, false)
	f(ring.MaxSize*2, true)
}

func TestFramingRoundTrip(t *testing.T) {
	for _, start := range []uint64{0, nearWrap} {
		r := mustNew(t, 1<<16, start)
		f := func(frames ...[]byte) {
			t.Helper()
			if err := ringtest.Write(r, frames...); err != nil {
				t.Fatalf("cannot write: %v", err)
			}
			got := ringtest.Drain(r)
			if len(got) != len(frames) {
				t.Fatalf("unexpected frame count; got %d; want %d", len(got), len(frames))
			}
			for i := range frames {
				if !bytes.Equal(got[i], frames[i]) {
					t.Fatalf("unexpected frame %d; got %q; want %q", i, got[i], frames[i])
				}
			}
			if !r.ZeroBeyondHead() {
				t.Fatalf("free region not zeroed after release")
			}
		}
		f([]byte("x"))
		f([]byte{})
		f([]byte{}, []byte("a"), []byte{})
		f([]byte(`{"time":"2026-01-01T00:00:00.000Z","type":"function","record":"hi"}`))
		f(frame(1, 7), frame(2, 8), frame(3, 9), frame(4, 1000))
		for i := range 200 { // many laps: 200 x ~4 KiB through a 64 KiB ring
			f(frame(i, 1000+i), frame(i+1, 3000-i))
		}
	}
}

func TestWrapAroundPadsInsteadOfSplitting(t *testing.T) {
	for _, start := range []uint64{0, nearWrap} {
		r := mustNew(t, ring.MinSize, start)
		// Move the head so the next block does not fit before the arena end.
		for {
			head, _, _ := r.Positions()
			left := ring.MinSize - int(head&uint64(ring.MinSize-1))
			if left <= 600 {
				break
			}
			if err := ringtest.Write(r, frame(0, min(left-600, 1500))); err != nil {
				t.Fatal(err)
			}
			ringtest.Drain(r)
		}
		head0, _, _ := r.Positions()
		second := frame(1, 1000) // needs ~1 KiB; ~600 B left before the end
		if err := ringtest.Write(r, second); err != nil {
			t.Fatal(err)
		}
		head1, _, _ := r.Positions()
		off := (head0 & uint64(ring.MinSize-1))
		wantPad := uint64(ring.MinSize) - off
		if got := head1 - head0; got != wantPad+uint64(ring.BlockSize(1, 1000)) {
			t.Fatalf("unexpected reservation length; got %d; want pad %d + block %d", got, wantPad, ring.BlockSize(1, 1000))
		}
		got := ringtest.Drain(r)
		if len(got) != 1 || !bytes.Equal(got[0], second) {
			t.Fatalf("unexpected frames after wrap; got %d frames", len(got))
		}
		if !r.ZeroBeyondHead() {
			t.Fatalf("free region not zeroed")
		}
	}
}

func TestFullAndEmptyEdges(t *testing.T) {
	for _, start := range []uint64{0, nearWrapAligned} {
		r := mustNew(t, ring.MinSize, start)
		if _, ok := r.Next(); ok {
			t.Fatalf("unexpected frame from an empty ring")
		}
		// Fill exactly: 4 blocks of a quarter each.
		quarter := ring.MinSize/4 - ring.BlockSize(1, 0)
		for i := range 4 {
			if err := ringtest.Write(r, frame(i, quarter)); err != nil {
				t.Fatalf("cannot write block %d: %v", i, err)
			}
		}
		if st := r.Stats(); st.InUse != ring.MinSize || st.HighWater != ring.MinSize {
			t.Fatalf("unexpected stats when full; got %+v", st)
		}
		if err := ringtest.Write(r, []byte("x")); !errors.Is(err, ring.ErrFull) {
			t.Fatalf("unexpected error on a full ring; got %v; want %v", err, ring.ErrFull)
		}
		// Read everything but release nothing: still full, and Next must not
		// mistake the unreleased old header at head for a new block.
		var frames []ring.Frame
		for {
			f, ok := r.Next()
			if !ok {
				break
			}
			frames = append(frames, f)
		}
		if len(frames) != 4 {
			t.Fatalf("unexpected frames; got %d; want 4", len(frames))
		}
		if _, ok := r.Next(); ok {
			t.Fatalf("unexpected frame beyond head on a full ring")
		}
		if err := ringtest.Write(r, []byte("x")); !errors.Is(err, ring.ErrFull) {
			t.Fatalf("unexpected error with nothing released; got %v", err)
		}
		// Release one quarter: exactly one quarter fits again, not more.
		r.Release(frames[0])
		if err := ringtest.Write(r, frame(9, quarter)); err != nil {
			t.Fatalf("cannot write after release: %v", err)
		}
		if err := ringtest.Write(r, []byte("x")); !errors.Is(err, ring.ErrFull) {
			t.Fatalf("unexpected error after refill; got %v", err)
		}
		r.Release(frames[3])
		got := ringtest.Drain(r)
		if len(got) != 1 || !bytes.Equal(got[0], frame(9, quarter)) {
			t.Fatalf("unexpected frames after refill; got %d", len(got))
		}
		if st := r.Stats(); st.InUse != 0 || st.Refused != 3 || st.FramesWritten != 5 {
			t.Fatalf("unexpected stats; got %+v", st)
		}
	}
}

func TestMultiFrameReservationIsAllOrNothing(t *testing.T) {
	r := mustNew(t, ring.MinSize, nearWrapAligned)
	if err := ringtest.Write(r, frame(0, r0MaxPayload())); err != nil {
		t.Fatal(err)
	}
	if err := ringtest.Write(r, frame(1, 1500)); err != nil {
		t.Fatal(err)
	}
	// A POST of 10 frames that needs more than the free space: refused whole.
	var post [][]byte
	for i := range 10 {
		post = append(post, frame(i, 60))
	}
	if err := ringtest.Write(r, post...); !errors.Is(err, ring.ErrFull) {
		t.Fatalf("unexpected error; got %v; want %v", err, ring.ErrFull)
	}
	head, read, _ := r.Positions()
	if st := r.Stats(); st.FramesWritten != 2 || head-read != uint64(ring.BlockSize(1, r0MaxPayload())+ring.BlockSize(1, 1500)) {
		t.Fatalf("refused reservation left traces; stats %+v, head-read %d", st, head-read)
	}
	ringtest.Drain(r)
	if err := ringtest.Write(r, post...); err != nil {
		t.Fatalf("cannot write the POST once there is room: %v", err)
	}
	got := ringtest.Drain(r)
	if len(got) != 10 {
		t.Fatalf("unexpected frame count; got %d; want 10", len(got))
	}
	if st := r.Stats(); st.Refused != 1 {
		t.Fatalf("unexpected refused count; got %d; want 1", st.Refused)
	}
	for i := range got {
		if !bytes.Equal(got[i], post[i]) {
			t.Fatalf("unexpected frame %d", i)
		}
	}
}

func TestTooLargeAndEmpty(t *testing.T) {
	r := mustNew(t, ring.MinSize, 0)
	if _, err := r.Reserve(1, ring.MinSize/2); !errors.Is(err, ring.ErrTooLarge) {
		t.Fatalf("unexpected error; got %v; want %v", err, ring.ErrTooLarge)
	}
	if _, err := r.Reserve(1, r.MaxBlock()-ring.BlockSize(1, 0)); err != nil {
		t.Fatalf("cannot reserve exactly MaxBlock: %v", err)
	}
	if _, err := r.Reserve(0, 0); !errors.Is(err, ring.ErrEmptyBlock) {
		t.Fatalf("unexpected error; got %v; want %v", err, ring.ErrEmptyBlock)
	}
	if st := r.Stats(); st.TooLarge != 1 {
		t.Fatalf("unexpected TooLarge; got %d; want 1", st.TooLarge)
	}
}

func TestMaxBlockAlwaysFitsWhenEmpty(t *testing.T) {
	// Wherever the head stands, an empty ring takes a MaxBlock-sized block.
	big := r0MaxPayload()
	for shift := 0; shift < ring.MinSize; shift += 8 * 37 {
		r := mustNew(t, ring.MinSize, uint64(shift))
		if err := ringtest.Write(r, frame(1, big)); err != nil {
			t.Fatalf("cannot write MaxBlock at offset %d: %v", shift, err)
		}
		if got := ringtest.Drain(r); len(got) != 1 || len(got[0]) != big {
			t.Fatalf("unexpected read back at offset %d", shift)
		}
	}
}

func r0MaxPayload() int { return ring.MinSize/2 - ring.BlockSize(1, 0) }

func TestUncommittedBlockHoldsBackLaterOnes(t *testing.T) {
	r := mustNew(t, 1<<16, nearWrap)
	slow, err := r.Reserve(2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := ringtest.Write(r, []byte("later")); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Next(); ok {
		t.Fatalf("unexpected frame before the earlier block is committed")
	}
	slow.Append([]byte("12345"))
	slow.Append([]byte("67890"))
	slow.Commit()
	got := ringtest.Drain(r)
	want := []string{"12345", "67890", "later"}
	if len(got) != len(want) {
		t.Fatalf("unexpected frames; got %q; want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("unexpected frame %d; got %q; want %q", i, got[i], want[i])
		}
	}
}

func TestAbandonIsSkipped(t *testing.T) {
	r := mustNew(t, ring.MinSize, nearWrap)
	w, err := r.Reserve(2, 100)
	if err != nil {
		t.Fatal(err)
	}
	w.Append(frame(1, 60))
	w.Abandon()
	if err := ringtest.Write(r, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	got := ringtest.Drain(r)
	if len(got) != 1 || string(got[0]) != "kept" {
		t.Fatalf("unexpected frames; got %q; want [kept]", got)
	}
	if !r.ZeroBeyondHead() {
		t.Fatalf("free region not zeroed after an abandoned block")
	}
}

// TestAbandonedAfterHeldFrame: blocks abandoned while the reader holds an
// earlier frame are skipped by Next and freed with that frame's release,
// as no later frame would free them: the ring used to stay full.
func TestAbandonedAfterHeldFrame(t *testing.T) {
	r := mustNew(t, 16<<10, 0) // the held frame's block is [0, 16)
	if err := ringtest.Write(r, []byte("AAAA")); err != nil {
		t.Fatal(err)
	}
	held, ok := r.Next()
	if !ok {
		t.Fatal("no frame")
	}
	// The rest of the ring in two blocks, both abandoned.
	for _, n := range []int{8192 - 12 - 16, 8192 - 12} {
		w, err := r.Reserve(1, n)
		if err != nil {
			t.Fatalf("cannot reserve %d bytes: %v", n, err)
		}
		w.Abandon()
	}
	if _, ok := r.Next(); ok {
		t.Fatal("unexpected frame from abandoned blocks")
	}
	r.Release(held)
	if r.Unreleased() != 0 || r.Stats().InUse != 0 {
		t.Fatalf("unexpected after releasing the held frame: %d unreleased, %d in use", r.Unreleased(), r.Stats().InUse)
	}
	if err := ringtest.Write(r, []byte("next")); err != nil {
		t.Fatalf("unexpected refusal once everything is released: %v", err)
	}
	if !r.ZeroBeyondHead() {
		t.Fatal("free region not zeroed after the abandoned blocks were freed")
	}
}

func TestReservationMisuseIsABug(t *testing.T) {
	f := func(name string, fn func(r *ring.Ring)) {
		t.Helper()
		r := mustNew(t, ring.MinSize, 0)
		defer func() {
			p := recover()
			if p == nil || !strings.HasPrefix(fmt.Sprint(p), "BUG: ") {
				t.Fatalf("%s: unexpected panic; got %v; want a BUG: panic", name, p)
			}
		}()
		fn(r)
	}
	f("frame too big", func(r *ring.Ring) {
		w, _ := r.Reserve(1, 10)
		w.Frame(11)
	})
	f("too many frames", func(r *ring.Ring) {
		w, _ := r.Reserve(1, 10)
		w.Frame(5)
		w.Frame(0)
	})
	f("short commit", func(r *ring.Ring) {
		w, _ := r.Reserve(2, 10)
		w.Frame(10)
		w.Commit()
	})
	f("release past read", func(r *ring.Ring) {
		_ = ringtest.Write(r, []byte("abc"))
		r.ReleaseTo(1 << 20)
	})
}

func TestReleaseInPieces(t *testing.T) {
	r := mustNew(t, ring.MinSize, nearWrap)
	if err := ringtest.Write(r, []byte("one"), []byte("two"), []byte("three")); err != nil {
		t.Fatal(err)
	}
	a, _ := r.Next()
	b, _ := r.Next()
	c, _ := r.Next()
	before := r.Stats().InUse
	r.Release(a)
	mid := r.Stats().InUse
	r.Release(a) // already released: no-op
	if r.Stats().InUse != mid {
		t.Fatalf("unexpected change on a repeated release")
	}
	if string(b.Data) != "two" || string(c.Data) != "three" {
		t.Fatalf("unreleased frames changed after a partial release: %q %q", b.Data, c.Data)
	}
	r.Release(c)
	if !(before > mid && mid > 0 && r.Stats().InUse == 0) {
		t.Fatalf("unexpected in-use progression: %d, %d, %d", before, mid, r.Stats().InUse)
	}
}

// ready reports whether c is ready now, without waiting.
func ready(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestWaitAndWake(t *testing.T) {
	r := mustNew(t, ring.MinSize, 0)
	if ready(r.Wait()) {
		t.Fatalf("unexpected ready Wait on an empty ring")
	}
	if err := ringtest.Write(r, []byte("x")); err != nil { // armed: the commit must wake
		t.Fatal(err)
	}
	if !ready(r.Wait()) {
		t.Fatalf("Wait not ready with a committed frame")
	}
	ringtest.Drain(r)
	c := r.Wait()
	if ready(c) {
		t.Fatalf("unexpected ready Wait after draining")
	}
	if err := ringtest.Write(r, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if !ready(c) {
		t.Fatalf("commit did not wake the armed reader")
	}
	ringtest.Drain(r)
	c = r.Wait()
	r.Wake()
	if !ready(c) {
		t.Fatalf("Wake did not wake the reader")
	}
}

// TestWaitFor: a reader waiting for n bytes is not woken by smaller
// commits, is woken once the reservations reach n, and is woken again by
// the commit of an earlier block it found uncommitted after a later block
// crossed the mark; a reader waiting for a number of frames is woken once
// that many more than it read are committed, however few their bytes.
func TestWaitFor(t *testing.T) {
	r := mustNew(t, 64<<10, 0)
	const n = 1000
	const noFrames = 1 << 30 // a frame mark never reached here
	c := r.WaitFor(n, noFrames)
	for i := range 4 { // 4 blocks of 1 frame of 100 bytes: under n
		if err := ringtest.Write(r, frame(i, 100)); err != nil {
			t.Fatal(err)
		}
		if ready(c) {
			t.Fatalf("unexpected wake-up after %d small blocks", i+1)
		}
	}
	if ready(r.WaitFor(n, noFrames)) {
		t.Fatalf("unexpected ready WaitFor(%d) with %d bytes reserved", n, r.Unread())
	}
	if err := ringtest.Write(r, frame(4, 600)); err != nil {
		t.Fatal(err)
	}
	if !ready(c) {
		t.Fatalf("no wake-up with %d bytes reserved, waiting for %d", r.Unread(), n)
	}
	if got := ringtest.Drain(r); len(got) != 5 {
		t.Fatalf("unexpected frames %d; want 5", len(got))
	}

	// A small block reserved first, a large one after it; the large one
	// commits first and wakes the reader, which finds nothing readable.
	small, err := r.Reserve(1, 10)
	if err != nil {
		t.Fatal(err)
	}
	c = r.WaitFor(n, noFrames)
	if err := ringtest.Write(r, frame(5, 2000)); err != nil {
		t.Fatal(err)
	}
	if !ready(c) {
		t.Fatalf("no wake-up with a committed block past the mark")
	}
	if _, ok := r.Next(); ok {
		t.Fatalf("unexpected frame before the uncommitted one")
	}
	c = r.WaitFor(n, noFrames)
	if ready(c) {
		t.Fatalf("unexpected ready WaitFor with the first block uncommitted")
	}
	small.Append(frame(6, 10))
	small.Commit()
	if !ready(c) {
		t.Fatalf("the first block's commit did not wake the reader")
	}
	if got := ringtest.Drain(r); len(got) != 2 {
		t.Fatalf("unexpected frames %d; want 2", len(got))
	}
	c = r.WaitFor(n, noFrames)
	r.Wake()
	if !ready(c) {
		t.Fatalf("Wake did not wake a reader waiting for %d bytes", n)
	}

	// The frame mark: 3 frames more than read wake the reader, whatever
	// their bytes; fewer do not.
	c = r.WaitFor(1<<20, 3)
	for i := range 2 {
		if err := ringtest.Write(r, frame(7+i, 10)); err != nil {
			t.Fatal(err)
		}
		if ready(c) {
			t.Fatalf("unexpected wake-up after %d frames, waiting for 3", i+1)
		}
	}
	if err := ringtest.Write(r, frame(9, 10)); err != nil {
		t.Fatal(err)
	}
	if !ready(c) {
		t.Fatalf("no wake-up with 3 frames committed, waiting for 3")
	}
	if got := ringtest.Drain(r); len(got) != 3 {
		t.Fatalf("unexpected frames %d; want 3", len(got))
	}
	// Counted from what was read: after the drain, one frame is not enough
	// for a mark of 2, a block of two more frames is.
	c = r.WaitFor(1<<20, 2)
	if err := ringtest.Write(r, frame(10, 10)); err != nil {
		t.Fatal(err)
	}
	if ready(c) {
		t.Fatalf("unexpected wake-up with 1 frame, waiting for 2")
	}
	if err := ringtest.Write(r, frame(11, 10), frame(12, 10)); err != nil {
		t.Fatal(err)
	}
	if !ready(c) {
		t.Fatalf("no wake-up with 3 frames, waiting for 2")
	}
}

func TestIndexLayoutIsPadded(t *testing.T) {
	var r ring.Ring
	head, release := ring.OffsetHead(&r), ring.OffsetRelease(&r)
	if release-head < 128 {
		t.Fatalf("writer and reader indices share a 128-byte span; head at %d, release at %d", head, release)
	}
	_ = unsafe.Sizeof(r)
}
