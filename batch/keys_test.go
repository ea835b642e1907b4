package batch

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/internal/kinesalite"
)

// TestKeysCountUTF16 checks that a fixed key is measured as Kinesis
// measures it, in UTF-16 code units: 200 emoji are 200 characters but 400
// code units, and every PutRecords carrying them would be refused.
func TestKeysCountUTF16(t *testing.T) {
	f := func(key string, wantOK bool) {
		t.Helper()
		_, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyFixed, Fixed: key}, "", "")
		if (err == nil) != wantOK {
			t.Fatalf("unexpected result for a key of %d characters, %d bytes; got %v; want ok %v", len([]rune(key)), len(key), err, wantOK)
		}
	}
	f(strings.Repeat("😀", 128), true)
	f(strings.Repeat("😀", 129), false)
	f(strings.Repeat("😀", 200), false)
	f(strings.Repeat("é", 256), true)
	f(strings.Repeat("é", 257), false)
	_, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyFunction}, strings.Repeat("😀", 129), "")
	if err == nil {
		t.Fatal("unexpected success for a function name of 258 UTF-16 code units")
	}
}

// TestKinesaliteKeyLength checks config.ValidPartitionKey's boundary
// against kinesalite, which copies the service's validation: a key passes
// there exactly when it is valid here.
func TestKinesaliteKeyLength(t *testing.T) {
	ks := kinesalite.StartT(t)
	stream := ks.StreamT(t, "key-length", 1)
	c := ks.Client()
	for _, key := range []string{
		strings.Repeat("😀", 128), strings.Repeat("😀", 129), strings.Repeat("😀", 127) + "kk", strings.Repeat("😀", 128) + "k",
		strings.Repeat("é", 256), strings.Repeat("é", 257), strings.Repeat("€", 256), strings.Repeat("€", 257),
	} {
		_, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{
			StreamName: aws.String(stream),
			Records:    []types.PutRecordsRequestEntry{{Data: []byte("{}"), PartitionKey: aws.String(key)}},
		})
		if want := config.ValidPartitionKey(key); (err == nil) != want {
			t.Fatalf("unexpected result for a key of %d characters, %d bytes; kinesalite: %v; ValidPartitionKey: %v", len([]rune(key)), len(key), err, want)
		}
	}
}
