// Package batch is the ring's single reader: it packs committed frames (one
// telemetry event each) into Kinesis PutRecords requests and delivers them,
// releasing ring space only for events that were accepted or given up on and
// reported.
//
// # Packing
//
// An Encoder turns frames into the entries of one request at a time. The
// default RecordEncoder makes one record per event: the entry's Data points
// at the frame in the ring (no copy) and its PartitionKey at a string
// allocated once (see Keys); the parts of one payload the listener wrapped
// share one key, so they reach one shard. Requests respect Limits: at most 500 records,
// at most 5 MiB of data plus partition keys, at most 1 MiB per record
// (data plus key), each lowerable by configuration and raisable to 10 MiB
// for streams whose maximum record size was raised. An event that can never
// fit a record is written to stderr as a KTE_UNDELIVERED line, counted
// (Stats.Oversize) and released; the listener splits oversize events before
// they reach the ring, so this is a defence.
//
// Other record formats (several events per record, KPL aggregation,
// compression) are other Encoders: the packer only needs to know which entry
// carries which event.
//
// # Delivery
//
// One goroutine (Packer.Run) reads the ring and makes every call, one at a
// time. After a call it walks the response by index: accepted entries settle
// their events at once; entries that failed (ProvisionedThroughputExceeded,
// InternalFailure) are resent alone, in later requests, after a capped
// exponential backoff with full jitter. A call that fails as a whole is
// retried with the same backoff; refusals that retrying will not fix
// (missing stream, access denied, KMS, invalid request) are logged once per
// kind with the likely fix, and the events are kept while there is room.
// Events leave the ring strictly in order: an outstanding window records
// which events are settled and the ring is released up to the first one that
// is not. When the window is full the packer stops reading, the ring fills,
// and the listener refuses deliveries, so Lambda retries them.
//
// # Pausing
//
// Outside Lambda Managed Instances the environment may be frozen as soon as
// the extension calls /event/next, so nothing may be in flight then. The
// lifecycle calls Resume at INVOKE and Flush before /event/next: Flush sends
// everything buffered, waits until it is settled or its deadline passes,
// cancels a call still in flight, and leaves the packer paused. At shutdown,
// after the final Flush, GiveUp writes what is left to stderr:
//
//	KTE_UNDELIVERED reason=<reason> <event JSON, raw CR/LF replaced by spaces>
//
// or, for an event whose line would exceed 32 KiB (more than a CloudWatch
// Logs event reliably holds), several lines whose chunks join into it:
//
//	KTE_UNDELIVERED reason=<reason> id=<16 hex digits> part=<i>/<n> <chunk>
//
// Delivery is at-least-once: a call that timed out or was cut short may have
// been stored by Kinesis before its events are resent (or given up on).
package batch
