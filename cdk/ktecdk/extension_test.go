package ktecdk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// usersExtension returns an app with a stack Users holding a stream and
// the extension for it, built from the test's layer zips.
func usersExtension(t *testing.T) (awscdk.App, awscdk.Stack, *TelemetryExtension) {
	t.Helper()
	arm64, x8664 := layerZips(t)
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Users"), nil)
	stream := awskinesis.NewStream(stack, jsii.String("Stream"), nil)
	return app, stack, NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{Stream: stream, LayerZipArm64: arm64, LayerZipX8664: x8664})
}

// nodeFunction creates a Node.js function with inline code: any runtime
// will do, since the extension does not depend on it.
func nodeFunction(scope constructs.Construct, id string, arch awslambda.Architecture) awslambda.Function {
	return awslambda.NewFunction(scope, jsii.String(id), &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_NODEJS_22_X(),
		Architecture: arch,
		Handler:      jsii.String("index.handler"),
		Code:         awslambda.Code_FromInline(jsii.String("exports.handler = async () => 'ok';")),
	})
}

// providedFunction creates a provided.al2023 function from a fake bootstrap.
func providedFunction(t *testing.T, scope constructs.Construct, id string, arch awslambda.Architecture) awslambda.Function {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return awslambda.NewFunction(scope, jsii.String(id), &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: arch,
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(dir), nil),
	})
}

// functionProps returns the Properties of the function whose logical id
// starts with prefix, and the role resource it uses.
func functionProps(t *testing.T, tmpl assertions.Template, prefix string) (fn, role map[string]any) {
	t.Helper()
	for id, r := range resources(t, tmpl, "AWS::Lambda::Function") {
		if strings.HasPrefix(id, prefix) {
			fn = props(t, r)
			roleID := fn["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
			return fn, resources(t, tmpl, "AWS::IAM::Role")[roleID]
		}
	}
	t.Fatalf("no function %s* in the template", prefix)
	return nil, nil
}

func TestAttachPerArchitecture(t *testing.T) {
	arm64, x8664 := layerZips(t)
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Users"), nil)
	stream := awskinesis.NewStream(stack, jsii.String("Stream"), &awskinesis.StreamProps{StreamMode: awskinesis.StreamMode_ON_DEMAND})
	ext := NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{
		Stream:        stream,
		LayerZipArm64: arm64,
		LayerZipX8664: x8664,
		Environment:   map[string]string{"KTE_FLUSH": "end", "KTE_BUFFER_TIMEOUT_MS": "25"},
	})
	ext.Attach(providedFunction(t, stack, "Graviton", awslambda.Architecture_ARM_64()))
	ext.Attach(nodeFunction(stack, "Intel", awslambda.Architecture_X86_64()))
	tmpl := templateOf(t, stack)

	streamID, _ := onlyResource(t, tmpl, "AWS::Kinesis::Stream")
	policyID, _ := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")
	wantEnv := `{"Variables": {
		"KTE_STREAM": {"Fn::GetAtt": ["` + streamID + `", "Arn"]},
		"KTE_FLUSH": "end",
		"KTE_BUFFER_TIMEOUT_MS": "25"
	}}`
	for _, c := range []struct{ prefix, arch string }{{"Graviton", ArchArm64}, {"Intel", ArchX8664}} {
		fn, role := functionProps(t, tmpl, c.prefix)
		equalJSON(t, c.prefix+" architectures", fn["Architectures"], mustMarshal([]string{c.arch}))
		equalJSON(t, c.prefix+" layers", fn["Layers"], mustMarshal([]any{ref(layerID(t, tmpl, c.arch))}))
		equalJSON(t, c.prefix+" environment", fn["Environment"], wantEnv)
		assertManagedPolicy(t, role, ref(policyID))
	}
	// The same through the template assertions, as a user would write them.
	check(t, "arm64 function has the arm64 layer", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]any{
			"Architectures": []string{ArchArm64},
			"Layers":        []any{ref(layerID(t, tmpl, ArchArm64))},
		})
	})
	check(t, "x86_64 function has the x86_64 layer", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), &map[string]any{
			"Architectures": []string{ArchX8664},
			"Layers":        []any{ref(layerID(t, tmpl, ArchX8664))},
		})
	})
}

func TestAttachTwiceIsNoop(t *testing.T) {
	_, stack, ext := usersExtension(t)
	fn := nodeFunction(stack, "Fn", awslambda.Architecture_ARM_64())
	ext.Attach(fn)
	ext.Attach(fn)
	tmpl := templateOf(t, stack)
	p, role := functionProps(t, tmpl, "Fn")
	if layers, _ := p["Layers"].([]any); len(layers) != 1 {
		t.Errorf("unexpected layers; got %v; want one", p["Layers"])
	}
	policyID, _ := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")
	arns := mustMarshal(props(t, role)["ManagedPolicyArns"])
	if n := strings.Count(arns, mustMarshal(ref(policyID))); n != 1 {
		t.Errorf("unexpected ManagedPolicyArns; got %s; want %s once", arns, policyID)
	}
}

// TestAttachAcrossStacks: the stack's extension attached to functions in
// another stack of the same app. The stream and the policy come through
// CloudFormation exports; the layer does not: an exported layer version
// could never be replaced (CloudFormation refuses to change an export in
// use), so the other stack gets its own copy, one per architecture.
func TestAttachAcrossStacks(t *testing.T) {
	arm64, x8664 := layerZips(t)
	app := awscdk.NewApp(nil)
	kte := NewTelemetryStack(app, jsii.String("Kte"), &TelemetryStackProps{LayerZipArm64: arm64, LayerZipX8664: x8664})
	users := awscdk.NewStack(app, jsii.String("Users"), nil)
	kte.Extension.Attach(nodeFunction(users, "Fn", awslambda.Architecture_ARM_64()))
	kte.Extension.Attach(nodeFunction(users, "Second", awslambda.Architecture_ARM_64()))
	kte.Extension.Attach(nodeFunction(users, "Intel", awslambda.Architecture_X86_64()))
	tmpl := templateOf(t, users)
	for _, c := range []struct{ prefix, arch string }{{"Fn", ArchArm64}, {"Second", ArchArm64}, {"Intel", ArchX8664}} {
		fn, role := functionProps(t, tmpl, c.prefix)
		equalJSON(t, c.prefix+" layers", fn["Layers"], mustMarshal([]any{ref(layerID(t, tmpl, c.arch))}))
		for what, v := range map[string]any{"stream": fn["Environment"], "policy": props(t, role)["ManagedPolicyArns"]} {
			if !strings.Contains(mustMarshal(v), `"Fn::ImportValue":"Kte:ExportsOutput`) {
				t.Errorf("unexpected %s reference of %s; got %s; want an import from stack Kte", what, c.prefix, mustMarshal(v))
			}
		}
	}
	layers := resources(t, tmpl, "AWS::Lambda::LayerVersion")
	if len(layers) != 2 {
		t.Errorf("unexpected layers in Users; got %v; want one per architecture", keys(layers))
	}
	for id, l := range layers {
		if l["DeletionPolicy"] != "Retain" {
			t.Errorf("unexpected DeletionPolicy of %s; got %v; want Retain", id, l["DeletionPolicy"])
		}
	}
	// The exporting stack still synthesises, and exports no layer.
	kteTmpl := templateOf(t, kte.Stack)
	outputs := *kteTmpl.FindOutputs(jsii.String("*"), nil)
	if len(outputs) != 5+2 {
		t.Errorf("unexpected outputs of Kte; got %v; want the 5 outputs and 2 exports (stream and policy)", keys(outputs))
	}
	for id, o := range outputs {
		if strings.HasPrefix(id, "ExportsOutput") && strings.Contains(mustMarshal(o), "Layer") {
			t.Errorf("unexpected export of a layer from Kte; got %s: %s", id, mustMarshal(o))
		}
	}
}

// TestAttachGivenLayerOtherStack: a given layer defined in another stack
// than the function's is exported from it, which locks its version; Attach
// warns. A layer imported by its ARN as text, or defined in the function's
// own stack, makes no export and no warning.
func TestAttachGivenLayerOtherStack(t *testing.T) {
	arm64, _ := layerZips(t)
	const streamArn = "arn:aws:kinesis:eu-west-1:111122223333:stream/kte"
	const layerArn = "arn:aws:lambda:eu-west-1:111122223333:layer:kte-arm64:3"
	app := awscdk.NewApp(nil)
	layers := awscdk.NewStack(app, jsii.String("Layers"), nil)
	users := awscdk.NewStack(app, jsii.String("Users"), nil)
	newExt := func(id string, scope constructs.Construct, layer awslambda.ILayerVersion) *TelemetryExtension {
		return NewTelemetryExtension(scope, jsii.String(id), &TelemetryExtensionProps{
			Stream:     awskinesis.Stream_FromStreamArn(scope, jsii.String(id+"Stream"), jsii.String(streamArn)),
			LayerArm64: layer,
			LayerX8664: awslambda.LayerVersion_FromLayerVersionArn(scope, jsii.String(id+"X86"), jsii.String(layerArn)),
		})
	}
	defined := awslambda.NewLayerVersion(layers, jsii.String("Kte"), &awslambda.LayerVersionProps{Code: awslambda.Code_FromAsset(jsii.String(arm64), nil)})
	newExt("Exported", users, defined).Attach(nodeFunction(users, "Fn", awslambda.Architecture_ARM_64()))
	newExt("ByArn", users, awslambda.LayerVersion_FromLayerVersionArn(layers, jsii.String("Imported"), jsii.String(layerArn))).
		Attach(nodeFunction(users, "FnByArn", awslambda.Architecture_ARM_64()))
	newExt("Own", users, awslambda.NewLayerVersion(users, jsii.String("OwnLayer"), &awslambda.LayerVersionProps{Code: awslambda.Code_FromAsset(jsii.String(arm64), nil)})).
		Attach(nodeFunction(users, "FnOwn", awslambda.Architecture_ARM_64()))
	templateOf(t, users)
	find := assertions.Annotations_FromStack(users).FindWarning
	checkMessage(t, find, "/Users/Fn", "layer Layers/Kte of stack Layers", "Users/Fn of stack Users", "LayerVersion_FromLayerVersionArn", "[ack: "+WarningLayerExported+"]")
	for _, path := range []string{"/Users/FnByArn", "/Users/FnOwn"} {
		if w := *find(jsii.String(path), assertions.Match_AnyValue()); len(w) != 0 {
			t.Errorf("unexpected warnings on %s; got %s; want none", path, mustMarshal(w))
		}
	}
}

// TestAttachImported: everything given, nothing created; the policy is then
// the caller's, and the stream's key does not change it.
func TestAttachImported(t *testing.T) {
	const (
		streamArn = "arn:aws:kinesis:eu-west-1:111122223333:stream/kte"
		layerArn  = "arn:aws:lambda:eu-west-1:111122223333:layer:kte-arm64:3"
		layer86   = "arn:aws:lambda:eu-west-1:111122223333:layer:kte-x86_64:3"
		policyArn = "arn:aws:iam::111122223333:policy/kte-producer"
	)
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Users"), nil)
	ext := NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{
		Stream:     awskinesis.Stream_FromStreamArn(stack, jsii.String("Stream"), jsii.String(streamArn)),
		LayerArm64: awslambda.LayerVersion_FromLayerVersionArn(stack, jsii.String("LayerArm64"), jsii.String(layerArn)),
		LayerX8664: awslambda.LayerVersion_FromLayerVersionArn(stack, jsii.String("LayerX8664"), jsii.String(layer86)),
		Policy:     awsiam.ManagedPolicy_FromManagedPolicyArn(stack, jsii.String("Policy"), jsii.String(policyArn)),
	})
	ext.Attach(nodeFunction(stack, "Fn", awslambda.Architecture_ARM_64()))
	tmpl := templateOf(t, stack)
	check(t, "nothing created but the function and its role", func() {
		tmpl.ResourceCountIs(jsii.String("AWS::Lambda::LayerVersion"), jsii.Number(0))
		tmpl.ResourceCountIs(jsii.String("AWS::IAM::ManagedPolicy"), jsii.Number(0))
	})
	fn, role := functionProps(t, tmpl, "Fn")
	equalJSON(t, "layers", fn["Layers"], `["`+layerArn+`"]`)
	equalJSON(t, "environment", fn["Environment"], `{"Variables": {"KTE_STREAM": "`+streamArn+`"}}`)
	assertManagedPolicy(t, role, policyArn)
}

// TestProducerPolicyImportedStreamWithKey: a stream from another app with a
// customer key gets the KMS statement on that key.
func TestProducerPolicyImportedStreamWithKey(t *testing.T) {
	const (
		streamArn = "arn:aws:kinesis:eu-west-1:111122223333:stream/kte"
		keyArn    = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	)
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Users"), nil)
	stream := awskinesis.Stream_FromStreamAttributes(stack, jsii.String("Stream"), &awskinesis.StreamAttributes{
		StreamArn:     jsii.String(streamArn),
		EncryptionKey: awskms.Key_FromKeyArn(stack, jsii.String("Key"), jsii.String(keyArn)),
	})
	NewProducerPolicy(stack, jsii.String("Policy"), stream)
	tmpl := templateOf(t, stack)
	check(t, "policy document", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::ManagedPolicy"), &map[string]any{
			"PolicyDocument": assertions.Match_ObjectEquals(&map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{
					map[string]any{"Sid": "PutTelemetryRecords", "Effect": "Allow", "Action": "kinesis:PutRecords", "Resource": streamArn},
					map[string]any{"Sid": "EncryptTelemetryRecords", "Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": keyArn},
				},
			}),
		})
	})
}

func TestAttachRejects(t *testing.T) {
	_, stack, ext := usersExtension(t)

	repo := awsecr.Repository_FromRepositoryName(stack, jsii.String("Repo"), jsii.String("app"))
	image := awslambda.NewDockerImageFunction(stack, jsii.String("Image"), &awslambda.DockerImageFunctionProps{
		Code: awslambda.DockerImageCode_FromEcr(repo, nil),
	})
	wantPanic(t, "container image", func() { ext.Attach(image) },
		"Users/Image is a container image function, which cannot use layers", "/opt/extensions/"+ExtensionName)

	custom := nodeFunction(stack, "Custom", awslambda.Architecture_Custom(jsii.String("riscv64"), nil))
	wantPanic(t, "custom architecture", func() { ext.Attach(custom) }, `Users/Custom has architecture "riscv64"`)
}

func TestExtensionInvalidProps(t *testing.T) {
	arm64, x8664 := layerZips(t)
	f := func(p TelemetryExtensionProps, wants ...string) {
		t.Helper()
		app := awscdk.NewApp(nil)
		stack := awscdk.NewStack(app, jsii.String("Users"), nil)
		if p.Stream == nil {
			p.Stream = awskinesis.NewStream(stack, jsii.String("Stream"), nil)
		}
		if p.LayerZipArm64 == "" {
			p.LayerZipArm64, p.LayerZipX8664 = arm64, x8664
		}
		wantPanic(t, "NewTelemetryExtension", func() { NewTelemetryExtension(stack, jsii.String("Kte"), &p) }, wants...)
		if p.Environment != nil {
			if err := ValidateEnvironment(p.Environment); !errors.Is(err, ErrInvalidProps) {
				t.Errorf("unexpected ValidateEnvironment error; got %v; want one wrapping ErrInvalidProps", err)
			}
		}
	}
	env := func(kv ...string) TelemetryExtensionProps {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return TelemetryExtensionProps{Environment: m}
	}
	// The extension's own ranges and messages (config.Load).
	f(env("KTE_BATCH_MAX_RECORDS", "600"), `KTE_BATCH_MAX_RECORDS="600": must be an integer between 1 and 500`)
	f(env("KTE_BUFFER_MAX_BYTES", "2MiB"), `KTE_BUFFER_MAX_BYTES="2MiB": must be a size between 256KiB and 1MiB`)
	f(env("KTE_LISTEN_PORT", "9001"), `KTE_LISTEN_PORT="9001"`, "reserved by Lambda")
	f(env("KTE_PARTITION_KEY", "Random"), `did you mean "random"?`)
	f(env("KTE_RECORD_MAX_BYTES", "2MiB", "KTE_BATCH_MAX_BYTES", "1MiB"), `KTE_RECORD_MAX_BYTES="2MiB": must be ≤ KTE_BATCH_MAX_BYTES=1MiB`)
	// Names.
	f(env("KTE_STREAM", "other"), "KTE_STREAM is set from TelemetryExtensionProps.Stream")
	f(env("KTE_FLUSHH", "end"), "KTE_FLUSHH is not a variable the extension reads", "KTE_FLUSH,")
	f(env("AWS_REGION", "eu-west-1"), "AWS_REGION, which is not a KTE_ variable")
	// All at once.
	f(env("KTE_FLUSH", "never", "KTE_LOG_LEVEL", "trace", "KTE_NOPE", "1"),
		`KTE_FLUSH="never"`, `KTE_LOG_LEVEL="trace"`, "KTE_NOPE is not a variable")
	// Stream and layers.
	missing := filepath.Join(t.TempDir(), "none.zip")
	f(TelemetryExtensionProps{LayerZipArm64: missing, LayerZipX8664: missing}, "layer zip for arm64 not found", "layer zip for x86_64 not found", "make layer")
	wantPanic(t, "no stream", func() {
		NewTelemetryExtension(awscdk.NewStack(awscdk.NewApp(nil), jsii.String("S"), nil), jsii.String("Kte"),
			&TelemetryExtensionProps{LayerZipArm64: arm64, LayerZipX8664: x8664})
	}, "TelemetryExtensionProps.Stream is required")
}

func TestValidateEnvironmentAccepts(t *testing.T) {
	f := func(env map[string]string) {
		t.Helper()
		if err := ValidateEnvironment(env); err != nil {
			t.Errorf("unexpected error for %v; got %v; want nil", env, err)
		}
	}
	f(nil)
	f(map[string]string{"KTE_FLUSH": "periodic:30s", "KTE_PARTITION_KEY": "function", "KTE_RING_BYTES": "16MiB"})
	f(map[string]string{"KTE_BATCH_MAX_RECORDS": "500", "KTE_BUFFER_MAX_ITEMS": "10000", "KTE_ENRICH": "off"})
	// A token is resolved at deploy time; the extension checks it then.
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("S"), nil)
	param := awscdk.NewCfnParameter(stack, jsii.String("Flush"), nil)
	f(map[string]string{"KTE_FLUSH": *param.ValueAsString()})
}

func TestAttachStreamByName(t *testing.T) {
	arm64, x8664 := layerZips(t)
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Users"), nil)
	stream := awskinesis.NewStream(stack, jsii.String("Stream"), nil)
	ext := NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{
		Stream: stream, StreamByName: true, LayerZipArm64: arm64, LayerZipX8664: x8664,
	})
	ext.Attach(nodeFunction(stack, "Fn", awslambda.Architecture_ARM_64()))
	tmpl := templateOf(t, stack)
	streamID, _ := onlyResource(t, tmpl, "AWS::Kinesis::Stream")
	fn, _ := functionProps(t, tmpl, "Fn")
	equalJSON(t, "environment", fn["Environment"], `{"Variables": {"KTE_STREAM": {"Ref": "`+streamID+`"}}}`)
	// The policy still names the stream by ARN: IAM has no stream names.
	_, policy := onlyResource(t, tmpl, "AWS::IAM::ManagedPolicy")
	stmt := props(t, policy)["PolicyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
	equalJSON(t, "policy resource", stmt["Resource"], mustMarshal(getAttArn(streamID)))
}

// TestAttachImportedRole: an imported role cannot take a managed policy
// (the CDK ignores it, or attaches the policy from the policy's own stack);
// a mutable one gets the statements inline, in the function's stack, and an
// immutable one a warning that says what its owner must add.
func TestAttachImportedRole(t *testing.T) {
	const (
		streamArn = "arn:aws:kinesis:eu-west-1:111122223333:stream/kte"
		keyArn    = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		policyArn = "arn:aws:iam::111122223333:policy/kte-producer"
	)
	arm64, x8664 := layerZips(t)
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Users"), nil)
	ext := NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{
		Stream: awskinesis.Stream_FromStreamAttributes(stack, jsii.String("Stream"), &awskinesis.StreamAttributes{
			StreamArn:     jsii.String(streamArn),
			EncryptionKey: awskms.Key_FromKeyArn(stack, jsii.String("Key"), jsii.String(keyArn)),
		}),
		Policy:        awsiam.ManagedPolicy_FromManagedPolicyArn(stack, jsii.String("Policy"), jsii.String(policyArn)),
		LayerZipArm64: arm64, LayerZipX8664: x8664,
	})
	withRole := func(id string, role awsiam.IRole) awslambda.Function {
		return awslambda.NewFunction(stack, jsii.String(id), &awslambda.FunctionProps{
			Runtime: awslambda.Runtime_NODEJS_22_X(),
			Handler: jsii.String("index.handler"),
			Code:    awslambda.Code_FromInline(jsii.String("exports.handler = async () => 'ok';")),
			Role:    role,
		})
	}
	shared := awsiam.Role_FromRoleArn(stack, jsii.String("Shared"), jsii.String("arn:aws:iam::111122223333:role/shared"), nil)
	locked := awsiam.Role_FromRoleArn(stack, jsii.String("Locked"), jsii.String("arn:aws:iam::111122223333:role/locked"),
		&awsiam.FromRoleArnOptions{Mutable: jsii.Bool(false)})
	ext.Attach(withRole("First", shared))
	ext.Attach(withRole("Second", shared))
	ext.Attach(withRole("Immutable", locked))
	tmpl := templateOf(t, stack)

	_, policy := onlyResource(t, tmpl, "AWS::IAM::Policy")
	equalJSON(t, "inline policy roles", props(t, policy)["Roles"], `["shared"]`)
	equalJSON(t, "inline policy statements", props(t, policy)["PolicyDocument"].(map[string]any)["Statement"], `[
		{"Effect": "Allow", "Action": "kinesis:PutRecords", "Resource": "`+streamArn+`"},
		{"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": "`+keyArn+`"}
	]`)

	checkMessage(t, assertions.Annotations_FromStack(stack).FindWarning, "/Users/Immutable",
		"role arn:aws:iam::111122223333:role/locked of Users/Immutable", "kinesis:PutRecords", streamArn, "kms:GenerateDataKey", keyArn,
		"[ack: "+WarningRoleNotGranted+"]")
	if other := assertions.Annotations_FromStack(stack).FindWarning(jsii.String("/Users/First"), assertions.Match_AnyValue()); len(*other) != 0 {
		t.Errorf("unexpected warnings on Users/First; got %s; want none", mustMarshal(other))
	}
}

// TestAttachChecksMemory: the extension refuses at init a KTE_RING_BYTES
// over half the function's memory, so every invocation would fail; synthesis
// fails instead, naming the function, the value and the limit, whether the
// ring comes from the extension's Environment or the function's own, and
// whenever it was set.
func TestAttachChecksMemory(t *testing.T) {
	arm64, x8664 := layerZips(t)
	f := func(extEnv map[string]string, fnProps awslambda.FunctionProps, after func(fn awslambda.Function), wants ...string) {
		t.Helper()
		app := awscdk.NewApp(nil)
		stack := awscdk.NewStack(app, jsii.String("Users"), nil)
		ext := NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{
			Stream:      awskinesis.NewStream(stack, jsii.String("Stream"), nil),
			Environment: extEnv, LayerZipArm64: arm64, LayerZipX8664: x8664,
		})
		fnProps.Runtime = awslambda.Runtime_NODEJS_22_X()
		fnProps.Handler = jsii.String("index.handler")
		fnProps.Code = awslambda.Code_FromInline(jsii.String("exports.handler = async () => 'ok';"))
		fn := awslambda.NewFunction(stack, jsii.String("Fn"), &fnProps)
		ext.Attach(fn)
		if after != nil {
			after(fn)
		}
		synth := func() { assertions.Template_FromStack(stack, nil) }
		if len(wants) == 0 {
			if msg := panicText(synth); msg != "" {
				t.Errorf("unexpected synthesis error; got %s; want none", msg)
			}
			return
		}
		wantPanic(t, "synthesis", synth, wants...)
	}
	ring := func(v string) map[string]string { return map[string]string{"KTE_RING_BYTES": v} }
	env := func(kv ...string) *map[string]*string {
		m := map[string]*string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = jsii.String(kv[i+1])
		}
		return &m
	}

	// Lambda's default memory, 128 MB: at most 64MiB.
	f(ring("128MiB"), awslambda.FunctionProps{}, nil,
		"[Users/Fn]", "MemorySize 128 MB", `KTE_RING_BYTES="128MiB": must be at most half the function's memory, 64MiB`)
	f(ring("64MiB"), awslambda.FunctionProps{}, nil)
	f(ring("256MiB"), awslambda.FunctionProps{MemorySize: jsii.Number(512)}, nil)
	f(ring("512MiB"), awslambda.FunctionProps{MemorySize: jsii.Number(512)}, nil,
		"[Users/Fn]", "MemorySize 512 MB", `KTE_RING_BYTES="512MiB"`, "256MiB")
	// Set on the function itself, before or after Attach.
	f(nil, awslambda.FunctionProps{MemorySize: jsii.Number(256), Environment: env("KTE_RING_BYTES", "256MiB")}, nil,
		"[Users/Fn]", `KTE_RING_BYTES="256MiB"`, "128MiB")
	f(nil, awslambda.FunctionProps{MemorySize: jsii.Number(256)}, func(fn awslambda.Function) {
		fn.AddEnvironment(jsii.String("KTE_RING_BYTES"), jsii.String("256MiB"), nil)
	}, "[Users/Fn]", `KTE_RING_BYTES="256MiB"`, "128MiB")
	// Other variables of the function that the extension would refuse at
	// init fail the same way.
	f(nil, awslambda.FunctionProps{Environment: env("AWS_ENDPOINT_URL_KINESIS", "localhost:4567")}, nil,
		"[Users/Fn]", `AWS_ENDPOINT_URL_KINESIS="localhost:4567"`)
	// A memory size given at deploy time cannot be checked here.
	f(ring("1GiB"), awslambda.FunctionProps{}, func(fn awslambda.Function) {
		param := awscdk.NewCfnParameter(awscdk.Stack_Of(fn), jsii.String("Memory"), &awscdk.CfnParameterProps{Type: jsii.String("Number")})
		fn.Node().DefaultChild().(awslambda.CfnFunction).SetMemorySize(param.ValueAsNumber())
	})
}

// TestAttachStreamByNameEnvironment: with StreamByName the extension looks
// the stream's name up in the function's own region and account, so a
// stream elsewhere is refused, and one that synthesis cannot place gets a
// warning.
func TestAttachStreamByNameEnvironment(t *testing.T) {
	arm64, x8664 := layerZips(t)
	const streamArn = "arn:aws:kinesis:eu-west-1:111122223333:stream/kte"
	attach := func(env *awscdk.Environment, arn string) (awscdk.Stack, func()) {
		app := awscdk.NewApp(nil)
		stack := awscdk.NewStack(app, jsii.String("Users"), &awscdk.StackProps{Env: env})
		var stream awskinesis.IStream
		if arn == "" {
			stream = awskinesis.NewStream(stack, jsii.String("Stream"), &awskinesis.StreamProps{StreamName: jsii.String("kte")})
		} else {
			stream = awskinesis.Stream_FromStreamArn(stack, jsii.String("Stream"), jsii.String(arn))
		}
		ext := NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{
			Stream: stream, StreamByName: true, LayerZipArm64: arm64, LayerZipX8664: x8664,
		})
		fn := nodeFunction(stack, "Fn", awslambda.Architecture_ARM_64())
		return stack, func() { ext.Attach(fn) }
	}
	env := func(account, region string) *awscdk.Environment {
		return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
	}
	noWarnings := func(stack awscdk.Stack) {
		t.Helper()
		if w := *assertions.Annotations_FromStack(stack).FindWarning(jsii.String("/Users/Fn"), assertions.Match_AnyValue()); len(w) != 0 {
			t.Errorf("unexpected warnings; got %s; want none", mustMarshal(w))
		}
	}

	_, a := attach(env("111122223333", "us-east-1"), streamArn)
	wantPanic(t, "other region", a, "Users/Fn", "StreamByName", "region eu-west-1", "region us-east-1")
	_, a = attach(env("444455556666", "eu-west-1"), streamArn)
	wantPanic(t, "other account", a, "Users/Fn", "StreamByName", "account 111122223333", "account 444455556666")

	// Same region and account: the name.
	stack, a := attach(env("111122223333", "eu-west-1"), streamArn)
	a()
	fn, _ := functionProps(t, templateOf(t, stack), "Fn")
	equalJSON(t, "environment", fn["Environment"], `{"Variables": {"KTE_STREAM": "kte"}}`)
	noWarnings(stack)
	// A stream of the function's own stack: the same environment, whatever it is.
	stack, a = attach(nil, "")
	a()
	templateOf(t, stack)
	noWarnings(stack)
	// An environment-agnostic stack: known only at deploy time.
	stack, a = attach(nil, streamArn)
	a()
	templateOf(t, stack)
	checkMessage(t, assertions.Annotations_FromStack(stack).FindWarning, "/Users/Fn",
		"stream Users/Stream", "region eu-west-1, account 111122223333", "[ack: "+WarningStreamByNameEnvironment+"]")
}
