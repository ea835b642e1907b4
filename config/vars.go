package config

import "bytes"

// VarDoc documents one environment variable that Load reads. Vars is the
// single source of the README configuration table (see MarkdownTable).
type VarDoc struct {
	Name    string
	Default string // as shown to users
	Range   string // accepted values
	Meaning string

	// value is the literal Load parses when the variable is unset; empty
	// means "required" or "computed" (handled by Load).
	value string
}

// Vars lists every KTE_ variable Load reads, in README order. A test checks
// that Load reads nothing else with the KTE_ prefix and reads all of these.
// An unset variable takes its default; a variable set to an empty value is
// an error like any other invalid value.
var Vars = []VarDoc{
	{
		Name: "KTE_STREAM", Default: "(required)",
		Range:   "stream name (1–128 of `a-z A-Z 0-9 _ . -`) or ARN `arn:<partition>:kinesis:<region>:<account>:stream/<name>`",
		Meaning: "Kinesis data stream that receives the telemetry. With an ARN, requests carry both StreamName and StreamARN.",
	},
	{
		Name: "KTE_FLUSH", Default: "invoke", value: "invoke",
		Range:   "`invoke`, `end`, `periodic:<duration>` (Go duration, 1s–1h, e.g. `periodic:30s`), `auto`; end and auto only with platform in KTE_TYPES",
		Meaning: "When buffered telemetry is delivered: during the next invocation (invoke), after this invocation's runtimeDone (end, adds billed time), at an invocation once the period has passed (periodic), or end while invocations are rare and invoke once they are frequent (auto). While a delivery runs, a full batch goes at once; between deliveries the extension sends nothing (it may be frozen), so a long invocation's telemetry waits for the next one or SHUTDOWN.",
	},
	{
		Name: "KTE_FLUSH_END_MAX_WAIT_MS", Default: "2000", value: "2000",
		Range:   "0–60000",
		Meaning: "With end/auto: the longest wait for platform.runtimeDone after an INVOKE, in ms (never past the invoke deadline).",
	},
	{
		Name: "KTE_FLUSH_MAX_MS", Default: "2000", value: "2000",
		Range:   "50–900000",
		Meaning: "The longest a delivery at an INVOKE may take, in ms (never past the invoke deadline minus KTE_SHUTDOWN_MARGIN_MS). What is not delivered by then stays buffered for the next one, so a slow or unavailable stream adds at most this much to an invocation. SHUTDOWN delivers until its deadline minus KTE_SHUTDOWN_MARGIN_MS, less the time needed to write what is left to stderr (see Shutdown).",
	},
	{
		Name: "KTE_PARTITION_KEY", Default: "environment", value: "environment",
		Range:   "`environment`, `random`, `function`, or any other text (a fixed key) of 1–256 UTF-16 code units as Kinesis counts them (an emoji or other character above U+FFFF counts 2); not a keyword in other case such as `Random`, no white space at either end",
		Meaning: "Partition key: one random key per execution environment (per-environment order, spread over shards), a random key per record, from 4096 generated once (most spread, no order), the function name, or a fixed string (one shard).",
	},
	{
		Name: "KTE_TYPES", Default: "platform,function,extension", value: "platform,function,extension",
		Range:   "comma list of `platform`, `function`, `extension` (no duplicates)",
		Meaning: "Telemetry API event types to subscribe to.",
	},
	{
		Name: "KTE_ENRICH", Default: "true", value: "true",
		Range:   "`true`/`false`, `1`/`0`, `on`/`off` (any case)",
		Meaning: "Add `{\"lambda\":{\"function\":…,\"version\":…,\"region\":…,\"account\":…,\"environment\":…}}` as the first field of every event, so consumers of a shared stream know where it came from. Off: the bytes are exactly what Lambda sent.",
	},
	{
		Name: "KTE_BUFFER_MAX_ITEMS", Default: "1000", value: "1000",
		Range:   "1000–10000",
		Meaning: "Telemetry API buffering: most events per delivery.",
	},
	{
		Name: "KTE_BUFFER_MAX_BYTES", Default: "1MiB", value: "1MiB",
		Range:   "256KiB–1MiB",
		Meaning: "Telemetry API buffering: most bytes per delivery (Lambda may send up to twice this).",
	},
	{
		Name: "KTE_BUFFER_TIMEOUT_MS", Default: "100", value: "100",
		Range:   "25–30000",
		Meaning: "Telemetry API buffering: longest time Lambda holds events before delivering them, in ms. At SHUTDOWN the extension keeps listening until no delivery has come for this long + 30 ms, for at most half of the time left: with a long timeout, events Lambda still holds may never be delivered before the environment ends, and no KTE counter shows them (it never saw them).",
	},
	{
		Name: "KTE_BATCH_MAX_RECORDS", Default: "500", value: "500",
		Range:   "1–500",
		Meaning: "Most records per PutRecords request.",
	},
	{
		Name: "KTE_BATCH_MAX_BYTES", Default: "5MiB", value: "5MiB",
		Range:   "8KiB–10MiB",
		Meaning: "Most bytes (data + partition keys) per PutRecords request. AWS allows 5MiB; above that only for streams whose maximum record size was raised (up to 10MiB).",
	},
	{
		Name: "KTE_RECORD_MAX_BYTES", Default: "1MiB", value: "1MiB",
		Range:   "8KiB–10MiB, ≤ KTE_BATCH_MAX_BYTES",
		Meaning: "Most bytes (data + partition key) per record; larger events are handled as documented. AWS allows 1MiB; above that only for streams whose maximum record size was raised (up to 10MiB).",
	},
	{
		Name: "KTE_RING_BYTES", Default: "8MiB (more if the buffer settings need it)",
		Range:   "power of two ≤ 1GiB, ≥ 2 × the largest delivery reservation, ≤ half of AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
		Meaning: "Memory for buffered events. The minimum is twice the largest delivery (2 × max bytes + 64KiB), stored either as events (max items × (4 + 512 if enriched) bytes of framing) or, when it cannot be split, as base64 in wrapped records of KTE_RECORD_MAX_BYTES; rounded up to a power of two. When unset, the larger of 8MiB and that minimum. The error message gives the figure. The ring fills while Kinesis is unavailable, so it may take at most half the function's memory (64MiB for 128MB), leaving the function room instead of running the environment out of memory.",
	},
	{
		Name: "KTE_SEND_TIMEOUT_MS", Default: "2000", value: "2000",
		Range:   "100–60000",
		Meaning: "Timeout of one PutRecords attempt, in ms.",
	},
	{
		Name: "KTE_SHUTDOWN_MARGIN_MS", Default: "200", value: "200",
		Range:   "0–1000",
		Meaning: "Finish this many ms before an INVOKE's or SHUTDOWN's deadline.",
	},
	{
		Name: "KTE_LISTEN_PORT", Default: "4243", value: "4243",
		Range:   "1–65535 except 9001",
		Meaning: "Port of the telemetry listener on sandbox.localdomain (9001 is reserved by Lambda).",
	},
	{
		Name: "KTE_METRICS", Default: "true", value: "true",
		Range:   "`true`/`false`, `1`/`0`, `on`/`off` (any case)",
		Meaning: "Write counters as a CloudWatch Embedded Metric Format line on stdout (at most once a minute, and at shutdown).",
	},
	{
		Name: "KTE_METRICS_NAMESPACE", Default: "KTE", value: "KTE",
		Range:   "1–255 of `A-Z a-z 0-9 . - _ / # :` and space, not only spaces; not starting with `:` or `AWS/`",
		Meaning: "CloudWatch namespace of the metrics.",
	},
	{
		Name: "KTE_METRICS_DIMENSIONS", Default: "function", value: "function",
		Range:   "comma list of `function`, `version`, `stream` (no duplicates), or `none`",
		Meaning: "Dimensions of the metrics.",
	},
	{
		Name: "KTE_LOG_LEVEL", Default: "info", value: "info",
		Range:   "`error`, `warn`, `info`, `debug`",
		Meaning: "Least severe level the extension logs.",
	},
}

// PlatformVars lists the variables Load reads from the Lambda environment.
var PlatformVars = []VarDoc{
	{Name: EnvRuntimeAPI, Default: "(set by Lambda)", Range: "host:port", Meaning: "Runtime API address; required."},
	{Name: "AWS_REGION", Default: "(set by Lambda)", Range: "region", Meaning: "Region of the function (AWS_DEFAULT_REGION is used when unset or empty)."},
	{Name: "AWS_DEFAULT_REGION", Default: "", Range: "region", Meaning: "Fallback for AWS_REGION."},
	{Name: "AWS_ENDPOINT_URL_KINESIS", Default: "", Range: "http:// or https:// URL", Meaning: "Kinesis endpoint (VPC endpoint, local stand-in), read by the AWS SDK; checked by Load."},
	{Name: "AWS_ENDPOINT_URL", Default: "", Range: "http:// or https:// URL", Meaning: "Endpoint of every AWS service, read by the AWS SDK when AWS_ENDPOINT_URL_KINESIS is unset or empty; checked by Load."},
	{Name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", Default: "", Range: "true", Meaning: "Makes the AWS SDK ignore both endpoint variables, and Load skip their check."},
	{Name: "AWS_LAMBDA_FUNCTION_NAME", Default: "(set by Lambda)", Range: "at most 256 bytes once JSON-escaped with KTE_ENRICH on; required by KTE_PARTITION_KEY=function", Meaning: "Function name (enrichment, metrics, KTE_PARTITION_KEY=function)."},
	{Name: EnvMemorySize, Default: "(set by Lambda)", Range: "MB", Meaning: "Function memory; KTE_RING_BYTES may take at most half of it (no limit when unset or not a positive integer)."},
	{Name: "AWS_LAMBDA_FUNCTION_VERSION", Default: "(set by Lambda)", Range: "at most 64 bytes once JSON-escaped with KTE_ENRICH on", Meaning: "Function version (enrichment, metrics)."},
	{Name: "AWS_LAMBDA_INITIALIZATION_TYPE", Default: "(set by Lambda)", Range: "", Meaning: `"lambda-managed-instances" selects Lambda Managed Instances mode: SHUTDOWN-only registration, schema 2025-01-29.`},
	{Name: "AWS_LAMBDA_MAX_CONCURRENCY", Default: "", Range: "positive integer", Meaning: "Set by the Runtime Interface Emulator's managed-instances mode; a positive integer also selects that mode (other values are ignored)."},
}

func lookupDoc(name string) *VarDoc {
	for i := range Vars {
		if Vars[i].Name == name {
			return &Vars[i]
		}
	}
	return nil
}

// MarkdownTable renders Vars as the README configuration table.
func MarkdownTable() string {
	var b bytes.Buffer
	b.WriteString("| Variable | Default | Accepted values | Meaning |\n|---|---|---|---|\n")
	// Ranges and meanings are written with code spans around anything in
	// angle brackets, which Markdown would otherwise take for HTML.
	for _, v := range Vars {
		b.WriteString("| `" + v.Name + "` | " + esc(v.Default) + " | " + esc(v.Range) + " | " + esc(v.Meaning) + " |\n")
	}
	return b.String()
}

func esc(s string) string { return replaceAll(s, "|", `\|`) }
