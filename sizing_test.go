package main

import (
	"fmt"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

// TestRingSizingCoversTheListener checks that the smallest ring config
// accepts can hold the largest block the listener may reserve for one POST:
// every event framed and enriched, or the whole body wrapped as base64.
// config cannot import listener or ring, so its figures are checked here.
func TestRingSizingCoversTheListener(t *testing.T) {
	if config.FrameHeaderBytes != ring.FrameHeaderSize || config.BlockHeaderBytes != ring.BlockHeaderSize {
		t.Fatalf("config framing (%d, %d) differs from the ring's (%d, %d)",
			config.FrameHeaderBytes, config.BlockHeaderBytes, ring.FrameHeaderSize, ring.BlockHeaderSize)
	}
	for _, maxBytes := range []string{"256KiB", "700KiB", "1MiB"} {
		for _, items := range []string{"1000", "10000"} {
			for _, enrich := range []string{"true", "false"} {
				for _, record := range []string{"8KiB", "64KiB", "1MiB", "10MiB"} {
					for _, key := range []string{"environment", "ключ-" + string(make([]rune, 200))} {
						vars := map[string]string{
							"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "KTE_STREAM": "s",
							"KTE_BUFFER_MAX_BYTES": maxBytes, "KTE_BUFFER_MAX_ITEMS": items, "KTE_ENRICH": enrich,
							"KTE_RECORD_MAX_BYTES": record, "KTE_BATCH_MAX_BYTES": "10MiB", "KTE_PARTITION_KEY": key,
						}
						name := fmt.Sprintf("bytes=%s/items=%s/enrich=%s/record=%s/keylen=%d", maxBytes, items, enrich, record, len(key))
						c, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						r, err := ring.New(c.MinRingBytes())
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						maxFrame := c.RecordMaxBytes - c.MaxPartitionKeyBytes()
						q := listener.MaxQuarantineBlock(2*c.BufferMaxBytes+config.PostSlackBytes, maxFrame, config.EnrichPrefixMaxBytes)
						if q > c.MaxPostReservation() || q > r.MaxBlock() {
							t.Fatalf("%s: the listener may need a block of %d bytes; config reserves %d and the ring takes %d",
								name, q, c.MaxPostReservation(), r.MaxBlock())
						}
						if _, err := listener.New(r, listener.Options{
							Port: 0, MaxBodyBytes: 2*c.BufferMaxBytes + config.PostSlackBytes, MaxFrameBytes: maxFrame,
							MaxPrefixBytes: config.EnrichPrefixMaxBytes, Enrich: c.Enrich,
						}); err != nil {
							t.Fatalf("%s: the listener refuses the smallest ring: %v", name, err)
						}
					}
				}
			}
		}
	}
}
