package e2e

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Lines written by the extension on stderr (batch.Packer.GiveUp, main's
// summary): `KTE_UNDELIVERED reason=<r> <event>` (an event longer than a
// line may be in several lines `KTE_UNDELIVERED reason=<r> id=<id>
// part=<i>/<n> <chunk>`) and `KTE_SUMMARY k=v ...`.
const (
	UndeliveredPrefix = "KTE_UNDELIVERED "
	SummaryPrefix     = "KTE_SUMMARY "
)

// Output collects the lines lambdasim writes to Config.Output ("[name]
// line", stdout and stderr of every extension) and can echo them. It is safe
// for concurrent use; the zero value is ready.
type Output struct {
	// Echo, if set before use, receives a copy of everything written.
	Echo io.Writer

	mu    sync.Mutex
	buf   []byte
	lines [][]byte
}

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Echo != nil {
		_, _ = o.Echo.Write(p)
	}
	o.buf = append(o.buf, p...)
	for {
		i := bytes.IndexByte(o.buf, '\n')
		if i < 0 {
			break
		}
		o.lines = append(o.lines, bytes.Clone(o.buf[:i]))
		o.buf = o.buf[i+1:]
	}
	return len(p), nil
}

// Lines returns the lines of extension name, without the "[name] " tag,
// or every line when name is "" (output that is not tagged, such as the
// emulator's).
func (o *Output) Lines(name string) [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	if name == "" {
		return append([][]byte(nil), o.lines...)
	}
	tag := []byte("[" + name + "] ")
	var out [][]byte
	for _, l := range o.lines {
		if rest, ok := bytes.CutPrefix(l, tag); ok {
			out = append(out, rest)
		}
	}
	return out
}

// Undelivered returns the events of extension name's ("" for all lines) KTE_UNDELIVERED lines
// (as written: enrichment included; an event written in parts joined, once
// its last part is read) and how many events gave each reason.
func (o *Output) Undelivered(name string) (events [][]byte, reasons map[string]int) {
	reasons = map[string]int{}
	parts := map[string][]byte{}
	for _, l := range o.Lines(name) {
		rest, ok := bytes.CutPrefix(l, []byte(UndeliveredPrefix))
		if !ok {
			continue
		}
		r, ev, ok := bytes.Cut(rest, []byte{' '})
		if !ok {
			continue
		}
		reason := string(bytes.TrimPrefix(r, []byte("reason=")))
		if id, rest, ok := bytes.Cut(ev, []byte(" part=")); ok && bytes.HasPrefix(id, []byte("id=")) {
			num, chunk, _ := bytes.Cut(rest, []byte{' '})
			i, n, _ := strings.Cut(string(num), "/")
			key := string(id)
			if i == "1" {
				parts[key] = nil
			}
			parts[key] = append(parts[key], chunk...)
			if i != n {
				continue
			}
			ev = parts[key]
			delete(parts, key)
		}
		reasons[reason]++
		events = append(events, ev)
	}
	return events, reasons
}

// Summary returns the fields of extension name's ("" for all lines) last
// KTE_SUMMARY line.
func (o *Output) Summary(name string) (map[string]string, bool) {
	var last []byte
	for _, l := range o.Lines(name) {
		if bytes.HasPrefix(l, []byte(SummaryPrefix)) {
			last = l
		}
	}
	if last == nil {
		return nil, false
	}
	return ParseSummary(string(last)), true
}

// ParseSummary splits a KTE_SUMMARY line into its key=value fields.
func ParseSummary(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(line, SummaryPrefix)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// ExtensionEnv is the environment the extension needs to ship to a local
// Kinesis endpoint: the endpoint, static fake credentials (no credential
// chain lookups, no instance metadata), the region, the stream, the
// listener port and the shortest Telemetry API buffering timeout. extra
// entries come last and win.
func ExtensionEnv(endpoint, stream string, port int, extra ...string) []string {
	env := []string{
		"AWS_ENDPOINT_URL_KINESIS=" + endpoint,
		"AWS_ACCESS_KEY_ID=AKIDLOCAL",
		"AWS_SECRET_ACCESS_KEY=local-secret",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"KTE_STREAM=" + stream,
		"KTE_LISTEN_PORT=" + strconv.Itoa(port),
		"KTE_BUFFER_TIMEOUT_MS=25",
	}
	return append(env, extra...)
}
