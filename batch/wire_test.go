package batch

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// sdkProtocol is the SDK's own protocol for Kinesis: the oracle of the
// tests below.
func sdkProtocol() smithyhttp.ClientProtocol {
	return kinesis.New(kinesis.Options{}).Options().Protocol
}

var putRecordsSchema = smithy.NewOperationSchema(schemas.PutRecords, schemas.PutRecordsInput, schemas.PutRecordsOutput)

// serialize runs p's SerializeRequest and returns the request.
func serialize(t *testing.T, p smithyhttp.ClientProtocol, ctx context.Context, in *kinesis.PutRecordsInput) *smithyhttp.Request {
	t.Helper()
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	if err := p.SerializeRequest(ctx, putRecordsSchema, in, req); err != nil {
		t.Fatal(err)
	}
	return req
}

func bodyOf(t *testing.T, req *smithyhttp.Request) []byte {
	t.Helper()
	b, err := io.ReadAll(req.GetStream())
	if err != nil {
		t.Fatal(err)
	}
	if n, ok, _ := req.StreamLength(); ok && n != 0 {
		t.Fatalf("unexpected stream length after reading; got %d; want 0 left", n)
	}
	return b
}

// randomInput is a PutRecords input with awkward partition keys: quotes,
// backslashes, control characters, non-ASCII and invalid UTF-8.
func randomInput(rng *rand.Rand, n int) *kinesis.PutRecordsInput {
	keys := []string{"plain", `q"uo\te`, "tab\tnl\nnul\x00\x1f", "ünïcødé ✓ 𝄞", "bad\xffutf8\xc3", "\u2028line", ""}
	in := &kinesis.PutRecordsInput{StreamName: aws.String(`stream"name`)}
	if rng.IntN(2) == 0 {
		in.StreamARN = aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/s")
	}
	for range n {
		data := make([]byte, rng.IntN(300))
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		e := types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(keys[rng.IntN(len(keys))])}
		if rng.IntN(4) == 0 {
			e.ExplicitHashKey = aws.String("170141183460469231731687303715884105728")
		}
		in.Records = append(in.Records, e)
	}
	return in
}

// TestWireRequestMatchesSDK: the body wireProtocol writes decodes to the
// same JSON value as the SDK's, and the headers that route the call match.
func TestWireRequestMatchesSDK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sdk := sdkProtocol()
	wire := wireProtocol{sdk}
	for i := range 50 {
		in := randomInput(rng, i*7%60)
		want := serialize(t, sdk, context.Background(), in)
		got := serialize(t, wire, withWireBuffers(context.Background(), &wireBuffers{}), in)
		var wv, gv any
		wb, gb := bodyOf(t, want), bodyOf(t, got)
		if err := json.Unmarshal(wb, &wv); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(gb, &gv); err != nil {
			t.Fatalf("wire body is not JSON: %v\n%s", err, gb)
		}
		if !reflect.DeepEqual(wv, gv) {
			t.Fatalf("unexpected body\ngot  %s\nwant %s", gb, wb)
		}
		for _, h := range []string{"X-Amz-Target", "Content-Type"} {
			if g, w := got.Header.Get(h), want.Header.Get(h); g != w {
				t.Fatalf("unexpected %s; got %q; want %q", h, g, w)
			}
		}
		if got.Method != want.Method || got.URL.Path != want.URL.Path || got.ContentLength != int64(len(gb)) {
			t.Fatalf("unexpected request line; got %s %q length %d; want %s %q length %d",
				got.Method, got.URL.Path, got.ContentLength, want.Method, want.URL.Path, len(gb))
		}
		if !got.IsStreamSeekable() {
			t.Fatal("unexpected unseekable body: SigV4 hashes it before sending")
		}
	}
}

// TestWireRequestFallsBack: inputs with members the writer does not know
// go to the SDK's serialiser unchanged.
func TestWireRequestFallsBack(t *testing.T) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s"), DryRun: aws.Bool(true),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}}
	got := bodyOf(t, serialize(t, wireProtocol{sdkProtocol()}, context.Background(), in))
	if !bytes.Contains(got, []byte(`"DryRun":true`)) {
		t.Fatalf("unexpected body %s; want the SDK's, with DryRun", got)
	}
}

// deserialize runs p's DeserializeResponse on an answer.
func deserialize(p smithyhttp.ClientProtocol, ctx context.Context, status int, body string) (*kinesis.PutRecordsOutput, error) {
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}}
	out := &kinesis.PutRecordsOutput{}
	err := p.DeserializeResponse(ctx, putRecordsSchema, kinesis.TypeRegistry, resp, out)
	return out, err
}

func codes(out *kinesis.PutRecordsOutput) []string {
	var c []string
	for _, r := range out.Records {
		c = append(c, aws.ToString(r.ErrorCode))
	}
	return c
}

// TestWireAnswerMatchesSDK: answers decode to the same error codes, record
// for record, as with the SDK's decoder; malformed ones are errors; error
// answers are the SDK's typed errors.
func TestWireAnswerMatchesSDK(t *testing.T) {
	sdk := sdkProtocol()
	wire := wireProtocol{sdk}
	good := []string{
		`{"FailedRecordCount":0,"Records":[{"SequenceNumber":"4959","ShardId":"shardId-000000000000"}]}`,
		`{"Records":[],"FailedRecordCount":0}`,
		` { "EncryptionType" : "KMS" , "FailedRecordCount" : 2 , "Records" : [ {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard \"x\""} ,
		  {"SequenceNumber":"1","ShardId":"s"}, {"ErrorCode":"InternalFailure","ErrorMessage":"Internal service failure."},
		  {"ErrorCode":"SomethingNew\u0021","Extra":{"a":[1,-2.5e+3,true,false,null,{"b":"\\"}]}} ] } `,
		`{"Records":[{"ErrorCode":"KMSThrottlingException"}],"Unknown":[[],{}],"N":-0.1E-2}`,
	}
	for _, body := range good {
		w, err := deserialize(sdk, context.Background(), 200, body)
		if err != nil {
			t.Fatalf("SDK cannot decode %s: %v", body, err)
		}
		b := &wireBuffers{}
		g, err := deserialize(wire, withWireBuffers(context.Background(), b), 200, body)
		if err != nil {
			t.Fatalf("unexpected error %v for %s", err, body)
		}
		if !reflect.DeepEqual(codes(g), codes(w)) {
			t.Fatalf("unexpected codes %q for %s; want %q", codes(g), body, codes(w))
		}
		failed := int32(0)
		for _, c := range codes(w) {
			if c != "" {
				failed++
			}
		}
		if g.FailedRecordCount == nil || *g.FailedRecordCount != failed {
			t.Fatalf("unexpected FailedRecordCount %v; want %d", g.FailedRecordCount, failed)
		}
	}
	bad := []string{``, `[]`, `{"Records":[{]}`, `{"Records":[{"ErrorCode":1}]}`, `{"FailedRecordCount":0}`,
		`{"Records":[]} x`, `{"Records":[],"N":01}`, `{"Records":[],"N":tru}`, `{"Records":["unterminated]}`,
		`{"Records":[{"ErrorCode":"a\qb"}]}`, "{\"Records\":[{\"ErrorCode\":\"a\x01\"}]}", `{"Records":[],}`, `{"Records":[1,]}`}
	for _, body := range bad {
		if _, err := deserialize(wire, context.Background(), 200, body); err == nil {
			t.Fatalf("unexpected success for malformed answer %q", body)
		} else if !strings.Contains(err.Error(), "PutRecords answer") && body != "" {
			t.Fatalf("unexpected error %v for %q; want it to name the answer", err, body)
		}
	}

	// Error answers keep the SDK's typed errors, which classify relies on.
	_, err := deserialize(wire, context.Background(), 400, `{"__type":"ResourceNotFoundException","message":"Stream s not found"}`)
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Fatalf("unexpected error %T %v; want *types.ResourceNotFoundException", err, err)
	}
}

// TestWireBuffersReused: with the packer's buffers, writing a request
// (both passes of it: SigV4's hash, then the send) and reading its answer
// allocate nothing once the buffers have grown.
func TestWireBuffersReused(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	in := randomInput(rng, 500)
	for i := range in.Records {
		in.Records[i].PartitionKey = aws.String("0123456789abcdef0123456789abcdef")
	}
	answer := answer500()
	b := &wireBuffers{}
	send := make([]byte, 32<<10) // net/http's copy buffer
	holdUpTo := int64(heldMax)
	var held bool
	run := func() {
		var body bodyReader
		body, held = bodyFor(t, b, in, holdUpTo)
		if n, err := io.Copy(io.Discard, body); err != nil || n != b.stream.size {
			t.Fatalf("unexpected hash pass: %d of %d bytes, %v", n, b.stream.size, err)
		}
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var sent int64
		for {
			n, err := body.Read(send)
			sent += int64(n)
			if err == io.EOF {
				break
			}
		}
		if sent != b.stream.size {
			t.Fatalf("unexpected send pass: %d of %d bytes", sent, b.stream.size)
		}
		var failed int32
		var err error
		if b.records, failed, err = parsePutRecordsAnswer(answer, b.records[:0]); err != nil || failed != 1 || len(b.records) != 500 {
			t.Fatalf("unexpected answer: %d records, %d failed, %v", len(b.records), failed, err)
		}
	}
	for _, holdUpTo = range []int64{heldMax, 0} {
		run()
		if held != (holdUpTo > 0) {
			t.Fatalf("unexpected held=%t for a body of %d bytes held up to %d", held, b.stream.size, holdUpTo)
		}
		if allocs := testing.AllocsPerRun(20, run); allocs != 0 {
			t.Fatalf("unexpected %.1f allocations per 500-record request (held=%t); want 0", allocs, held)
		}
	}
}

// FuzzWireAnswer checks parsePutRecordsAnswer against encoding/json: it
// accepts exactly the answers that are a JSON object whose Records member
// is an array of objects with a string or null ErrorCode, or none, and it
// reads the same codes.
func FuzzWireAnswer(f *testing.F) {
	for _, s := range []string{
		`{"FailedRecordCount":1,"Records":[{"SequenceNumber":"1","ShardId":"s"},{"ErrorCode":"InternalFailure","ErrorMessage":"x"}]}`,
		`{"Records":[{"ErrorCode":null},{"ErrorCode":"a\"b"}],"Records":[]}`, `{"Records":[{"ErrorCode":"x","ErrorCode":"y"}]}`,
		`{"Records":[{}],"x":[1.5e3,-0,{"y":null}]}`, `{"Records":null}`, `[{"Records":[]}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, failed, err := parsePutRecordsAnswer(body, nil)
		want, ok := oracleAnswer(body)
		if !ok {
			if err == nil {
				t.Fatalf("unexpected success for %q; encoding/json does not read it as an answer", body)
			}
			return
		}
		if err != nil {
			t.Fatalf("unexpected error %v for %q; encoding/json reads codes %q", err, body, want)
		}
		var got []string
		n := int32(0)
		for _, r := range recs {
			if r.ErrorCode != nil {
				n++
			}
			got = append(got, "="+aws.ToString(r.ErrorCode))
			if r.ErrorCode == nil {
				got[len(got)-1] = "nil"
			}
		}
		if n != failed {
			t.Fatalf("unexpected failed count %d; want %d", failed, n)
		}
		if utf8.Valid(body) && !reflect.DeepEqual(got, want) {
			t.Fatalf("unexpected codes %q for %q; want %q", got, body, want)
		}
		if len(got) != len(want) {
			t.Fatalf("unexpected %d records for %q; want %d", len(got), body, len(want))
		}
	})
}

// oracleAnswer reads body with encoding/json the way the packer needs it.
func oracleAnswer(body []byte) ([]string, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil {
		return nil, false
	}
	raw, ok := top["Records"]
	if !ok {
		return nil, false
	}
	var recs []map[string]json.RawMessage
	if json.Unmarshal(raw, &recs) != nil || recs == nil {
		return nil, false
	}
	codes := []string{}
	for _, r := range recs {
		if r == nil {
			return nil, false
		}
		c, ok := r["ErrorCode"]
		if !ok || string(c) == "null" {
			codes = append(codes, "nil")
			continue
		}
		var s string
		if json.Unmarshal(c, &s) != nil {
			return nil, false
		}
		codes = append(codes, "="+s)
	}
	if len(codes) == 0 {
		codes = nil
	}
	return codes, true
}

// BenchmarkParseAnswer reads a 500-record answer with one failed record.
func BenchmarkParseAnswer(b *testing.B) {
	body := answer500()
	var recs []types.PutRecordsResultEntry
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if recs, _, err = parsePutRecordsAnswer(body, recs[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSpecial8: every byte value in every position, among ordinary bytes
// (and among 0xff bytes, which stress the borrow of the bit trick).
func TestSpecial8(t *testing.T) {
	for _, fill := range []byte{'a', 0xff, 0x20, 0x5d} {
		for pos := range 8 {
			for c := range 256 {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				want := false
				for _, x := range b {
					want = want || x < 0x20 || x == '\\'
				}
				if got := special8(binary.LittleEndian.Uint64(b[:])); got != want {
					t.Fatalf("unexpected special8(%q) = %v; want %v", b, got, want)
				}
			}
		}
	}
}

// answer500 is a 500-record PutRecords answer whose eighth record failed,
// with entries of the size Kinesis writes.
func answer500() []byte {
	var b strings.Builder
	b.WriteString(`{"FailedRecordCount":1,"Records":[`)
	for i := range 500 {
		if i > 0 {
			b.WriteByte(',')
		}
		if i == 7 {
			b.WriteString(`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream s under account 123456789012."}`)
			continue
		}
		b.WriteString(`{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000001"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}
