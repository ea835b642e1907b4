package listener

import (
	"github.com/valyala/fasthttp"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// Member exposes member for tests.
func Member(obj []byte, key string) []byte { return member(obj, key) }

// Unescape decodes the content of a valid JSON string into a fresh slice.
func Unescape(raw []byte) ([]byte, bool) {
	dst := make([]byte, 3*len(raw))
	n, ok := unescapeInto(dst, raw)
	return dst[:n], ok
}

// AppendEscaped exposes jsonesc.AppendEscaped and jsonesc.EscapedLen to the listener's tests.
func AppendEscaped(dst, p []byte) []byte { return jsonesc.AppendEscaped(dst, p) }
func EscapedLen(p []byte) (int, bool)    { return jsonesc.EscapedLen(p) }

// AppendPrefix exposes the enrichment prefix.
func AppendPrefix(dst []byte, id Identity) []byte { return appendPrefix(dst, id) }

// Handle runs the handler on a prepared request.
func (l *Listener) Handle(ctx *fasthttp.RequestCtx) { l.handle(ctx) }

// MaxHeaderLen exposes the wrapped-record header bound.
func MaxHeaderLen(maxPrefix int) int { return maxHeaderLen(maxPrefix) }
