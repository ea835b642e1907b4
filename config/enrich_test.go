package config_test

import (
	"strings"
	"testing"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
	"github.com/kte-dev/kinesis-telemetry-extension/listener"
	"github.com/kte-dev/kinesis-telemetry-extension/ring"
)

// TestEnrichmentFitsTheListener checks that the longest function name,
// version and region Load accepts with KTE_ENRICH on, with a 12-digit
// account id and a 32-character environment id, make a prefix the listener
// takes (config cannot import listener; its test can), and that Load refuses
// one byte more of the name or the version.
func TestEnrichmentFitsTheListener(t *testing.T) {
	name := strings.Repeat("f", 255) + `"` // 257 bytes once escaped
	version := strings.Repeat("9", 64)
	region := strings.Repeat("a", 31) + "." + strings.Repeat("b", 32)
	load := func(name, version string) error {
		env := map[string]string{
			"KTE_STREAM": "s", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "AWS_REGION": region,
			"AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": version,
		}
		_, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		return err
	}
	if err := load(name, version); err == nil || !strings.HasPrefix(err.Error(), "AWS_LAMBDA_FUNCTION_NAME=") {
		t.Fatalf("unexpected result for a name of 257 bytes once escaped: %v", err)
	}
	if err := load(strings.Repeat("f", 200), version+"9"); err == nil || !strings.HasPrefix(err.Error(), "AWS_LAMBDA_FUNCTION_VERSION=") {
		t.Fatalf("unexpected result for a version of 65 bytes: %v", err)
	}
	name = name[1:]
	if err := load(name, version); err != nil {
		t.Fatalf("unexpected error for the longest name, version and region: %v", err)
	}
	r, err := ring.New(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	l, err := listener.New(r, listener.Options{MaxPrefixBytes: config.EnrichPrefixMaxBytes, Enrich: true})
	if err != nil {
		t.Fatal(err)
	}
	id := listener.Identity{Function: name, Version: version, Region: region, Account: "123456789012", Environment: strings.Repeat("e", 32)}
	if err := l.SetIdentity(id); err != nil {
		t.Fatalf("the listener refuses the longest identity Load accepts: %v", err)
	}
}
