package batch

import (
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
// A RecordEncoder is used by one goroutine; it must not be copied after
// first use.
type RecordEncoder struct {
	_ noCopy

	lim     Limits
	keys    *Keys
	keyLen  int
	entries []types.PutRecordsRequestEntry
	bytes   int
}

// NewRecordEncoder returns a one-event-per-record encoder.
func NewRecordEncoder(lim Limits, keys *Keys) (*RecordEncoder, error) {
	if err := lim.validate(); err != nil {
		return nil, err
	}
	if keys.MaxLen() >= lim.RecordMaxBytes {
		return nil, fmt.Errorf("batch: partition key of %d bytes leaves no room for data in a record of %d bytes", keys.MaxLen(), lim.RecordMaxBytes)
	}
	return &RecordEncoder{
		lim:     lim,
		keys:    keys,
		keyLen:  keys.MaxLen(),
		entries: make([]types.PutRecordsRequestEntry, 0, lim.MaxRecords),
	}, nil
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
	e.entries = append(e.entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: e.keys.Next()})
	e.bytes += size
	return len(e.entries) - 1, Added
}

// Entries returns the request's records; valid until Reset.
func (e *RecordEncoder) Entries() []types.PutRecordsRequestEntry { return e.entries }

// Bytes returns the request's data plus partition key bytes.
func (e *RecordEncoder) Bytes() int { return e.bytes }

// Limits returns the limits e packs to.
func (e *RecordEncoder) Limits() Limits { return e.lim }

// noCopy lets `go vet` (copylocks) flag copies of types that embed it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
