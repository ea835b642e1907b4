package listener_test

import (
	"fmt"
	"strings"
)

// sampleEvents holds one real-looking event of every type in protocol.md
// section 2, with string and object records, escapes, raw UTF-8 and
// brackets inside strings. Tests, the fuzz seed corpus and the benchmarks
// build their bodies from it.
var sampleEvents = []string{
	`{"time":"2026-01-01T00:00:00.012Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"provided:al2023.v95","runtimeVersionArn":"arn:aws:lambda:eu-west-1::runtime:0c5f2f1c8a4e3b2d1f0e9d8c7b6a5f4e3d2c1b0a","functionName":"orders-api","functionVersion":"$LATEST","instanceMaxMemory":536870912}}`,
	`{"time":"2026-01-01T00:00:00.140Z","type":"platform.initRuntimeDone","record":{"initializationType":"on-demand","phase":"init","status":"success","spans":[{"name":"extensionInit","start":"2026-01-01T00:00:00.013Z","durationMs":2.5}]}}`,
	`{"time":"2026-01-01T00:00:00.141Z","type":"platform.initReport","record":{"initializationType":"on-demand","phase":"init","status":"success","metrics":{"durationMs":128.73}}}`,
	`{"time":"2026-01-01T00:00:00.150Z","type":"platform.start","record":{"requestId":"0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90","version":"$LATEST","tracing":{"spanId":"1a2b3c4d5e6f7a8b","type":"X-Amzn-Trace-Id","value":"Root=1-6771c3a0-3b2f1e0d9c8b7a6f5e4d3c2b;Parent=1a2b3c4d5e6f7a8b;Sampled=0"}}}`,
	`{"time":"2026-01-01T00:00:00.160Z","type":"function","record":"2026-01-01T00:00:00.160Z\t0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90\tINFO\torder accepted: {\"id\":42,\"items\":[1,2,3]} ]}[{ \u00e9t\u00e9 h\u00e9llo \u2713 caf\u00e9 \ud83d\ude80\n"}`,
	`{"time":"2026-01-01T00:00:00.161Z","type":"function","record":{"timestamp":"2026-01-01T00:00:00.161Z","level":"ERROR","message":"payment \"declined\": card [****1234], retry {later}","requestId":"0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90","errorType":"CardError","stackTrace":["at pay (index.js:10:5)","at main (index.js:3:1)"]}}`,
	`{"time":"2026-01-01T00:00:00.162Z","type":"function","record":"héllo wörld ✓ 🚀 — tab\there, backslash \\ and slash \/ and unicode \u0041\u00DF\u6771 done"}`,
	`{"time":"2026-01-01T00:00:00.170Z","type":"extension","record":"kinesis-telemetry-extension: flushed 12 records"}`,
	`{"time":"2026-01-01T00:00:00.171Z","type":"extension","record":{"timestamp":"2026-01-01T00:00:00.171Z","level":"INFO","message":"ready","nested":{"a":[true,false,null,-1.5e+10,0,0.25,1E-3]}}}`,
	`{"time":"2026-01-01T00:00:00.190Z","type":"platform.runtimeDone","record":{"requestId":"0b7e4b1e-7c55-4f0e-9a2e-3f1d2c6a8e90","status":"success","metrics":{"durationMs":88.2,"producedBytes":57},"spans":[{"name":"responseLatency","start":"2026-01-01T00:00:00.151Z","durationMs":30.1},{"name":"responseDuration","start":"2026-01-01T00:00:00.181Z","durationMs":0.3}],"tracing":{"spanId":"2b3c4d5e6f7a8b9c","type":"X-Amzn-Trace-Id","value":"Root=1-6771c3a0-3b2f1e0d9c8b7a6f5e4d3c2b;Parent=1a2b3c4d5e6f7a8b;Sampled=0"}}}`,
	`{"time":"2026-01-01T00:00:03.101Z","type":"platform.report","record":{"requestId":"9d2c0c1a-5b7e-4d7a-8f3e-2a1b0c9d8e7f","status":"success","metrics":{"durationMs":41.87,"billedDurationMs":42,"memorySizeMB":512,"maxMemoryUsedMB":61,"initDurationMs":140.2}}}`,
	`{"time":"2026-01-01T00:00:03.102Z","type":"platform.report","record":{"requestId":"9d2c0c1a-5b7e-4d7a-8f3e-2a1b0c9d8e7f","status":"timeout","errorType":"Sandbox.Timedout","metrics":{"durationMs":3000.0,"billedDurationMs":3000,"memorySizeMB":512,"maxMemoryUsedMB":77}}}`,
	`{"time":"2026-01-01T00:00:04.000Z","type":"platform.restoreStart","record":{"runtimeVersion":"java:21.v20","runtimeVersionArn":"arn:aws:lambda:eu-west-1::runtime:1f2e3d4c","functionName":"orders-api","functionVersion":"7"}}`,
	`{"time":"2026-01-01T00:00:04.100Z","type":"platform.restoreRuntimeDone","record":{"status":"success"}}`,
	`{"time":"2026-01-01T00:00:04.101Z","type":"platform.restoreReport","record":{"status":"success","metrics":{"durationMs":101.5}}}`,
	`{"time":"2026-01-01T00:00:00.020Z","type":"platform.extension","record":{"name":"kinesis-telemetry-extension","state":"Ready","events":["INVOKE","SHUTDOWN"]}}`,
	`{"time":"2026-01-01T00:00:00.021Z","type":"platform.telemetrySubscription","record":{"name":"kinesis-telemetry-extension","state":"Subscribed","types":["platform","function","extension"]}}`,
	`{"time":"2026-01-01T00:00:03.191Z","type":"platform.logsDropped","record":{"droppedBytes":4096,"droppedRecords":12,"reason":"Consumer seems to have fallen behind"}}`,
}

// body joins events into a JSON array, pretty or compact.
func body(pretty bool, events ...string) []byte {
	if pretty {
		return []byte("[\n " + strings.Join(events, ",\n ") + "\n]\n")
	}
	return []byte("[" + strings.Join(events, ",") + "]")
}

// genEvents returns n events cycling through sampleEvents, each made unique
// by a sequence number in its time field.
func genEvents(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = genEvent(i)
	}
	return out
}

// genEvent returns sample event i%len(sampleEvents) with a "seq":i member.
func genEvent(i int) string {
	e := sampleEvents[i%len(sampleEvents)]
	return strings.Replace(e, `"time":"2026-01-01T`, fmt.Sprintf(`"seq":%d,"time":"2026-01-01T`, i), 1)
}

// genBody returns a compact body of events cycling through sampleEvents
// whose length is at least size bytes.
func genBody(size int) []byte {
	var events []string
	total := 2
	for i := 0; total < size; i++ {
		e := genEvent(i)
		events = append(events, e)
		total += len(e) + 1
	}
	return body(false, events...)
}
