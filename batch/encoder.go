package batch

import (
	"bytes"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// Limits bound one PutRecords request. Kinesis counts a record as its data
// (before base64) plus its partition key, and a request as the sum of its
// records; see config.KinesisMaxRecordsPerRequest and the constants next to
// it for the sources.
type Limits struct {
	MaxRecords     int // records per request, 1–500
	MaxBytes       int // data + partition keys per request
	RecordMaxBytes int // data + partition key per record, ≤ MaxBytes
}

// LimitsFrom returns the limits configured by KTE_BATCH_MAX_RECORDS,
// KTE_BATCH_MAX_BYTES and KTE_RECORD_MAX_BYTES (validated by config.Load).
func LimitsFrom(cfg config.Config) Limits {
	return Limits{MaxRecords: cfg.BatchMaxRecords, MaxBytes: cfg.BatchMaxBytes, RecordMaxBytes: cfg.RecordMaxBytes}
}

func (l Limits) validate() error {
	if l.MaxRecords < 1 || l.MaxRecords > config.KinesisMaxRecordsPerRequest {
		return fmt.Errorf("batch: MaxRecords %d must be between 1 and %d", l.MaxRecords, config.KinesisMaxRecordsPerRequest)
	}
	if l.RecordMaxBytes < 1 || l.MaxBytes > config.KinesisLargeRecordMaxBytes || l.RecordMaxBytes > l.MaxBytes {
		return fmt.Errorf("batch: byte limits (record %d, request %d) must satisfy 1 ≤ record ≤ request ≤ %d",
			l.RecordMaxBytes, l.MaxBytes, config.KinesisLargeRecordMaxBytes)
	}
	return nil
}

// AddStatus is the outcome of Encoder.Add.
type AddStatus uint8

const (
	// Added means the frame is in the request under construction.
	Added AddStatus = iota
	// Full means the request has no room for the frame: send the request,
	// Reset, and add the frame again.
	Full
	// TooLarge means the frame can never be sent, in any request; the
	// caller gives up on it.
	TooLarge
)

// Encoder turns frames (one event each) into the entries of one PutRecords
// request at a time. It is the seam between the ring and the sender: the
// packer offers frames in ring order and remembers, for each frame, the
// entry that carries it; the sender settles frames by the outcome of their
// entry. An encoder that puts several events into one record (newline
// delimited, KPL aggregation, compression) reports the same entry index for
// all of them; a failed entry's frames are offered again, alone or with
// others, in a later request, so the encoder never has to keep a request
// alive beyond Reset.
//
// An Encoder is used by one goroutine (the packer's). Implementations must
// not allocate per frame in steady state.
type Encoder interface {
	// Reset empties the request under construction. Entries returned
	// earlier, and any encoder buffers their Data points into, may be
	// reused from now on.
	Reset()
	// Add puts data, one frame, into the request under construction and
	// returns the index (in Entries) of the entry that carries it. data
	// stays valid and unchanged until Reset, so the encoder may reference
	// it instead of copying it.
	Add(data []byte) (entry int, st AddStatus)
	// Entries returns the request's entries, complete and ready to send.
	// The slice is owned by the encoder and valid until the next Reset.
	Entries() []types.PutRecordsRequestEntry
	// Bytes returns the request's size as counted against Limits.MaxBytes.
	Bytes() int
	// Limits returns the limits the encoder packs to.
	Limits() Limits
}

// RecordEncoder is the default Encoder: one event per record, the record's
// Data pointing at the frame in the ring (no copy), its PartitionKey from
// Keys. Entries are held in a slice allocated once, sized for
// Limits.MaxRecords.
//
// With several keys (KTE_PARTITION_KEY=random) the parts of one wrapped
// payload (see RecordEncoder.wrappedID) all get the key Keys.ForID gives
// their kte.id, not the next key in turn: they land on one shard, so a
// consumer that reads shard by shard can put the payload back together. The
// key depends on the id alone, so a part resent later, alone, keeps it.
//
// A RecordEncoder is used by one goroutine; it must not be copied after
// first use.
type RecordEncoder struct {
	_ noCopy

	lim     Limits
	keys    *Keys
	keyLen  int
	entries []types.PutRecordsRequestEntry
	bytes   int
	// pre is the last enrichment prefix seen (`{"lambda":{…},`), with
	// several keys only: every enriched frame of an environment starts with
	// the same one, so comparing it is all wrappedID needs to find where the
	// event's own members start.
	pre []byte
}

// NewRecordEncoder returns a one-event-per-record encoder.
func NewRecordEncoder(lim Limits, keys *Keys) (*RecordEncoder, error) {
	if err := lim.validate(); err != nil {
		return nil, err
	}
	if keys.MaxLen() >= lim.RecordMaxBytes {
		return nil, fmt.Errorf("batch: partition key of %d bytes leaves no room for data in a record of %d bytes", keys.MaxLen(), lim.RecordMaxBytes)
	}
	e := &RecordEncoder{
		lim:     lim,
		keys:    keys,
		keyLen:  keys.MaxLen(),
		entries: make([]types.PutRecordsRequestEntry, 0, lim.MaxRecords),
	}
	if keys.Len() > 1 {
		e.pre = make([]byte, 0, maxCachedPrefix)
	}
	return e, nil
}

// maxCachedPrefix bounds RecordEncoder.pre; a longer prefix (the listener
// accepts up to 512 bytes by default) is parsed in every frame instead.
const maxCachedPrefix = 1024

// wrappedID returns the kte.id of data when data is a part of a wrapped
// payload, and false for any other frame (a plain event). It reads only the
// frame's first bytes (the "lambda" object, whose end it finds once per
// enrichment prefix: see pre, and the kte object's first members) and does
// no allocation.
//
// The batch package does not import the listener; this is the one place it
// knows the listener's format, and TestWrappedIDOfListenerRecords checks it
// against records the listener wrote.
func (e *RecordEncoder) wrappedID(data []byte) (uint64, bool) {
	if len(e.pre) > 0 && bytes.HasPrefix(data, e.pre) {
		return wrappedIDAt(data, len(e.pre))
	}
	i := memberStart(data)
	if i > 1 && i <= cap(e.pre) {
		e.pre = append(e.pre[:0], data[:i]...)
	}
	return wrappedIDAt(data, i)
}

// Reset empties the request. It does no allocation.
func (e *RecordEncoder) Reset() {
	clear(e.entries) // drop references into the ring
	e.entries = e.entries[:0]
	e.bytes = 0
}

// Add appends one record for data. A frame whose data plus partition key
// exceeds Limits.RecordMaxBytes is TooLarge; one that would take the request
// past MaxRecords or MaxBytes is Full. It does no allocation.
func (e *RecordEncoder) Add(data []byte) (int, AddStatus) {
	size := len(data) + e.keyLen
	if size > e.lim.RecordMaxBytes {
		return -1, TooLarge
	}
	if len(e.entries) == e.lim.MaxRecords || e.bytes+size > e.lim.MaxBytes {
		return -1, Full
	}
	var key *string
	if e.keys.Len() == 1 {
		key = e.keys.Next()
	} else if id, ok := e.wrappedID(data); ok {
		key = e.keys.ForID(id)
	} else {
		key = e.keys.Next()
	}
	e.entries = append(e.entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: key})
	e.bytes += size
	return len(e.entries) - 1, Added
}

// Entries returns the request's records; valid until Reset.
func (e *RecordEncoder) Entries() []types.PutRecordsRequestEntry { return e.entries }

// Bytes returns the request's data plus partition key bytes.
func (e *RecordEncoder) Bytes() int { return e.bytes }

// Limits returns the limits e packs to.
func (e *RecordEncoder) Limits() Limits { return e.lim }

// The start of a wrapped record as the listener writes it (listener/wrap.go):
//
//	{"lambda":{…},"kte":{"quarantine":"…","reason":"…",["type":"…",]"id":"<16 hex digits>","part":…
//
// without the "lambda" object when enrichment is off.
var (
	lambdaStart = []byte(`{"lambda":{`)
	kteStart    = []byte(`"kte":{"quarantine":"`)
	kteID       = []byte(`,"id":"`)
)

// maxIDOffset bounds the search for kte.id: the kte members before it (the
// quarantine kind, a reason of up to 256 bytes escaped up to six bytes each,
// a type of up to 64 bytes) take well under 2 KiB.
const maxIDOffset = 2048

// memberStart returns where data's first member after the "lambda" object
// starts: 1 when data is an object without one, just past `{"lambda":{…},`
// when it has one, -1 when data is not an object or its "lambda" object is
// incomplete.
func memberStart(data []byte) int {
	if len(data) == 0 || data[0] != '{' {
		return -1
	}
	if !bytes.HasPrefix(data, lambdaStart) {
		return 1
	}
	i := endOfFlatObject(data, len(lambdaStart))
	if i < 0 || i >= len(data) || data[i] != ',' {
		return -1
	}
	return i + 1
}

// wrappedIDAt is wrappedID for a frame whose first member after the
// "lambda" object starts at i (memberStart).
func wrappedIDAt(data []byte, i int) (uint64, bool) {
	if i < 0 || !bytes.HasPrefix(data[i:], kteStart) {
		return 0, false
	}
	i += len(kteStart)
	// In the members up to "id" a quote preceded by a comma can only end a
	// string (inside one, quotes are escaped), so the first `,"id":"` is
	// kte.id.
	j := bytes.Index(data[i:min(len(data), i+maxIDOffset)], kteID)
	if j < 0 {
		return 0, false
	}
	i += j + len(kteID)
	if len(data) < i+16 {
		return 0, false
	}
	var id uint64
	for _, c := range data[i : i+16] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		id = id<<4 | uint64(c)
	}
	return id, true
}

// endOfFlatObject returns the index just past the '}' that closes the
// object whose members start at data[i], an object of string keys and
// values only (such as the "lambda" object), or -1 if data ends first.
func endOfFlatObject(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case '}':
			return i + 1
		case '"':
			// Skip the string: find its closing quote, one not escaped by
			// an odd run of backslashes.
			for {
				j := bytes.IndexByte(data[i+1:], '"')
				if j < 0 {
					return -1
				}
				i += 1 + j
				k := i - 1
				for data[k] == '\\' {
					k--
				}
				if (i-1-k)%2 == 0 {
					break
				}
			}
		}
		i++
	}
	return -1
}

// noCopy lets `go vet` (copylocks) flag copies of types that embed it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
