package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kte-dev/kinesis-telemetry-extension/bench/fakekinesis"
)

// TestPipelines checks that what the benchmarks measure is a working
// pipeline: every event of every body reaches Kinesis exactly once, byte for
// byte and in order, for both implementations and both transports.
func TestPipelines(t *testing.T) {
	bodies := Bodies()
	posts := []Body{bodies[0], bodies[1], bodies[3], bodies[0], bodies[2], bodies[4]}
	var want [][]byte
	for _, b := range posts {
		var evs []json.RawMessage
		if err := json.Unmarshal(b.Data, &evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			want = append(want, ev)
		}
	}
	for _, im := range impls {
		for _, tr := range []transport{overHTTP, inProcess} {
			name := im.name + "/http"
			if tr == inProcess {
				name = im.name + "/in-process"
			}
			t.Run(name, func(t *testing.T) {
				fake := fakekinesis.New(fakekinesis.Options{Keep: true})
				defer fake.Close()
				p := im.new(t, tr, newClient(t, fake))
				defer p.close()
				for _, b := range posts {
					if err := p.post(b.Data); err != nil {
						t.Fatalf("unexpected error posting %s: %v", b.Name, err)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := p.flush(ctx); err != nil {
					t.Fatalf("unexpected flush error: %v", err)
				}
				got := fake.Data()
				if len(got) != len(want) {
					t.Fatalf("unexpected records; got %d; want %d", len(got), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("unexpected record %d; got %.80q; want %.80q", i, got[i], want[i])
					}
				}
				if st := fake.Stats(); st.Calls < uint64(len(want)/fakekinesis.MaxRecords) {
					t.Fatalf("unexpected calls; got %d; want at least %d", st.Calls, len(want)/fakekinesis.MaxRecords)
				}
			})
		}
	}
}

// TestDiscardClient checks the in-process sink counts what it is given.
func TestDiscardClient(t *testing.T) {
	var c discardClient
	p := newKTE(t, inProcess, &c)
	defer p.close()
	b := Bodies()[2]
	for range 3 {
		if err := p.post(b.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := c.delivered(), uint64(3*b.Events); got != want {
		t.Fatalf("unexpected delivered; got %d; want %d", got, want)
	}
}

// TestClientConnections: the production client (batch.NewKinesisClient)
// keeps one connection for all its calls against a fast endpoint, none
// failing. Without batch's request-body wrapper (readOnlyBodies), smithy-go's
// early body close made about one call in ten close its connection, and
// some fail after the records were stored.
func TestClientConnections(t *testing.T) {
	calls := 200
	if testing.Short() {
		calls = 50
	}
	var in kinesis.PutRecordsInput
	in.StreamName = aws.String("test")
	for i := range fakekinesis.MaxRecords {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{
			Data:         bytes.Repeat([]byte{byte('a' + i%26)}, 300),
			PartitionKey: aws.String("key"),
		})
	}
	fake := fakekinesis.New(fakekinesis.Options{})
	defer fake.Close()
	c := newClient(t, fake)
	failed, last := 0, error(nil)
	for range calls {
		if _, err := c.PutRecords(context.Background(), &in); err != nil {
			failed, last = failed+1, err
		}
	}
	if conns := fake.Stats().Conns; conns != 1 || failed != 0 {
		t.Fatalf("unexpected connections and failures; got %d and %d (%v); want 1 and 0", conns, failed, last)
	}
}
