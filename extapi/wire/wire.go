// Package wire writes the Telemetry API subscription request by hand, for
// package extapi and for the subscription package earlysub sends during
// package initialisation. It needs no JSON library: the body is on the
// cold-start path, and goccy/go-json compiles an encoder for a type on its
// first Marshal (about 0.1 ms on a 2-core AMD EPYC), a cost this fixed shape
// does not need; and earlysub runs before the JSON library is initialised.
// extapi's TestRequestBodies decodes the body against encoding/json's
// encoding of the same values.
package wire

import (
	"strconv"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// PathTelemetry is the Telemetry API's path (protocol.md section 2).
const PathTelemetry = "/2022-07-01/telemetry"

// PathNext is the Extensions API's /event/next path (protocol.md section 1),
// which earlysub calls after its subscription.
const PathNext = "/2020-01-01/extension/event/next"

// Subscription is a Telemetry API subscription. The buffering values are
// always sent; the Runtime API validates them (maxItems 1000–10000, maxBytes
// 262144–1048576, timeoutMs 25–30000).
type Subscription struct {
	SchemaVersion string   // "2022-12-13", or "2025-01-29" under Lambda Managed Instances
	Types         []string // non-empty subset of "platform", "function", "extension"
	MaxItems      int
	MaxBytes      int
	TimeoutMs     int
	URI           string // e.g. "http://sandbox.localdomain:4243/telemetry"
}

// AppendSubscribeBody appends the subscription request's body (protocol.md
// section 2): schema version, types, buffering and an HTTP destination.
func AppendSubscribeBody(dst []byte, s Subscription) []byte {
	dst = append(dst, `{"schemaVersion":`...)
	dst = jsonesc.AppendString(dst, s.SchemaVersion)
	dst = append(dst, `,"types":[`...)
	for i, t := range s.Types {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonesc.AppendString(dst, t)
	}
	dst = append(dst, `],"buffering":{"maxItems":`...)
	dst = strconv.AppendInt(dst, int64(s.MaxItems), 10)
	dst = append(dst, `,"maxBytes":`...)
	dst = strconv.AppendInt(dst, int64(s.MaxBytes), 10)
	dst = append(dst, `,"timeoutMs":`...)
	dst = strconv.AppendInt(dst, int64(s.TimeoutMs), 10)
	dst = append(dst, `},"destination":{"protocol":"HTTP","URI":`...)
	dst = jsonesc.AppendString(dst, s.URI)
	return append(dst, "}}"...)
}
