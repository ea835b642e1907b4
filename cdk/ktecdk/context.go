package ktecdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Context keys the app reads (`-c key=value` on the CDK CLI, or "context" in
// cdk.json). Every key is optional, but none takes an empty value: `-c key=`
// is refused, not read as the default.
const (
	CtxStackName      = "stackName"      // stack id; default DefaultStackName
	CtxStreamName     = "streamName"     // physical stream name; default generated
	CtxShardCount     = "shardCount"     // 0 or absent: on-demand; n > 0: provisioned with n shards
	CtxRetentionHours = "retentionHours" // 24–8760; default 24
	// CtxEncryptionKey is "aws-managed" (default: alias/aws/kinesis),
	// "create" (a new customer managed key) or the ARN of an existing key.
	CtxEncryptionKey       = "encryptionKey"
	CtxStreamRemovalPolicy = "streamRemovalPolicy" // "retain" (default) or "destroy"
	CtxLayerZipArm64       = "layerZipArm64"       // default DefaultLayerZipArm64
	CtxLayerZipX8664       = "layerZipX8664"       // default DefaultLayerZipX8664
	CtxDemo                = "demo"                // "true": build and deploy the demo function
	// CtxEnvironment is a JSON object of KTE_ tuning variables (in cdk.json,
	// or -c 'environment={"KTE_FLUSH":"end"}').
	CtxEnvironment = "environment"
)

// AppConfig is what the app reads from context.
type AppConfig struct {
	StackName string
	Props     TelemetryStackProps
	// Demo asks for the demo function; the app builds it and sets
	// Props.DemoCodeDir.
	Demo bool
}

// contextKeys are the keys ConfigFromContext reads.
var contextKeys = []string{
	CtxStackName, CtxStreamName, CtxShardCount, CtxRetentionHours, CtxEncryptionKey, CtxStreamRemovalPolicy,
	CtxLayerZipArm64, CtxLayerZipX8664, CtxDemo, CtxEnvironment,
}

// stackNameRE is what CloudFormation and the CDK accept as a stack name
// (the app's stack id is its name): a letter, then letters, digits and
// hyphens, 128 characters at most.
var stackNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

// ConfigFromContext reads the app's context keys (Ctx*) from node, usually
// app.Node(). Values may be strings (from -c) or JSON values (from
// cdk.json). Keys it does not know are ignored, since the CDK keeps its own
// settings in the same context, except one that differs from a key it reads
// only in case (a typo that would otherwise go unnoticed). The error joins
// one error per bad key (an empty string is bad for every key), each
// wrapping ErrInvalidProps and naming the key, the value given (as JSON) and
// what is accepted; the ranges are those NewTelemetryStack checks, and the
// environment is checked with the extension's own configuration.
func ConfigFromContext(node constructs.Node) (AppConfig, error) {
	cfg := AppConfig{StackName: DefaultStackName}
	var errs []error
	bad := func(key string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: context %s=%s: must be %s", ErrInvalidProps, key, contextValue(v), want))
	}
	get := func(key string) (any, bool) {
		v := node.TryGetContext(jsii.String(key))
		return v, v != nil
	}
	// raw is the value as given, for messages about a parsed value.
	raw := func(key string) any {
		v, _ := get(key)
		return v
	}
	str := func(key string) (string, bool) {
		v, ok := get(key)
		if !ok {
			return "", false
		}
		s, isStr := v.(string)
		if !isStr {
			bad(key, v, "a string")
			return "", false
		}
		return s, true
	}
	// integer accepts a JSON number or a decimal string.
	integer := func(key, want string) (int, bool) {
		v, ok := get(key)
		if !ok {
			return 0, false
		}
		switch n := v.(type) {
		case float64:
			if n == float64(int(n)) {
				return int(n), true
			}
		case string:
			if i, err := strconv.Atoi(n); err == nil {
				return i, true
			}
		}
		bad(key, v, want)
		return 0, false
	}

	if all, ok := node.GetAllContext(nil).(map[string]any); ok {
		for _, k := range slices.Sorted(maps.Keys(all)) {
			for _, known := range contextKeys {
				if k != known && strings.EqualFold(k, known) {
					errs = append(errs, fmt.Errorf("%w: context %s=%s: not a key the app reads; did you mean %s?", ErrInvalidProps, k, contextValue(all[k]), known))
				}
			}
		}
	}

	if s, ok := str(CtxStackName); ok {
		if stackNameRE.MatchString(s) {
			cfg.StackName = s
		} else {
			bad(CtxStackName, s, "1–128 characters of A-Z a-z 0-9 and -, starting with a letter")
		}
	}
	if s, ok := str(CtxStreamName); ok {
		if streamNameRE.MatchString(s) {
			cfg.Props.StreamName = s
		} else {
			bad(CtxStreamName, s, "1–128 characters of a-z A-Z 0-9 _ . -")
		}
	}
	const shardsWant = "0 (on-demand) or a positive number of shards (provisioned)"
	if n, ok := integer(CtxShardCount, shardsWant); ok {
		if n >= 0 {
			cfg.Props.ShardCount = n
		} else {
			bad(CtxShardCount, raw(CtxShardCount), shardsWant)
		}
	}
	minHours, maxHours := int(MinRetention/time.Hour), int(MaxRetention/time.Hour)
	retentionWant := fmt.Sprintf("a whole number of hours between %d and %d", minHours, maxHours)
	if n, ok := integer(CtxRetentionHours, retentionWant); ok {
		if n >= minHours && n <= maxHours {
			cfg.Props.Retention = time.Duration(n) * time.Hour
		} else {
			bad(CtxRetentionHours, raw(CtxRetentionHours), retentionWant)
		}
	}
	if s, ok := str(CtxEncryptionKey); ok {
		switch {
		case s == "aws-managed":
		case s == "create":
			cfg.Props.CreateEncryptionKey = true
		case kmsKeyArnRE.MatchString(s):
			cfg.Props.EncryptionKeyArn = s
		default:
			bad(CtxEncryptionKey, s, `"aws-managed", "create" or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)`)
		}
	}
	if s, ok := str(CtxStreamRemovalPolicy); ok {
		switch s {
		case "retain":
			cfg.Props.StreamRemovalPolicy = awscdk.RemovalPolicy_RETAIN
		case "destroy":
			cfg.Props.StreamRemovalPolicy = awscdk.RemovalPolicy_DESTROY
		default:
			bad(CtxStreamRemovalPolicy, s, `"retain" or "destroy"`)
		}
	}
	// An empty path is refused, not taken as the default: `-c key=` with
	// the value left out is a mistake, and the props would read it as the
	// default zip, which may be a stale build.
	layerZip := func(key, arch, def string) string {
		s, ok := str(key)
		if ok && s == "" {
			bad(key, s, fmt.Sprintf("a path to the %s layer zip, e.g. %s as built by `make layer` (leave the key out for that default)", arch, def))
		}
		return s
	}
	cfg.Props.LayerZipArm64 = layerZip(CtxLayerZipArm64, ArchArm64, DefaultLayerZipArm64)
	cfg.Props.LayerZipX8664 = layerZip(CtxLayerZipX8664, ArchX8664, DefaultLayerZipX8664)
	if v, ok := get(CtxDemo); ok {
		switch v {
		case true, "true":
			cfg.Demo = true
		case false, "false":
		default:
			bad(CtxDemo, v, "true or false")
		}
	}
	if v, ok := get(CtxEnvironment); ok {
		env, err := environmentFromContext(v)
		if err != nil {
			bad(CtxEnvironment, v, err.Error())
		}
		for _, err := range environmentErrors(env) {
			errs = append(errs, fmt.Errorf("%w: context %s: %w", ErrInvalidProps, CtxEnvironment, err))
		}
		cfg.Props.Environment = env
	}
	return cfg, errors.Join(errs...)
}

// contextValue renders a context value as JSON (strings quoted, so that an
// empty value or one with spaces shows), or with %v if it has no JSON form.
func contextValue(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// environmentFromContext accepts a JSON object of strings, given as an
// object (cdk.json) or as its text (-c).
func environmentFromContext(v any) (map[string]string, error) {
	want := errors.New(`a JSON object of KTE_ variables with string values, e.g. {"KTE_FLUSH":"end"}`)
	if s, ok := v.(string); ok {
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, want
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, want
	}
	env := make(map[string]string, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		s, ok := obj[k].(string)
		if !ok {
			return nil, want
		}
		env[k] = s
	}
	return env, nil
}
