package ktecdk

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

func TestConfigFromContext(t *testing.T) {
	f := func(ctx map[string]any, want AppConfig) {
		t.Helper()
		app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
		got, err := ConfigFromContext(app.Node())
		if err != nil {
			t.Fatalf("unexpected error for %v; got %v; want nil", ctx, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("unexpected config for %v;\ngot  %+v\nwant %+v", ctx, got, want)
		}
	}
	def := AppConfig{StackName: DefaultStackName}
	f(map[string]any{}, def)
	// The CDK's own settings share the context; they are ignored.
	f(map[string]any{"@aws-cdk/core:newStyleStackSynthesis": true}, def)

	// Strings, as given by -c key=value.
	f(map[string]any{
		CtxStackName: "Kte", CtxStreamName: "telemetry", CtxShardCount: "4", CtxRetentionHours: "48",
		CtxEncryptionKey: "create", CtxStreamRemovalPolicy: "destroy", CtxLayerZipArm64: "/a.zip", CtxLayerZipX8664: "/x.zip",
		CtxDemo: "true", CtxEnvironment: `{"KTE_FLUSH":"end"}`,
	}, AppConfig{StackName: "Kte", Demo: true, Props: TelemetryStackProps{
		StreamName: "telemetry", ShardCount: 4, Retention: 48 * time.Hour, CreateEncryptionKey: true,
		StreamRemovalPolicy: awscdk.RemovalPolicy_DESTROY, LayerZipArm64: "/a.zip", LayerZipX8664: "/x.zip",
		Environment: map[string]string{"KTE_FLUSH": "end"},
	}})
	// JSON values, as given in cdk.json.
	f(map[string]any{
		CtxShardCount: 2, CtxRetentionHours: 24, CtxDemo: false,
		CtxEncryptionKey:       "arn:aws:kms:eu-west-1:111122223333:key/abc",
		CtxStreamRemovalPolicy: "retain",
		CtxEnvironment:         map[string]any{"KTE_PARTITION_KEY": "random"},
	}, AppConfig{StackName: DefaultStackName, Props: TelemetryStackProps{
		ShardCount: 2, Retention: 24 * time.Hour, EncryptionKeyArn: "arn:aws:kms:eu-west-1:111122223333:key/abc",
		StreamRemovalPolicy: awscdk.RemovalPolicy_RETAIN, Environment: map[string]string{"KTE_PARTITION_KEY": "random"},
	}})
	f(map[string]any{CtxEncryptionKey: "aws-managed", CtxShardCount: "0"}, def)
}

func TestConfigFromContextErrors(t *testing.T) {
	f := func(ctx map[string]any, wants ...string) {
		t.Helper()
		app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
		_, err := ConfigFromContext(app.Node())
		if !errors.Is(err, ErrInvalidProps) {
			t.Fatalf("unexpected error for %v; got %v; want one wrapping ErrInvalidProps", ctx, err)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("unexpected error for %v; got %q; want it to contain %q", ctx, err, w)
			}
		}
	}
	f(map[string]any{CtxShardCount: "two"}, `context shardCount="two": must be 0 (on-demand) or a positive number of shards`)
	f(map[string]any{CtxShardCount: 1.5}, "context shardCount=1.5: must be 0")
	f(map[string]any{CtxShardCount: "-1"}, `context shardCount="-1": must be 0 (on-demand) or a positive number of shards`)
	f(map[string]any{CtxRetentionHours: "0"}, `context retentionHours="0": must be a whole number of hours between 24 and 8760`)
	f(map[string]any{CtxRetentionHours: "23"}, `context retentionHours="23": must be a whole number of hours between 24 and 8760`)
	f(map[string]any{CtxRetentionHours: 8761}, `context retentionHours=8761: must be a whole number of hours between 24 and 8760`)
	f(map[string]any{CtxStreamName: "bad name"}, `context streamName="bad name": must be 1–128 characters of a-z A-Z 0-9 _ . -`)
	// An empty value (`-c key=`) is refused for every key, never taken as
	// the default.
	f(map[string]any{CtxLayerZipArm64: ""},
		`context layerZipArm64="": must be a path to the arm64 layer zip, e.g. ../build/kinesis-telemetry-extension-arm64.zip as built by `+"`make layer`")
	f(map[string]any{CtxLayerZipX8664: ""},
		`context layerZipX8664="": must be a path to the x86_64 layer zip, e.g. ../build/kinesis-telemetry-extension-amd64.zip as built by `+"`make layer`")
	f(map[string]any{CtxStreamName: ""}, `context streamName="": must be 1–128 characters`)
	f(map[string]any{CtxStackName: ""}, `context stackName="": must be 1–128 characters`)
	f(map[string]any{CtxShardCount: ""}, `context shardCount="": must be 0 (on-demand) or a positive number of shards`)
	f(map[string]any{CtxRetentionHours: ""}, `context retentionHours="": must be a whole number of hours`)
	f(map[string]any{CtxEncryptionKey: ""}, `context encryptionKey="": must be "aws-managed", "create" or a KMS key ARN`)
	f(map[string]any{CtxStreamRemovalPolicy: ""}, `context streamRemovalPolicy="": must be "retain" or "destroy"`)
	f(map[string]any{CtxDemo: ""}, `context demo="": must be true or false`)
	f(map[string]any{CtxEnvironment: ""}, `context environment="": must be a JSON object of KTE_ variables`)
	for _, k := range contextKeys { // and any key added later
		f(map[string]any{k: ""}, "context "+k+`="": must be`)
	}
	f(map[string]any{CtxStackName: "my stack"}, `context stackName="my stack": must be 1–128 characters of A-Z a-z 0-9 and -, starting with a letter`)
	f(map[string]any{CtxStackName: 3}, "context stackName=3: must be a string")
	f(map[string]any{CtxEncryptionKey: "mine"}, `context encryptionKey="mine": must be "aws-managed", "create" or a KMS key ARN`)
	f(map[string]any{CtxEncryptionKey: "arn:aws:kms:eu-west-1:111122223333:alias/kte"},
		`context encryptionKey="arn:aws:kms:eu-west-1:111122223333:alias/kte": must be "aws-managed", "create" or a KMS key ARN`)
	f(map[string]any{CtxStreamRemovalPolicy: "snapshot"}, `context streamRemovalPolicy="snapshot": must be "retain" or "destroy"`)
	f(map[string]any{CtxDemo: "yes"}, `context demo="yes": must be true or false`)
	f(map[string]any{CtxEnvironment: "KTE_FLUSH=end"}, `context environment="KTE_FLUSH=end": must be a JSON object of KTE_ variables`)
	f(map[string]any{CtxEnvironment: map[string]any{"KTE_BATCH_MAX_RECORDS": 500}}, `context environment={"KTE_BATCH_MAX_RECORDS":500}: must be`, "with string values")
	// The variables themselves, with the extension's own ranges.
	f(map[string]any{CtxEnvironment: `{"KTE_FLUSH":"never","KTE_NOPE":"1"}`},
		`context environment: KTE_FLUSH="never": must be`, "context environment: KTE_NOPE is not a variable the extension reads")
	// A key that differs from one the app reads only in case is a typo: it
	// would otherwise be ignored, as the CDK's own keys are.
	f(map[string]any{"shardcount": "4"}, `context shardcount="4": not a key the app reads; did you mean shardCount?`)
	// Every bad key at once.
	f(map[string]any{CtxShardCount: "x", CtxDemo: "maybe"}, `shardCount="x"`, `demo="maybe"`)
}
