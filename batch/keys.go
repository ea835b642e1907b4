package batch

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"sync/atomic"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// RandomKeys is the number of preallocated keys KTE_PARTITION_KEY=random
// cycles through, so the share of the busiest of S equal shards, against
// the mean, is that of the fullest of S bins after RandomKeys random draws
// (each key's MD5 hash is uniform). Median (and 95th percentile) over 200
// sets of keys: 1.03 (1.06) at 4 shards, 1.11 (1.16) at 16, 1.19 (1.27) at
// 32, 1.30 (1.42) at 64, 1.50 (1.62) at 128; 256 keys gave 1.75 at 32 and
// 2.25 at 64. The keys take 128 KiB (16 bytes and a string header each),
// allocated once, and only in this mode.
const RandomKeys = 4096

// randomKeyBytes is the entropy in one generated key; it is written as hex,
// so a generated key is 2*randomKeyBytes characters long and costs that many
// bytes of the record and request limits.
const randomKeyBytes = 8

// Keys hands out partition keys as pointers to strings allocated once at
// construction, so that PutRecordsRequestEntry.PartitionKey can be set
// without allocating.
//
// Keys is used by one goroutine (the encoder's), except Redraw, which any
// goroutine may call; it must not be copied after first use.
type Keys struct {
	_ noCopy

	keys   []string
	next   int
	maxLen int
	// draw makes the generated keys (environment, random); nil for the
	// others, which Redraw keeps.
	draw func(envKey string) []string

	// redrawn holds the keys Redraw made until the encoder's goroutine
	// takes them at its next Next: Redraw stores them (any goroutine), Next
	// swaps them out. The store synchronizes before the swap that returns
	// them, so the encoder sees the strings complete.
	redrawn atomic.Pointer[[]string]
}

// NewKeys returns the partition keys for pk (config.PartitionKey):
//
//   - environment: one random key, generated here, for every record: all of
//     one execution environment's events go to one shard (in the order sent;
//     PutRecords does not promise order, and a retried record lands after
//     newer ones), while environments spread over shards. envKey, when not empty, is used instead
//     of a generated key (so the lifecycle can reuse an identity it already
//     has, e.g. the one it enriches events with).
//   - random: RandomKeys random keys used in turn, one per record: every
//     request spreads over all shards.
//   - function: the function name: all environments of a function share one
//     shard.
//   - fixed: the configured string.
func NewKeys(pk config.PartitionKey, functionName, envKey string) (*Keys, error) {
	switch pk.Mode {
	case config.PartitionKeyEnvironment:
		return drawnKeys(environmentKeys, envKey)
	case config.PartitionKeyRandom:
		return drawnKeys(randomKeys, "")
	case config.PartitionKeyFunction:
		if functionName == "" {
			return nil, fmt.Errorf("batch: KTE_PARTITION_KEY=function needs the function name (%s is empty)", "AWS_LAMBDA_FUNCTION_NAME")
		}
		return keysOf(functionName)
	case config.PartitionKeyFixed:
		return keysOf(pk.Fixed)
	}
	return nil, fmt.Errorf("batch: unknown partition key mode %v", pk.Mode)
}

func keysOf(keys ...string) (*Keys, error) {
	k := &Keys{keys: keys}
	for _, s := range keys {
		if !config.ValidPartitionKey(s) {
			return nil, fmt.Errorf("batch: partition key %q must be valid UTF-8 of 1–%d UTF-16 code units, as Kinesis counts its length", s, config.KinesisMaxPartitionKeyChars)
		}
		k.maxLen = max(k.maxLen, len(s))
	}
	return k, nil
}

// drawnKeys returns the keys draw makes, which Redraw can make again.
func drawnKeys(draw func(envKey string) []string, envKey string) (*Keys, error) {
	k, err := keysOf(draw(envKey)...)
	if err != nil {
		return nil, err
	}
	k.draw = draw
	return k, nil
}

// environmentKeys is the key of KTE_PARTITION_KEY=environment: envKey, or
// a random one.
func environmentKeys(envKey string) []string {
	if envKey == "" {
		envKey = randomKey()
	}
	return []string{envKey}
}

// randomKeys is the keys of KTE_PARTITION_KEY=random. One string holds
// every key's bytes. They come from a ChaCha8 stream seeded by crypto/rand:
// reading 32 KiB from crypto/rand itself took 0.15 ms.
func randomKeys(string) []string {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails (Go 1.24+)
	raw := make([]byte, RandomKeys*randomKeyBytes)
	_, _ = mrand.NewChaCha8(seed).Read(raw) // never fails
	all := hex.EncodeToString(raw)
	keys := make([]string, RandomKeys)
	for i := range keys {
		keys[i] = all[2*randomKeyBytes*i : 2*randomKeyBytes*(i+1)]
	}
	return keys
}

func randomKey() string {
	var b [randomKeyBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Next returns the key for the next record: a pointer to a string owned by
// k, valid for k's lifetime. It does no allocation.
func (k *Keys) Next() *string {
	k.takeRedrawn()
	p := &k.keys[k.next]
	if k.next++; k.next == len(k.keys) {
		k.next = 0
	}
	return p
}

// MaxLen returns the length in bytes of the longest key, the figure the
// encoder counts against the record and request limits (Kinesis counts the
// key's UTF-8 bytes).
func (k *Keys) MaxLen() int { return k.maxLen }

// Len returns the number of distinct keys.
func (k *Keys) Len() int { return len(k.keys) }

// ForID returns the key for id, always the same one for the same id (the
// encoder gives it to every part of one wrapped payload). Consecutive ids
// spread over the keys. It does not move Next's turn and does no allocation.
func (k *Keys) ForID(id uint64) *string {
	k.takeRedrawn() // as Next: the same keys for every record after a Redraw
	// Fibonacci hashing, then the high half of a 64×64-bit product maps the
	// hash onto [0, len) without a division.
	i, _ := bits.Mul64(id*0x9e3779b97f4a7c15, uint64(len(k.keys)))
	return &k.keys[i]
}

// Redraw replaces the generated keys (modes environment and random) with
// new ones, from crypto/rand; for environment, envKey when it is not empty.
// The function name and a fixed key are kept. A process restored from a
// snapshot (Lambda SnapStart) calls it, so that the environments resumed
// from one snapshot do not share keys.
//
// Redraw may be called from any goroutine, concurrently with the encoder's
// goroutine using k (Next, ForID, Len, MaxLen) and with other Redraw calls:
// it reads only what construction set (the draw function, MaxLen) and
// publishes the new keys with one atomic store. The encoder's goroutine
// takes them at its next Next or ForID; entries already made keep pointing
// at the old keys, which stay valid. The number of keys does not change,
// nor does MaxLen. Of concurrent Redraw calls, the keys stored last are the
// ones the encoder ends with, and it may use an earlier call's keys for some
// records in between (each call's keys whole, in the order the calls
// stored them): a caller that needs one outcome makes one call, as the
// lifecycle does after a restore. A new key must not be longer than
// MaxLen, which the encoder counts against the limits; Redraw returns an
// error and keeps the keys otherwise. It allocates the new keys.
func (k *Keys) Redraw(envKey string) error {
	if k.draw == nil {
		return nil
	}
	keys := k.draw(envKey)
	for _, s := range keys {
		if len(s) > k.maxLen || !config.ValidPartitionKey(s) {
			return fmt.Errorf("batch: redrawn partition key %q must be a valid key of at most %d bytes", s, k.maxLen)
		}
	}
	k.redrawn.Store(&keys)
	return nil
}

// takeRedrawn switches to the keys Redraw made, if any (a load, no write,
// when there are none). Encoder's goroutine only.
func (k *Keys) takeRedrawn() {
	if k.redrawn.Load() == nil {
		return
	}
	if p := k.redrawn.Swap(nil); p != nil {
		k.keys, k.next = *p, 0
	}
}
