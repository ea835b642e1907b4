package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// bodyInputs are PutRecords inputs for the body tests: the random ones,
// data of every length around base64's 3-byte quantum, and the shapes
// whose punctuation differs (no records, an empty list, no stream name).
func bodyInputs() []*kinesis.PutRecordsInput {
	rng := rand.New(rand.NewPCG(5, 6))
	var ins []*kinesis.PutRecordsInput
	for i := range 30 {
		ins = append(ins, randomInput(rng, i*11%70))
	}
	quanta := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
	for n := range 13 {
		quanta.Records = append(quanta.Records, types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(0xf0 + n)}, n), PartitionKey: aws.String("k")})
	}
	one := []types.PutRecordsRequestEntry{{Data: []byte("abcd"), PartitionKey: aws.String("k")}}
	return append(ins, quanta,
		&kinesis.PutRecordsInput{},
		&kinesis.PutRecordsInput{Records: []types.PutRecordsRequestEntry{}},
		&kinesis.PutRecordsInput{Records: []types.PutRecordsRequestEntry{}, StreamARN: aws.String("arn")},
		&kinesis.PutRecordsInput{Records: one},
		&kinesis.PutRecordsInput{Records: one, StreamARN: aws.String("arn")},
		&kinesis.PutRecordsInput{StreamName: aws.String("only")},
	)
}

// bodyReader is what wireBuffers.body returns, held or streamed.
type bodyReader interface {
	io.ReadSeeker
	io.WriterTo
	Len() int
}

// bodyFor returns the body of in as the SDK gets it, and whether it is
// held.
func bodyFor(t *testing.T, b *wireBuffers, in *kinesis.PutRecordsInput, holdUpTo int64) (bodyReader, bool) {
	t.Helper()
	r, err := b.body(in, holdUpTo)
	if err != nil {
		t.Fatal(err)
	}
	_, held := r.(*bytes.Reader)
	return r.(bodyReader), held
}

// readIn reads b from where it stands to its end, size bytes at a time
// (each Read asks for size, or a random size in [1, 100] if size is 0).
func readIn(t *testing.T, b io.Reader, size int, rng *rand.Rand) []byte {
	t.Helper()
	var out []byte
	for i := 0; ; i++ {
		n := size
		if n == 0 {
			n = 1 + rng.IntN(100)
		}
		p := make([]byte, n)
		got, err := b.Read(p)
		out = append(out, p[:got]...)
		if err == io.EOF {
			if got != 0 {
				t.Fatalf("unexpected %d bytes with io.EOF", got)
			}
			return out
		}
		if err != nil || got == 0 {
			t.Fatalf("unexpected read of %d bytes: %d, %v", n, got, err)
		}
		if i > 1<<24 {
			t.Fatal("the body does not end")
		}
	}
}

// TestWireBodyReadsAlike: held or streamed, however the body is read
// (WriteTo, or Read with any buffer size, also smaller than a base64
// quantum), it is the same bytes, as long as its announced length, and the
// same JSON value as the SDK's serialiser writes.
func TestWireBodyReadsAlike(t *testing.T) {
	sdk := sdkProtocol()
	rng := rand.New(rand.NewPCG(7, 8))
	for j, in := range append(bodyInputs(), bodyInputs()...) {
		var w wireBuffers
		holdUpTo, i := int64(heldMax), j
		if j >= len(bodyInputs()) {
			holdUpTo, i = 0, j-len(bodyInputs()) // streamed
		}
		b, held := bodyFor(t, &w, in, holdUpTo)
		if held != (holdUpTo > 0) {
			t.Fatalf("input %d: unexpected held=%t", i, held)
		}
		size := w.stream.size
		if b.Len() != int(size) {
			t.Fatalf("input %d: unexpected Len %d before reading; want %d", i, b.Len(), size)
		}
		var whole bytes.Buffer
		if n, err := b.WriteTo(&whole); err != nil || n != size || int64(whole.Len()) != size {
			t.Fatalf("input %d: unexpected WriteTo: %d bytes (%d written), %v; want %d", i, n, whole.Len(), err, size)
		}
		if b.Len() != 0 {
			t.Fatalf("input %d: unexpected Len %d at the end", i, b.Len())
		}
		for _, size := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 64, 4096, 0} {
			if _, err := b.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if got := readIn(t, b, size, rng); !bytes.Equal(got, whole.Bytes()) {
				t.Fatalf("input %d: reads of %d bytes give another body\ngot  %s\nwant %s", i, size, got, whole.Bytes())
			}
		}
		var gv, wv any
		if err := json.Unmarshal(whole.Bytes(), &gv); err != nil {
			t.Fatalf("input %d: body is not JSON: %v\n%s", i, err, whole.Bytes())
		}
		if err := json.Unmarshal(bodyOf(t, serialize(t, sdk, context.Background(), in)), &wv); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gv, wv) {
			t.Fatalf("input %d: unexpected body %s; want the value of the SDK's", i, whole.Bytes())
		}
	}
}

// TestWireBodySeek: held or streamed, every seek lands where it says, and
// reading goes on from there, forwards and backwards.
func TestWireBodySeek(t *testing.T) {
	for _, holdUpTo := range []int64{heldMax, 0} {
		testBodySeek(t, holdUpTo)
	}
}

func testBodySeek(t *testing.T, holdUpTo int64) {
	in := bodyInputs()[20]
	var w wireBuffers
	b, _ := bodyFor(t, &w, in, holdUpTo)
	var whole bytes.Buffer
	if _, err := b.WriteTo(&whole); err != nil {
		t.Fatal(err)
	}
	full := whole.Bytes()
	rng := rand.New(rand.NewPCG(9, 10))
	pos := int64(len(full))
	for range 300 {
		var to int64
		var off int64
		whence := rng.IntN(3)
		switch whence {
		case io.SeekStart:
			to = rng.Int64N(int64(len(full)) + 1)
			off = to
		case io.SeekCurrent:
			to = rng.Int64N(int64(len(full)) + 1)
			off = to - pos
		case io.SeekEnd:
			to = rng.Int64N(int64(len(full)) + 1)
			off = to - int64(len(full))
		}
		got, err := b.Seek(off, whence)
		if err != nil || got != to {
			t.Fatalf("unexpected Seek(%d, %d) from %d: %d, %v; want %d", off, whence, pos, got, err, to)
		}
		if b.Len() != len(full)-int(to) {
			t.Fatalf("unexpected Len %d at %d; want %d", b.Len(), to, len(full)-int(to))
		}
		n := rng.IntN(50)
		p := make([]byte, n)
		m, _ := io.ReadFull(b, p)
		if want := full[to:min(int(to)+n, len(full))]; !bytes.Equal(p[:m], want) {
			t.Fatalf("unexpected bytes after Seek to %d; got %q; want %q", to, p[:m], want)
		}
		pos = to + int64(m)
	}
	if _, err := b.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("unexpected success seeking before the start")
	}
	if got, err := b.Seek(10, io.SeekEnd); err != nil || got != int64(len(full))+10 {
		t.Fatalf("unexpected Seek past the end: %d, %v", got, err)
	}
	if n, err := b.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("unexpected read past the end: %d, %v; want 0, io.EOF", n, err)
	}
	if b.Len() != 0 {
		t.Fatalf("unexpected Len %d past the end; want 0", b.Len())
	}
}

// TestWireBodyRefusesIncompleteEntries: an entry without data or key is an
// error, before anything is sent.
func TestWireBodyRefusesIncompleteEntries(t *testing.T) {
	for _, e := range []types.PutRecordsRequestEntry{{Data: []byte("x")}, {PartitionKey: aws.String("k")}} {
		in := &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{{Data: []byte("ok"), PartitionKey: aws.String("k")}, e}}
		var b wireBuffers
		if _, err := b.body(in, heldMax); err == nil || !bytes.Contains([]byte(err.Error()), []byte("entry 1")) {
			t.Fatalf("unexpected error %v; want one naming entry 1", err)
		}
	}
}

// hashChecking is an HTTP client that reads each request body as it is
// sent and compares its SHA-256 with the payload hash SigV4 signed.
type hashChecking struct {
	c      kinesis.HTTPClient
	t      *testing.T
	checks int
}

func (h *hashChecking) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	if got, signed := hex.EncodeToString(sum[:]), v4.GetPayloadHash(req.Context()); got != signed {
		h.t.Errorf("unexpected body: its SHA-256 is %s; SigV4 signed %s", got, signed)
	}
	if req.ContentLength != int64(len(body)) {
		h.t.Errorf("unexpected Content-Length %d; the body has %d bytes", req.ContentLength, len(body))
	}
	h.checks++
	req.Body = io.NopCloser(bytes.NewReader(body))
	return h.c.Do(req)
}

// TestWireBodyHashedIsSent: through the SDK client, held or streamed, the
// body SigV4 hashed is the body sent, byte for byte, and Kinesis stores
// every record's data as it was, for requests up to the 5 MiB limit.
func TestWireBodyHashedIsSent(t *testing.T) {
	f := newFakeKinesis(t, nil)
	h := &hashChecking{c: newHTTPClient(5 * time.Second), t: t}
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   h,
	}, WireOptions)
	rng := rand.New(rand.NewPCG(11, 12))
	var want [][]byte
	// Held bodies (about 18 and 690 KB), then streamed ones (6.7 MB and the
	// largest a 5 MiB request makes).
	for _, size := range []int{1, 1000, 10000 + 1, 5<<20/500 - 64} {
		in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
		for range 500 {
			d := make([]byte, size-rng.IntN(min(size, 3)))
			for i := range d {
				d[i] = byte(rng.Uint32())
			}
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String("k")})
			want = append(want, d)
		}
		var b wireBuffers
		if _, err := client.PutRecords(withWireBuffers(context.Background(), &b), in); err != nil {
			t.Fatal(err)
		}
		if held := b.reader.Size() == b.stream.size; held != (size <= 1000) {
			t.Fatalf("unexpected held=%t for a body of %d bytes", held, b.stream.size)
		}
	}
	if h.checks != 4 {
		t.Fatalf("unexpected %d requests checked; want 4", h.checks)
	}
	_, stored, _ := f.snapshot()
	if len(stored) != len(want) {
		t.Fatalf("unexpected %d records stored; want %d", len(stored), len(want))
	}
	for i := range want {
		if !bytes.Equal(stored[i], want[i]) {
			t.Fatalf("unexpected data of record %d", i)
		}
	}
}

// TestSenderStreamsLargeBodies: the packer's requests of several MiB are
// streamed from ring memory, also when Kinesis answers before it has read
// the body (the HTTP client is still sending it when the call returns and
// the events go back to wait for a retry); every event is stored once, as
// written. Under -race this also checks that nothing reads the ring after
// the call has returned.
func TestSenderStreamsLargeBodies(t *testing.T) {
	const n, size = 400, 20 << 10
	fk := newFakeKinesis(t, nil)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%3 == 1 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", "InternalFailure")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"__type":"InternalFailure","message":"answered early"}`)
			return
		}
		fk.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	fk.URL = srv.URL
	r := newRing(t, 16*MiB)
	p := newPacker(t, r, testConfig(500, 5*MiB, MiB, "k"), Options{Client: fk.client(), BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	runPacker(t, p)
	writeEvents(t, r, 0, n, size)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res := p.Flush(ctx); !res.Complete || res.Err != nil || res.Delivered != n {
		t.Fatalf("unexpected flush result; got %+v; want complete with %d delivered", res, n)
	}
	_, stored, _ := fk.snapshot()
	checkExactlyOnce(t, stored, 0, n, size)
	if st := p.Stats(); st.CallServer == 0 || st.CallBytes/st.Calls < heldMax {
		t.Fatalf("unexpected stats %+v; want calls of over %d bytes on average, some answered early", st, heldMax)
	}
}
