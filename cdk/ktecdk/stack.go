// Package ktecdk deploys the KTE extension with the AWS CDK: a stack with
// the Kinesis stream, the extension's layers (arm64 and x86_64) and the
// least-privilege policy for functions (NewTelemetryStack), and a construct
// that attaches the extension to functions in any stack
// (NewTelemetryExtension, TelemetryExtension.Attach, AttachAspect).
//
// Everything here runs while a CDK app is constructed, on one goroutine.
// Invalid props panic with an error wrapping ErrInvalidProps, as CDK
// constructs in Go do (jsii reports construction errors as panics); the
// errors are also available without a panic from Validate and
// ValidateEnvironment. What depends on a function's final settings (its
// environment and memory) is checked at synthesis: a validation that
// Attach adds to the function, or an error annotation from AttachAspect.
package ktecdk

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Kinesis stream limits (AWS::Kinesis::Stream RetentionPeriodHours and Name,
// CloudFormation resource reference, read 2026-11).
const (
	MinRetention = 24 * time.Hour
	MaxRetention = 8760 * time.Hour // 365 days
	// DefaultRetention is Kinesis's default (and minimum) retention.
	DefaultRetention = MinRetention
)

// DefaultStackName is the stack id the app (main.go) uses.
const DefaultStackName = "KinesisTelemetryExtension"

// Output ids of TelemetryStack.
const (
	OutputStreamName   = "StreamName"
	OutputStreamArn    = "StreamArn"
	OutputLayerArm64   = "LayerArm64Arn"
	OutputLayerX8664   = "LayerX8664Arn"
	OutputPolicyArn    = "ProducerPolicyArn"
	OutputDemoFunction = "DemoFunctionName"
)

// TelemetryStackProps configures NewTelemetryStack. The zero value is valid
// (given the layer zips): an on-demand stream with 24 h retention, encrypted
// with the AWS managed key, kept when the stack is deleted.
type TelemetryStackProps struct {
	// StackProps are passed to awscdk.NewStack. Leave Env nil for an
	// environment-agnostic stack, which synthesises without AWS credentials.
	awscdk.StackProps

	// StreamName is the stream's physical name; empty lets CloudFormation
	// generate one. 1–128 characters of a-z A-Z 0-9 _ . -
	StreamName string
	// ShardCount selects the capacity mode: 0 is on-demand, n > 0 is
	// provisioned with n shards.
	ShardCount int
	// Retention is how long records stay readable: whole hours between
	// MinRetention and MaxRetention; 0 means DefaultRetention.
	Retention time.Duration
	// EncryptionKey, when set, encrypts the stream with this customer
	// managed key (its key policy must let IAM policies grant use, as the
	// default key policy does). When nil the stream uses the AWS managed key
	// alias/aws/kinesis, unless CreateEncryptionKey is set.
	EncryptionKey awskms.IKey
	// EncryptionKeyArn is EncryptionKey given by ARN (imported into the
	// stack), e.g. arn:aws:kms:eu-west-1:111122223333:key/<id>.
	EncryptionKeyArn string
	// CreateEncryptionKey creates a customer managed key (rotation enabled,
	// retained on stack deletion) for the stream. Not with EncryptionKey.
	CreateEncryptionKey bool
	// StreamRemovalPolicy applies when the stream leaves the stack; empty
	// means awscdk.RemovalPolicy_RETAIN (telemetry is data).
	StreamRemovalPolicy awscdk.RemovalPolicy

	// LayerZipArm64 and LayerZipX8664 are the layer zips; empty means
	// DefaultLayerZipArm64 and DefaultLayerZipX8664 (what `make layer`
	// writes, relative to cdk/).
	LayerZipArm64 string
	LayerZipX8664 string

	// Environment holds KTE_ tuning for functions attached through the
	// stack's Extension (see TelemetryExtensionProps.Environment).
	Environment map[string]string
	// StreamByName gives those functions the stream's name as KTE_STREAM
	// instead of its ARN (see TelemetryExtensionProps.StreamByName).
	StreamByName bool

	// DemoCodeDir, when set, adds the demo function (provided.al2023, arm64)
	// from this folder, which must hold its `bootstrap` executable (see
	// BuildDemoFunction), with the extension attached.
	DemoCodeDir string
}

// TelemetryStack is what NewTelemetryStack created. Pass Stack where the CDK
// wants a scope or a stack.
type TelemetryStack struct {
	Stack awscdk.Stack
	// Stream receives the telemetry.
	Stream awskinesis.Stream
	// EncryptionKey is the stream's customer managed key; nil with the AWS
	// managed key.
	EncryptionKey awskms.IKey
	// Extension holds the layers and the producer policy; its Attach adds
	// them to functions (in this stack or others of the same app).
	Extension *TelemetryExtension
	// DemoFunction is the demo function, or nil.
	DemoFunction awslambda.Function
}

var (
	streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	kmsKeyArnRE  = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$`)
)

// Validate checks the props that NewTelemetryStack would otherwise reject
// by panicking (except the layer zips and the demo folder, which it checks
// on disk). The error joins one error per problem, each wrapping
// ErrInvalidProps.
func (p *TelemetryStackProps) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidProps}, args...)...))
	}
	if p.StreamName != "" && !streamNameRE.MatchString(p.StreamName) {
		bad("StreamName %q: must be 1–128 characters of a-z A-Z 0-9 _ . -", p.StreamName)
	}
	if p.ShardCount < 0 {
		bad("ShardCount %d: must be 0 (on-demand) or a positive number of shards (provisioned)", p.ShardCount)
	}
	if r := p.Retention; r != 0 && (r < MinRetention || r > MaxRetention || r%time.Hour != 0) {
		bad("Retention %v: must be whole hours between %v and %v (%d days)", r, MinRetention, MaxRetention, MaxRetention/(24*time.Hour))
	}
	keys := 0
	for _, set := range []bool{p.EncryptionKey != nil, p.EncryptionKeyArn != "", p.CreateEncryptionKey} {
		if set {
			keys++
		}
	}
	if keys > 1 {
		bad("more than one of EncryptionKey, EncryptionKeyArn and CreateEncryptionKey is set: choose one")
	}
	if a := p.EncryptionKeyArn; a != "" && !kmsKeyArnRE.MatchString(a) {
		bad("EncryptionKeyArn %q: must be a KMS key ARN, arn:<partition>:kms:<region>:<account>:key/<key id>", a)
	}
	switch p.StreamRemovalPolicy {
	case "", awscdk.RemovalPolicy_RETAIN, awscdk.RemovalPolicy_DESTROY:
	default:
		bad("StreamRemovalPolicy %q: must be RETAIN or DESTROY", p.StreamRemovalPolicy)
	}
	errs = append(errs, ValidateEnvironment(p.Environment))
	if p.DemoCodeDir != "" && !fileExists(filepath.Join(p.DemoCodeDir, "bootstrap")) {
		bad("DemoCodeDir %s has no bootstrap executable: build the demo function first (BuildDemoFunction)", p.DemoCodeDir)
	}
	return errors.Join(errs...)
}

// NewTelemetryStack creates the KTE stack: the stream, the layers, the
// producer policy, outputs (stream name and ARN, both layer ARNs, the
// policy ARN) and, with DemoCodeDir, the demo function. A nil props means
// the zero TelemetryStackProps. It panics with an error wrapping
// ErrInvalidProps when props are invalid or a layer zip is missing or wrong
// ("run `make layer` first").
func NewTelemetryStack(scope constructs.Construct, id *string, props *TelemetryStackProps) *TelemetryStack {
	if props == nil {
		props = &TelemetryStackProps{}
	}
	// Check everything before creating anything, so that one panic reports
	// every problem.
	errs := []error{
		props.Validate(),
		checkLayerZip(orDefault(props.LayerZipArm64, DefaultLayerZipArm64), ArchArm64),
		checkLayerZip(orDefault(props.LayerZipX8664, DefaultLayerZipX8664), ArchX8664),
	}
	if err := errors.Join(errs...); err != nil {
		panic(err)
	}

	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("KTE: Kinesis stream, Lambda extension layers and producer policy for Lambda telemetry")
	}
	stack := awscdk.NewStack(scope, id, &sp)
	ts := &TelemetryStack{Stack: stack}

	streamProps := &awskinesis.StreamProps{
		RetentionPeriod: awscdk.Duration_Hours(jsii.Number(orDefaultDuration(props.Retention, DefaultRetention).Hours())),
		RemovalPolicy:   awscdk.RemovalPolicy_RETAIN,
	}
	if props.StreamRemovalPolicy != "" {
		streamProps.RemovalPolicy = props.StreamRemovalPolicy
	}
	if props.StreamName != "" {
		streamProps.StreamName = jsii.String(props.StreamName)
	}
	if props.ShardCount == 0 {
		streamProps.StreamMode = awskinesis.StreamMode_ON_DEMAND
	} else {
		streamProps.StreamMode = awskinesis.StreamMode_PROVISIONED
		streamProps.ShardCount = jsii.Number(props.ShardCount)
	}
	ts.EncryptionKey = props.EncryptionKey
	if props.EncryptionKeyArn != "" {
		ts.EncryptionKey = awskms.Key_FromKeyArn(stack, jsii.String("ImportedStreamKey"), jsii.String(props.EncryptionKeyArn))
	}
	if props.CreateEncryptionKey {
		ts.EncryptionKey = awskms.NewKey(stack, jsii.String("StreamKey"), &awskms.KeyProps{
			Description:       jsii.String("KTE: encrypts the telemetry stream"),
			EnableKeyRotation: jsii.Bool(true),
			RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		})
	}
	if ts.EncryptionKey != nil {
		streamProps.Encryption = awskinesis.StreamEncryption_KMS
		streamProps.EncryptionKey = ts.EncryptionKey
	} else {
		streamProps.Encryption = awskinesis.StreamEncryption_MANAGED
	}
	ts.Stream = awskinesis.NewStream(stack, jsii.String("Stream"), streamProps)

	ts.Extension = NewTelemetryExtension(stack, jsii.String("Extension"), &TelemetryExtensionProps{
		Stream:        ts.Stream,
		LayerZipArm64: props.LayerZipArm64,
		LayerZipX8664: props.LayerZipX8664,
		Environment:   props.Environment,
		StreamByName:  props.StreamByName,
	})

	output := func(id string, value *string, desc string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(desc)})
	}
	output(OutputStreamName, ts.Stream.StreamName(), "Kinesis stream that receives the telemetry")
	output(OutputStreamArn, ts.Stream.StreamArn(), "ARN of the stream: the value of KTE_STREAM")
	output(OutputLayerArm64, ts.Extension.LayerArm64.LayerVersionArn(), "Extension layer for arm64 functions")
	output(OutputLayerX8664, ts.Extension.LayerX8664.LayerVersionArn(), "Extension layer for x86_64 functions")
	output(OutputPolicyArn, ts.Extension.Policy.ManagedPolicyArn(), "Managed policy to attach to the roles of functions using the layer")

	if props.DemoCodeDir != "" {
		ts.DemoFunction = newDemoFunction(stack, props.DemoCodeDir)
		ts.Extension.Attach(ts.DemoFunction)
		output(OutputDemoFunction, ts.DemoFunction.FunctionName(), "Demo function with the extension attached: invoke it, then read the stream")
	}
	return ts
}

func orDefaultDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
