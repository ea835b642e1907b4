package ktecdk

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestStackDefaults(t *testing.T) {
	_, tmpl := newTestStack(t, TelemetryStackProps{})

	check(t, "one stream", func() { tmpl.ResourceCountIs(jsii.String("AWS::Kinesis::Stream"), jsii.Number(1)) })
	check(t, "no KMS key with the AWS managed key", func() { tmpl.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(0)) })
	check(t, "on-demand stream, 24 h, AWS managed key", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::Kinesis::Stream"), &map[string]any{
			"StreamModeDetails":    map[string]any{"StreamMode": "ON_DEMAND"},
			"RetentionPeriodHours": 24,
			"StreamEncryption":     map[string]any{"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
			"ShardCount":           assertions.Match_Absent(),
			"Name":                 assertions.Match_Absent(),
		})
	})
	check(t, "stream retained on deletion", func() {
		tmpl.HasResource(jsii.String("AWS::Kinesis::Stream"), &map[string]any{
			"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
		})
	})
	streamID, _ := onlyResource(t, tmpl, "AWS::Kinesis::Stream")

	// Both layers, one per architecture, with no runtime restriction.
	layers := resources(t, tmpl, "AWS::Lambda::LayerVersion")
	if len(layers) != 2 {
		t.Fatalf("unexpected number of layers; got %d; want 2", len(layers))
	}
	archs := map[string]string{}
	for id, l := range layers {
		p := props(t, l)
		a, _ := p["CompatibleArchitectures"].([]any)
		if len(a) != 1 {
			t.Fatalf("unexpected CompatibleArchitectures of %s; got %v; want one", id, p["CompatibleArchitectures"])
		}
		archs[a[0].(string)] = id
		if _, ok := p["CompatibleRuntimes"]; ok {
			t.Errorf("unexpected CompatibleRuntimes on %s; got %v; want none (an external extension works with every runtime)", id, p["CompatibleRuntimes"])
		}
		if _, ok := p["Content"].(map[string]any)["S3Key"]; !ok {
			t.Errorf("unexpected layer content of %s; got %v; want an S3 asset", id, p["Content"])
		}
		// A replaced or removed version stays, so that functions given it by
		// hand from the LayerArm64Arn output can be given it again (a
		// deleted version can no longer be added to a function).
		if l["DeletionPolicy"] != "Retain" || l["UpdateReplacePolicy"] != "Retain" {
			t.Errorf("unexpected removal policy of layer %s; got DeletionPolicy %v, UpdateReplacePolicy %v; want Retain, Retain", id, l["DeletionPolicy"], l["UpdateReplacePolicy"])
		}
	}
	if archs[ArchArm64] == "" || archs[ArchX8664] == "" {
		t.Fatalf("unexpected layer architectures; got %v; want %s and %s", keys(archs), ArchArm64, ArchX8664)
	}

	// The policy: exactly PutRecords on this stream.
	_, policy := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")
	equalJSON(t, "policy document", props(t, policy)["PolicyDocument"], `{
		"Version": "2012-10-17",
		"Statement": [{
			"Sid": "PutTelemetryRecords",
			"Effect": "Allow",
			"Action": "kinesis:PutRecords",
			"Resource": {"Fn::GetAtt": ["`+streamID+`", "Arn"]}
		}]
	}`)
	policyID, _ := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")

	// Outputs.
	outputs := *tmpl.FindOutputs(jsii.String("*"), nil)
	wantOutputs := map[string]any{
		OutputStreamName: ref(streamID),
		OutputStreamArn:  getAttArn(streamID),
		OutputLayerArm64: ref(archs[ArchArm64]),
		OutputLayerX8664: ref(archs[ArchX8664]),
		OutputPolicyArn:  ref(policyID),
	}
	if len(outputs) != len(wantOutputs) {
		t.Errorf("unexpected outputs; got %v; want %v", keys(outputs), keys(wantOutputs))
	}
	for id, want := range wantOutputs {
		var o map[string]any
		if outputs[id] != nil {
			o = *outputs[id]
		}
		equalJSON(t, "output "+id, o["Value"], mustMarshal(want))
		if o["Description"] == nil {
			t.Errorf("output %s has no description", id)
		}
	}
}

func TestStackStreamSettings(t *testing.T) {
	f := func(p TelemetryStackProps, want map[string]any) {
		t.Helper()
		_, tmpl := newTestStack(t, p)
		check(t, "stream properties", func() {
			tmpl.HasResourceProperties(jsii.String("AWS::Kinesis::Stream"), &want)
		})
	}
	f(TelemetryStackProps{ShardCount: 3}, map[string]any{
		"StreamModeDetails": map[string]any{"StreamMode": "PROVISIONED"},
		"ShardCount":        3,
	})
	f(TelemetryStackProps{ShardCount: 1, Retention: 7 * 24 * time.Hour}, map[string]any{
		"StreamModeDetails":    map[string]any{"StreamMode": "PROVISIONED"},
		"ShardCount":           1,
		"RetentionPeriodHours": 168,
	})
	f(TelemetryStackProps{Retention: MaxRetention, StreamName: "kte-telemetry"}, map[string]any{
		"StreamModeDetails":    map[string]any{"StreamMode": "ON_DEMAND"},
		"ShardCount":           assertions.Match_Absent(),
		"RetentionPeriodHours": 8760,
		"Name":                 "kte-telemetry",
	})
}

func TestStackRemovalPolicy(t *testing.T) {
	_, tmpl := newTestStack(t, TelemetryStackProps{StreamRemovalPolicy: awscdk.RemovalPolicy_DESTROY})
	check(t, "stream deleted with the stack", func() {
		tmpl.HasResource(jsii.String("AWS::Kinesis::Stream"), &map[string]any{"DeletionPolicy": "Delete"})
	})
}

func TestStackCreatedKey(t *testing.T) {
	_, tmpl := newTestStack(t, TelemetryStackProps{CreateEncryptionKey: true})
	keyID, key := onlyResource(t, tmpl, "AWS::KMS::Key")
	if props(t, key)["EnableKeyRotation"] != true {
		t.Errorf("unexpected EnableKeyRotation; got %v; want true", props(t, key)["EnableKeyRotation"])
	}
	if key["DeletionPolicy"] != "Retain" {
		t.Errorf("unexpected key DeletionPolicy; got %v; want Retain", key["DeletionPolicy"])
	}
	streamID, stream := onlyResource(t, tmpl, "AWS::Kinesis::Stream")
	equalJSON(t, "stream encryption", props(t, stream)["StreamEncryption"],
		`{"EncryptionType": "KMS", "KeyId": {"Fn::GetAtt": ["`+keyID+`", "Arn"]}}`)

	_, policy := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")
	equalJSON(t, "policy document", props(t, policy)["PolicyDocument"], `{
		"Version": "2012-10-17",
		"Statement": [
			{"Sid": "PutTelemetryRecords", "Effect": "Allow", "Action": "kinesis:PutRecords",
			 "Resource": {"Fn::GetAtt": ["`+streamID+`", "Arn"]}},
			{"Sid": "EncryptTelemetryRecords", "Effect": "Allow", "Action": "kms:GenerateDataKey",
			 "Resource": {"Fn::GetAtt": ["`+keyID+`", "Arn"]}}
		]
	}`)
}

func TestStackImportedKey(t *testing.T) {
	const keyArn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	_, tmpl := newTestStack(t, TelemetryStackProps{EncryptionKeyArn: keyArn})
	check(t, "no KMS key created", func() { tmpl.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(0)) })
	streamID, stream := onlyResource(t, tmpl, "AWS::Kinesis::Stream")
	equalJSON(t, "stream encryption", props(t, stream)["StreamEncryption"], `{"EncryptionType": "KMS", "KeyId": "`+keyArn+`"}`)
	_, policy := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")
	equalJSON(t, "policy statements", props(t, policy)["PolicyDocument"].(map[string]any)["Statement"], `[
		{"Sid": "PutTelemetryRecords", "Effect": "Allow", "Action": "kinesis:PutRecords",
		 "Resource": {"Fn::GetAtt": ["`+streamID+`", "Arn"]}},
		{"Sid": "EncryptTelemetryRecords", "Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": "`+keyArn+`"}
	]`)
}

func TestStackInvalidProps(t *testing.T) {
	f := func(p TelemetryStackProps, wants ...string) {
		t.Helper()
		err := p.Validate()
		if !errors.Is(err, ErrInvalidProps) {
			t.Errorf("unexpected Validate error; got %v; want one wrapping ErrInvalidProps", err)
		}
		arm64, x8664 := layerZips(t)
		p.LayerZipArm64, p.LayerZipX8664 = arm64, x8664
		app := awscdk.NewApp(nil)
		wantPanic(t, "NewTelemetryStack", func() { NewTelemetryStack(app, jsii.String("Test"), &p) }, wants...)
	}
	f(TelemetryStackProps{ShardCount: -1}, "ShardCount -1: must be 0 (on-demand) or a positive number")
	f(TelemetryStackProps{Retention: 23 * time.Hour}, "Retention 23h0m0s: must be whole hours between 24h0m0s and 8760h0m0s")
	f(TelemetryStackProps{Retention: 8761 * time.Hour}, "Retention 8761h0m0s")
	f(TelemetryStackProps{Retention: 24*time.Hour + time.Minute}, "must be whole hours")
	f(TelemetryStackProps{StreamName: "bad name"}, `StreamName "bad name": must be 1–128 characters`)
	f(TelemetryStackProps{StreamName: strings.Repeat("s", 129)}, "StreamName")
	f(TelemetryStackProps{EncryptionKeyArn: "arn:aws:kms:eu-west-1:111122223333:alias/x"}, "must be a KMS key ARN")
	f(TelemetryStackProps{EncryptionKeyArn: "arn:aws:kms:eu-west-1:111122223333:key/x", CreateEncryptionKey: true},
		"more than one of EncryptionKey, EncryptionKeyArn and CreateEncryptionKey")
	f(TelemetryStackProps{StreamRemovalPolicy: awscdk.RemovalPolicy_SNAPSHOT}, `StreamRemovalPolicy "SNAPSHOT"`)
	f(TelemetryStackProps{DemoCodeDir: t.TempDir()}, "has no bootstrap executable")
	f(TelemetryStackProps{Environment: map[string]string{"KTE_BUFFER_TIMEOUT_MS": "10"}},
		`KTE_BUFFER_TIMEOUT_MS="10": must be an integer between 25 and 30000`)
	// Every problem at once.
	f(TelemetryStackProps{ShardCount: -2, StreamName: "a/b", Environment: map[string]string{"KTE_FLUSH": "sometimes"}},
		"ShardCount -2", `StreamName "a/b"`, `KTE_FLUSH="sometimes"`)
}

func TestStackLayerZipErrors(t *testing.T) {
	dir := t.TempDir()
	arm64, x8664 := layerZips(t)
	missing := filepath.Join(dir, "missing.zip")
	f := func(zipArm64, zipX8664 string, wants ...string) {
		t.Helper()
		app := awscdk.NewApp(nil)
		p := TelemetryStackProps{LayerZipArm64: zipArm64, LayerZipX8664: zipX8664}
		wantPanic(t, "NewTelemetryStack", func() { NewTelemetryStack(app, jsii.String("Test"), &p) }, wants...)
	}
	f(missing, x8664, "layer zip for arm64 not found at "+missing, "run `make layer` first", "-c layerZipArm64=PATH")
	f(arm64, missing, "layer zip for x86_64 not found", "-c layerZipX8664=PATH")
	// The architectures swapped: caught by the ELF header.
	f(x8664, arm64, "is built for EM_X86_64, but the layer is for arm64", "is built for EM_AARCH64, but the layer is for x86_64")
	// The defaults are relative to cdk/; from ktecdk/ they do not exist.
	abs, err := filepath.Abs(DefaultLayerZipArm64)
	if err != nil {
		t.Fatal(err)
	}
	f("", "", "not found at "+abs, "run `make layer` first")
}

func TestStackDemoFunction(t *testing.T) {
	dir := t.TempDir()
	if err := BuildDemoFunction("..", dir); err != nil {
		t.Fatalf("cannot build the demo function: %v", err)
	}
	ts, tmpl := newTestStack(t, TelemetryStackProps{DemoCodeDir: dir})
	if ts.DemoFunction == nil {
		t.Fatalf("unexpected DemoFunction; got nil; want the function")
	}
	streamID, _ := onlyResource(t, tmpl, "AWS::Kinesis::Stream")
	policyID, _ := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")
	arm64Layer := layerID(t, tmpl, ArchArm64)
	_, fn := onlyResource(t, tmpl, "AWS::Lambda::Function")
	p := props(t, fn)
	equalJSON(t, "runtime", p["Runtime"], `"provided.al2023"`)
	equalJSON(t, "architectures", p["Architectures"], `["arm64"]`)
	equalJSON(t, "layers", p["Layers"], mustMarshal([]any{ref(arm64Layer)}))
	equalJSON(t, "environment", p["Environment"], `{"Variables": {"KTE_STREAM": {"Fn::GetAtt": ["`+streamID+`", "Arn"]}}}`)
	roleID := p["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	role := resources(t, tmpl, "AWS::IAM::Role")[roleID]
	assertManagedPolicy(t, role, ref(policyID))
	check(t, "demo output", func() {
		tmpl.HasOutput(jsii.String(OutputDemoFunction), &map[string]any{"Value": map[string]any{"Ref": assertions.Match_AnyValue()}})
	})
}

// layerID returns the logical id of the template's layer for arch.
func layerID(t *testing.T, tmpl assertions.Template, arch string) string {
	t.Helper()
	for id, l := range resources(t, tmpl, "AWS::Lambda::LayerVersion") {
		if a, _ := props(t, l)["CompatibleArchitectures"].([]any); len(a) == 1 && a[0] == arch {
			return id
		}
	}
	t.Fatalf("no layer for %s in the template", arch)
	return ""
}

// assertManagedPolicy fails unless role's ManagedPolicyArns holds policy.
func assertManagedPolicy(t *testing.T, role map[string]any, policy any) {
	t.Helper()
	if role == nil {
		t.Fatalf("role not found in the template")
	}
	arns, _ := props(t, role)["ManagedPolicyArns"].([]any)
	want := mustMarshal(policy)
	for _, a := range arns {
		if mustMarshal(a) == want {
			return
		}
	}
	t.Errorf("unexpected ManagedPolicyArns; got %s; want it to contain %s", mustMarshal(arns), want)
}
