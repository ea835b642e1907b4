package lambdasim

import (
	"encoding/json"
	"math"
	"time"
)

// Platform event records, shaped as the Telemetry API schema reference
// [DG-SCH][TEL-REF] and rapid's interop types. Field order is fixed by the
// structs, so rendering is deterministic.

// ms is a duration in milliseconds, rendered with at most three decimals.
type ms float64

func msOf(d time.Duration) ms { return ms(float64(d.Microseconds()) / 1000) }

// MarshalJSON rounds to the microsecond: m*1e6 would truncate, and 1.001
// (1000.9999999999999 µs as a float64) would render as 1.
func (m ms) MarshalJSON() ([]byte, error) {
	return appendMs(nil, time.Duration(math.Round(float64(m)*1e3))*time.Microsecond), nil
}

// stamp is a time rendered in TimeLayout.
type stamp time.Time

func (t stamp) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 26), '"')
	b = time.Time(t).UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

type traceContext struct {
	SpanID string `json:"spanId,omitempty"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

type span struct {
	Name       string `json:"name"`
	Start      stamp  `json:"start"`
	DurationMs ms     `json:"durationMs"`
}

type initStartRecord struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	RuntimeVersion     string `json:"runtimeVersion"`
	RuntimeVersionArn  string `json:"runtimeVersionArn"`
	FunctionName       string `json:"functionName"`
	FunctionVersion    string `json:"functionVersion"`
}

type initRuntimeDoneRecord struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	Status             string `json:"status"`
	ErrorType          string `json:"errorType,omitempty"`
}

type initReportMetrics struct {
	DurationMs ms `json:"durationMs"`
}

type initReportRecord struct {
	InitializationType string            `json:"initializationType"`
	Phase              string            `json:"phase"`
	Status             string            `json:"status"`
	ErrorType          string            `json:"errorType,omitempty"`
	Metrics            initReportMetrics `json:"metrics"`
}

type startRecord struct {
	RequestID string       `json:"requestId"`
	Version   string       `json:"version"`
	Tracing   traceContext `json:"tracing"`
}

type runtimeDoneMetrics struct {
	DurationMs    ms  `json:"durationMs"`
	ProducedBytes int `json:"producedBytes,omitempty"`
}

type runtimeDoneRecord struct {
	RequestID string             `json:"requestId"`
	Status    string             `json:"status"`
	ErrorType string             `json:"errorType,omitempty"`
	Metrics   runtimeDoneMetrics `json:"metrics"`
	Spans     []span             `json:"spans,omitempty"`
	Tracing   traceContext       `json:"tracing"`
}

type reportMetrics struct {
	DurationMs       ms  `json:"durationMs"`
	BilledDurationMs int `json:"billedDurationMs"`
	MemorySizeMB     int `json:"memorySizeMB"`
	MaxMemoryUsedMB  int `json:"maxMemoryUsedMB"`
	InitDurationMs   ms  `json:"initDurationMs,omitempty"`
}

type reportRecord struct {
	RequestID string        `json:"requestId"`
	Status    string        `json:"status"`
	ErrorType string        `json:"errorType,omitempty"`
	Metrics   reportMetrics `json:"metrics"`
	Tracing   traceContext  `json:"tracing"`
}

type extensionRecord struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Events    []string `json:"events"`
	ErrorType string   `json:"errorType,omitempty"`
}

type subscriptionRecord struct {
	Name  string   `json:"name"`
	State string   `json:"state"`
	Types []string `json:"types"`
}

type logsDroppedRecord struct {
	DroppedBytes   int    `json:"droppedBytes"`
	DroppedRecords int    `json:"droppedRecords"`
	Reason         string `json:"reason"`
}

// mustRecord renders a record struct. The structs above hold only strings,
// numbers and slices of them, so encoding cannot fail.
func mustRecord(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: cannot render platform record: " + err.Error())
	}
	return b
}
