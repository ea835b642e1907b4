// Package ringtest is what the tests of the ring and of its users share:
// writing frames as one block, and draining a ring.
package ringtest

import (
	"bytes"

	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

// Write reserves one block holding frames, copies them in and commits it.
func Write(r *ring.Ring, frames ...[]byte) error {
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	w, err := r.Reserve(len(frames), total)
	if err != nil {
		return err
	}
	for _, f := range frames {
		w.Append(f)
	}
	w.Commit()
	return nil
}

// Drain returns copies of every committed frame and releases them.
// Reader only.
func Drain(r *ring.Ring) [][]byte {
	var out [][]byte
	var last ring.Frame
	for {
		f, ok := r.Next()
		if !ok {
			break
		}
		out = append(out, bytes.Clone(f.Data))
		last = f
	}
	if len(out) > 0 {
		r.Release(last)
	}
	return out
}

// ReleaseAll reads every committed frame and releases them, without
// copying anything (it allocates nothing). Reader only.
func ReleaseAll(r *ring.Ring) {
	var last ring.Frame
	for {
		f, ok := r.Next()
		if !ok {
			break
		}
		last = f
	}
	r.Release(last)
}
