package config

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// baseEnv is the smallest valid environment.
func baseEnv() map[string]string {
	return map[string]string{
		"KTE_STREAM":             "telemetry",
		"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
	}
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// loadWith loads baseEnv with kv (name, value pairs) applied on top.
func loadWith(kv ...string) (Config, error) {
	env := baseEnv()
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return Load(mapLookup(env))
}

// checkLoad loads kv over the base environment and fails unless that gives
// no error (wantErr empty) or exactly one error starting with wantErr.
func checkLoad(t *testing.T, kv []string, wantErr string) Config {
	t.Helper()
	c, err := loadWith(kv...)
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("unexpected error for %.80q: %v", kv, err)
	case wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), wantErr) || strings.Contains(err.Error(), "\n")):
		t.Fatalf("unexpected error for %.80q; got %v; want one error starting %q", kv, err, wantErr)
	}
	return c
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(mapLookup(baseEnv()))
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	want := Config{
		StreamName:        "telemetry",
		RingBytes:         8 << 20,
		ListenPort:        4243,
		Enrich:            true,
		Types:             []string{"platform", "function", "extension"},
		BufferMaxItems:    1000,
		BufferMaxBytes:    1 << 20,
		BufferTimeoutMs:   100,
		BatchMaxRecords:   500,
		BatchMaxBytes:     5 << 20,
		RecordMaxBytes:    1 << 20,
		PartitionKey:      PartitionKey{Mode: PartitionKeyEnvironment},
		Flush:             Flush{Mode: FlushInvoke},
		FlushEndMaxWait:   2 * time.Second,
		FlushMax:          2 * time.Second,
		SendTimeout:       2 * time.Second,
		ShutdownMargin:    200 * time.Millisecond,
		Metrics:           true,
		MetricsNamespace:  "KTE",
		MetricsDimensions: []string{"function"},
		LogLevel:          LevelInfo,
		Lambda:            Lambda{RuntimeAPI: "127.0.0.1:9001", SchemaVersion: "2022-12-13"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("unexpected defaults;\ngot  %+v\nwant %+v", c, want)
	}
}

// TestLoadValid checks that each valid value is accepted and parsed.
func TestLoadValid(t *testing.T) {
	f := func(name, value string, field func(Config) any, want any) {
		t.Helper()
		c, err := loadWith(name, value)
		if err != nil {
			t.Fatalf("unexpected error for %s=%q: %v", name, value, err)
		}
		if got := field(c); !reflect.DeepEqual(got, want) {
			t.Fatalf("unexpected value for %s=%q; got %#v; want %#v", name, value, got, want)
		}
	}
	streamName := func(c Config) any { return c.StreamName }
	streamARN := func(c Config) any { return c.StreamARN }
	f("KTE_STREAM", "a", streamName, "a")
	f("KTE_STREAM", "My_stream.v2-x", streamName, "My_stream.v2-x")
	f("KTE_STREAM", strings.Repeat("s", 128), streamName, strings.Repeat("s", 128))
	f("KTE_STREAM", "arn:aws:kinesis:eu-west-1:111122223333:stream/orders", streamName, "orders")
	f("KTE_STREAM", "arn:aws:kinesis:eu-west-1:111122223333:stream/orders", streamARN, "arn:aws:kinesis:eu-west-1:111122223333:stream/orders")
	f("KTE_STREAM", "arn:aws-us-gov:kinesis:us-gov-west-1:111122223333:stream/s", streamName, "s")
	f("KTE_STREAM", "arn:aws-cn:kinesis:cn-north-1:111122223333:stream/s", streamName, "s")
	f("KTE_STREAM", "telemetry", streamARN, "")

	port := func(c Config) any { return c.ListenPort }
	f("KTE_LISTEN_PORT", "1", port, 1)
	f("KTE_LISTEN_PORT", "9000", port, 9000)
	f("KTE_LISTEN_PORT", "9002", port, 9002)
	f("KTE_LISTEN_PORT", "65535", port, 65535)

	enrich := func(c Config) any { return c.Enrich }
	for _, v := range []string{"true", "TRUE", "True", "1", "on", "ON"} {
		f("KTE_ENRICH", v, enrich, true)
	}
	for _, v := range []string{"false", "FALSE", "0", "off", "Off"} {
		f("KTE_ENRICH", v, enrich, false)
	}

	types := func(c Config) any { return c.Types }
	f("KTE_TYPES", "platform", types, []string{"platform"})
	f("KTE_TYPES", "function,platform", types, []string{"function", "platform"})
	f("KTE_TYPES", " extension , Function ", types, []string{"extension", "function"})
	f("KTE_TYPES", "platform,function,extension", types, []string{"platform", "function", "extension"})

	items := func(c Config) any { return c.BufferMaxItems }
	f("KTE_BUFFER_MAX_ITEMS", "1000", items, 1000)
	f("KTE_BUFFER_MAX_ITEMS", "10000", items, 10000)
	bufBytes := func(c Config) any { return c.BufferMaxBytes }
	f("KTE_BUFFER_MAX_BYTES", "256KiB", bufBytes, 256<<10)
	f("KTE_BUFFER_MAX_BYTES", "262144", bufBytes, 256<<10)
	f("KTE_BUFFER_MAX_BYTES", "1MiB", bufBytes, 1<<20)
	f("KTE_BUFFER_MAX_BYTES", "1048576", bufBytes, 1<<20)
	timeout := func(c Config) any { return c.BufferTimeoutMs }
	f("KTE_BUFFER_TIMEOUT_MS", "25", timeout, 25)
	f("KTE_BUFFER_TIMEOUT_MS", "30000", timeout, 30000)

	records := func(c Config) any { return c.BatchMaxRecords }
	f("KTE_BATCH_MAX_RECORDS", "1", records, 1)
	f("KTE_BATCH_MAX_RECORDS", "500", records, 500)
	batchBytes := func(c Config) any { return c.BatchMaxBytes }
	f("KTE_BATCH_MAX_BYTES", "1MiB", batchBytes, 1<<20)
	f("KTE_BATCH_MAX_BYTES", "10MiB", batchBytes, 10<<20)
	recBytes := func(c Config) any { return c.RecordMaxBytes }
	f("KTE_RECORD_MAX_BYTES", "8KiB", recBytes, 8<<10)
	f("KTE_RECORD_MAX_BYTES", "5MiB", recBytes, 5<<20)

	pk := func(c Config) any { return c.PartitionKey }
	f("KTE_PARTITION_KEY", "environment", pk, PartitionKey{Mode: PartitionKeyEnvironment})
	f("KTE_PARTITION_KEY", "random", pk, PartitionKey{Mode: PartitionKeyRandom})
	if c, err := loadWith("KTE_PARTITION_KEY", "function", "AWS_LAMBDA_FUNCTION_NAME", "orders-api"); err != nil || c.PartitionKey != (PartitionKey{Mode: PartitionKeyFunction}) {
		t.Fatalf("unexpected result for KTE_PARTITION_KEY=function: %v, %v", c.PartitionKey, err)
	}
	f("KTE_PARTITION_KEY", "orders", pk, PartitionKey{Mode: PartitionKeyFixed, Fixed: "orders"})
	f("KTE_PARTITION_KEY", "x", pk, PartitionKey{Mode: PartitionKeyFixed, Fixed: "x"})
	f("KTE_PARTITION_KEY", "tenant 7", pk, PartitionKey{Mode: PartitionKeyFixed, Fixed: "tenant 7"})
	f("KTE_PARTITION_KEY", strings.Repeat("é", 256), pk, PartitionKey{Mode: PartitionKeyFixed, Fixed: strings.Repeat("é", 256)})
	f("KTE_PARTITION_KEY", strings.Repeat("😀", 128), pk, PartitionKey{Mode: PartitionKeyFixed, Fixed: strings.Repeat("😀", 128)})
	f("KTE_PARTITION_KEY", strings.Repeat("😀", 127)+"kk", pk, PartitionKey{Mode: PartitionKeyFixed, Fixed: strings.Repeat("😀", 127) + "kk"})

	flush := func(c Config) any { return c.Flush }
	f("KTE_FLUSH", "invoke", flush, Flush{Mode: FlushInvoke})
	f("KTE_FLUSH", "end", flush, Flush{Mode: FlushEnd})
	f("KTE_FLUSH", "auto", flush, Flush{Mode: FlushAuto})
	f("KTE_FLUSH", "periodic:1s", flush, Flush{Mode: FlushPeriodic, Period: time.Second})
	f("KTE_FLUSH", "periodic:1m30s", flush, Flush{Mode: FlushPeriodic, Period: 90 * time.Second})
	f("KTE_FLUSH", "periodic:1h", flush, Flush{Mode: FlushPeriodic, Period: time.Hour})

	endWait := func(c Config) any { return c.FlushEndMaxWait }
	f("KTE_FLUSH_END_MAX_WAIT_MS", "0", endWait, time.Duration(0))
	f("KTE_FLUSH_END_MAX_WAIT_MS", "60000", endWait, time.Minute)
	flushMax := func(c Config) any { return c.FlushMax }
	f("KTE_FLUSH_MAX_MS", "50", flushMax, 50*time.Millisecond)
	f("KTE_FLUSH_MAX_MS", "900000", flushMax, 15*time.Minute)
	send := func(c Config) any { return c.SendTimeout }
	f("KTE_SEND_TIMEOUT_MS", "100", send, 100*time.Millisecond)
	f("KTE_SEND_TIMEOUT_MS", "60000", send, time.Minute)
	margin := func(c Config) any { return c.ShutdownMargin }
	f("KTE_SHUTDOWN_MARGIN_MS", "0", margin, time.Duration(0))
	f("KTE_SHUTDOWN_MARGIN_MS", "1000", margin, time.Second)

	metrics := func(c Config) any { return c.Metrics }
	f("KTE_METRICS", "off", metrics, false)
	f("KTE_METRICS", "on", metrics, true)
	ns := func(c Config) any { return c.MetricsNamespace }
	f("KTE_METRICS_NAMESPACE", "A", ns, "A")
	f("KTE_METRICS_NAMESPACE", "My App/telemetry#1:x_y-z.w", ns, "My App/telemetry#1:x_y-z.w")
	f("KTE_METRICS_NAMESPACE", strings.Repeat("n", 255), ns, strings.Repeat("n", 255))
	dims := func(c Config) any { return c.MetricsDimensions }
	f("KTE_METRICS_DIMENSIONS", "function", dims, []string{"function"})
	f("KTE_METRICS_DIMENSIONS", "stream,version,function", dims, []string{"stream", "version", "function"})
	f("KTE_METRICS_DIMENSIONS", "none", dims, []string{})

	level := func(c Config) any { return c.LogLevel }
	f("KTE_LOG_LEVEL", "error", level, LevelError)
	f("KTE_LOG_LEVEL", "warn", level, LevelWarn)
	f("KTE_LOG_LEVEL", "INFO", level, LevelInfo)
	f("KTE_LOG_LEVEL", "debug", level, LevelDebug)

	ring := func(c Config) any { return c.RingBytes }
	f("KTE_RING_BYTES", "8MiB", ring, 8<<20)
	f("KTE_RING_BYTES", "8388608", ring, 8<<20)
	f("KTE_RING_BYTES", "1GiB", ring, 1<<30)
}

// TestLevelIsSlogLevel checks that each Level converts to the slog level
// of the same name, as main and earlysub convert them.
func TestLevelIsSlogLevel(t *testing.T) {
	f := func(l Level, want slog.Level) {
		t.Helper()
		if got := slog.Level(l); got != want {
			t.Fatalf("unexpected slog level of %d; got %v; want %v", l, got, want)
		}
	}
	f(LevelDebug, slog.LevelDebug)
	f(LevelInfo, slog.LevelInfo)
	f(LevelWarn, slog.LevelWarn)
	f(LevelError, slog.LevelError)
}

// TestLoadInvalid checks that each invalid value is reported with the
// variable's name, raw value and accepted range, and nothing else.
func TestLoadInvalid(t *testing.T) {
	f := func(name, value, wantRange string) {
		t.Helper()
		_, err := loadWith(name, value)
		if err == nil {
			t.Fatalf("unexpected success for %s=%q", name, value)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("unexpected error type for %s=%q; got %v; want ErrInvalid", name, value, err)
		}
		msg := err.Error()
		prefix := name + "=" + strconv.Quote(value) + ": must be "
		if !strings.HasPrefix(msg, prefix) {
			t.Fatalf("unexpected message for %s=%q; got %q; want prefix %q", name, value, msg, prefix)
		}
		if !strings.Contains(msg, wantRange) {
			t.Fatalf("unexpected message for %s=%q; got %q; want it to contain %q", name, value, msg, wantRange)
		}
		if strings.Contains(msg, "\n") {
			t.Fatalf("unexpected extra errors for %s=%q: %q", name, value, msg)
		}
	}
	const streamRange = "stream name (1–128 characters"
	f("KTE_STREAM", "", streamRange)
	f("KTE_STREAM", "has space", streamRange)
	f("KTE_STREAM", "slash/name", streamRange)
	f("KTE_STREAM", strings.Repeat("s", 129), streamRange)
	f("KTE_STREAM", "arn:aws:kinesis:eu-west-1:11112222333:stream/orders", streamRange)
	f("KTE_STREAM", "arn:aws:kinesis:eu-west-1:111122223333:orders", streamRange)
	f("KTE_STREAM", "arn:aws:sqs:eu-west-1:111122223333:stream/orders", streamRange)
	f("KTE_STREAM", "arn:aws:kinesis:EU-west-1:111122223333:stream/orders", streamRange)
	f("KTE_STREAM", "arn:aws:kinesis:eu-west:111122223333:stream/orders", streamRange)
	f("KTE_STREAM", "arn:azure:kinesis:eu-west-1:111122223333:stream/orders", streamRange)
	f("KTE_STREAM", "arn:aws:kinesis:eu-west-1:111122223333:stream/", streamRange)
	f("KTE_STREAM", "arn:aws:kinesis:eu-west-1:111122223333:stream/a:b", streamRange)
	f("KTE_STREAM", "arn:aws:kinesis:"+strings.Repeat("a", 63)+"-1:111122223333:stream/s", streamRange)

	const portRange = "between 1 and 65535 other than 9001"
	f("KTE_LISTEN_PORT", "", portRange)
	f("KTE_LISTEN_PORT", "0", portRange)
	f("KTE_LISTEN_PORT", "9001", portRange)
	f("KTE_LISTEN_PORT", "65536", portRange)
	f("KTE_LISTEN_PORT", "-1", portRange)
	f("KTE_LISTEN_PORT", "80a", portRange)

	const boolRange = "one of true, false, 1, 0, on, off"
	f("KTE_ENRICH", "", boolRange)
	f("KTE_ENRICH", "yes", boolRange)
	f("KTE_ENRICH", "2", boolRange)
	f("KTE_METRICS", "enabled", boolRange)

	const typesRange = "a comma list of platform, function, extension without duplicates"
	f("KTE_TYPES", "", typesRange)
	f("KTE_TYPES", "platform,", typesRange)
	f("KTE_TYPES", "platform,platform", typesRange)
	f("KTE_TYPES", "logs", typesRange)
	f("KTE_TYPES", "none", typesRange)

	f("KTE_BUFFER_MAX_ITEMS", "999", "an integer between 1000 and 10000")
	f("KTE_BUFFER_MAX_ITEMS", "10001", "an integer between 1000 and 10000")
	f("KTE_BUFFER_MAX_ITEMS", "1e3", "an integer between 1000 and 10000")
	f("KTE_BUFFER_MAX_BYTES", "262143", "a size between 256KiB and 1MiB")
	f("KTE_BUFFER_MAX_BYTES", "2MiB", "a size between 256KiB and 1MiB")
	f("KTE_BUFFER_MAX_BYTES", "1MB", `decimal units are ambiguous`)
	f("KTE_BUFFER_MAX_BYTES", "lots", `whole number with unit B, KiB, MiB or GiB`)
	f("KTE_BUFFER_TIMEOUT_MS", "24", "an integer between 25 and 30000")
	f("KTE_BUFFER_TIMEOUT_MS", "30001", "an integer between 25 and 30000")
	f("KTE_BUFFER_TIMEOUT_MS", "100ms", "an integer between 25 and 30000")

	f("KTE_BATCH_MAX_RECORDS", "0", "an integer between 1 and 500")
	f("KTE_BATCH_MAX_RECORDS", "501", "an integer between 1 and 500")
	f("KTE_BATCH_MAX_BYTES", "8191", "a size between 8KiB and 10MiB")
	f("KTE_BATCH_MAX_BYTES", "11MiB", "a size between 8KiB and 10MiB")
	f("KTE_BATCH_MAX_BYTES", "512KiB", "≥ KTE_RECORD_MAX_BYTES=1MiB (its default") // record default 1MiB now too big
	f("KTE_RECORD_MAX_BYTES", "4KiB", "a size between 8KiB and 10MiB")
	f("KTE_RECORD_MAX_BYTES", "10241KiB", "a size between 8KiB and 10MiB")
	f("KTE_RECORD_MAX_BYTES", "6MiB", "≤ KTE_BATCH_MAX_BYTES=5MiB")

	const pkRange = "environment, random, function, or a fixed key of 1–256 UTF-16 code units"
	const pkUnits = pkRange + " of valid UTF-8 (Kinesis counts a key's length in UTF-16 code units"
	f("KTE_PARTITION_KEY", "", pkUnits)
	f("KTE_PARTITION_KEY", strings.Repeat("k", 257), pkUnits)
	f("KTE_PARTITION_KEY", strings.Repeat("é", 257), pkUnits)
	f("KTE_PARTITION_KEY", "\xff", pkUnits)
	// Above U+FFFF a character is two UTF-16 code units: kinesalite (like
	// Kinesis) refuses 129 emoji, and 200 would be refused in every request.
	f("KTE_PARTITION_KEY", strings.Repeat("😀", 129), pkUnits)
	f("KTE_PARTITION_KEY", strings.Repeat("😀", 200), pkUnits)
	f("KTE_PARTITION_KEY", strings.Repeat("😀", 128)+"k", pkUnits)
	f("KTE_PARTITION_KEY", "Random", `did you mean "random"?`)
	f("KTE_PARTITION_KEY", "ENVIRONMENT", `did you mean "environment"?`)
	f("KTE_PARTITION_KEY", "random ", `without white space at either end (did you mean "random"?)`)
	f("KTE_PARTITION_KEY", " function", `did you mean "function"?`)
	f("KTE_PARTITION_KEY", "\tEnvironment\n", `did you mean "environment"?`)
	f("KTE_PARTITION_KEY", "tenant-7 ", pkRange+" without white space at either end")
	f("KTE_PARTITION_KEY", " ", pkRange+" without white space at either end")

	const flushRange = "one of invoke, end, auto, or periodic:<duration between 1s and 1h>"
	f("KTE_FLUSH", "", flushRange)
	f("KTE_FLUSH", "Invoke", flushRange)
	f("KTE_FLUSH", "periodic", flushRange)
	f("KTE_FLUSH", "periodic:", flushRange)
	f("KTE_FLUSH", "periodic:999ms", flushRange)
	f("KTE_FLUSH", "periodic:61m", flushRange)
	f("KTE_FLUSH", "periodic:10", flushRange)
	f("KTE_FLUSH", "periodic:-1s", flushRange)

	f("KTE_FLUSH_END_MAX_WAIT_MS", "60001", "an integer between 0 and 60000")
	f("KTE_FLUSH_END_MAX_WAIT_MS", "-1", "an integer between 0 and 60000")
	f("KTE_FLUSH_MAX_MS", "49", "an integer between 50 and 900000")
	f("KTE_SEND_TIMEOUT_MS", "99", "an integer between 100 and 60000")
	f("KTE_SEND_TIMEOUT_MS", "60001", "an integer between 100 and 60000")
	f("KTE_SEND_TIMEOUT_MS", "2s", "an integer between 100 and 60000")
	f("KTE_SHUTDOWN_MARGIN_MS", "1001", "an integer between 0 and 1000")
	f("KTE_SHUTDOWN_MARGIN_MS", "", "an integer between 0 and 1000")

	const nsRange = `1–255 characters of A-Z a-z 0-9 . - _ / # : and space, not starting with ":" or "AWS/"`
	f("KTE_METRICS_NAMESPACE", "", nsRange)
	f("KTE_METRICS_NAMESPACE", " ", nsRange)
	f("KTE_METRICS_NAMESPACE", ":kte", nsRange)
	f("KTE_METRICS_NAMESPACE", "AWS/Lambda", nsRange)
	f("KTE_METRICS_NAMESPACE", "kte!", nsRange)
	f("KTE_METRICS_NAMESPACE", "naïve", nsRange)
	f("KTE_METRICS_NAMESPACE", strings.Repeat("n", 256), nsRange)

	const dimRange = `a comma list of function, version, stream without duplicates, or "none"`
	f("KTE_METRICS_DIMENSIONS", "", dimRange)
	f("KTE_METRICS_DIMENSIONS", "region", dimRange)
	f("KTE_METRICS_DIMENSIONS", "function,function", dimRange)
	f("KTE_METRICS_DIMENSIONS", "none,function", dimRange)

	f("KTE_LOG_LEVEL", "", "one of error, warn, info, debug")
	f("KTE_LOG_LEVEL", "trace", "one of error, warn, info, debug")
	f("KTE_LOG_LEVEL", "warning", "one of error, warn, info, debug")

	const ringRange = "a power of two between 8MiB and 1GiB; the minimum is 2 × the largest delivery reservation, 2895896 B for KTE_BUFFER_MAX_BYTES=1MiB, KTE_BUFFER_MAX_ITEMS=1000, KTE_ENRICH=true and KTE_RECORD_MAX_BYTES=1MiB"
	f("KTE_RING_BYTES", "4MiB", ringRange)
	f("KTE_RING_BYTES", "12MiB", ringRange)
	f("KTE_RING_BYTES", "2GiB", ringRange)
	f("KTE_RING_BYTES", "0", ringRange)
	f("KTE_RING_BYTES", "", ringRange)
	f("KTE_RING_BYTES", "8MB", "decimal units are ambiguous")

	const regionRange = "a region such as us-east-1: up to 64 characters"
	f("AWS_REGION", "us_east_1", regionRange)
	f("AWS_REGION", "us east 1", regionRange)
	f("AWS_REGION", "-us-east-1", regionRange)
	f("AWS_REGION", "us-east-1-", regionRange)
	f("AWS_REGION", "us..east-1", regionRange)
	f("AWS_REGION", "us-east-1.", regionRange)
	f("AWS_REGION", "é", regionRange)
	f("AWS_REGION", strings.Repeat("a", 64)+".b", regionRange)
	f("AWS_DEFAULT_REGION", "eu/west/1", regionRange)
	const endpointRange = "an http:// or https:// URL with a host"
	f("AWS_ENDPOINT_URL_KINESIS", "localhost:4566", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "127.0.0.1:4566", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "vpce-0123.kinesis.us-east-1.vpce.amazonaws.com", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "http//localhost:4566", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "ftp://localhost:4566", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "http://", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "http://:4566", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "http://localhost:port", endpointRange)
	f("AWS_ENDPOINT_URL_KINESIS", "https://[::1", endpointRange)
	f("AWS_ENDPOINT_URL", "localhost:4566", endpointRange)

	f("AWS_LAMBDA_RUNTIME_API", "", "host:port of the Lambda Runtime API")
	f("AWS_LAMBDA_RUNTIME_API", "localhost", "host:port of the Lambda Runtime API")
	f("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:0", "host:port of the Lambda Runtime API")
	f("AWS_LAMBDA_RUNTIME_API", ":9001", "host:port of the Lambda Runtime API")
}

func TestLoadMissingRequired(t *testing.T) {
	_, err := Load(mapLookup(map[string]string{}))
	if err == nil {
		t.Fatalf("unexpected success with an empty environment")
	}
	msg := err.Error()
	for _, want := range []string{
		"KTE_STREAM is not set: must be a stream name",
		"AWS_LAMBDA_RUNTIME_API is not set: must be host:port",
	} {
		if !strings.Contains(msg, want) {
			t.Fatalf("unexpected message; got %q; want it to contain %q", msg, want)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 2 {
		t.Fatalf("unexpected number of errors; got %d; want 2: %q", n, msg)
	}
}

// TestLoadAllErrorsAtOnce sets every variable to something invalid and checks
// that each one is reported, with its value, in a single error.
func TestLoadAllErrorsAtOnce(t *testing.T) {
	env := map[string]string{
		"KTE_STREAM":                "no spaces allowed",
		"KTE_FLUSH":                 "sometimes",
		"KTE_FLUSH_END_MAX_WAIT_MS": "61000",
		"KTE_FLUSH_MAX_MS":          "0",
		"KTE_PARTITION_KEY":         "",
		"KTE_TYPES":                 "platform,logs",
		"KTE_ENRICH":                "maybe",
		"KTE_BUFFER_MAX_ITEMS":      "5",
		"KTE_BUFFER_MAX_BYTES":      "1MB",
		"KTE_BUFFER_TIMEOUT_MS":     "0",
		"KTE_BATCH_MAX_RECORDS":     "600",
		"KTE_BATCH_MAX_BYTES":       "11MiB",
		"KTE_RECORD_MAX_BYTES":      "0",
		"KTE_RING_BYTES":            "3MiB",
		"KTE_SEND_TIMEOUT_MS":       "1",
		"KTE_SHUTDOWN_MARGIN_MS":    "5000",
		"KTE_LISTEN_PORT":           "9001",
		"KTE_METRICS":               "loud",
		"KTE_METRICS_NAMESPACE":     "AWS/Mine",
		"KTE_METRICS_DIMENSIONS":    "region",
		"KTE_LOG_LEVEL":             "verbose",
		"AWS_LAMBDA_RUNTIME_API":    "nowhere",
	}
	c, err := Load(mapLookup(env))
	if err == nil {
		t.Fatalf("unexpected success: %+v", c)
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if len(lines) != len(env) {
		t.Fatalf("unexpected number of errors; got %d; want %d:\n%s", len(lines), len(env), msg)
	}
	for name, value := range env {
		want := name + "=" + strconv.Quote(value) + ": must be "
		if !strings.Contains(msg, want) {
			t.Fatalf("unexpected message; want it to contain %q:\n%s", want, msg)
		}
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Fatalf("unexpected non-zero config with errors: %+v", c)
	}
}

func TestRingMinimumFollowsBufferSettings(t *testing.T) {
	f := func(kv []string, wantRing, wantReservation int) {
		t.Helper()
		c, err := loadWith(kv...)
		if err != nil {
			t.Fatalf("unexpected error for %q: %v", kv, err)
		}
		if c.RingBytes != wantRing {
			t.Fatalf("unexpected ring for %q; got %d; want %d", kv, c.RingBytes, wantRing)
		}
		if got := c.MaxPostReservation(); got != wantReservation {
			t.Fatalf("unexpected reservation for %q; got %d; want %d", kv, got, wantReservation)
		}
		if c.RingBytes < 2*c.MaxPostReservation() || c.RingBytes&(c.RingBytes-1) != 0 {
			t.Fatalf("unexpected ring %d for reservation %d", c.RingBytes, c.MaxPostReservation())
		}
	}
	// Events: 2*1MiB + 64KiB + 1000*(4+512) + 8 = 2678696. Wrapped whole as
	// base64: 4*ceil(2162688/3) = 2883584 in 2883584/(1MiB-1024-3072-8)+2 = 4
	// parts of 3072+4 framing, + 8 = 2895896, the larger.
	f(nil, 8<<20, 2895896)
	// Events: 2*1MiB + 64KiB + 1000*4 + 8 = 2166696; wrapped: 2895896.
	f([]string{"KTE_ENRICH", "false"}, 8<<20, 2895896)
	// 2*1MiB + 64KiB + 10000*516 + 8 = 7322696: 2x exceeds 8MiB, so the default grows to 16MiB.
	f([]string{"KTE_BUFFER_MAX_ITEMS", "10000"}, 16<<20, 7322696)
	f([]string{"KTE_BUFFER_MAX_ITEMS", "10000", "KTE_RING_BYTES", "32MiB"}, 32<<20, 7322696)
	// Events: 2*256KiB + 64KiB + 1000*4 + 8 = 593832; wrapped: 786432 + 2*3076 + 8 = 792592.
	f([]string{"KTE_BUFFER_MAX_BYTES", "256KiB", "KTE_ENRICH", "off", "KTE_RING_BYTES", "2MiB"}, 2<<20, 792592)
	// Small records need more parts: 786432/(8KiB-1024-3072-8)+2 = 194 parts,
	// 786432 + 194*3076 + 8 = 1383184, more than the events (enriched: 589824 + 1000*516 + 8 = 1105832).
	f([]string{"KTE_BUFFER_MAX_BYTES", "256KiB", "KTE_RECORD_MAX_BYTES", "8KiB", "KTE_BATCH_MAX_BYTES", "8KiB"}, 8<<20, 1383184)
	f([]string{"KTE_BUFFER_MAX_BYTES", "256KiB", "KTE_RECORD_MAX_BYTES", "8KiB", "KTE_BATCH_MAX_BYTES", "8KiB", "KTE_ENRICH", "off"}, 8<<20, 1383184)

	_, err := loadWith("KTE_BUFFER_MAX_ITEMS", "10000", "KTE_RING_BYTES", "8MiB")
	want := `KTE_RING_BYTES="8MiB": must be a power of two between 16MiB and 1GiB; the minimum is 2 × the largest delivery reservation, 7322696 B for KTE_BUFFER_MAX_BYTES=1MiB, KTE_BUFFER_MAX_ITEMS=10000, KTE_ENRICH=true and KTE_RECORD_MAX_BYTES=1MiB (a body of up to 2 × 1MiB + 64KiB stored as events with 516 B of framing each, or as base64 in wrapped records when it cannot be split)`
	if err == nil || err.Error() != want {
		t.Fatalf("unexpected error;\ngot  %v\nwant %s", err, want)
	}
}

// TestRingFitsFunctionMemory: a ring set above half the function's memory
// is refused, since a full ring would run the environment out of memory.
func TestRingFitsFunctionMemory(t *testing.T) {
	f := func(memory, ring string, wantErr string) {
		t.Helper()
		kv := []string{"KTE_RING_BYTES", ring}
		if memory != "-" {
			kv = append(kv, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory)
		}
		c, err := loadWith(kv...)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("unexpected error for memory %q, ring %q: %v", memory, ring, err)
		case wantErr == "" && c.RingBytes == 0:
			t.Fatalf("unexpected ring 0 for memory %q, ring %q", memory, ring)
		case wantErr != "" && (err == nil || err.Error() != wantErr):
			t.Fatalf("unexpected error for memory %q, ring %q;\ngot  %v\nwant %s", memory, ring, err, wantErr)
		}
	}
	const want = `KTE_RING_BYTES="%s": must be at most half the function's memory, %s with AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%s ` +
		`(the ring fills while Kinesis is unavailable; one the function's memory cannot hold ends in the environment running out of memory ` +
		`instead of the extension answering 503): lower KTE_RING_BYTES or raise the function's memory`
	f("128", "1GiB", fmt.Sprintf(want, "1GiB", "64MiB", "128"))
	f("128", "128MiB", fmt.Sprintf(want, "128MiB", "64MiB", "128"))
	f("128", "64MiB", "")
	f("128", "8MiB", "")
	f("1769", "1GiB", fmt.Sprintf(want, "1GiB", "905728KiB", "1769"))
	f("1769", "512MiB", "")
	f("10240", "1GiB", "")
	f("-", "1GiB", "") // not in Lambda: no limit known
	f("", "1GiB", "")  // likewise
	f("0", "1GiB", "") // likewise
	f("lots", "1GiB", "")
	// The default ring fits the smallest function.
	if c, err := loadWith("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128", "KTE_BUFFER_MAX_ITEMS", "10000"); err != nil || c.RingBytes != 16<<20 {
		t.Fatalf("unexpected default ring in 128MB; got %d, %v; want 16MiB", c.RingBytes, err)
	}
}

// TestRingIndependentChecksWhenBufferInvalid checks that a bad ring value is
// still reported when the buffer settings it depends on are invalid too.
func TestRingIndependentChecksWhenBufferInvalid(t *testing.T) {
	_, err := loadWith("KTE_BUFFER_MAX_ITEMS", "1", "KTE_RING_BYTES", "3MiB")
	if err == nil || !strings.Contains(err.Error(), `KTE_RING_BYTES="3MiB": must be a power of two`) {
		t.Fatalf("unexpected error; got %v; want KTE_RING_BYTES reported", err)
	}
	_, err = loadWith("KTE_BUFFER_MAX_ITEMS", "1", "KTE_RING_BYTES", "4MiB")
	if err == nil || strings.Contains(err.Error(), "KTE_RING_BYTES") {
		t.Fatalf("unexpected error; got %v; want only KTE_BUFFER_MAX_ITEMS", err)
	}
}

func TestLambdaEnvironment(t *testing.T) {
	f := func(kv []string, want Lambda) {
		t.Helper()
		c, err := loadWith(kv...)
		if err != nil {
			t.Fatalf("unexpected error for %q: %v", kv, err)
		}
		want.RuntimeAPI = "127.0.0.1:9001"
		if got := c.Lambda; got != want {
			t.Fatalf("unexpected Lambda settings for %q;\ngot  %+v\nwant %+v", kv, got, want)
		}
	}
	f(nil, Lambda{SchemaVersion: "2022-12-13"})
	f([]string{"AWS_REGION", "eu-west-1", "AWS_DEFAULT_REGION", "us-east-1", "AWS_LAMBDA_FUNCTION_NAME", "orders", "AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"},
		Lambda{Region: "eu-west-1", FunctionName: "orders", FunctionVersion: "$LATEST", SchemaVersion: "2022-12-13"})
	f([]string{"AWS_DEFAULT_REGION", "us-east-1"}, Lambda{Region: "us-east-1", SchemaVersion: "2022-12-13"})
	f([]string{"KTE_STREAM", "arn:aws:kinesis:ap-south-2:111122223333:stream/s"}, Lambda{Region: "ap-south-2", SchemaVersion: "2022-12-13"})
	f([]string{"AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"}, Lambda{SchemaVersion: "2022-12-13"})
	f([]string{"AWS_LAMBDA_INITIALIZATION_TYPE", "lambda-managed-instances"}, Lambda{LMI: true, SchemaVersion: "2025-01-29"})
	f([]string{"AWS_LAMBDA_MAX_CONCURRENCY", "4"}, Lambda{LMI: true, SchemaVersion: "2025-01-29"})
	f([]string{"AWS_LAMBDA_MAX_CONCURRENCY", ""}, Lambda{SchemaVersion: "2022-12-13"})
	f([]string{"AWS_LAMBDA_MAX_CONCURRENCY", "0"}, Lambda{SchemaVersion: "2022-12-13"})
	f([]string{"AWS_LAMBDA_MAX_CONCURRENCY", "no"}, Lambda{SchemaVersion: "2022-12-13"})
}

// TestClientSettings checks that the AWS SDK settings are judged as the SDK
// takes them: the first non-empty of each pair, and no endpoint when
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.
func TestClientSettings(t *testing.T) {
	f := func(kv []string, wantErr string) {
		t.Helper()
		checkLoad(t, kv, wantErr)
	}
	for _, r := range []string{"us-east-1", "us-gov-west-1", "eusc-de-east-1", "cn-north-1", "local", "fips-us-gov-west-1", "us-east-1-fips", "eu-west-1.a"} {
		f([]string{"AWS_REGION", r}, "")
		f([]string{"AWS_DEFAULT_REGION", r}, "")
	}
	f([]string{"AWS_REGION", "", "AWS_DEFAULT_REGION", "eu west"}, `AWS_DEFAULT_REGION="eu west": must be a region`)
	f([]string{"AWS_REGION", "eu-west-1", "AWS_DEFAULT_REGION", "eu west"}, "") // the SDK takes AWS_REGION
	f([]string{"AWS_REGION", "eu west", "AWS_DEFAULT_REGION", "eu-west-1"}, `AWS_REGION="eu west": must be a region`)

	for _, u := range []string{
		"http://localhost:4566", "https://vpce-0123-abcd.kinesis.us-east-1.vpce.amazonaws.com", "HTTP://127.0.0.1:4566/",
		"http://[::1]:4566", "https://kinesis.eu-west-1.amazonaws.com",
	} {
		f([]string{"AWS_ENDPOINT_URL_KINESIS", u}, "")
		f([]string{"AWS_ENDPOINT_URL", u}, "")
	}
	f([]string{"AWS_ENDPOINT_URL_KINESIS", "", "AWS_ENDPOINT_URL", "localhost:4566"}, `AWS_ENDPOINT_URL="localhost:4566": must be an http:// or https:// URL`)
	f([]string{"AWS_ENDPOINT_URL_KINESIS", "http://localhost:4566", "AWS_ENDPOINT_URL", "localhost:4566"}, "") // the SDK takes the Kinesis one
	f([]string{"AWS_ENDPOINT_URL_KINESIS", "localhost:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}, "")
	f([]string{"AWS_ENDPOINT_URL", "localhost:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"}, "")
	f([]string{"AWS_ENDPOINT_URL_KINESIS", "localhost:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"}, `AWS_ENDPOINT_URL_KINESIS="localhost:4566": must be an http:// or https:// URL`)
}

// TestLoadFunctionIdentity checks the function name and version where the
// configuration uses them: in every event's enrichment prefix, and as the
// partition key with KTE_PARTITION_KEY=function.
func TestLoadFunctionIdentity(t *testing.T) {
	f := func(kv []string, wantErr string) {
		t.Helper()
		c := checkLoad(t, kv, wantErr)
		if wantErr == "" && slices.Contains(kv, "function") && c.PartitionKey.Mode != PartitionKeyFunction {
			t.Fatalf("unexpected partition key for %.80q: %v", kv, c.PartitionKey)
		}
	}
	const noName = `KTE_PARTITION_KEY="function": must be environment, random or a fixed key while AWS_LAMBDA_FUNCTION_NAME `
	f([]string{"KTE_PARTITION_KEY", "function"}, noName+"is not set")
	f([]string{"KTE_PARTITION_KEY", "function", "AWS_LAMBDA_FUNCTION_NAME", ""}, noName+"is empty")
	f([]string{"KTE_PARTITION_KEY", "function", "AWS_LAMBDA_FUNCTION_NAME", "orders-api"}, "")
	f([]string{"KTE_PARTITION_KEY", "function", "AWS_LAMBDA_FUNCTION_NAME", strings.Repeat("f", 256)}, "")
	f([]string{"KTE_PARTITION_KEY", "function", "AWS_LAMBDA_FUNCTION_NAME", strings.Repeat("f", 257), "KTE_ENRICH", "false"}, noName+"is not a valid partition key")
	f([]string{"KTE_PARTITION_KEY", "environment", "AWS_LAMBDA_FUNCTION_NAME", ""}, "")

	const tooLong = "once JSON-escaped while KTE_ENRICH is on"
	long := strings.Repeat("f", 600)
	f([]string{"AWS_LAMBDA_FUNCTION_NAME", long}, `AWS_LAMBDA_FUNCTION_NAME="`+long+`": must be at most 256 bytes `+tooLong)
	f([]string{"AWS_LAMBDA_FUNCTION_NAME", long, "KTE_ENRICH", "false"}, "")
	f([]string{"AWS_LAMBDA_FUNCTION_NAME", strings.Repeat("f", 255) + `"`}, `AWS_LAMBDA_FUNCTION_NAME=`) // 257 bytes escaped
	f([]string{"AWS_LAMBDA_FUNCTION_NAME", strings.Repeat("f", 254) + `"`}, "")
	f([]string{"AWS_LAMBDA_FUNCTION_VERSION", strings.Repeat("9", 65)}, `AWS_LAMBDA_FUNCTION_VERSION="`+strings.Repeat("9", 65)+`": must be at most 64 bytes `+tooLong)
	f([]string{"AWS_LAMBDA_FUNCTION_VERSION", strings.Repeat("9", 64)}, "")
	f([]string{"AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"}, "")
}

func TestStreamRegion(t *testing.T) {
	f := func(kv []string, want string) {
		t.Helper()
		c, err := loadWith(kv...)
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if got := c.StreamRegion(); got != want {
			t.Fatalf("unexpected stream region for %q; got %q; want %q", kv, got, want)
		}
	}
	f(nil, "")
	f([]string{"AWS_REGION", "eu-west-1"}, "eu-west-1")
	f([]string{"AWS_REGION", "eu-west-1", "KTE_STREAM", "arn:aws:kinesis:us-east-2:111122223333:stream/s"}, "us-east-2")
}

func TestLoadLambda(t *testing.T) {
	lam, err := LoadLambda(mapLookup(map[string]string{
		"AWS_LAMBDA_RUNTIME_API":         "127.0.0.1:9001",
		"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances",
		"KTE_STREAM":                     "not valid",
	}))
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	want := Lambda{RuntimeAPI: "127.0.0.1:9001", LMI: true, SchemaVersion: "2025-01-29"}
	if lam != want {
		t.Fatalf("unexpected result; got %+v; want %+v", lam, want)
	}
	lam, err = LoadLambda(mapLookup(map[string]string{"AWS_LAMBDA_MAX_CONCURRENCY": "2"}))
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "AWS_LAMBDA_RUNTIME_API is not set") {
		t.Fatalf("unexpected error; got %v; want AWS_LAMBDA_RUNTIME_API is not set", err)
	}
	if !lam.LMI {
		t.Fatalf("unexpected LMI false with AWS_LAMBDA_MAX_CONCURRENCY set and an error")
	}
}

// TestVarsCoverLoad checks that Vars documents exactly the KTE_ variables
// Load reads, and PlatformVars exactly the others.
func TestVarsCoverLoad(t *testing.T) {
	f := func(env map[string]string) {
		t.Helper()
		var read []string
		_, _ = Load(func(k string) (string, bool) {
			read = append(read, k)
			v, ok := env[k]
			return v, ok
		})
		var kte, other []string
		for _, k := range read {
			if strings.HasPrefix(k, "KTE_") {
				kte = append(kte, k)
			} else {
				other = append(other, k)
			}
		}
		slices.Sort(kte)
		kte = slices.Compact(kte)
		slices.Sort(other)
		other = slices.Compact(other)
		var docs, platform []string
		for _, v := range Vars {
			docs = append(docs, v.Name)
		}
		for _, v := range PlatformVars {
			platform = append(platform, v.Name)
		}
		slices.Sort(docs)
		slices.Sort(platform)
		if !slices.Equal(kte, docs) {
			t.Fatalf("unexpected KTE_ variables read; got %q; want (Vars) %q", kte, docs)
		}
		if !slices.Equal(other, platform) {
			t.Fatalf("unexpected platform variables read; got %q; want (PlatformVars) %q", other, platform)
		}
	}
	f(map[string]string{})
	f(baseEnv())
}

// TestVarsDefaults checks that each documented default is what Load uses and
// that every row is filled in.
func TestVarsDefaults(t *testing.T) {
	for _, v := range Vars {
		if v.Name == "" || v.Default == "" || v.Range == "" || v.Meaning == "" {
			t.Fatalf("unexpected incomplete row: %+v", v)
		}
		if v.value == "" {
			continue // required or computed
		}
		if v.Default != v.value {
			t.Fatalf("unexpected documented default for %s; got %q; want %q", v.Name, v.Default, v.value)
		}
		def, err := loadWith()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		explicit, err := loadWith(v.Name, v.value)
		if err != nil {
			t.Fatalf("unexpected error for %s=%q: %v", v.Name, v.value, err)
		}
		if !reflect.DeepEqual(def, explicit) {
			t.Fatalf("unexpected difference between unset and %s=%q;\ngot  %+v\nwant %+v", v.Name, v.value, explicit, def)
		}
	}
}

func TestMarkdownTable(t *testing.T) {
	table := MarkdownTable()
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != len(Vars)+2 {
		t.Fatalf("unexpected number of lines; got %d; want %d", len(lines), len(Vars)+2)
	}
	for i, v := range Vars {
		line := lines[i+2]
		if !strings.HasPrefix(line, "| `"+v.Name+"` | ") {
			t.Fatalf("unexpected line %d; got %q; want it to start with %s", i+2, line, v.Name)
		}
		if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 5 {
			t.Fatalf("unexpected column separators in %q; got %d; want 5", line, n)
		}
		// Outside code spans, <...> would be taken for HTML.
		parts := strings.Split(line, "`")
		if len(parts)%2 == 0 {
			t.Fatalf("unexpected unbalanced code span in %q", line)
		}
		for j := 0; j < len(parts); j += 2 {
			if strings.ContainsAny(parts[j], "<>") {
				t.Fatalf("unexpected angle bracket outside a code span in %q", line)
			}
		}
	}
}

func TestStringers(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("unexpected text; got %q; want %q", got, want)
		}
	}
	f(Flush{Mode: FlushInvoke}.String(), "invoke")
	f(Flush{Mode: FlushEnd}.String(), "end")
	f(Flush{Mode: FlushAuto}.String(), "auto")
	f(Flush{Mode: FlushPeriodic, Period: 90 * time.Second}.String(), "periodic:1m30s")
	f(FlushMode(9).String(), "FlushMode(9)")
	f(PartitionKeyEnvironment.String(), "environment")
	f(PartitionKeyRandom.String(), "random")
	f(PartitionKeyFunction.String(), "function")
	f(PartitionKeyFixed.String(), "fixed")
	f(PartitionKeyMode(7).String(), "PartitionKeyMode(7)")
}

func TestMaxPartitionKeyBytes(t *testing.T) {
	f := func(key string, want int) {
		t.Helper()
		c, err := loadWith("KTE_PARTITION_KEY", key, "AWS_LAMBDA_FUNCTION_NAME", "orders-api")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.MaxPartitionKeyBytes(); got != want {
			t.Fatalf("unexpected key bytes for %q; got %d; want %d", key, got, want)
		}
	}
	f("environment", 256)
	f("random", 256)
	f("function", 256)
	f("tenant-7", 256)
	f(strings.Repeat("ключ", 64), 512) // 256 characters of 2 bytes each

	// A function name counts as itself: up to 256 code units of 3 bytes.
	c, err := loadWith("KTE_PARTITION_KEY", "function", "KTE_ENRICH", "false", "AWS_LAMBDA_FUNCTION_NAME", strings.Repeat("€", 256))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MaxPartitionKeyBytes(); got != 768 {
		t.Fatalf("unexpected key bytes for a function name of 256 × €; got %d; want 768", got)
	}
}

// TestLoadFlushNeedsPlatform: end and auto wait for platform.runtimeDone,
// so they are refused when KTE_TYPES leaves out platform (except under
// Managed Instances, which ignore KTE_FLUSH); invoke and periodic are not.
func TestLoadFlushNeedsPlatform(t *testing.T) {
	for _, mode := range []string{"end", "auto"} {
		_, err := loadWith("KTE_FLUSH", mode, "KTE_TYPES", "function,extension")
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Fatalf("KTE_FLUSH=%s without platform: unexpected error %v; want ErrInvalid", mode, err)
		}
		msg := err.Error()
		if want := `KTE_FLUSH="` + mode + `": must be invoke or periodic:<duration> while KTE_TYPES=function,extension leaves out platform`; !strings.HasPrefix(msg, want) || strings.Contains(msg, "\n") {
			t.Fatalf("KTE_FLUSH=%s without platform: unexpected message %q; want one error starting %q", mode, msg, want)
		}
		if _, err := loadWith("KTE_FLUSH", mode, "KTE_TYPES", "function,platform"); err != nil {
			t.Fatalf("KTE_FLUSH=%s with platform: unexpected error %v", mode, err)
		}
		if _, err := loadWith("KTE_FLUSH", mode, "KTE_TYPES", "function", "AWS_LAMBDA_INITIALIZATION_TYPE", "lambda-managed-instances"); err != nil {
			t.Fatalf("KTE_FLUSH=%s without platform under Managed Instances: unexpected error %v", mode, err)
		}
	}
	for _, mode := range []string{"invoke", "periodic:10s"} {
		if _, err := loadWith("KTE_FLUSH", mode, "KTE_TYPES", "function"); err != nil {
			t.Fatalf("KTE_FLUSH=%s without platform: unexpected error %v", mode, err)
		}
	}
	// An invalid KTE_TYPES is reported alone.
	_, err := loadWith("KTE_FLUSH", "end", "KTE_TYPES", "logs")
	if err == nil || !strings.HasPrefix(err.Error(), "KTE_TYPES=") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("invalid KTE_TYPES: unexpected error %v; want one error for KTE_TYPES", err)
	}
}

func TestValidPartitionKey(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := ValidPartitionKey(s); got != want {
			t.Fatalf("unexpected ValidPartitionKey(%q); got %v; want %v", s, got, want)
		}
	}
	f("k", true)
	f(strings.Repeat("k", 256), true)
	f(strings.Repeat("k", 257), false)
	f(strings.Repeat("ключ", 64), true)    // 256 code units of 2 bytes each
	f(strings.Repeat("€", 256), true)      // 3 bytes, 1 code unit each
	f(strings.Repeat("😀", 128), true)      // 4 bytes, 2 code units (a surrogate pair) each
	f(strings.Repeat("😀", 128)+"k", false) // 257 code units in 129 characters
	f(strings.Repeat("😀", 200), false)
	f("", false)
	f("a\xffb", false)
}
