package kinesalite

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestRoundTrip(t *testing.T) {
	s := StartT(t)
	stream := s.StreamT(t, "roundtrip", 2)
	ctx := context.Background()
	var entries []types.PutRecordsRequestEntry
	for i := range 10 {
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte{byte(i)}, PartitionKey: aws.String(string(rune('a' + i)))})
	}
	res, err := s.Client().PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(res.FailedRecordCount); n != 0 {
		t.Fatalf("unexpected failed records; got %d; want 0", n)
	}
	got, err := s.ReadAll(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("unexpected record count; got %d; want 10", len(got))
	}
}
