package config

// Kinesis PutRecords limits, shared by config (validation) and batch (packing).
//
// Source: AWS Kinesis Data Streams API reference, PutRecords and
// PutRecordsRequestEntry (docs.aws.amazon.com/kinesis/latest/APIReference/,
// read 2026-11; see /work/shared/reference/protocol.md section 4): at most 500
// records per request; a record is at most 1 MiB counting data (before base64)
// plus partition key; a request is at most 5 MiB counting data and partition
// keys; a partition key is 1–256 Unicode characters, counted as the service
// counts a string's length, in UTF-16 code units (see ValidPartitionKey). Since 2025-10-27 a
// stream's maximum record size can be raised to 10 MiB (MaxRecordSizeInKiB
// 1024–10240, "large records" in the Kinesis Data Streams developer guide);
// the current API model text then allows 10 MiB per record and per request.
const (
	// KinesisMaxRecordsPerRequest is the most entries one PutRecords accepts.
	KinesisMaxRecordsPerRequest = 500
	// KinesisMaxBytesPerRequest is the classic request ceiling (data + keys).
	KinesisMaxBytesPerRequest = 5 * MiB
	// KinesisMaxBytesPerRecord is the classic record ceiling (data + key),
	// still the default for new and existing streams.
	KinesisMaxBytesPerRecord = 1 * MiB
	// KinesisLargeRecordMaxBytes is the ceiling for streams whose maximum
	// record size was raised; it bounds both per-record and per-request bytes.
	KinesisLargeRecordMaxBytes = 10 * MiB
	// KinesisMaxPartitionKeyChars is the longest partition key in UTF-16
	// code units.
	KinesisMaxPartitionKeyChars = 256
	// KinesisMaxStreamNameLen is the longest stream name ([a-zA-Z0-9_.-]).
	KinesisMaxStreamNameLen = 128
)

// Telemetry API subscription buffering ranges (AWS Lambda Developer Guide,
// "Telemetry API", buffering table; protocol.md section 2).
const (
	TelemetryMinMaxItems  = 1000
	TelemetryMaxMaxItems  = 10000
	TelemetryMinMaxBytes  = 256 * KiB
	TelemetryMaxMaxBytes  = 1 * MiB
	TelemetryMinTimeoutMs = 25
	TelemetryMaxTimeoutMs = 30000
)

// Telemetry API schema versions (protocol.md section 2): Lambda Managed
// Instances require 2025-01-29; elsewhere we use 2022-12-13, which delivers
// JSON-format log records as objects.
const (
	SchemaVersionDefault = "2022-12-13"
	SchemaVersionLMI     = "2025-01-29"
)

// Figures behind MaxPostReservation. The ring and the listener must use the
// same framing: a block header per POST and a frame header per event.
const (
	// PostSlackBytes is added to 2 x maxBytes: Lambda documents that one
	// delivery can reach 2 x maxBytes plus metadata.
	PostSlackBytes = 64 * KiB
	// FrameHeaderBytes is the ring's length prefix in front of every event.
	FrameHeaderBytes = 4
	// BlockHeaderBytes is the ring's header in front of every reservation.
	BlockHeaderBytes = 8
	// EnrichPrefixMaxBytes bounds the identity object the listener prepends to
	// each event when KTE_ENRICH is on.
	EnrichPrefixMaxBytes = 512
)
