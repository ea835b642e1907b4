// Package config loads every KTE_ setting, and the parts of the Lambda
// environment the extension needs, in one call that reports every bad
// variable at once.
//
// Load never falls back silently: a set variable is either valid or an error
// naming the variable, its raw value and the accepted range. Vars documents
// every variable and is the source of the README configuration table.
package config

import (
	"errors"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// Names of the Lambda environment variables Load reads.
const (
	EnvRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"
	EnvMemorySize = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
)

// Ring size bounds.
const (
	DefaultRingBytes = 8 * MiB
	MaxRingBytes     = 1 * GiB
)

// ErrInvalid is wrapped by every *VarError; errors.Is(err, ErrInvalid) tells
// a configuration error from others.
var ErrInvalid = errors.New("config: invalid variable")

// VarError is one invalid (or missing) variable.
type VarError struct {
	Name  string
	Value string // raw value; empty for a missing variable
	Unset bool   // the variable is required but not set
	Want  string // what would be accepted, e.g. "between 1KiB and 10MiB"
}

func (e *VarError) Error() string {
	if e.Unset {
		return e.Name + " is not set: must be " + e.Want
	}
	return e.Name + "=" + strconv.Quote(e.Value) + ": must be " + e.Want
}

// Unwrap returns ErrInvalid.
func (e *VarError) Unwrap() error { return ErrInvalid }

// FlushMode says when buffered telemetry is delivered (KTE_FLUSH).
type FlushMode uint8

// Flush modes.
const (
	FlushInvoke   FlushMode = iota // during the next invocation (default)
	FlushEnd                       // after this invocation's runtimeDone
	FlushPeriodic                  // at an invocation once Period has passed
	FlushAuto                      // end while invocations are rare, invoke once frequent
)

func (m FlushMode) String() string {
	switch m {
	case FlushInvoke:
		return "invoke"
	case FlushEnd:
		return "end"
	case FlushPeriodic:
		return "periodic"
	case FlushAuto:
		return "auto"
	}
	return "FlushMode(" + strconv.Itoa(int(m)) + ")"
}

// Flush is the parsed KTE_FLUSH.
type Flush struct {
	Mode   FlushMode
	Period time.Duration // FlushPeriodic only; between 1s and 1h
}

func (f Flush) String() string {
	if f.Mode == FlushPeriodic {
		return "periodic:" + f.Period.String()
	}
	return f.Mode.String()
}

// PartitionKeyMode says how records get their partition key
// (KTE_PARTITION_KEY).
type PartitionKeyMode uint8

// Partition key modes.
const (
	PartitionKeyEnvironment PartitionKeyMode = iota // one random key per execution environment
	PartitionKeyRandom                              // a random key per record
	PartitionKeyFunction                            // the function name
	PartitionKeyFixed                               // PartitionKey.Fixed
)

func (m PartitionKeyMode) String() string {
	switch m {
	case PartitionKeyEnvironment:
		return "environment"
	case PartitionKeyRandom:
		return "random"
	case PartitionKeyFunction:
		return "function"
	case PartitionKeyFixed:
		return "fixed"
	}
	return "PartitionKeyMode(" + strconv.Itoa(int(m)) + ")"
}

// PartitionKey is the parsed KTE_PARTITION_KEY.
type PartitionKey struct {
	Mode  PartitionKeyMode
	Fixed string // PartitionKeyFixed only: valid UTF-8, 1–256 UTF-16 code units (ValidPartitionKey)
}

// ValidPartitionKey reports whether s can be a partition key: valid UTF-8
// of 1 to KinesisMaxPartitionKeyChars UTF-16 code units. Kinesis counts a
// key's length in UTF-16 code units (a Java string's length; kinesalite,
// which copies the service's validation, takes a JavaScript string's), so a
// character above U+FFFF, such as most emoji, counts 2: 128 emoji are the
// most a key can hold, and 129 are refused as a ValidationException.
func ValidPartitionKey(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n <= KinesisMaxPartitionKeyChars
}

// Telemetry API event types (KTE_TYPES).
const (
	TypePlatform  = "platform"
	TypeFunction  = "function"
	TypeExtension = "extension"
)

// Metric dimensions (KTE_METRICS_DIMENSIONS).
const (
	DimensionFunction = "function"
	DimensionVersion  = "version"
	DimensionStream   = "stream"
)

// Config is the validated configuration. Load returns it by value; it is
// read-only afterwards and safe to share between goroutines.
type Config struct {
	// StreamName is always set: the name given, or the name part of the ARN.
	// Requests always carry it (kinesalite rejects ARN-only requests).
	StreamName string
	// StreamARN is set when KTE_STREAM was an ARN; requests then carry it too.
	StreamARN string

	RingBytes  int
	ListenPort int
	Enrich     bool
	Types      []string // subset of TypePlatform, TypeFunction, TypeExtension, in the order given

	BufferMaxItems  int
	BufferMaxBytes  int
	BufferTimeoutMs int

	BatchMaxRecords int
	BatchMaxBytes   int
	RecordMaxBytes  int

	PartitionKey    PartitionKey
	Flush           Flush
	FlushEndMaxWait time.Duration
	FlushMax        time.Duration // longest flush at an INVOKE
	SendTimeout     time.Duration
	ShutdownMargin  time.Duration

	Metrics           bool
	MetricsNamespace  string
	MetricsDimensions []string // subset of Dimension*, in the order given; empty for "none"

	LogLevel Level

	Lambda
}

// Level is the level of KTE_LOG_LEVEL. Its values are log/slog's, so
// slog.Level(cfg.LogLevel) is the slog level; this package does not import
// log/slog, which is initialised late (see text.go for why that matters).
type Level int

// The levels KTE_LOG_LEVEL names, with the values of slog.LevelDebug,
// slog.LevelInfo, slog.LevelWarn and slog.LevelError.
const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

// Lambda is what the extension reads from the Lambda environment. LoadLambda
// returns it alone, so that the lifecycle can register (and then report a
// configuration error through /init/error) even when Load fails.
type Lambda struct {
	RuntimeAPI      string // host:port of the Runtime API
	Region          string // AWS_REGION, else AWS_DEFAULT_REGION, else the stream ARN's region; may be empty
	FunctionName    string
	FunctionVersion string
	// LMI is true under Lambda Managed Instances (AWS_LAMBDA_INITIALIZATION_TYPE
	// is "lambda-managed-instances", or the emulator's AWS_LAMBDA_MAX_CONCURRENCY
	// is a positive integer): register SHUTDOWN only.
	LMI bool
	// SchemaVersion is the Telemetry API schema to subscribe with:
	// SchemaVersionLMI under LMI, else SchemaVersionDefault.
	SchemaVersion string
}

// StreamRegion returns the region the stream lives in: the ARN's region when
// KTE_STREAM is an ARN, else Region. The SDK builds the Kinesis endpoint from
// the client's region, not the ARN's, so the sender's client should use this.
func (c Config) StreamRegion() string {
	if c.StreamARN != "" {
		return splitN(c.StreamARN, ":", 5)[3]
	}
	return c.Region
}

// MaxPostReservation returns the most ring bytes one Telemetry API delivery
// can need: 2 x BufferMaxBytes + PostSlackBytes for the body, a frame header
// (plus EnrichPrefixMaxBytes when enriching) per event for up to
// BufferMaxItems events, and one block header, rounded up to 8. The listener
// sizes its body limit and the ring its minimum from this one figure.
func (c Config) MaxPostReservation() int {
	return maxPostReservation(c.BufferMaxBytes, c.BufferMaxItems, c.Enrich, c.RecordMaxBytes)
}

// MinRecordBytes is the smallest KTE_RECORD_MAX_BYTES (and
// KTE_BATCH_MAX_BYTES): a wrapped record (quarantined body or part of an
// oversize event) needs room for its header (WrapHeaderMaxBytes) and the
// longest partition key (up to 1 KiB of UTF-8) besides some payload.
const MinRecordBytes = 8 * KiB

// WrapHeaderMaxBytes bounds the bytes a wrapped record spends besides its
// payload: the enrichment prefix (EnrichPrefixMaxBytes), the "kte" object
// with a reason of up to 256 bytes (up to 6 bytes each once escaped), and
// JSON punctuation. The listener's exact figure is smaller; main's tests
// check the two agree.
const WrapHeaderMaxBytes = 3 * KiB

// maxKeyBytes bounds the longest partition key in bytes: 256 UTF-16 code
// units take at most 768 bytes of UTF-8 (3 for a unit of its own, 4 for a
// surrogate pair); the bound allows 4 for each.
const maxKeyBytes = KinesisMaxPartitionKeyChars * 4

// MaxPartitionKeyBytes bounds the bytes a record's partition key takes from
// KTE_RECORD_MAX_BYTES: 256 for the generated keys, the key itself when it
// is fixed or the function name (Lambda's are ASCII, but Load lets a name of
// up to 256 UTF-16 code units through when KTE_ENRICH is off). It is never
// more than the 1 KiB the ring minimum allows for.
func (c Config) MaxPartitionKeyBytes() int {
	n := KinesisMaxPartitionKeyChars
	switch c.PartitionKey.Mode {
	case PartitionKeyFixed:
		n = max(n, len(c.PartitionKey.Fixed))
	case PartitionKeyFunction:
		n = max(n, len(c.FunctionName))
	}
	return n
}

func maxPostReservation(maxBytes, maxItems int, enrich bool, recordMax int) int {
	perEvent := FrameHeaderBytes
	if enrich {
		perEvent += EnrichPrefixMaxBytes
	}
	body := 2*maxBytes + PostSlackBytes
	events := body + maxItems*perEvent + BlockHeaderBytes
	// A body that cannot be split is stored whole, in the worst case as
	// base64 (4/3 of its size) cut into records of recordMax bytes at most.
	enc := (body + 2) / 3 * 4
	room := max(recordMax-maxKeyBytes-WrapHeaderMaxBytes-8, 1)
	parts := enc/room + 2
	wrapped := enc + parts*(WrapHeaderMaxBytes+FrameHeaderBytes) + BlockHeaderBytes
	return (max(events, wrapped) + 7) &^ 7
}

// MinRingBytes returns the smallest ring the configuration allows: the power
// of two at or above 2 x MaxPostReservation.
func (c Config) MinRingBytes() int {
	return minRingBytes(c.MaxPostReservation())
}

func minRingBytes(reservation int) int {
	return 1 << bits.Len(uint(2*reservation-1))
}

// Load reads and validates the configuration through lookup (os.LookupEnv in
// production, a map in tests). It returns every problem at once, joined with
// errors.Join; each is a *VarError naming the variable, its raw value and
// what is accepted. Unset optional variables take their documented default.
func Load(lookup func(string) (string, bool)) (Config, error) {
	l := loader{lookup: lookup}
	var c Config

	c.StreamName, c.StreamARN = l.stream("KTE_STREAM")
	c.ListenPort = l.port("KTE_LISTEN_PORT")
	c.Enrich = l.boolean("KTE_ENRICH")
	c.Types = l.list("KTE_TYPES", []string{TypePlatform, TypeFunction, TypeExtension}, false)

	bufItems, okItems := l.intIn("KTE_BUFFER_MAX_ITEMS", TelemetryMinMaxItems, TelemetryMaxMaxItems)
	bufBytes, okBytes := l.sizeIn("KTE_BUFFER_MAX_BYTES", TelemetryMinMaxBytes, TelemetryMaxMaxBytes)
	c.BufferMaxItems, c.BufferMaxBytes = bufItems, bufBytes
	c.BufferTimeoutMs, _ = l.intIn("KTE_BUFFER_TIMEOUT_MS", TelemetryMinTimeoutMs, TelemetryMaxTimeoutMs)

	c.BatchMaxRecords, _ = l.intIn("KTE_BATCH_MAX_RECORDS", 1, KinesisMaxRecordsPerRequest)
	batchBytes, okBatch := l.sizeIn("KTE_BATCH_MAX_BYTES", MinRecordBytes, KinesisLargeRecordMaxBytes)
	recBytes, okRec := l.sizeIn("KTE_RECORD_MAX_BYTES", MinRecordBytes, KinesisLargeRecordMaxBytes)
	c.BatchMaxBytes, c.RecordMaxBytes = batchBytes, recBytes
	if okBatch && okRec && recBytes > batchBytes {
		// Blame the variable the user set; if only the batch limit was set,
		// the record limit is still at its default.
		if raw, set := l.raw("KTE_RECORD_MAX_BYTES"); set {
			l.fail("KTE_RECORD_MAX_BYTES", raw, "≤ KTE_BATCH_MAX_BYTES="+FormatBytes(int64(batchBytes)))
		} else {
			raw, _ = l.raw("KTE_BATCH_MAX_BYTES")
			l.fail("KTE_BATCH_MAX_BYTES", raw, "≥ KTE_RECORD_MAX_BYTES="+FormatBytes(int64(recBytes))+" (its default; lower KTE_RECORD_MAX_BYTES too)")
		}
	}

	c.PartitionKey = l.partitionKey("KTE_PARTITION_KEY")
	c.Flush = l.flush("KTE_FLUSH")
	c.FlushEndMaxWait = l.millis("KTE_FLUSH_END_MAX_WAIT_MS", 0, 60000)
	c.FlushMax = l.millis("KTE_FLUSH_MAX_MS", 50, 900000)
	c.SendTimeout = l.millis("KTE_SEND_TIMEOUT_MS", 100, 60000)
	c.ShutdownMargin = l.millis("KTE_SHUTDOWN_MARGIN_MS", 0, 1000)

	c.Metrics = l.boolean("KTE_METRICS")
	c.MetricsNamespace = l.namespace("KTE_METRICS_NAMESPACE")
	c.MetricsDimensions = l.list("KTE_METRICS_DIMENSIONS", []string{DimensionFunction, DimensionVersion, DimensionStream}, true)
	c.LogLevel = l.logLevel("KTE_LOG_LEVEL")

	// The ring is checked last: its minimum depends on the buffer settings
	// and KTE_ENRICH, so it is only judged when those are valid.
	okEnrich := l.okBool("KTE_ENRICH")
	c.RingBytes = l.ring("KTE_RING_BYTES", okItems && okBytes && okEnrich && okRec, bufBytes, bufItems, c.Enrich, recBytes)
	l.ringFitsMemory("KTE_RING_BYTES", c.RingBytes)

	l.lambda(&c.Lambda)
	l.clientSettings()
	if c.Region == "" {
		c.Region = c.StreamRegion()
	}
	l.identity(&c)
	l.flushNeedsRuntimeDone(&c)

	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return c, nil
}

// LoadLambda reads only the Lambda environment (the part of Load that the
// lifecycle needs before it can report other configuration errors). The
// error, if any, is a *VarError for AWS_LAMBDA_RUNTIME_API; the other fields
// are filled in either way.
func LoadLambda(lookup func(string) (string, bool)) (Lambda, error) {
	l := loader{lookup: lookup}
	var lam Lambda
	l.lambda(&lam)
	return lam, errors.Join(l.errs...)
}

// loader collects errors while parsing; not safe for concurrent use.
type loader struct {
	lookup func(string) (string, bool)
	errs   []error
}

// raw returns the variable's value, or its documented default when unset.
func (l *loader) raw(name string) (string, bool) {
	if v, ok := l.lookup(name); ok {
		return v, true
	}
	d := lookupDoc(name)
	if d == nil {
		panic("BUG: config: variable " + name + " missing from Vars")
	}
	return d.value, false
}

func (l *loader) fail(name, raw, want string) {
	l.errs = append(l.errs, &VarError{Name: name, Value: raw, Want: want})
}

func (l *loader) stream(name string) (streamName, arn string) {
	const want = "a stream name (1–128 characters of a-z A-Z 0-9 _ . -) or a stream ARN (arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>)"
	v, set := l.raw(name)
	if !set {
		l.errs = append(l.errs, &VarError{Name: name, Unset: true, Want: want})
		return "", ""
	}
	if validStreamName(v) {
		return v, ""
	}
	if n, ok := parseStreamARN(v); ok {
		return n, v
	}
	l.fail(name, v, want)
	return "", ""
}

func validStreamName(s string) bool {
	if len(s) == 0 || len(s) > KinesisMaxStreamNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// parseStreamARN checks arn:<partition>:kinesis:<region>:<account>:stream/<name>
// and returns the name.
func parseStreamARN(s string) (string, bool) {
	parts := splitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" {
		return "", false
	}
	if !validPartition(parts[1]) || !validRegion(parts[3]) || !validAccount(parts[4]) {
		return "", false
	}
	name, ok := cutPrefix(parts[5], "stream/")
	if !ok || !validStreamName(name) {
		return "", false
	}
	return name, true
}

// validPartition accepts aws and aws-<suffix>... (aws-cn, aws-us-gov, aws-iso-b).
func validPartition(p string) bool {
	rest, ok := cutPrefix(p, "aws")
	if !ok {
		return false
	}
	for rest != "" {
		var word string
		word, ok = cutPrefix(rest, "-")
		if !ok {
			return false
		}
		i := 0
		for i < len(word) && word[i] >= 'a' && word[i] <= 'z' {
			i++
		}
		if i == 0 {
			return false
		}
		rest = word[i:]
	}
	return true
}

// validRegion accepts lower-case words joined by '-' and ending in a number
// (us-east-1, us-gov-west-1, eusc-de-east-1), up to 64 characters (the
// longest regions are under 20).
func validRegion(r string) bool {
	words := split(r, "-")
	if len(words) < 2 || len(r) > 64 {
		return false
	}
	for i, w := range words {
		if w == "" {
			return false
		}
		last := i == len(words)-1
		for j := 0; j < len(w); j++ {
			c := w[j]
			if last && !(c >= '0' && c <= '9') || !last && !(c >= 'a' && c <= 'z') {
				return false
			}
		}
	}
	return true
}

func validAccount(a string) bool {
	if len(a) != 12 {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return false
		}
	}
	return true
}

// parseUint accepts plain decimal digits only (no sign, no spaces), up to 9
// digits.
func parseUint(s string) (int, bool) {
	if len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func (l *loader) intIn(name string, lo, hi int) (int, bool) {
	v, _ := l.raw(name)
	n, ok := parseUint(v)
	if !ok || n < lo || n > hi {
		l.fail(name, v, "an integer between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
		return 0, false
	}
	return n, true
}

func (l *loader) millis(name string, lo, hi int) time.Duration {
	n, _ := l.intIn(name, lo, hi)
	return time.Duration(n) * time.Millisecond
}

func (l *loader) sizeIn(name string, lo, hi int) (int, bool) {
	v, _ := l.raw(name)
	n, err := ParseBytes(v)
	if err != nil || n < int64(lo) || n > int64(hi) {
		want := "a size between " + FormatBytes(int64(lo)) + " and " + FormatBytes(int64(hi))
		want += sizeHint(err)
		l.fail(name, v, want)
		return 0, false
	}
	return int(n), true
}

func sizeHint(err error) string {
	switch {
	case errors.Is(err, ErrAmbiguousUnit):
		return ` (decimal units are ambiguous: use B, KiB, MiB or GiB, e.g. "1MiB" = 1048576 bytes)`
	case err != nil:
		return ` (bytes, or a whole number with unit B, KiB, MiB or GiB, e.g. "512KiB")`
	}
	return ""
}

func (l *loader) port(name string) int {
	v, _ := l.raw(name)
	n, ok := parseUint(v)
	if !ok || n < 1 || n > 65535 || n == 9001 {
		l.fail(name, v, "a port between 1 and 65535 other than 9001 (reserved by Lambda)")
		return 0
	}
	return n
}

func parseBool(v string) (val, ok bool) {
	switch toLower(v) {
	case "true", "1", "on":
		return true, true
	case "false", "0", "off":
		return false, true
	}
	return false, false
}

func (l *loader) boolean(name string) bool {
	v, _ := l.raw(name)
	b, ok := parseBool(v)
	if !ok {
		l.fail(name, v, "one of true, false, 1, 0, on, off")
	}
	return b
}

// okBool reports whether the variable holds a valid boolean (without adding
// an error; boolean already did).
func (l *loader) okBool(name string) bool {
	v, _ := l.raw(name)
	_, ok := parseBool(v)
	return ok
}

// list parses a comma list of distinct items from allowed (case-insensitive,
// spaces around items ignored). With allowNone, "none" means an empty list.
func (l *loader) list(name string, allowed []string, allowNone bool) []string {
	v, _ := l.raw(name)
	want := "a comma list of " + join(allowed, ", ") + " without duplicates"
	if allowNone {
		want += `, or "none"`
	}
	if allowNone && equalFold(trimSpace(v), "none") {
		return []string{}
	}
	items := split(v, ",")
	out := make([]string, 0, len(items))
	for _, it := range items {
		it = toLower(trimSpace(it))
		found := ""
		for _, a := range allowed {
			if it == a {
				found = a
			}
		}
		if found == "" || contains(out, found) {
			l.fail(name, v, want)
			return nil
		}
		out = append(out, found)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (l *loader) partitionKey(name string) PartitionKey {
	v, _ := l.raw(name)
	switch v {
	case "environment":
		return PartitionKey{Mode: PartitionKeyEnvironment}
	case "random":
		return PartitionKey{Mode: PartitionKeyRandom}
	case "function":
		return PartitionKey{Mode: PartitionKeyFunction}
	}
	const want = "environment, random, function, or a fixed key of 1–256 UTF-16 code units"
	keywords := []string{"environment", "random", "function"}
	for _, kw := range keywords {
		// A keyword in other case is almost certainly meant as the keyword;
		// refuse rather than silently use it as a fixed key.
		if equalFold(v, kw) {
			l.fail(name, v, want+` (keywords are lower-case: did you mean "`+kw+`"?)`)
			return PartitionKey{}
		}
	}
	if trimmed := trimSpace(v); trimmed != v {
		// Likewise white space at either end: "random " (a stray space in
		// a template) would put every record on one shard.
		hint := ""
		for _, kw := range keywords {
			if equalFold(trimmed, kw) {
				hint = ` (did you mean "` + kw + `"?)`
			}
		}
		l.fail(name, v, want+" without white space at either end"+hint)
		return PartitionKey{}
	}
	if !ValidPartitionKey(v) {
		l.fail(name, v, want+" of valid UTF-8 (Kinesis counts a key's length in UTF-16 code units: 1 for most characters, 2 for one above U+FFFF such as an emoji)")
		return PartitionKey{}
	}
	return PartitionKey{Mode: PartitionKeyFixed, Fixed: v}
}

func (l *loader) flush(name string) Flush {
	v, _ := l.raw(name)
	switch v {
	case "invoke":
		return Flush{Mode: FlushInvoke}
	case "end":
		return Flush{Mode: FlushEnd}
	case "auto":
		return Flush{Mode: FlushAuto}
	}
	if p, ok := cutPrefix(v, "periodic:"); ok {
		d, err := time.ParseDuration(p)
		if err == nil && d >= time.Second && d <= time.Hour {
			return Flush{Mode: FlushPeriodic, Period: d}
		}
	}
	l.fail(name, v, `one of invoke, end, auto, or periodic:<duration between 1s and 1h> (e.g. "periodic:30s")`)
	return Flush{}
}

// namespace checks a CloudWatch metric namespace: 1–255 ASCII characters
// from A-Z a-z 0-9 . - _ / # : and space, with a non-space character, not
// starting with ':' and not in the reserved "AWS/" space (CloudWatch API
// reference, Metric.Namespace pattern [^:].* and length 1–255; CloudWatch
// user guide, "Namespaces": the allowed characters; PutMetricData: "AWS/" is
// reserved; read 2026-11).
func (l *loader) namespace(name string) string {
	v, _ := l.raw(name)
	ok := len(v) >= 1 && len(v) <= 255 && v[0] != ':' && trimSpace(v) != "" && !hasPrefix(v, "AWS/")
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || indexByte(".-_/#: ", c) >= 0
	}
	if !ok {
		l.fail(name, v, `1–255 characters of A-Z a-z 0-9 . - _ / # : and space, not starting with ":" or "AWS/"`)
		return ""
	}
	return v
}

func (l *loader) logLevel(name string) Level {
	v, _ := l.raw(name)
	switch toLower(v) {
	case "error":
		return LevelError
	case "warn":
		return LevelWarn
	case "info":
		return LevelInfo
	case "debug":
		return LevelDebug
	}
	l.fail(name, v, "one of error, warn, info, debug")
	return LevelInfo
}

// ring validates KTE_RING_BYTES against the reservation that the buffer
// settings imply; depsOK says whether those settings parsed.
func (l *loader) ring(name string, depsOK bool, bufBytes, bufItems int, enrich bool, recordMax int) int {
	v, set := l.lookup(name)
	if !depsOK {
		if set {
			// Still check what can be checked alone.
			n, err := ParseBytes(v)
			if err != nil || n <= 0 || n&(n-1) != 0 || n > MaxRingBytes {
				l.fail(name, v, "a power of two ≤ 1GiB"+sizeHint(err))
			}
		}
		return 0
	}
	res := maxPostReservation(bufBytes, bufItems, enrich, recordMax)
	minimum := minRingBytes(res)
	if !set {
		return max(DefaultRingBytes, minimum)
	}
	n, err := ParseBytes(v)
	if err != nil || n < int64(minimum) || n&(n-1) != 0 || n > MaxRingBytes {
		l.fail(name, v, "a power of two between "+FormatBytes(int64(minimum))+" and "+FormatBytes(MaxRingBytes)+
			"; the minimum is 2 × the largest delivery reservation, "+strconv.Itoa(res)+" B for KTE_BUFFER_MAX_BYTES="+FormatBytes(int64(bufBytes))+
			", KTE_BUFFER_MAX_ITEMS="+strconv.Itoa(bufItems)+", KTE_ENRICH="+strconv.FormatBool(enrich)+" and KTE_RECORD_MAX_BYTES="+FormatBytes(int64(recordMax))+
			" (a body of up to 2 × "+FormatBytes(int64(bufBytes))+" + "+FormatBytes(PostSlackBytes)+" stored as events with "+strconv.Itoa(perEventBytes(enrich))+
			" B of framing each, or as base64 in wrapped records when it cannot be split)"+sizeHint(err))
		return 0
	}
	return int(n)
}

// ringFitsMemory refuses a ring set above half the function's memory
// (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MiB, when it is a positive integer).
// The ring's pages become resident as it fills, and it fills while Kinesis
// is unavailable: a ring the function's memory cannot hold beside the
// function gets the execution environment stopped for running out of
// memory, where a full ring that fits makes the listener answer 503 and
// Lambda retry the delivery. The default ring (8MiB, at most 16MiB for the
// largest buffer settings) fits the smallest function, 128MB.
func (l *loader) ringFitsMemory(name string, ring int) {
	v, set := l.lookup(name)
	mem, _ := l.lookup(EnvMemorySize)
	mb, ok := parseUint(mem)
	if !set || ring == 0 || !ok || mb == 0 || ring <= mb*MiB/2 {
		return
	}
	l.fail(name, v, "at most half the function's memory, "+FormatBytes(int64(mb*MiB/2))+" with "+EnvMemorySize+"="+strconv.Itoa(mb)+
		" (the ring fills while Kinesis is unavailable; one the function's memory cannot hold ends in the environment running out of memory "+
		"instead of the extension answering 503): lower "+name+" or raise the function's memory")
}

func perEventBytes(enrich bool) int {
	if enrich {
		return FrameHeaderBytes + EnrichPrefixMaxBytes
	}
	return FrameHeaderBytes
}

// Room for the function's name and version in the enrichment prefix the
// listener writes in front of every event while KTE_ENRICH is on,
//
//	{"lambda":{"function":"…","version":"…","region":"…","account":"…","environment":"…"},
//
// counted as JSON string contents (escapes included). The prefix takes 81
// bytes besides its values, the registration's account id 12, main's
// environment id 32 and the region at most 64 (Load checks it), so with
// these it takes at most 81+256+64+64+12+32 = 509 bytes, within
// EnrichPrefixMaxBytes (config's tests check it against the listener).
// Lambda's function names are at most 64 characters, its versions "$LATEST"
// or a number.
const (
	enrichFunctionMaxBytes = 256
	enrichVersionMaxBytes  = 64
)

// identity checks the function's name and version where the configuration
// uses them: with KTE_ENRICH on, in the prefix of every event, which must
// fit EnrichPrefixMaxBytes; with KTE_PARTITION_KEY=function, the name as
// every record's key. Unchecked, both would be found only when the listener
// and the packer are built, and reported as a failure to listen.
func (l *loader) identity(c *Config) {
	if c.Enrich {
		for _, v := range [...]struct {
			name, value string
			max         int
		}{
			{"AWS_LAMBDA_FUNCTION_NAME", c.FunctionName, enrichFunctionMaxBytes},
			{"AWS_LAMBDA_FUNCTION_VERSION", c.FunctionVersion, enrichVersionMaxBytes},
		} {
			if n, _ := jsonesc.EscapedLen([]byte(v.value)); n > v.max {
				l.fail(v.name, v.value, "at most "+strconv.Itoa(v.max)+" bytes once JSON-escaped while KTE_ENRICH is on "+
					"(it goes into the \"lambda\" object written in front of every event, at most "+strconv.Itoa(EnrichPrefixMaxBytes)+" bytes), or set KTE_ENRICH=false")
			}
		}
	}
	if c.PartitionKey.Mode != PartitionKeyFunction || ValidPartitionKey(c.FunctionName) {
		return
	}
	name, set := l.lookup("AWS_LAMBDA_FUNCTION_NAME")
	problem := "is not set"
	switch {
	case set && name == "":
		problem = "is empty"
	case set:
		problem = "is not a valid partition key (1–256 UTF-16 code units of valid UTF-8)"
	}
	v, _ := l.raw("KTE_PARTITION_KEY")
	l.fail("KTE_PARTITION_KEY", v, "environment, random or a fixed key while AWS_LAMBDA_FUNCTION_NAME "+problem+
		" (function makes the function name every record's key)")
}

// flushNeedsRuntimeDone refuses end and auto when KTE_TYPES leaves out
// platform: both wait for the invocation's platform.runtimeDone, which would
// then never come, so every INVOKE would wait KTE_FLUSH_END_MAX_WAIT_MS for
// nothing (billed time). Managed Instances ignore KTE_FLUSH.
func (l *loader) flushNeedsRuntimeDone(c *Config) {
	if c.LMI || c.Types == nil || contains(c.Types, TypePlatform) ||
		c.Flush.Mode != FlushEnd && c.Flush.Mode != FlushAuto {
		return
	}
	v, _ := l.raw("KTE_FLUSH")
	types, _ := l.raw("KTE_TYPES")
	l.fail("KTE_FLUSH", v, "invoke or periodic:<duration> while KTE_TYPES="+types+" leaves out platform "+
		"(end and auto wait for platform.runtimeDone: add platform to KTE_TYPES to use them)")
}

// clientSettings checks the variables of the AWS SDK's own configuration
// that the Kinesis client reads and the SDK does not check when it is built:
// the region (AWS_REGION, else AWS_DEFAULT_REGION; the SDK ignores an empty
// value) and the endpoint (AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL,
// unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true). The SDK refuses a bad
// value only when it sends each request ("invalid input region",
// "unsupported protocol scheme" for localhost:4566), so nothing would ever
// be delivered.
func (l *loader) clientSettings() {
	if name, v := l.firstNonEmpty("AWS_REGION", "AWS_DEFAULT_REGION"); name != "" && !validClientRegion(v) {
		l.fail(name, v, "a region such as us-east-1: up to 64 characters, labels of letters, digits and '-' (not at either end) joined by '.', as the AWS SDK accepts")
	}
	if ignore, _ := l.lookup("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"); equalFold(ignore, "true") {
		return
	}
	if name, v := l.firstNonEmpty("AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"); name != "" && !ValidEndpoint(v) {
		l.fail(name, v, `an http:// or https:// URL with a host, such as "https://vpce-0123-abcd.kinesis.us-east-1.vpce.amazonaws.com" or "http://localhost:4566"`)
	}
}

// firstNonEmpty returns the first of names whose value is not empty, and
// that value: the one the SDK takes of such a pair. name is "" when none is.
func (l *loader) firstNonEmpty(names ...string) (name, v string) {
	for _, name := range names {
		if v, _ := l.lookup(name); v != "" {
			return name, v
		}
	}
	return "", ""
}

// validClientRegion accepts what the SDK's Kinesis endpoint resolver
// accepts as a region (host labels of A-Z a-z 0-9 and '-', not starting or
// ending with '-', joined by '.': smithy-go's rulesfn.IsValidHostLabel with
// sub-domains), up to 64 bytes: the longest regions are under 20.
func validClientRegion(r string) bool {
	if len(r) > 64 {
		return false
	}
	for _, label := range split(r, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// lambda reads the Lambda environment.
func (l *loader) lambda(c *Lambda) {
	api, ok := l.lookup(EnvRuntimeAPI)
	switch {
	case !ok:
		l.errs = append(l.errs, &VarError{Name: EnvRuntimeAPI, Unset: true, Want: "host:port of the Lambda Runtime API (set by Lambda; is this running as a Lambda extension?)"})
	case !validHostPort(api):
		l.fail(EnvRuntimeAPI, api, "host:port of the Lambda Runtime API")
	default:
		c.RuntimeAPI = api
	}

	c.Region, _ = l.lookup("AWS_REGION")
	if c.Region == "" {
		c.Region, _ = l.lookup("AWS_DEFAULT_REGION")
	}
	c.FunctionName, _ = l.lookup("AWS_LAMBDA_FUNCTION_NAME")
	c.FunctionVersion, _ = l.lookup("AWS_LAMBDA_FUNCTION_VERSION")

	c.LMI = earlyreg.ManagedInstances(l.lookup) // as the registration written during initialisation
	c.SchemaVersion = SchemaVersionDefault
	if c.LMI {
		c.SchemaVersion = SchemaVersionLMI
	}
}
