package batch

import (
	"context"
	"fmt"
	"strings"
	"sync"
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

// TestKeysRedrawConcurrent runs Redraw from several goroutines while one
// goroutine, the encoder's, takes keys (run it with -race): every key taken
// is the first or one drawn, the keys of one Redraw caller come in the
// order it drew them, keys taken before keep their value, and once every
// Redraw has returned the encoder takes the keys stored last.
func TestKeysRedrawConcurrent(t *testing.T) {
	const writers, first = 4, "w-first-00"
	rounds := 2000
	if testing.Short() {
		rounds = 200
	}
	k, err := NewKeys(config.PartitionKey{Mode: config.PartitionKeyEnvironment}, "", first)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := k.Redraw(fmt.Sprintf("w%d-r%06d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { // the encoder's goroutine
		type took struct {
			p   *string
			key string
		}
		var taken []took
		last := [writers]int{-1, -1, -1, -1}
		for n := 0; ; n++ {
			select {
			case <-stop:
				for _, tk := range taken {
					if *tk.p != tk.key {
						done <- fmt.Errorf("unexpected key taken before; got %q; want %q", *tk.p, tk.key)
						return
					}
				}
				done <- nil
				return
			default:
			}
			p := k.Next()
			if n%2 == 1 {
				p = k.ForID(uint64(n))
			}
			if len(taken) < 4096 {
				taken = append(taken, took{p, *p})
			}
			if *p == first || *p == "last" {
				continue
			}
			var w, r int
			if _, err := fmt.Sscanf(*p, "w%d-r%d", &w, &r); err != nil || w >= writers || r >= rounds {
				done <- fmt.Errorf("unexpected key %q", *p)
				return
			}
			if r < last[w] {
				done <- fmt.Errorf("unexpected key %q after round %d of writer %d", *p, last[w], w)
				return
			}
			last[w] = r
		}
	}()
	wg.Wait()
	if err := k.Redraw("last"); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-done; err != nil { // hands k back to this goroutine
		t.Fatal(err)
	}
	if got := *k.Next(); got != "last" {
		t.Fatalf("unexpected key after every Redraw returned; got %q; want %q", got, "last")
	}
	if k.Len() != 1 || k.MaxLen() != len(first) {
		t.Fatalf("unexpected keys; got %d of at most %d bytes; want 1 of at most %d", k.Len(), k.MaxLen(), len(first))
	}
}
