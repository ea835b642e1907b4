package fakekinesis

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kte-dev/kinesis-telemetry-extension/batch"
	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// client returns the production Kinesis client (batch.NewKinesisClient)
// pointed at s, with HideWriteTo, and a timeout that a loaded machine
// cannot reach.
func client(t *testing.T, s *Server) *kinesis.Client {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	c, err := batch.NewKinesisClient(context.Background(), config.Config{StreamName: "test", SendTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	o := c.Options()
	o.HTTPClient = HideWriteTo(o.HTTPClient)
	return kinesis.New(o)
}

func entries(data ...string) []types.PutRecordsRequestEntry {
	var es []types.PutRecordsRequestEntry
	for i, d := range data {
		// Keys that look like the member the fake counts must not fool it.
		key := fmt.Sprintf(`k%d "PartitionKey":`, i)
		es = append(es, types.PutRecordsRequestEntry{Data: []byte(d), PartitionKey: aws.String(key)})
	}
	return es
}

func TestPutRecords(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			s := New(Options{Keep: keep})
			defer s.Close()
			c := client(t, s)
			ctx := context.Background()

			f := func(data ...string) {
				t.Helper()
				out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: entries(data...)})
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := len(out.Records); got != len(data) {
					t.Fatalf("unexpected result entries; got %d; want %d", got, len(data))
				}
				if got := aws.ToInt32(out.FailedRecordCount); got != 0 {
					t.Fatalf("unexpected FailedRecordCount; got %d; want 0", got)
				}
				for i, r := range out.Records {
					if r.ErrorCode != nil || aws.ToString(r.SequenceNumber) == "" {
						t.Fatalf("unexpected entry %d: %+v", i, r)
					}
				}
			}
			f(`{"a":1}`)
			f(`{"b":2}`, "\x00\xff binary", `"PartitionKey":`)
			many := make([]string, MaxRecords)
			for i := range many {
				many[i] = fmt.Sprintf(`{"i":%d}`, i)
			}
			f(many...)

			st := s.Stats()
			if st.Calls != 3 || st.Records != 4+MaxRecords || st.Refused != 0 || st.Bytes == 0 {
				t.Fatalf("unexpected stats; got %+v; want 3 calls, %d records, none refused", st, 4+MaxRecords)
			}
			data := s.Data()
			if !keep {
				if data != nil {
					t.Fatalf("unexpected data without Keep: %d records", len(data))
				}
				return
			}
			if len(data) != 4+MaxRecords {
				t.Fatalf("unexpected kept records; got %d; want %d", len(data), 4+MaxRecords)
			}
			if !bytes.Equal(data[2], []byte("\x00\xff binary")) || string(data[4+MaxRecords-1]) != many[MaxRecords-1] {
				t.Fatalf("unexpected kept data: %q, %q", data[2], data[4+MaxRecords-1])
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	c := client(t, s)
	ctx := context.Background()

	// More records than Kinesis accepts: refused, as Kinesis would.
	_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: entries(make([]string, MaxRecords+1)...)})
	if err == nil || !strings.Contains(err.Error(), "ValidationException") {
		t.Fatalf("unexpected error for %d records; got %v; want a ValidationException", MaxRecords+1, err)
	}
	// Another operation: refused.
	_, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("test")})
	if err == nil || !strings.Contains(err.Error(), "UnknownOperationException") {
		t.Fatalf("unexpected error for DescribeStreamSummary; got %v; want an UnknownOperationException", err)
	}
	if st := s.Stats(); st.Refused != 2 || st.Calls != 0 {
		t.Fatalf("unexpected stats; got %+v; want 2 refused, 0 calls", st)
	}
}
