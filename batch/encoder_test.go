package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
)

// wrappingBody is a POST body with two events larger than a 64 KiB record
// (one with a type the listener does not know, one with a payload that is
// not valid UTF-8) among small ones.
func wrappingBody() []byte {
	big := `{"time":"2026-01-01T00:00:03.140Z","type":"function","record":"` + strings.Repeat("x", 300*KiB) + `"}`
	odd := "{\"time\":\"t\",\"type\":\"custom.\\\"},\\\"id\\\":\\\"\",\"record\":\"" + strings.Repeat("y\xff", 100*KiB) + "\"}"
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range 6 {
		b.WriteString(`{"time":"t","type":"function","record":"line ` + strconv.Itoa(i) + `"},`)
	}
	b.WriteString(big + "," + odd + `,{"time":"t","type":"function","record":"last"}]`)
	return b.Bytes()
}

// listenerFrames posts bodies to a listener with records of at most
// 64 KiB and returns the frames it stored, in ring order.
func listenerFrames(t *testing.T, id listener.Identity, enrich bool, bodies ...[]byte) [][]byte {
	t.Helper()
	r := newRing(t, 16*MiB)
	l, err := listener.New(r, listener.Options{Host: "127.0.0.1", MaxBodyBytes: 4 * MiB, MaxFrameBytes: 64*KiB - 2*randomKeyBytes, Enrich: enrich, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Shutdown(context.Background()) }()
	for _, body := range bodies {
		resp, err := http.Post("http://"+l.Addr().String()+"/telemetry", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("unexpected status; got %d; want 200", resp.StatusCode)
		}
	}
	var frames [][]byte
	for {
		f, ok := r.Next()
		if !ok {
			break
		}
		frames = append(frames, bytes.Clone(f.Data))
		r.Release(f)
	}
	return frames
}

// kteOf decodes a record's kte object with encoding/json; ok is false for
// a plain event.
func kteOf(t *testing.T, data []byte) (id string, part int, ok bool) {
	t.Helper()
	var w struct {
		Kte *struct {
			ID   string `json:"id"`
			Part int    `json:"part"`
		} `json:"kte"`
	}
	if err := json.Unmarshal(bytes.ToValidUTF8(data, []byte("?")), &w); err != nil {
		t.Fatalf("cannot decode record %.80q: %v", data, err)
	}
	if w.Kte == nil {
		return "", 0, false
	}
	return w.Kte.ID, w.Kte.Part, true
}

var testIdentity = listener.Identity{Function: "orders-api", Version: "$LATEST", Region: "eu-west-1", Account: "111122223333", Environment: "5f1c0d2e9a7b4c3d8e6f0a1b2c3d4e5f"}

// TestWrappedIDOfListenerRecords: wrappedID finds kte.id in every wrapped
// record the listener writes (oversize, malformed; with and without
// enrichment, with an identity full of characters JSON escapes) and in no
// plain event.
func TestWrappedIDOfListenerRecords(t *testing.T) {
	odd := listener.Identity{Function: `f}n"\`, Version: `\"},"kte":{"quarantine":"`, Region: "r", Account: "a", Environment: "e\u2028"}
	bodies := [][]byte{wrappingBody(), []byte(`[{"time":"t","type":"function","record":"cut across two PO`)}
	for _, c := range []struct {
		id     listener.Identity
		enrich bool
	}{{testIdentity, true}, {odd, true}, {testIdentity, false}} {
		wrapped := 0
		for _, f := range listenerFrames(t, c.id, c.enrich, bodies...) {
			want, _, isPart := kteOf(t, f)
			got, ok := wrappedID(f)
			if ok != isPart {
				t.Fatalf("unexpected wrappedID result for %.120q; got %v; want %v", f, ok, isPart)
			}
			if ok {
				wrapped++
				if s := strconv.FormatUint(got, 16); strings.Repeat("0", 16-len(s))+s != want {
					t.Fatalf("unexpected id of %.120q; got %016x; want %s", f, got, want)
				}
			}
		}
		if wrapped < 8 {
			t.Fatalf("unexpected wrapped records with identity %+v, enrich %v; got %d; want at least 8", c.id, c.enrich, wrapped)
		}
	}

	f := func(data string) {
		t.Helper()
		if id, ok := wrappedID([]byte(data)); ok {
			t.Fatalf("unexpected id %016x in %q", id, data)
		}
	}
	f(``)
	f(`{`)
	f(`{"lambda":{`)
	f(`{"lambda":{"function":"\"`)
	f(`{"lambda":{"a":"b"}`)
	f(`{"lambda":{"a":"b"},"kte":{"quarantine":"oversize","reason":"r","id":"0123`)
	f(`{"kte":{"quarantine":"oversize","reason":"r","id":"0123456789abcdeg","part":1}`)
	f(`{"kte":{"quarantine":"oversize","reason":"r"}}`)
	f(`{"time":"t","kte":{"quarantine":"oversize","reason":"r","id":"0123456789abcdef","part":1}}`)
	f(`["kte":{"quarantine":"oversize","reason":"r","id":"0123456789abcdef","part":1}}`)
}

// TestRandomKeysOnePerPayload: with KTE_PARTITION_KEY=random every part of
// one wrapped payload gets the same key (so the parts reach one shard, in
// order), payloads spread over keys, and plain events take the keys in
// turn. A part resent alone in a later request keeps its key.
func TestRandomKeysOnePerPayload(t *testing.T) {
	enc := randomKeyEncoder(t)
	frames := listenerFrames(t, testIdentity, true, wrappingBody(), wrappingBody(), []byte(`[{"malformed`))
	byID := map[string]string{}
	var lastPlain string
	plain, parts := 0, 0
	for _, f := range frames {
		i, st := enc.Add(f)
		if st != Added {
			t.Fatalf("unexpected status adding a %d-byte frame; got %v; want Added", len(f), st)
		}
		key := *enc.Entries()[i].PartitionKey
		id, part, ok := kteOf(t, f)
		if !ok {
			if key == lastPlain {
				t.Fatalf("unexpected key %q for two plain events in a row; want keys in turn", key)
			}
			lastPlain = key
			plain++
			continue
		}
		parts++
		if first, seen := byID[id]; seen && key != first {
			t.Fatalf("unexpected key for part %d of payload %s; got %q; want %q, the key of its first part", part, id, key, first)
		}
		byID[id] = key
	}
	// A part resent alone, in a later request, keeps its payload's key.
	for _, f := range frames {
		if id, part, ok := kteOf(t, f); ok {
			enc.Reset()
			if j, _ := enc.Add(f); *enc.Entries()[j].PartitionKey != byID[id] {
				t.Fatalf("unexpected key for part %d of payload %s resent alone; got %q; want %q", part, id, *enc.Entries()[j].PartitionKey, byID[id])
			}
		}
	}
	distinct := map[string]bool{}
	for _, k := range byID {
		distinct[k] = true
	}
	if len(byID) != 5 || parts < 20 || plain != 14 || len(distinct) < 4 {
		t.Fatalf("unexpected frames; got %d payloads on %d keys in %d parts, %d plain events; want 5 payloads on at least 4 keys, at least 20 parts, 14 plain", len(byID), len(distinct), parts, plain)
	}
}

// TestKeysForID: ForID is a function of the id, spreads consecutive ids
// (the listener numbers payloads in sequence) over all keys, and leaves
// Next's turn alone.
func TestKeysForID(t *testing.T) {
	k, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	first := *k.Next()
	uses := map[string]int{}
	base := uint64(0xfedcba9876543210)
	for id := base; id < base+uint64(16*k.Len()); id++ {
		p := k.ForID(id)
		if k.ForID(id) != p {
			t.Fatalf("unexpected keys for id %x; got two", id)
		}
		uses[*p]++
	}
	if len(uses) != k.Len() {
		t.Fatalf("unexpected spread of %d consecutive ids; got %d keys; want all %d", 16*k.Len(), len(uses), k.Len())
	}
	for s, n := range uses {
		if n < 8 || n > 24 {
			t.Fatalf("unexpected use of key %q; got %d; want about 16", s, n)
		}
	}
	if second := *k.Next(); second == first {
		t.Fatalf("unexpected key after ForID calls; got %q again; want the next in turn", second)
	}
	one, _ := NewKeys(config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: "k"}, "", "")
	if *one.ForID(12345) != "k" {
		t.Fatalf("unexpected key of a fixed-key Keys; got %q; want %q", *one.ForID(12345), "k")
	}
}

// randomKeyEncoder returns an encoder of 64 KiB records with
// KTE_PARTITION_KEY=random.
func randomKeyEncoder(tb testing.TB) *RecordEncoder {
	tb.Helper()
	keys, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "")
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := NewRecordEncoder(Limits{MaxRecords: 500, MaxBytes: 5 * MiB, RecordMaxBytes: 64 * KiB}, keys)
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

// wrappedID is RecordEncoder.wrappedID without its cached prefix.
func wrappedID(data []byte) (uint64, bool) { return wrappedIDAt(data, memberStart(data)) }
