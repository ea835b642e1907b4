package batch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// putRecordsBody is the JSON body of one PutRecords request,
//
//	{"Records":[{"Data":"<base64>","PartitionKey":"…"},…],"StreamName":"…"}
//
// (plus ExplicitHashKey and StreamARN when set), written as it is read,
// base64 straight from ring memory into the reader's buffer. A call reads
// it twice: SigV4 hashes it, then the HTTP client sends it (the SDK rewinds
// it in between with Seek). wireBuffers.body decides whether it is read as
// it is written or written once into a held buffer.
//
// The records' Data must not change while the call may read the body: the
// packer releases their frames only after PutRecords has returned, and by
// then the SDK has closed the body under a lock (smithyhttp.Request.Build),
// so nothing reads it any more.
//
// The pieces are: the opening, then for each record its head
// (`{"Data":"`), its data and its tail (`","PartitionKey":…}`), then the
// closing. Pieces other than data are written into scratch and copied out
// from there (pending); data is encoded straight into the destination
// when it has room for a whole quantum.
type putRecordsBody struct {
	in   *kinesis.PutRecordsInput
	size int64 // total length
	pos  int64 // bytes returned so far

	// Where the next piece comes from.
	step    bodyStep
	rec     int // the record of stepHead, stepData and stepTail
	dataOff int // bytes of rec's Data encoded so far (a multiple of 3 until its end)

	pending []byte // bytes of the last piece not yet returned (in scratch)
	scratch []byte // reused; grows to the largest piece other than data
	chunk   []byte // WriteTo's buffer, reused
}

type bodyStep uint8

const (
	stepOpen bodyStep = iota
	stepHead
	stepData
	stepTail
	stepClose
	stepDone
)

// chunkSize is WriteTo's buffer: small enough to stay in cache while it
// is hashed, large enough that a call costs little per byte.
const chunkSize = 32 << 10

// heldMax is the largest body written once and held (see
// wireBuffers.body): 500 records of up to about 1.5 KB. At 50,000 events/s
// of 150-1,200 bytes a body is about 0.5 MB, so it is held.
const heldMax = 1 << 20

// body returns the body of in for the SDK. A body of up to holdUpTo bytes
// (heldMax; the tests also pass 0) is written once into b.held, a buffer
// reused from call to call, and both passes read it through b.reader. A
// larger body is b.body, written as it is read, once for each pass: held,
// it would stay on the heap at the size of the largest request (6.7 MB for
// a 5 MiB one, plus the half again the garbage collector's goal adds),
// which large events reach in a few requests. Streaming costs a second
// base64 pass over the data: 15-20% more CPU end to end (go test -bench
// 'EndToEnd/.*impl=kte' ./bench/ingest), paid only by bodies over heldMax.
// It allocates nothing once the buffers have grown.
func (b *wireBuffers) body(in *kinesis.PutRecordsInput, holdUpTo int64) (io.ReadSeeker, error) {
	if err := b.stream.reset(in); err != nil {
		return nil, err
	}
	n := b.stream.size
	if n > holdUpTo {
		return &b.stream, nil
	}
	if int64(cap(b.held)) < n {
		// A little room over the largest body so far, no more: the
		// buffer stays at that size.
		b.held = make([]byte, min(n+n/8, holdUpTo))
	}
	b.held = b.held[:n]
	if m, _ := io.ReadFull(&b.stream, b.held); int64(m) != n {
		panic("BUG: batch: PutRecords body of " + strconv.FormatInt(n, 10) + " bytes written as " + strconv.Itoa(m))
	}
	b.reader.Reset(b.held)
	return &b.reader, nil
}

// reset makes b the body of in, at its beginning. It checks every entry
// and computes the length without encoding any data.
func (b *putRecordsBody) reset(in *kinesis.PutRecordsInput) error {
	for i := range in.Records {
		if e := &in.Records[i]; e.PartitionKey == nil || e.Data == nil {
			return fmt.Errorf("batch: PutRecords entry %d has no data or partition key", i)
		}
	}
	b.in = in
	b.rewind()
	var n int64
	for b.step != stepDone {
		if b.step == stepData {
			n += int64(base64.StdEncoding.EncodedLen(len(b.in.Records[b.rec].Data)))
			b.step = stepTail
			continue
		}
		n += int64(len(b.piece()))
	}
	b.size = n
	b.rewind()
	return nil
}

func (b *putRecordsBody) rewind() {
	b.pos, b.step, b.rec, b.dataOff, b.pending = 0, stepOpen, 0, 0, nil
}

// piece writes the piece of the current step other than data into scratch,
// moves to the next step and returns the piece.
func (b *putRecordsBody) piece() []byte {
	in := b.in
	s := b.scratch[:0]
	switch b.step {
	case stepOpen:
		s = append(s, '{')
		if in.Records == nil { // as the SDK: a nil list is left out, an empty one is not
			b.step = stepClose
			break
		}
		s = append(s, `"Records":[`...)
		b.step = stepHead
		if len(in.Records) == 0 {
			s = append(s, ']')
			b.step = stepClose
		}
	case stepHead:
		if b.rec > 0 {
			s = append(s, ',')
		}
		s = append(s, `{"Data":"`...)
		b.step, b.dataOff = stepData, 0
	case stepTail:
		e := &in.Records[b.rec]
		s = append(s, `","PartitionKey":`...)
		s = jsonesc.AppendString(s, *e.PartitionKey)
		if e.ExplicitHashKey != nil {
			s = append(s, `,"ExplicitHashKey":`...)
			s = jsonesc.AppendString(s, *e.ExplicitHashKey)
		}
		s = append(s, '}')
		b.rec++
		b.step = stepHead
		if b.rec == len(in.Records) {
			s = append(s, ']')
			b.step = stepClose
		}
	case stepClose:
		more := in.Records != nil
		if in.StreamARN != nil {
			if more {
				s = append(s, ',')
			}
			s = append(s, `"StreamARN":`...)
			s = jsonesc.AppendString(s, *in.StreamARN)
			more = true
		}
		if in.StreamName != nil {
			if more {
				s = append(s, ',')
			}
			s = append(s, `"StreamName":`...)
			s = jsonesc.AppendString(s, *in.StreamName)
		}
		s = append(s, '}')
		b.step = stepDone
	default:
		panic("BUG: batch: body piece requested in step " + fmt.Sprint(b.step))
	}
	b.scratch = s
	return s
}

// Read writes the next bytes of the body into p.
func (b *putRecordsBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(b.pending) > 0 {
			c := copy(p[n:], b.pending)
			b.pending = b.pending[c:]
			n += c
			continue
		}
		switch b.step {
		case stepDone:
			b.pos += int64(n)
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case stepData:
			data := b.in.Records[b.rec].Data[b.dataOff:]
			if len(data) == 0 {
				b.step = stepTail
				continue
			}
			k := (len(p) - n) / 4 * 3
			if k >= len(data) {
				k = len(data)
			} else if k == 0 {
				// Less room than one quantum: encode it into scratch.
				k = min(3, len(data))
				b.scratch = base64.StdEncoding.AppendEncode(b.scratch[:0], data[:k])
				b.pending = b.scratch
				b.dataOff += k
				continue
			}
			base64.StdEncoding.Encode(p[n:], data[:k])
			n += base64.StdEncoding.EncodedLen(k)
			b.dataOff += k
		default:
			b.pending = b.piece()
		}
	}
	b.pos += int64(n)
	return n, nil
}

// WriteTo writes the rest of the body to w through a reused buffer (the
// SDK hashes the body with io.Copy, which uses WriteTo).
func (b *putRecordsBody) WriteTo(w io.Writer) (int64, error) {
	if b.chunk == nil {
		b.chunk = make([]byte, chunkSize)
	}
	var total int64
	for {
		n, err := b.Read(b.chunk)
		if n > 0 {
			m, werr := w.Write(b.chunk[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if m != n {
				return total, io.ErrShortWrite
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Len returns the bytes not yet read, as bytes.Reader does (smithy takes
// a stream's length from it).
func (b *putRecordsBody) Len() int { return int(max(b.size-b.pos, 0)) }

var errBodySeek = errors.New("batch: PutRecords body: seek to a negative position")

// Seek moves the read position. The SDK seeks to the beginning (to hash,
// then send the body, or to retry) and asks for the length; a position
// before the current one starts the body again and skips to it.
func (b *putRecordsBody) Seek(offset int64, whence int) (int64, error) {
	var to int64
	switch whence {
	case io.SeekStart:
		to = offset
	case io.SeekCurrent:
		to = b.pos + offset
	case io.SeekEnd:
		to = b.size + offset
	default:
		return b.pos, fmt.Errorf("batch: PutRecords body: seek with whence %d", whence)
	}
	if to < 0 {
		return b.pos, errBodySeek
	}
	if to < b.pos {
		b.rewind()
	}
	var skip [512]byte
	for b.pos < to {
		if _, err := b.Read(skip[:min(int64(len(skip)), to-b.pos)]); err != nil {
			break // io.EOF: at the end; a position past it reads nothing
		}
	}
	if to > b.pos {
		b.pos = to
	}
	return to, nil
}
