package batch

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

// FuzzPacker packs random frame sizes and counts under random limits,
// windows and failures (whole calls and single entries), interleaving ring
// writes with packer steps. It checks that no request exceeds a limit, that
// every frame is either accepted once or (if it can never fit) reported
// once as oversize, and that nothing is left held.
func FuzzPacker(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 10, 20, 30})
	f.Add([]byte{4, 255, 1, 3, 7, 1, 200, 3, 9, 17, 250, 250, 250, 4, 5, 6, 7, 8})
	f.Add([]byte{19, 7, 0, 2, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 255, 0, 255, 0})
	f.Add(bytes.Repeat([]byte{0x5a, 0x11, 0xfe}, 200))
	// Found by fuzzing: a block of zero frames (the harness looped), and a
	// ring full of oversize events that were settled but never released.
	f.Add([]byte("\x00\x00\x00\x00es"))
	f.Add([]byte("0\x0000000"))
	f.Fuzz(fuzzPacker)
}

func fuzzPacker(t *testing.T, data []byte) {
	if len(data) < 5 || len(data) > 4096 {
		t.Skip()
	}
	h := fnv.New64a()
	h.Write(data)
	rng := rand.New(rand.NewPCG(h.Sum64(), 1))

	key := config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: "k"}
	if data[3]&1 == 1 {
		key = config.PartitionKey{Mode: config.PartitionKeyRandom} // 16-byte keys
	}
	lim := Limits{MaxRecords: 1 + int(data[0])%20}
	lim.RecordMaxBytes = 17 + int(data[1])*2
	lim.MaxBytes = lim.RecordMaxBytes + int(data[2])*8
	cfg := testConfig(lim.MaxRecords, lim.MaxBytes, lim.RecordMaxBytes, "")
	cfg.PartitionKey = key
	var undelivered bytes.Buffer
	r := newRing(t, 16*KiB)
	p := newPacker(t, r, cfg, Options{Window: 1 + int(data[4])%64, Undelivered: &undelivered})
	keyLen := p.enc.(*RecordEncoder).keyLen

	accepted := map[int]int{}
	c := &memClient{respond: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		total := 0
		for _, e := range in.Records {
			rec := len(e.Data) + len(*e.PartitionKey)
			if rec > lim.RecordMaxBytes {
				t.Fatalf("unexpected record size; got %d; want ≤ %d", rec, lim.RecordMaxBytes)
			}
			total += rec
		}
		if len(in.Records) == 0 || len(in.Records) > lim.MaxRecords || total > lim.MaxBytes {
			t.Fatalf("unexpected request; got %d records, %d bytes; want 1–%d records, ≤ %d bytes", len(in.Records), total, lim.MaxRecords, lim.MaxBytes)
		}
		if rng.IntN(8) == 0 {
			return nil, errors.New("injected network error")
		}
		out := failOutput(len(in.Records), func(int) string {
			if rng.IntN(4) == 0 {
				return codeThroughput
			}
			return ""
		})
		for i, e := range in.Records {
			if out.Records[i].ErrorCode == nil {
				accepted[eventID(e.Data)]++
			}
		}
		return out, nil
	}}
	p.client = c
	p.ctl.resumed, p.resumed = true, true
	step := func() {
		p.fill(p.now() + 1<<40)
		if len(p.req) > 0 {
			p.notBefore = 0
			p.send(context.Background())
		}
	}

	var sizes []int
	for i := 5; i < len(data); {
		n := 1 + int(data[i])%4 // frames in this block
		i++
		var block [][]byte
		for ; n > 0 && i < len(data); n-- {
			size := 8 + int(data[i])%(lim.RecordMaxBytes+20)
			i++
			block = append(block, event(len(sizes), size))
			sizes = append(sizes, size)
		}
		for len(block) > 0 {
			err := ringtest.Write(r, block...)
			if err == nil {
				break
			}
			step() // the ring is full: make room
		}
		if rng.IntN(3) == 0 {
			step()
		}
	}
	drive(t, p, c)

	oversize := map[int]int{}
	for line := range strings.Lines(undelivered.String()) {
		rest, ok := strings.CutPrefix(line, "KTE_UNDELIVERED reason=oversize ")
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		oversize[eventID([]byte(rest))]++
	}
	for id, size := range sizes {
		wantOver := size+keyLen > lim.RecordMaxBytes
		if wantOver && (oversize[id] != 1 || accepted[id] != 0) || !wantOver && (accepted[id] != 1 || oversize[id] != 0) {
			t.Fatalf("unexpected fate of frame %d (%d bytes, oversize %v); got accepted %d, oversize %d",
				id, size, wantOver, accepted[id], oversize[id])
		}
	}
	if len(accepted)+len(oversize) != len(sizes) {
		t.Fatalf("unexpected frames; got %d accepted + %d oversize; want %d", len(accepted), len(oversize), len(sizes))
	}
	if r.Unreleased() != 0 || r.Unread() != 0 || p.Stats().Held != 0 {
		t.Fatalf("unexpected leftovers; got unreleased %d, unread %d, held %d", r.Unreleased(), r.Unread(), p.Stats().Held)
	}
}
