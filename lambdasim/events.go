package lambdasim

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"
)

// Telemetry event types produced by the simulator [DG-SCH].
const (
	TypeInitStart             = "platform.initStart"
	TypeInitRuntimeDone       = "platform.initRuntimeDone"
	TypeInitReport            = "platform.initReport"
	TypeStart                 = "platform.start"
	TypeRuntimeDone           = "platform.runtimeDone"
	TypeReport                = "platform.report"
	TypeExtension             = "platform.extension"
	TypeTelemetrySubscription = "platform.telemetrySubscription"
	TypeLogsDropped           = "platform.logsDropped"
	TypeFunction              = "function"
	TypeExtensionLog          = "extension"
)

// TimeLayout is the format of every "time" field: ISO-8601 UTC with
// milliseconds, as Lambda writes it.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// LogsDroppedReason is the reason Lambda gives in platform.logsDropped [DG-SCH example].
const LogsDroppedReason = "Consumer seems to have fallen behind as it has not acknowledged receipt of logs."

// Event is one generated telemetry event.
type Event struct {
	// ID is the event's index in Generated: unique within a Sim.
	ID int
	// Type is the envelope's "type" (TypeStart, TypeFunction, ...).
	Type string
	// Time is the generation time, the envelope's "time" before rounding.
	Time time.Time
	// At is Time as a monotonic offset from Sim.Epoch.
	At time.Duration
	// RequestID is the invocation the event belongs to ("" for init events
	// and extension logs).
	RequestID string
	// Source names the extension for extension logs, and the subscriber a
	// platform.logsDropped event is meant for.
	Source string
	// Generation is the environment the event belongs to (1 for the first
	// Init, incremented by each re-initialisation after a reset).
	Generation int
	// Bytes is the exact array element POSTed to subscribers. Nil when
	// Config.NoRetain is set. Must not be modified.
	Bytes []byte
}

// category returns the subscription type ("platform", "function",
// "extension") an event type belongs to.
func category(typ string) string {
	switch typ {
	case TypeFunction:
		return "function"
	case TypeExtensionLog:
		return "extension"
	}
	return "platform"
}

// appendEnvelope appends {"time":...,"type":...,"record":<record>} to dst.
// record must be a valid JSON value.
func appendEnvelope(dst []byte, t time.Time, typ string, record []byte) []byte {
	dst = append(dst, `{"time":"`...)
	dst = t.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, `","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","record":`...)
	dst = append(dst, record...)
	return append(dst, '}')
}

// appendMs appends a duration in milliseconds with up to three decimals.
func appendMs(dst []byte, d time.Duration) []byte {
	return strconv.AppendFloat(dst, float64(d.Microseconds())/1000, 'f', -1, 64)
}

// LogFormat is the function's log format (the function's LoggingConfig).
type LogFormat uint8

const (
	// LogText: the record is the log line as a JSON string,
	// "<time>\t<requestId>\t<LEVEL>\t<message>\n".
	LogText LogFormat = iota
	// LogJSON: the record is the runtime's JSON object
	// {"timestamp","level","requestId","message"}.
	LogJSON
)

func (f LogFormat) String() string {
	if f == LogJSON {
		return "JSON"
	}
	return "Text"
}

// logLevels is the level mix of generated function log lines.
var logLevels = [...]string{"INFO", "INFO", "DEBUG", "INFO", "WARN", "INFO", "ERROR", "INFO"}

// filler pads log messages to the requested size; plain ASCII so padding
// never needs escaping.
const filler = "order accepted for customer with items in cart and payment pending review by the fraud service "

// appendFunctionLine appends one function log event whose element is exactly
// size bytes long, or as short as possible when size is smaller than the
// fixed part. seq is unique within the Sim; invoke and line locate it.
func appendFunctionLine(dst []byte, t time.Time, reqID string, seq int64, invoke, line int, format LogFormat, size int) []byte {
	level := logLevels[seq%int64(len(logLevels))]
	var msg [64]byte
	m := append(msg[:0], "seq="...)
	m = strconv.AppendInt(m, seq, 10)
	m = append(m, " invoke="...)
	m = strconv.AppendInt(m, int64(invoke), 10)
	m = append(m, " line="...)
	m = strconv.AppendInt(m, int64(line), 10)

	start := len(dst)
	dst = append(dst, `{"time":"`...)
	dst = t.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, `","type":"function","record":`...)
	var tail string
	if format == LogJSON {
		dst = append(dst, `{"timestamp":"`...)
		dst = t.UTC().AppendFormat(dst, TimeLayout)
		dst = append(dst, `","level":"`...)
		dst = append(dst, level...)
		dst = append(dst, `","requestId":"`...)
		dst = append(dst, reqID...)
		dst = append(dst, `","message":"`...)
		dst = append(dst, m...)
		tail = `"}}`
	} else {
		dst = append(dst, '"')
		dst = t.UTC().AppendFormat(dst, TimeLayout)
		dst = append(dst, `\t`...)
		dst = append(dst, reqID...)
		dst = append(dst, `\t`...)
		dst = append(dst, level...)
		dst = append(dst, `\t`...)
		dst = append(dst, m...)
		tail = `\n"}`
	}
	if pad := size - (len(dst) - start) - len(tail); pad > 0 {
		dst = append(dst, ' ')
		for pad--; pad > 0; {
			n := min(pad, len(filler))
			dst = append(dst, filler[:n]...)
			pad -= n
		}
	}
	return append(dst, tail...)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (Go ≥1.24 it cannot fail)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// randomHex returns n random bytes as 2n hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// traceHeader returns an X-Ray trace header value, as Lambda puts in INVOKE
// and platform events: Root=1-<epoch s hex>-<96-bit hex>;Parent=<64-bit>;Sampled=0.
func traceHeader(t time.Time) string {
	return "Root=1-" + strconv.FormatInt(t.Unix(), 16) + "-" + randomHex(12) + ";Parent=" + randomHex(8) + ";Sampled=0"
}
