// Package ingest holds the end-to-end benchmarks of the telemetry path, KTE
// against the plain implementation of package baseline in the same run, and
// the Telemetry API bodies they post.
//
// The benchmarks live in ingest_timing_test.go; run them with
//
//	go test -run='^$' -bench=. -benchmem ./bench/ingest/
//
// and compare the implementations with `go tool benchstat -col /impl`.
package ingest

import (
	"fmt"
	"strconv"
	"time"
)

// Body is one Telemetry API delivery: the POST body Lambda sends.
type Body struct {
	// Name is the sub-benchmark name: events_1, events_100, events_1000,
	// 256KiB, 1MiB.
	Name string
	// Data is the body: a JSON array of events, as the Telemetry API
	// (schema 2022-12-13) writes them.
	Data []byte
	// Events is the number of elements of the array.
	Events int
}

// Bodies returns the bodies the benchmarks post, smallest first:
//
//   - events_1, events_100, events_1000: the mix of a busy function's
//     deliveries, one platform.start, seven text log lines of 100 to 300 bytes
//     of message, one platform.runtimeDone and one platform.report per ten
//     events (about 370 bytes an event on average);
//   - 256KiB and 1MiB: full deliveries of JSON-format log lines of about
//     1 KiB each (1 MiB is the largest maxBytes a subscription may ask for).
//
// The bodies are generated deterministically, the same in every run.
func Bodies() []Body {
	return []Body{
		mixed(1), mixed(100), mixed(1000),
		filled("256KiB", 256<<10), filled("1MiB", 1<<20),
	}
}

// epoch is the fixed "time" of the generated events.
var epoch = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

const timeLayout = "2006-01-02T15:04:05.000Z"

// filler pads log messages; it holds an escaped quote, a tab and a
// non-ASCII character, as real log lines often do.
const filler = `order 7731 accepted for customer \"acme\" with 3 items\tpayment pending review by fraud-check (€ 129.90) `

// mixed returns a body of n events in the busy-function mix.
func mixed(n int) Body {
	b := []byte{'['}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMixedEvent(b, i)
	}
	b = append(b, ']')
	return Body{Name: fmt.Sprintf("events_%d", n), Data: b, Events: n}
}

// filled returns a body of about 1 KiB JSON log lines, as many as fit size bytes.
func filled(name string, size int) Body {
	b := []byte{'['}
	n := 0
	var ev []byte
	for {
		ev = appendJSONLine(ev[:0], n, 1024)
		if len(b)+1+len(ev)+1 > size {
			break
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, ev...)
		n++
	}
	b = append(b, ']')
	return Body{Name: name, Data: b, Events: n}
}

// appendMixedEvent appends event i of the mix: a function's invocation
// every ten events.
func appendMixedEvent(b []byte, i int) []byte {
	t := epoch.Add(time.Duration(i) * time.Millisecond)
	req := requestID(i / 10)
	switch i % 10 {
	case 7:
		return appendEnvelope(b, t, "platform.runtimeDone", func(b []byte) []byte {
			b = append(b, `{"requestId":"`...)
			b = append(b, req...)
			b = append(b, `","status":"success","tracing":{"spanId":"4f2c9f1b7d3a6e08","type":"X-Amzn-Trace-Id","value":"Root=1-6746c4a0-5a2d8c1e9b7f3a4d6c8e0f12;Parent=4f2c9f1b7d3a6e08;Sampled=0"},`...)
			b = append(b, `"spans":[{"name":"responseLatency","start":"`...)
			b = t.AppendFormat(b, timeLayout)
			b = append(b, `","durationMs":12.345},{"name":"responseDuration","start":"`...)
			b = t.AppendFormat(b, timeLayout)
			b = append(b, `","durationMs":0.067}],"metrics":{"durationMs":48.913,"producedBytes":64}}`...)
			return b
		})
	case 8:
		return appendEnvelope(b, t, "platform.report", func(b []byte) []byte {
			b = append(b, `{"requestId":"`...)
			b = append(b, req...)
			b = append(b, `","status":"success","metrics":{"durationMs":48.913,"billedDurationMs":49,"memorySizeMB":128,"maxMemoryUsedMB":71},`...)
			b = append(b, `"tracing":{"spanId":"4f2c9f1b7d3a6e08","type":"X-Amzn-Trace-Id","value":"Root=1-6746c4a0-5a2d8c1e9b7f3a4d6c8e0f12;Parent=4f2c9f1b7d3a6e08;Sampled=0"},`...)
			b = append(b, `"spans":[{"name":"extensionOverhead","start":"`...)
			b = t.AppendFormat(b, timeLayout)
			b = append(b, `","durationMs":0.412}]}`...)
			return b
		})
	case 9:
		return appendEnvelope(b, t, "platform.start", func(b []byte) []byte {
			b = append(b, `{"requestId":"`...)
			b = append(b, requestID(i/10+1)...)
			b = append(b, `","version":"$LATEST","tracing":{"spanId":"7d3a6e084f2c9f1b","type":"X-Amzn-Trace-Id","value":"Root=1-6746c4a1-0f125a2d8c1e9b7f3a4d6c8e;Parent=7d3a6e084f2c9f1b;Sampled=0"}}`...)
			return b
		})
	}
	// A text-format function log line: the record is the line as a string.
	return appendEnvelope(b, t, "function", func(b []byte) []byte {
		b = append(b, '"')
		b = t.AppendFormat(b, timeLayout)
		b = append(b, `\t`...)
		b = append(b, req...)
		b = append(b, `\tINFO\tseq=`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ' ')
		b = appendFiller(b, 100+(i*73)%200)
		return append(b, `\n"`...)
	})
}

// appendJSONLine appends a JSON-format function log event of about size bytes.
func appendJSONLine(b []byte, i, size int) []byte {
	start := len(b)
	t := epoch.Add(time.Duration(i) * time.Millisecond)
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, timeLayout)
	b = append(b, `","type":"function","record":{"timestamp":"`...)
	b = t.AppendFormat(b, timeLayout)
	b = append(b, `","level":"INFO","requestId":"`...)
	b = append(b, requestID(i/100)...)
	b = append(b, `","message":"seq=`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ' ')
	const tail = `"}}`
	b = appendFiller(b, size-(len(b)-start)-len(tail))
	return append(b, tail...)
}

func appendEnvelope(b []byte, t time.Time, typ string, record func([]byte) []byte) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, timeLayout)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","record":`...)
	b = record(b)
	return append(b, '}')
}

// appendFiller appends about n bytes of filler, never cutting an escape
// sequence or a multi-byte character.
func appendFiller(b []byte, n int) []byte {
	for n > 0 {
		for i := 0; i < len(filler) && n > 0; {
			c := filler[i]
			k := 1
			switch {
			case c == '\\':
				k = 2
			case c >= 0xC0:
				k = 3 // '€' is the only non-ASCII character of filler
			}
			b = append(b, filler[i:i+k]...)
			i += k
			n -= k
		}
	}
	return b
}

// requestID returns a UUID-shaped request id for invocation n.
func requestID(n int) string {
	return fmt.Sprintf("8f2d6a3c-%04x-4b1e-9c7a-%012x", n&0xffff, n)
}
