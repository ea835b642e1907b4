package batch

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The packer's PutRecords calls go through the SDK as any call does
// (endpoint resolution, credentials, SigV4, the HTTP client, typed errors),
// but their body is written and their answer read by wireProtocol, a
// smithyhttp.ClientProtocol that handles PutRecords and hands every other
// operation, and every error answer, to the SDK's own awsJson 1.1 protocol.
//
// Why: the SDK's generic serialiser turns each record into a base64 string,
// then writes it into a growing buffer (about three copies of every byte and
// a buffer that doubles up to twice the request), and its decoder allocates
// four objects for every record of the answer. Together that was a third of
// KTE's CPU end to end (bench/results/profile-kte-endtoend.txt) and the
// largest share of its garbage. Here the body is written base64 straight
// from ring memory (putRecordsBody, wirebody.go): once, into a buffer reused
// from call to call, or, past heldMax, as it is read. The answer is scanned
// for what the packer needs: the per-record error codes.

// Names of the Kinesis JSON protocol (awsJson 1.1, service
// Kinesis_20131202); protocol.md, section 4.
const (
	wireTarget      = "Kinesis_20131202.PutRecords"
	wireContentType = "application/x-amz-json-1.1"
)

// wireBuffers is what one PutRecords call borrows from its caller: the
// request body (see body) and the answer's bytes and entries. The caller
// (the packer, one call at a time) owns it and reuses it for the next call
// once PutRecords has returned: by then the SDK's transport has closed the
// request body under a lock (smithyhttp.Request.Build), so nothing reads
// it any more.
type wireBuffers struct {
	stream  putRecordsBody // a body written as it is read
	held    []byte         // a body written once; grows to heldMax at most
	reader  bytes.Reader   // reads held
	answer  []byte
	records []types.PutRecordsResultEntry
}

type wireKey struct{}

// withWireBuffers returns ctx carrying b for the PutRecords call made with it.
func withWireBuffers(ctx context.Context, b *wireBuffers) context.Context {
	return context.WithValue(ctx, wireKey{}, b)
}

// wireProtocol implements smithyhttp.ClientProtocol: PutRecords here, the
// rest by base.
type wireProtocol struct {
	smithyhttp.ClientProtocol
}

// SerializeRequest writes a PutRecords body; other operations, and inputs
// with members this writer does not know, go to the SDK's serialiser.
func (w wireProtocol) SerializeRequest(ctx context.Context, schema *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	pr, ok := in.(*kinesis.PutRecordsInput)
	if !ok || pr.DryRun != nil || pr.StreamId != nil {
		return w.ClientProtocol.SerializeRequest(ctx, schema, in, req)
	}
	b, _ := ctx.Value(wireKey{}).(*wireBuffers)
	if b == nil {
		b = new(wireBuffers) // a call without the packer's buffers (tests, other callers)
	}
	body, err := b.body(pr, heldMax)
	if err != nil {
		return err
	}
	req.Method = http.MethodPost
	if req.URL.Path == "" {
		req.URL.Path = "/"
	}
	req.Header.Set("X-Amz-Target", wireTarget)
	req.Header.Set("Content-Type", wireContentType)
	sreq, err := req.SetStream(body)
	if err != nil {
		return fmt.Errorf("batch: cannot set the PutRecords body: %w", err)
	}
	*req = *sreq
	return nil
}

// DeserializeResponse reads a successful PutRecords answer; error answers
// (typed exceptions) and other operations go to the SDK's decoder.
func (w wireProtocol) DeserializeResponse(ctx context.Context, schema *smithy.OperationSchema, reg *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) error {
	po, ok := out.(*kinesis.PutRecordsOutput)
	if !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return w.ClientProtocol.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	b, _ := ctx.Value(wireKey{}).(*wireBuffers)
	if b == nil {
		b = new(wireBuffers)
	}
	// The answer is about 100 bytes a record.
	buf := bytes.NewBuffer(b.answer[:0])
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return &smithy.DeserializationError{Err: fmt.Errorf("reading the PutRecords answer: %w", err)}
	}
	b.answer = buf.Bytes()
	recs, failed, err := parsePutRecordsAnswer(b.answer, b.records[:0])
	if err != nil {
		return &smithy.DeserializationError{Err: err, Snapshot: truncateSnapshot(b.answer)}
	}
	b.records = recs
	po.Records = recs
	po.FailedRecordCount = &failed
	return nil
}

func truncateSnapshot(b []byte) []byte {
	const n = 1024
	if len(b) > n {
		b = b[:n]
	}
	return bytes.Clone(b)
}

// Error codes the packer tells apart, shared so that decoding an answer
// does not allocate a string for each failed record.
var knownCodes = [...]string{
	codeThroughput, codeInternal, "KMSThrottlingException", "KMSAccessDeniedException",
	"KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException", "KMSOptInRequired",
}

var errAnswer = errors.New("batch: malformed PutRecords answer")

// parsePutRecordsAnswer reads a PutRecords answer,
// {"FailedRecordCount":n,"Records":[{"SequenceNumber":…,"ShardId":…}|{"ErrorCode":…,"ErrorMessage":…},…],…},
// into recs (reused): one entry per record, ErrorCode set for the failed
// ones and nothing else. It checks the structure it walks and allocates only
// for an error code it does not know.
func parsePutRecordsAnswer(b []byte, recs []types.PutRecordsResultEntry) ([]types.PutRecordsResultEntry, int32, error) {
	s := scanner{b: b}
	sawRecords := false
	err := s.object(func(key []byte) error {
		if string(key) != "Records" {
			return s.skip()
		}
		sawRecords = true
		recs = recs[:0] // a repeated key: the last one counts, as in encoding/json
		return s.array(func() error {
			recs = append(recs, types.PutRecordsResultEntry{})
			e := &recs[len(recs)-1]
			return s.object(func(key []byte) error {
				if string(key) != "ErrorCode" {
					return s.skip()
				}
				if s.space(); s.i < len(s.b) && s.b[s.i] == 'n' {
					e.ErrorCode = nil
					return s.literal("null")
				}
				v, err := s.str()
				if err != nil {
					return err
				}
				e.ErrorCode = internCode(v)
				return nil
			})
		})
	})
	if err == nil {
		s.space()
		if s.i != len(s.b) {
			err = s.fail("trailing data")
		}
	}
	if err == nil && !sawRecords {
		err = fmt.Errorf("%w: no Records", errAnswer)
	}
	var failed int32
	for i := range recs {
		if recs[i].ErrorCode != nil {
			failed++
		}
	}
	return recs, failed, err
}

func internCode(v []byte) *string {
	for i := range knownCodes {
		if string(v) == knownCodes[i] {
			return &knownCodes[i]
		}
	}
	c := string(v)
	return &c
}

// scanner walks JSON without building values. Strings it returns are
// the raw bytes between the quotes, unescaped only when they hold an escape.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errAnswer, what, s.i)
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) expect(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object walks an object, calling member with each key; member must
// consume the value.
func (s *scanner) object(member func(key []byte) error) error {
	if !s.expect('{') {
		return s.fail("object expected")
	}
	if s.expect('}') {
		return nil
	}
	for {
		s.space()
		key, err := s.str()
		if err != nil {
			return err
		}
		if !s.expect(':') {
			return s.fail("':' expected")
		}
		if err := member(key); err != nil {
			return err
		}
		if s.expect(',') {
			continue
		}
		if s.expect('}') {
			return nil
		}
		return s.fail("',' or '}' expected")
	}
}

// array walks an array, calling elem for each element; elem must consume it.
func (s *scanner) array(elem func() error) error {
	if !s.expect('[') {
		return s.fail("array expected")
	}
	if s.expect(']') {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		if s.expect(',') {
			continue
		}
		if s.expect(']') {
			return nil
		}
		return s.fail("',' or ']' expected")
	}
}

// str reads a string. Escapes are decoded into a new slice (rare in this
// answer: error messages only). The closing quote is found with
// bytes.IndexByte; the string's bytes are then checked in one tight loop.
func (s *scanner) str() ([]byte, error) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, s.fail("string expected")
	}
	start := s.i + 1
	end := start
	for {
		q := bytes.IndexByte(s.b[end:], '"')
		if q < 0 {
			s.i = len(s.b)
			return nil, s.fail("unterminated string")
		}
		end += q
		bs := 0 // backslashes right before the quote: an odd count escapes it
		for k := end - 1; k >= start && s.b[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			break
		}
		end++
	}
	v := s.b[start:end]
	escaped := false
	k := 0
	for ; k+8 <= len(v) && !special8(binary.LittleEndian.Uint64(v[k:])); k += 8 {
	}
	for _, c := range v[k:] {
		if c < 0x20 {
			return nil, s.fail("control character in string")
		}
		if c == '\\' {
			escaped = true
		}
	}
	s.i = end + 1
	if !escaped {
		return v, nil
	}
	var u string
	if err := json.Unmarshal(s.b[start-1:end+1], &u); err != nil {
		return nil, s.fail("bad string escape")
	}
	return []byte(u), nil
}

// special8 reports whether any of the 8 bytes in x is a control character
// (below 0x20) or a backslash (bit tricks: a byte below n, a zero byte).
func special8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (x - ones*0x20) &^ x & highs
	y := x ^ (ones * '\\')
	bs := (y - ones) &^ y & highs
	return below|bs != 0
}

// skip consumes one value of any kind.
func (s *scanner) skip() error {
	s.space()
	if s.i >= len(s.b) {
		return s.fail("value expected")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("bad literal")
	}
	s.i += len(lit)
	return nil
}

// number consumes a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return s.fail("value expected")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("bad number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail("bad number")
		}
	}
	return nil
}
