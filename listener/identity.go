package listener

import "github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"

// Identity says where events come from; with enrichment on, the listener
// writes it as a "lambda" object in front of every event's own members.
type Identity struct {
	Function    string // function name
	Version     string // function version, e.g. "$LATEST" or "7"
	Region      string // AWS region
	Account     string // account id (registration with the accountId feature)
	Environment string // random id generated once per execution environment
}

// appendPrefix appends the enrichment prefix for id:
//
//	{"lambda":{"function":"…","version":"…","region":"…","account":"…","environment":"…"},
//
// An event `{…}` is written as prefix + event[1:]; an empty event as the
// prefix without its comma + "}". Values are JSON-escaped; invalid UTF-8
// becomes U+FFFD so the result is always valid JSON. (An event that already
// had a "lambda" member would then hold two; Lambda's events have none.)
func appendPrefix(dst []byte, id Identity) []byte {
	dst = append(dst, `{"lambda":{"function":`...)
	dst = jsonesc.AppendString(dst, id.Function)
	dst = append(dst, `,"version":`...)
	dst = jsonesc.AppendString(dst, id.Version)
	dst = append(dst, `,"region":`...)
	dst = jsonesc.AppendString(dst, id.Region)
	dst = append(dst, `,"account":`...)
	dst = jsonesc.AppendString(dst, id.Account)
	dst = append(dst, `,"environment":`...)
	dst = jsonesc.AppendString(dst, id.Environment)
	return append(dst, "},"...)
}

// enrichedSize returns the frame size of event ev (a JSON object as
// SplitArray returns it) written with prefix pre; nil pre means enrichment
// off and the frame is ev itself.
func enrichedSize(ev, pre []byte) int {
	switch {
	case pre == nil:
		return len(ev)
	case isEmptyObject(ev):
		return len(pre) - 1 + len(ev) - 1 // prefix minus ',', then ev after '{'
	default:
		return len(pre) + len(ev) - 1
	}
}

// writeEnriched fills f, of enrichedSize(ev, pre) bytes, with the event.
func writeEnriched(f, ev, pre []byte) {
	switch {
	case pre == nil:
		copy(f, ev)
	case isEmptyObject(ev):
		n := copy(f, pre[:len(pre)-1])
		copy(f[n:], ev[1:]) // any white space, then '}'
	default:
		n := copy(f, pre)
		copy(f[n:], ev[1:])
	}
}

// isEmptyObject reports whether the object ev, which starts with '{', has
// no members.
func isEmptyObject(ev []byte) bool {
	i := skipWS(ev, 1)
	return i < len(ev) && ev[i] == '}'
}
