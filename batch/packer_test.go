package batch

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
	"github.com/kte-dev/kinesis-telemetry-extension/ring/ringtest"
)

const (
	KiB = config.KiB
	MiB = config.MiB
)

// drive runs the packer's steps on the test goroutine (the ring's only
// reader) until nothing is left to send, making every call through c.
// Retries are made due at once by passing a time far in the future.
func drive(tb testing.TB, p *Packer, c PutRecordsAPI) {
	tb.Helper()
	p.client = c
	p.ctl.resumed, p.resumed = true, true
	for range 100000 {
		p.fill(p.now() + int64(time.Hour))
		if len(p.req) == 0 {
			if p.unsettled != 0 {
				tb.Fatalf("BUG: %d events unsettled and nothing to send", p.unsettled)
			}
			return
		}
		p.notBefore = 0
		p.send(context.Background())
	}
	tb.Fatal("drive: too many calls")
}

// requestOK checks one call against the limits and returns its bytes.
func requestOK(tb testing.TB, call memCall, lim Limits) int {
	tb.Helper()
	total := 0
	for i, d := range call.data {
		rec := len(d) + len(call.keys[i])
		if rec > lim.RecordMaxBytes {
			tb.Fatalf("unexpected record size; got %d; want ≤ %d", rec, lim.RecordMaxBytes)
		}
		total += rec
	}
	if len(call.data) == 0 || len(call.data) > lim.MaxRecords {
		tb.Fatalf("unexpected records in a call; got %d; want 1–%d", len(call.data), lim.MaxRecords)
	}
	if total > lim.MaxBytes {
		tb.Fatalf("unexpected request size; got %d; want ≤ %d", total, lim.MaxBytes)
	}
	return total
}

func TestPackLimits(t *testing.T) {
	type want struct {
		calls    [][]int // event ids per call
		bytes    []int   // request bytes (data + keys) per call
		oversize []int
	}
	f := func(name string, lim Limits, key config.PartitionKey, sizes []int, w want) {
		t.Helper()
		ringSize := 16 * MiB
		if lim.RecordMaxBytes > 4*MiB {
			ringSize = 32 * MiB
		}
		r := newRing(t, ringSize)
		cfg := testConfig(lim.MaxRecords, lim.MaxBytes, lim.RecordMaxBytes, "")
		cfg.PartitionKey = key
		var undelivered bytes.Buffer
		p := newPacker(t, r, cfg, Options{Undelivered: &undelivered})
		for i, size := range sizes {
			if err := ringtest.Write(r, event(i, size)); err != nil {
				t.Fatalf("%s: cannot write event %d: %v", name, i, err)
			}
		}
		c := &memClient{}
		drive(t, p, c)
		calls := c.snapshot()
		if len(calls) != len(w.calls) {
			t.Fatalf("%s: unexpected number of calls; got %d; want %d", name, len(calls), len(w.calls))
		}
		for i, call := range calls {
			got := requestOK(t, call, lim)
			if got != w.bytes[i] {
				t.Fatalf("%s: unexpected bytes in call %d; got %d; want %d", name, i, got, w.bytes[i])
			}
			var ids []int
			for j, d := range call.data {
				ids = append(ids, eventID(d))
				if !bytes.Equal(d, event(eventID(d), sizes[eventID(d)])) {
					t.Fatalf("%s: record %d of call %d is not byte-identical to its event", name, j, i)
				}
			}
			if !slices.Equal(ids, w.calls[i]) {
				t.Fatalf("%s: unexpected events in call %d; got %v; want %v", name, i, ids, w.calls[i])
			}
		}
		var over []int
		events, reasons := joinUndelivered(t, undelivered.String())
		for _, ev := range events {
			over = append(over, eventID([]byte(ev)))
		}
		if !slices.Equal(over, w.oversize) || reasons["oversize"] != len(events) {
			t.Fatalf("%s: unexpected oversize events; got %v (reasons %v); want %v", name, over, reasons, w.oversize)
		}
		if st := p.Stats(); st.Oversize != uint64(len(w.oversize)) || st.Held != 0 {
			t.Fatalf("%s: unexpected stats; got oversize %d held %d; want %d and 0", name, st.Oversize, st.Held, len(w.oversize))
		}
		if r.Unreleased() != 0 || r.Unread() != 0 {
			t.Fatalf("%s: unexpected ring state; got unreleased %d unread %d; want 0 and 0", name, r.Unreleased(), r.Unread())
		}
	}
	fixed := config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: "k"}
	classic := Limits{MaxRecords: 500, MaxBytes: 5 * MiB, RecordMaxBytes: 1 * MiB}
	ids := func(from, to int) []int {
		var s []int
		for i := from; i < to; i++ {
			s = append(s, i)
		}
		return s
	}
	repeat := func(size, n int, more ...int) []int {
		return append(slices.Repeat([]int{size}, n), more...)
	}

	f("exactly 500 records", classic, fixed, repeat(8, 500),
		want{calls: [][]int{ids(0, 500)}, bytes: []int{500 * 9}})
	f("501 records", classic, fixed, repeat(8, 501),
		want{calls: [][]int{ids(0, 500), {500}}, bytes: []int{500 * 9, 9}})
	// Four records of 1 MiB - 1 (data + 1-byte key), one of 1 MiB - 5 and
	// one of 9: 5 MiB exactly.
	f("exactly 5 MiB with keys", classic, fixed, repeat(MiB-2, 4, MiB-6, 8),
		want{calls: [][]int{ids(0, 6)}, bytes: []int{5 * MiB}})
	f("5 MiB and one byte", classic, fixed, repeat(MiB-2, 4, MiB-6, 9),
		want{calls: [][]int{ids(0, 5), {5}}, bytes: []int{5*MiB - 9, 10}})
	f("record of exactly 1 MiB with key", classic, fixed, []int{MiB - 1},
		want{calls: [][]int{{0}}, bytes: []int{MiB}})
	f("record of 1 MiB and one byte", classic, fixed, []int{MiB, 8},
		want{calls: [][]int{{1}}, bytes: []int{9}, oversize: []int{0}})
	f("oversize between others", Limits{MaxRecords: 500, MaxBytes: 1000, RecordMaxBytes: 100}, fixed, []int{50, 100, 50},
		want{calls: [][]int{{0, 2}}, bytes: []int{102}, oversize: []int{1}})
	f("lowered record count", Limits{MaxRecords: 2, MaxBytes: 5 * MiB, RecordMaxBytes: MiB}, fixed, repeat(8, 5),
		want{calls: [][]int{{0, 1}, {2, 3}, {4}}, bytes: []int{18, 18, 9}})
	// A 16-byte generated key counts against both limits.
	env := config.PartitionKey{Mode: config.PartitionKeyEnvironment}
	f("generated key, exact request", Limits{MaxRecords: 3, MaxBytes: 104, RecordMaxBytes: 40}, env, []int{24, 24, 8},
		want{calls: [][]int{{0, 1, 2}}, bytes: []int{104}})
	f("generated key, request one over", Limits{MaxRecords: 3, MaxBytes: 104, RecordMaxBytes: 40}, env, []int{24, 24, 9},
		want{calls: [][]int{{0, 1}, {2}}, bytes: []int{80, 25}})
	f("generated key, record one over", Limits{MaxRecords: 3, MaxBytes: 104, RecordMaxBytes: 40}, env, []int{25, 24},
		want{calls: [][]int{{1}}, bytes: []int{40}, oversize: []int{0}})
	// Streams whose maximum record size was raised: 10 MiB per record and request.
	large := Limits{MaxRecords: 500, MaxBytes: 10 * MiB, RecordMaxBytes: 10 * MiB}
	f("large record of exactly 10 MiB", large, fixed, []int{10*MiB - 1, 8},
		want{calls: [][]int{{0}, {1}}, bytes: []int{10 * MiB, 9}})
}

func TestReleaseOrderWithOutOfOrderSuccess(t *testing.T) {
	r := newRing(t, 64*KiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{})
	const n = 10
	size := 0
	for i := range n {
		e := event(i, 100)
		size = ring.BlockSize(1, len(e))
		if err := ringtest.Write(r, e); err != nil {
			t.Fatal(err)
		}
	}
	// Each call fails the events listed for it (by id) and accepts the rest.
	script := [][]int{
		{0, 3, 7},
		{0, 7},
		{7},
		{},
	}
	// After each call: the events that must still be held in the ring
	// (released only up to the first unsettled one).
	wantHeld := []int{10, 10, 3, 0}
	wantSent := [][]int{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{0, 3, 7},
		{0, 7},
		{7},
	}
	var call int
	c := &memClient{respond: func(k int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return failOutput(len(in.Records), func(i int) string {
			if slices.Contains(script[k], eventID(in.Records[i].Data)) {
				return codeThroughput
			}
			return ""
		}), nil
	}}
	p.client = c
	p.ctl.resumed, p.resumed = true, true
	for call = range script {
		p.fill(p.now() + int64(time.Hour))
		p.notBefore = 0
		p.send(context.Background())
		calls := c.snapshot()
		var got []int
		for _, d := range calls[call].data {
			got = append(got, eventID(d))
		}
		if !slices.Equal(got, wantSent[call]) {
			t.Fatalf("unexpected events in call %d; got %v; want %v (failed entries resent alone)", call, got, wantSent[call])
		}
		if held := r.Unreleased() / size; held != wantHeld[call] {
			t.Fatalf("unexpected events held after call %d; got %d; want %d", call, held, wantHeld[call])
		}
	}
	st := p.Stats()
	if st.Records != n || st.Events != n || st.Throttled != 6 || st.Retried != 6 || st.Calls != 4 || st.CallRecords != 16 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
}

func TestWholeCallFailureKeepsEverything(t *testing.T) {
	r := newRing(t, 64*KiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{})
	for i := range 5 {
		if err := ringtest.Write(r, event(i, 50)); err != nil {
			t.Fatal(err)
		}
	}
	c := &memClient{respond: func(k int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		if k < 2 {
			return nil, fmt.Errorf("dial tcp: connection refused")
		}
		return okOutput(len(in.Records)), nil
	}}
	drive(t, p, c)
	calls := c.snapshot()
	if len(calls) != 3 {
		t.Fatalf("unexpected calls; got %d; want 3", len(calls))
	}
	for i, call := range calls {
		if len(call.data) != 5 {
			t.Fatalf("unexpected records in call %d; got %d; want 5", i, len(call.data))
		}
	}
	if st := p.Stats(); st.CallNetwork != 2 || st.Retried != 10 || st.Records != 5 {
		t.Fatalf("unexpected stats; got %+v", st)
	}
	if r.Unreleased() != 0 {
		t.Fatalf("unexpected unreleased bytes; got %d; want 0", r.Unreleased())
	}
}

func TestBackoffIsCappedFullJitter(t *testing.T) {
	r := newRing(t, 64*KiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{BackoffBase: 10 * time.Millisecond, BackoffMax: 300 * time.Millisecond})
	f := func(n int, bound time.Duration) {
		t.Helper()
		var hi int64
		for range 2000 {
			d := p.backoff(n)
			if d < 0 || d > int64(bound) {
				t.Fatalf("unexpected backoff for attempt %d; got %v; want within [0, %v]", n, time.Duration(d), bound)
			}
			hi = max(hi, d)
		}
		if hi < int64(bound)/2 {
			t.Fatalf("unexpected backoff spread for attempt %d; got max %v; want near %v", n, time.Duration(hi), bound)
		}
	}
	f(1, 10*time.Millisecond)
	f(2, 20*time.Millisecond)
	f(5, 160*time.Millisecond)
	f(6, 300*time.Millisecond)
	f(100, 300*time.Millisecond)
	for n := 7; n < 200; n++ {
		f(n, 300*time.Millisecond)
	}
	// With the defaults (50 ms, 5 s) base<<(n-1) overflows int64 from the
	// 39th attempt: still the cap, never a panic (an outage reached it).
	p = newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{})
	for n := 8; n < 200; n++ {
		f(n, DefaultBackoffMax)
	}
}

func TestAppendUndelivered(t *testing.T) {
	f := func(reason, data, want string) {
		t.Helper()
		got := string(appendUndelivered([]byte("x"), reason, []byte(data), 7))
		if got != "x"+want {
			t.Fatalf("unexpected line; got %.300q; want %.300q", got, "x"+want)
		}
	}
	f("shutdown", `{"a":1}`, "KTE_UNDELIVERED reason=shutdown {\"a\":1}\n")
	f("deadline exceeded", "{\r\n\"a\":\n1}", "KTE_UNDELIVERED reason=deadline_exceeded {  \"a\": 1}\n")
	f("a\tb\x00", "", "KTE_UNDELIVERED reason=a_b_ \n")
	// The longest event that fits one line, and one byte more.
	head := len("KTE_UNDELIVERED reason=shutdown ")
	fit := strings.Repeat("a", maxUndeliveredLine-head-1)
	f("shutdown", fit, "KTE_UNDELIVERED reason=shutdown "+fit+"\n")
	// Parts hold what a line leaves with the widest numbers the event's
	// length allows (5 digits).
	n1 := maxUndeliveredLine - len("KTE_UNDELIVERED reason=shutdown id=0000000000000007 part=99999/99999 \n")
	f("shutdown", fit+"b", "KTE_UNDELIVERED reason=shutdown id=0000000000000007 part=1/2 "+fit[:n1]+"\n"+
		"KTE_UNDELIVERED reason=shutdown id=0000000000000007 part=2/2 "+fit[n1:]+"b\n")
}

// TestAppendUndeliveredLong: an event longer than a line may be is written
// in lines of at most maxUndeliveredLine bytes, numbered in order under one
// id, whose chunks join into the event (raw newlines as spaces); no chunk is
// cut inside a UTF-8 character or next to white space.
func TestAppendUndeliveredLong(t *testing.T) {
	f := func(reason string, data []byte, spaced bool) {
		t.Helper()
		maxLine := maxUndeliveredLine
		if len(reason) > maxLine/2 {
			maxLine = len(reason) + 100 + minUndeliveredChunk // the chunk is never shorter
		}
		out := appendUndelivered(nil, reason, data, 0xfedcba9876543210)
		lines := strings.SplitAfter(string(out), "\n")
		lines = lines[:len(lines)-1] // after the last '\n'
		want := strings.NewReplacer("\n", " ", "\r", " ").Replace(string(data))
		var joined strings.Builder
		for i, line := range lines {
			if len(line) > maxLine {
				t.Fatalf("unexpected line %d of %d bytes; want at most %d", i+1, len(line), maxLine)
			}
			head := fmt.Sprintf("KTE_UNDELIVERED reason=%s id=fedcba9876543210 part=%d/%d ", reason, i+1, len(lines))
			chunk, ok := strings.CutPrefix(line, head)
			if !ok {
				t.Fatalf("unexpected line %d; got %.120q; want it to start with %q", i+1, line, head)
			}
			chunk = strings.TrimSuffix(chunk, "\n")
			if !utf8.ValidString(chunk) || !spaced && (chunk[0] == ' ' || chunk[len(chunk)-1] == ' ') {
				t.Fatalf("unexpected chunk %d: %.40q ... %.40q", i+1, chunk, chunk[max(0, len(chunk)-40):])
			}
			joined.WriteString(chunk)
		}
		if len(lines) < 2 || joined.String() != want {
			t.Fatalf("unexpected lines for a %d-byte event; got %d lines joining to %d bytes", len(data), len(lines), joined.Len())
		}
	}
	f("shutdown_deadline", event(3, MiB), false)
	f("oversize", []byte(`{"record":"`+strings.Repeat("é✓ 🚀\n\r  ", 40000)+`"}`), false)
	// No cut between two characters that are not white space: still
	// between characters.
	f("oversize", []byte(`{"record":"`+strings.Repeat("é ✓\n🚀  ", 40000)+`"}`), true)
	f(strings.Repeat("r", 40000), event(4, 100*KiB), false) // a long reason still leaves room
}

func TestKeys(t *testing.T) {
	f := func(pk config.PartitionKey, fn, env string, wantDistinct, wantLen int, want string) {
		t.Helper()
		k, err := NewKeys(pk, fn, env)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for range 3 * RandomKeys {
			s := *k.Next()
			if len(s) != wantLen {
				t.Fatalf("unexpected key length of %q; got %d; want %d", s, len(s), wantLen)
			}
			if want != "" && s != want {
				t.Fatalf("unexpected key; got %q; want %q", s, want)
			}
			seen[s]++
		}
		if len(seen) != wantDistinct || k.MaxLen() != wantLen {
			t.Fatalf("unexpected keys; got %d distinct, max length %d; want %d and %d", len(seen), k.MaxLen(), wantDistinct, wantLen)
		}
		for s, n := range seen {
			if n != 3*RandomKeys/wantDistinct {
				t.Fatalf("unexpected use of key %q; got %d; want %d (keys used in turn)", s, n, 3*RandomKeys/wantDistinct)
			}
		}
	}
	f(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "fn", "", 1, 16, "")
	f(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "fn", "env-1234", 1, 8, "env-1234")
	f(config.PartitionKey{Mode: config.PartitionKeyRandom}, "fn", "", RandomKeys, 16, "")
	f(config.PartitionKey{Mode: config.PartitionKeyFunction}, "my-function", "", 1, 11, "my-function")
	f(config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: "ünï"}, "fn", "", 1, 5, "ünï") // UTF-8 bytes count

	if _, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyFunction}, "", ""); err == nil {
		t.Fatal("unexpected success for function keys without a function name")
	}
	a, _ := NewKeys(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "", "")
	b, _ := NewKeys(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "", "")
	if *a.Next() == *b.Next() {
		t.Fatal("unexpected equal environment keys in two environments")
	}
}

// TestKeysRedraw: Redraw replaces generated keys (environment, random),
// handed to the encoder's goroutine at its next Next; keys already handed
// out stay valid; the function name and fixed keys are kept.
func TestKeysRedraw(t *testing.T) {
	f := func(pk config.PartitionKey, env, redraw string, wantChanged bool) {
		t.Helper()
		k, err := NewKeys(pk, "my-function", env)
		if err != nil {
			t.Fatal(err)
		}
		before := map[string]bool{}
		var first *string
		for range k.Len() {
			p := k.Next()
			if first == nil {
				first = p
			}
			before[*p] = true
		}
		old := *first
		if err := k.Redraw(redraw); err != nil {
			t.Fatal(err)
		}
		for range 2 * len(before) {
			s := *k.Next()
			if before[s] == wantChanged {
				t.Fatalf("%v: unexpected key %q after Redraw; want changed: %v", pk.Mode, s, wantChanged)
			}
			if redraw != "" && wantChanged && s != redraw {
				t.Fatalf("%v: unexpected key %q after Redraw(%q)", pk.Mode, s, redraw)
			}
		}
		if k.Len() != len(before) || *first != old {
			t.Fatalf("%v: unexpected %d keys after Redraw (want %d), or a key handed out changed: %q; want %q", pk.Mode, k.Len(), len(before), *first, old)
		}
	}
	f(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "", "", true)
	f(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "env-1234", "env-5678", true)
	f(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "", true)
	f(config.PartitionKey{Mode: config.PartitionKeyFunction}, "", "env-5678", false)
	f(config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: "fixed"}, "", "env-5678", false)

	// ForID, the key of a wrapped payload's parts, takes the new keys too,
	// whether or not Next has been called since: one key per payload.
	k, _ := NewKeys(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "")
	const id = 12345
	old := *k.ForID(id)
	if err := k.Redraw(""); err != nil {
		t.Fatal(err)
	}
	if got := *k.ForID(id); got == old {
		t.Fatalf("ForID gives the key from before Redraw: %q", got)
	} else if _ = k.Next(); *k.ForID(id) != got {
		t.Fatalf("ForID changed after Next; got %q; want %q", *k.ForID(id), got)
	}

	// A key longer than the encoder counts is refused, the keys kept.
	k, _ = NewKeys(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "", "env-1234")
	if err := k.Redraw("env-123456789"); err == nil || *k.Next() != "env-1234" {
		t.Fatalf("unexpected Redraw of a longer key; err %v, key %q", err, *k.Next())
	}

	// Redraw from another goroutine while the encoder's takes keys (-race).
	k, _ = NewKeys(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			_ = k.Redraw("")
		}
	}()
	for range 100 * RandomKeys {
		if len(*k.Next()) != 2*randomKeyBytes {
			t.Fatal("unexpected key length")
		}
	}
	<-done
}

func TestNewRejectsBadLimits(t *testing.T) {
	f := func(lim Limits, key string) {
		t.Helper()
		cfg := testConfig(lim.MaxRecords, lim.MaxBytes, lim.RecordMaxBytes, key)
		if _, err := New(newRing(t, 64*KiB), cfg, Options{}); err == nil {
			t.Fatalf("unexpected success for limits %+v and key %q", lim, key)
		}
	}
	f(Limits{MaxRecords: 0, MaxBytes: MiB, RecordMaxBytes: MiB}, "k")
	f(Limits{MaxRecords: 501, MaxBytes: MiB, RecordMaxBytes: MiB}, "k")
	f(Limits{MaxRecords: 500, MaxBytes: MiB, RecordMaxBytes: 2 * MiB}, "k")
	f(Limits{MaxRecords: 500, MaxBytes: 11 * MiB, RecordMaxBytes: MiB}, "k")
	f(Limits{MaxRecords: 500, MaxBytes: MiB, RecordMaxBytes: 4}, "kkkk")
}

// TestRandomKeysSpread: the random keys spread a stream's load evenly.
// With 4096 keys the busiest of 32 equal shards gets at most 1.5 times the
// mean, 5.6 standard deviations above it (the median set gives 1.19); 256
// keys gave 1.75 in the median set.
func TestRandomKeysSpread(t *testing.T) {
	k, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyRandom}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	const shards = 32
	var load [shards]int
	for range k.Len() {
		h := md5.Sum([]byte(*k.Next()))
		load[h[0]>>3]++ // Kinesis maps the 128-bit hash onto equal ranges
	}
	mean := float64(k.Len()) / shards
	if busiest := float64(slices.Max(load[:])); busiest > 1.5*mean {
		t.Fatalf("unexpected spread of %d keys over %d shards; got %.0f on the busiest; want at most %.0f (1.5 × the mean)", k.Len(), shards, busiest, 1.5*mean)
	}
}
