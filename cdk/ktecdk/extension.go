package ktecdk

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/kte-dev/kinesis-telemetry-extension/config"
)

// ErrInvalidProps is wrapped by every error (and panic value) this package
// reports for invalid props, context or layer zips.
var ErrInvalidProps = errors.New("ktecdk: invalid props")

// EnvStream is the variable Attach sets to the stream's ARN (or name).
const EnvStream = "KTE_STREAM"

// WarningRoleNotGranted is the id of the warning Attach adds to a function
// whose role is imported as immutable (acknowledge it with
// awscdk.Annotations_Of(fn).AcknowledgeWarning once the role's owner has
// granted the statements it names).
const WarningRoleNotGranted = "@kte/ktecdk:roleNotGranted"

// WarningStreamByNameEnvironment is the id of the warning Attach adds, with
// StreamByName, to a function whose region or account synthesis cannot
// compare with the stream's (an environment-agnostic stack and a stream
// imported by ARN): the extension looks the name up in the function's own
// region and account.
const WarningStreamByNameEnvironment = "@kte/ktecdk:streamByNameEnvironment"

// WarningLayerExported is the id of the warning Attach adds to a function
// given a layer (TelemetryExtensionProps.LayerArm64 or LayerX8664) that is
// defined in another stack of the app: CloudFormation exports the layer
// version's ARN from that stack and refuses to change an export that
// another stack imports, so a new version of the layer cannot be deployed
// while the function's stack uses it.
const WarningLayerExported = "@kte/ktecdk:layerExported"

// TelemetryExtensionProps configures NewTelemetryExtension. Only Stream is
// required.
type TelemetryExtensionProps struct {
	// Stream receives the telemetry. Functions get its ARN as KTE_STREAM. Its
	// EncryptionKey, when set (a customer managed key), is added to the
	// policy the construct creates. Required. A stream of another account is
	// imported by ARN (the extension takes the region from the ARN), and its
	// owner must grant the functions' roles as well (see NewProducerPolicy).
	Stream awskinesis.IStream
	// StreamByName sets KTE_STREAM to the stream's name instead of its ARN.
	// The extension then addresses the stream by name in the function's own
	// region and account, through the regional endpoint
	// (kinesis.<region>.amazonaws.com); with an ARN the SDK uses the
	// account endpoint (<account>.data-kinesis.<region>.amazonaws.com),
	// which matters for VPC endpoints and egress rules. Attach refuses a
	// function whose region or account differs from the stream's, and warns
	// (WarningStreamByNameEnvironment) when synthesis cannot compare them.
	StreamByName bool

	// LayerArm64 and LayerX8664 are the extension's layers. When nil, the
	// construct creates a LayerVersion from LayerZipArm64 or LayerZipX8664
	// (default DefaultLayerZipArm64, DefaultLayerZipX8664), and Attach gives
	// a function in another stack a copy of it in that stack (see Attach).
	// A given layer defined in another stack than a function's is exported
	// to it, and Attach warns (WarningLayerExported).
	LayerArm64    awslambda.ILayerVersion
	LayerX8664    awslambda.ILayerVersion
	LayerZipArm64 string
	LayerZipX8664 string

	// Policy is attached to the role of every function the extension is
	// attached to, when that role is an iam.Role of this app. When nil, the
	// construct creates the least-privilege policy (see NewProducerPolicy).
	// A given policy is used as is. An imported role gets the same
	// statements inline instead (see Attach).
	Policy awsiam.IManagedPolicy

	// Environment holds KTE_ tuning variables (see the configuration table;
	// not KTE_STREAM, which comes from Stream). They are validated here with
	// the extension's own config.Load, so a value the extension would refuse
	// fails synthesis instead of the function's cold start. Values that are
	// unresolved CDK tokens cannot be checked and are passed through.
	Environment map[string]string
}

// TelemetryExtension is the extension's layers, the policy functions need
// and the environment they get. Attach adds all three to a function. It is
// built and used on one goroutine while the app is constructed, like every
// CDK construct, and must not be copied (use the pointer).
type TelemetryExtension struct {
	_ noCopy

	// Construct is the scope holding what NewTelemetryExtension created.
	Construct constructs.Construct
	// Stream is the stream the extension writes to.
	Stream awskinesis.IStream
	// LayerArm64 and LayerX8664 are the layers (created or given).
	// Functions in other stacks get copies of created ones (see Attach).
	LayerArm64 awslambda.ILayerVersion
	LayerX8664 awslambda.ILayerVersion
	// Policy is the managed policy attached to functions' roles.
	Policy awsiam.IManagedPolicy

	env          map[string]string
	streamByName bool
	attached     map[string]bool // node paths of functions already attached

	granted map[string]bool // node paths of imported roles given the statements inline

	// zips holds the zip of each layer the construct created, by
	// architecture; a given layer has none and is never copied.
	zips map[string]string
	// copies holds the layers created in other stacks, by stack path and
	// architecture.
	copies map[string]awslambda.ILayerVersion
}

// NewTelemetryExtension creates the layers and the policy that props do not
// give, in a new construct scope/id. Like the CDK's own constructs, it
// panics when props are invalid (in Go that is how a CDK construct fails
// synthesis); the panic value is an error wrapping ErrInvalidProps whose
// text says what to fix, e.g. a missing layer zip ("run `make layer`
// first") or a tuning variable outside the extension's range.
func NewTelemetryExtension(scope constructs.Construct, id *string, props *TelemetryExtensionProps) *TelemetryExtension {
	if props == nil {
		props = &TelemetryExtensionProps{}
	}
	var errs []error
	if props.Stream == nil {
		errs = append(errs, fmt.Errorf("%w: TelemetryExtensionProps.Stream is required", ErrInvalidProps))
	}
	zipArm64 := orDefault(props.LayerZipArm64, DefaultLayerZipArm64)
	zipX8664 := orDefault(props.LayerZipX8664, DefaultLayerZipX8664)
	if props.LayerArm64 == nil {
		errs = append(errs, checkLayerZip(zipArm64, ArchArm64))
	}
	if props.LayerX8664 == nil {
		errs = append(errs, checkLayerZip(zipX8664, ArchX8664))
	}
	errs = append(errs, ValidateEnvironment(props.Environment))
	if err := errors.Join(errs...); err != nil {
		panic(err)
	}

	c := constructs.NewConstruct(scope, id)
	e := &TelemetryExtension{
		Construct:    c,
		Stream:       props.Stream,
		LayerArm64:   props.LayerArm64,
		LayerX8664:   props.LayerX8664,
		Policy:       props.Policy,
		env:          maps.Clone(props.Environment),
		streamByName: props.StreamByName,
		attached:     map[string]bool{},
		granted:      map[string]bool{},
		zips:         map[string]string{},
		copies:       map[string]awslambda.ILayerVersion{},
	}
	if e.LayerArm64 == nil {
		e.LayerArm64 = newLayer(c, ArchArm64, zipArm64)
		e.zips[ArchArm64] = zipArm64
	}
	if e.LayerX8664 == nil {
		e.LayerX8664 = newLayer(c, ArchX8664, zipX8664)
		e.zips[ArchX8664] = zipX8664
	}
	if e.Policy == nil {
		e.Policy = NewProducerPolicy(c, jsii.String("ProducerPolicy"), props.Stream)
	}
	return e
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newLayer creates the layer for arch from a checked zip. It sets no
// CompatibleRuntimes: an external extension is a separate executable, so the
// layer works with every runtime (and the CDK then accepts it on any
// function). The version is retained when a new zip replaces it or the stack
// is deleted: Lambda keeps a deleted version for the functions that already
// use it, but it can no longer be added to a function (DeleteLayerVersion,
// Lambda API reference, read 2026-11), so a function attached by hand from
// the layer's ARN could not be given it again when its layer list is set
// anew.
func newLayer(scope constructs.Construct, arch, zipPath string) awslambda.LayerVersion {
	id, a := "LayerArm64", awslambda.Architecture_ARM_64()
	if arch == ArchX8664 {
		id, a = "LayerX8664", awslambda.Architecture_X86_64()
	}
	return awslambda.NewLayerVersion(scope, jsii.String(id), &awslambda.LayerVersionProps{
		Code:                    awslambda.Code_FromAsset(jsii.String(zipPath), nil),
		CompatibleArchitectures: &[]awslambda.Architecture{a},
		Description:             jsii.String("KTE: Lambda Telemetry API to Kinesis Data Streams extension (" + arch + ")"),
		RemovalPolicy:           awscdk.RemovalPolicy_RETAIN,
	})
}

// NewProducerPolicy creates the least-privilege managed policy for functions
// whose extension writes to stream: kinesis:PutRecords on the stream's ARN
// (the only Kinesis call the extension makes), plus kms:GenerateDataKey on
// the stream's customer managed key when it has one (the permission AWS
// documents for producers of such streams; the AWS managed key needs none).
//
// The policy is an IAM policy in the account of scope's stack. For a stream
// in another account it is needed but not enough: the stream's
// resource-based policy must allow the function's role kinesis:PutRecords,
// and a customer managed key's policy must allow it kms:GenerateDataKey. The
// construct cannot add either, as both live in the stream's account.
func NewProducerPolicy(scope constructs.Construct, id *string, stream awskinesis.IStream) awsiam.ManagedPolicy {
	var statements []awsiam.PolicyStatement
	for _, g := range producerGrants(stream) {
		statements = append(statements, g.statement(true))
	}
	return awsiam.NewManagedPolicy(scope, id, &awsiam.ManagedPolicyProps{
		Description: jsii.String("KTE extension: write Lambda telemetry to one Kinesis stream"),
		Statements:  &statements,
	})
}

// grant is one statement of the producer policy. what names its resource
// for messages, where the ARN may be a token.
type grant struct {
	sid, action, resource, what string
}

// producerGrants returns what a function's role needs for the extension to
// write to stream.
func producerGrants(stream awskinesis.IStream) []grant {
	path := *stream.Node().Path()
	grants := []grant{{"PutTelemetryRecords", "kinesis:PutRecords", *stream.StreamArn(), "stream " + path}}
	if key := stream.EncryptionKey(); key != nil {
		grants = append(grants, grant{"EncryptTelemetryRecords", "kms:GenerateDataKey", *key.KeyArn(), "the key of stream " + path})
	}
	return grants
}

// statement returns g as an IAM statement, with its Sid when withSid (Sids
// must be unique in a policy: an inline policy shared with other grants
// goes without).
func (g grant) statement(withSid bool) awsiam.PolicyStatement {
	p := &awsiam.PolicyStatementProps{
		Effect:    awsiam.Effect_ALLOW,
		Actions:   jsii.Strings(g.action),
		Resources: jsii.Strings(g.resource),
	}
	if withSid {
		p.Sid = jsii.String(g.sid)
	}
	return awsiam.NewPolicyStatement(p)
}

// Environment returns the variables Attach sets: KTE_STREAM and the tuning.
// The map is a copy.
func (e *TelemetryExtension) Environment() map[string]string {
	env := maps.Clone(e.env)
	if env == nil {
		env = map[string]string{}
	}
	if e.streamByName {
		env[EnvStream] = *e.Stream.StreamName()
	} else {
		env[EnvStream] = *e.Stream.StreamArn()
	}
	return env
}

// Attach adds the extension to fn: the layer for fn's architecture, the
// KTE_ environment (KTE_STREAM = the stream's ARN or name, then the tuning
// in sorted order; an existing variable of the same name is replaced) and
// the policy on fn's role. Attaching a function again does nothing.
//
// A role imported into the app (iam.Role_FromRoleArn and the like) cannot
// take a managed policy: a mutable one gets the policy's statements as an
// inline policy, and for an immutable one Attach adds a warning
// (WarningRoleNotGranted) to fn that says what the role's owner must add.
//
// A function in another stack than the construct gets, when the construct
// created the layers, a copy of the layer in its own stack (one per stack
// and architecture, retained like the original): a reference to the
// original would be a CloudFormation export, and CloudFormation refuses to
// change an export that another stack imports, which would lock the layer
// version.
//
// Attach also adds a validation to fn: at synthesis, fn's final environment
// and memory size are checked with the extension's own config.Load, so that
// a setting the extension would refuse at init (such as a KTE_RING_BYTES
// over half of fn's MemorySize) fails synthesis instead of every
// invocation.
//
// It panics with an ErrInvalidProps error when fn cannot take the
// extension: a container image function (layers are not supported; put the
// extension into the image), an architecture other than arm64 or x86_64, or
// no role.
func (e *TelemetryExtension) Attach(fn awslambda.Function) {
	path := *fn.Node().Path()
	if e.attached[path] {
		return
	}
	if errs := e.unattachable(fn); len(errs) > 0 {
		panic(errors.Join(errs...))
	}
	arch := *fn.Architecture().Name()
	role := fn.Role()

	if e.streamByName && e.streamEnvironment(fn) == envUnknown {
		se, fe := e.Stream.Env(), fn.Env()
		awscdk.Annotations_Of(fn).AddWarningV2(jsii.String(WarningStreamByNameEnvironment), jsii.String(fmt.Sprintf(
			"StreamByName sets KTE_STREAM to the name of stream %s, which the extension of %s looks up in the function's own region and account; "+
				"the stream is in %s, and the function in %s, so synthesis cannot tell whether they match: deploy the function there, or leave StreamByName off so that KTE_STREAM is the stream's ARN",
			*e.Stream.Node().Path(), path, describeEnv(*se.Region, *se.Account), describeEnv(*fe.Region, *fe.Account))), nil)
	}
	fn.AddLayers(e.layerFor(fn, arch))
	env := e.Environment()
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fn.AddEnvironment(jsii.String(k), jsii.String(env[k]), nil)
	}
	e.grant(fn, role)
	fn.Node().AddValidation(&settingsCheck{fn: fn})
	e.attached[path] = true
}

// unattachable returns why the extension cannot be attached to fn at all,
// each error wrapping ErrInvalidProps and naming fn.
func (e *TelemetryExtension) unattachable(fn awslambda.Function) []error {
	path := *fn.Node().Path()
	if *fn.Runtime().Name() == *awslambda.Runtime_FROM_IMAGE().Name() {
		// Nothing else matters.
		return []error{fmt.Errorf("%w: %s is a container image function, which cannot use layers: copy the extension into the image at /opt/extensions/%s instead",
			ErrInvalidProps, path, ExtensionName)}
	}
	var errs []error
	if arch := *fn.Architecture().Name(); arch != ArchArm64 && arch != ArchX8664 {
		errs = append(errs, fmt.Errorf("%w: %s has architecture %q: the extension is built for %s and %s only", ErrInvalidProps, path, arch, ArchArm64, ArchX8664))
	}
	if fn.Role() == nil {
		errs = append(errs, fmt.Errorf("%w: %s has no role to attach the extension's policy to", ErrInvalidProps, path))
	}
	if e.streamByName && e.streamEnvironment(fn) == envDifferent {
		se, fe := e.Stream.Env(), fn.Env()
		errs = append(errs, fmt.Errorf("%w: %s: StreamByName sets KTE_STREAM to the stream's name, which the extension looks up in the function's own region and account, "+
			"but stream %s is in %s, and the function in %s: leave StreamByName off, so that KTE_STREAM is the stream's ARN",
			ErrInvalidProps, path, *e.Stream.Node().Path(), describeEnv(*se.Region, *se.Account), describeEnv(*fe.Region, *fe.Account)))
	}
	return errs
}

// describeEnv names a region and an account, either of which may be a
// token.
func describeEnv(region, account string) string {
	known := func(s string) string {
		if *awscdk.Token_IsUnresolved(s) {
			return "known at deploy time"
		}
		return s
	}
	return "region " + known(region) + ", account " + known(account)
}

// How a function's region and account compare with the stream's.
const (
	envSame      = iota
	envDifferent // one of them differs
	envUnknown   // not both known at synthesis, and not the same token
)

// streamEnvironment compares the stream's region and account with fn's, as
// far as synthesis knows them.
func (e *TelemetryExtension) streamEnvironment(fn awslambda.Function) int {
	se, fe := e.Stream.Env(), fn.Env()
	result := envSame
	for _, pair := range [][2]string{{*se.Region, *fe.Region}, {*se.Account, *fe.Account}} {
		a, b := pair[0], pair[1]
		switch {
		case a == b:
		case *awscdk.Token_IsUnresolved(a) || *awscdk.Token_IsUnresolved(b):
			result = envUnknown
		default:
			return envDifferent
		}
	}
	return result
}

// grant gives fn's role what the extension needs: the policy when the role
// is an iam.Role of this app, or the statements inline when it is imported.
// For an imported role the CDK ignores a managed policy (with an imported
// policy, or when the role is immutable) or attaches a created one from the
// policy's stack, which only deploying that stack would apply.
func (e *TelemetryExtension) grant(fn awslambda.Function, role awsiam.IRole) {
	if r, ok := role.(awsiam.Role); ok {
		r.AddManagedPolicy(e.Policy)
		return
	}
	rolePath := *role.Node().Path()
	if e.granted[rolePath] {
		return
	}
	grants := producerGrants(e.Stream)
	added := true
	for _, g := range grants {
		// An immutable role answers StatementAdded true without adding
		// anything; only a mutable one puts the statement in a Policy.
		res := role.AddToPrincipalPolicy(g.statement(false))
		if _, ok := res.PolicyDependable.(awsiam.Policy); !ok {
			added = false
		}
	}
	if added {
		e.granted[rolePath] = true
		return
	}
	roleName := rolePath
	if name := *role.RoleName(); !*awscdk.Token_IsUnresolved(name) {
		roleName = name
	}
	if arn := *role.RoleArn(); !*awscdk.Token_IsUnresolved(arn) {
		roleName = arn
	}
	var stmts []string
	for _, g := range grants {
		resource := g.resource
		if *awscdk.Token_IsUnresolved(resource) {
			resource = "<the ARN of " + g.what + ">"
		}
		stmts = append(stmts, fmt.Sprintf(`{"Effect": "Allow", "Action": %q, "Resource": %q}`, g.action, resource))
	}
	awscdk.Annotations_Of(fn).AddWarningV2(jsii.String(WarningRoleNotGranted), jsii.String(fmt.Sprintf(
		"role %s of %s is imported as immutable, so the extension's permissions cannot be added to it and Kinesis will refuse its records: the role's owner must add %s",
		roleName, *fn.Node().Path(), strings.Join(stmts, " and "))), nil)
}

// layerFor returns the layer for a function of architecture arch (ArchArm64
// or ArchX8664) in fn's stack: the construct's own, or a copy of a created
// one in fn's stack.
func (e *TelemetryExtension) layerFor(fn awslambda.Function, arch string) awslambda.ILayerVersion {
	layer := e.LayerArm64
	if arch == ArchX8664 {
		layer = e.LayerX8664
	}
	zipPath := e.zips[arch]
	stack := awscdk.Stack_Of(fn)
	stackPath := *stack.Node().Path()
	if zipPath == "" {
		// A given layer: referring to one defined in another stack (its ARN
		// a token, not text) makes CloudFormation export it.
		if layerStack := *awscdk.Stack_Of(layer).Node().Path(); layerStack != stackPath && *awscdk.Token_IsUnresolved(layer.LayerVersionArn()) {
			awscdk.Annotations_Of(fn).AddWarningV2(jsii.String(WarningLayerExported), jsii.String(fmt.Sprintf(
				"layer %s of stack %s is given to %s of stack %s, so CloudFormation exports its ARN; it refuses to change an export that another stack imports, "+
					"so a new version of that layer cannot be deployed while %s uses it: define the layer in %s, import it by its ARN as text "+
					"(LayerVersion_FromLayerVersionArn), or leave the layer unset so that the construct creates it and copies it into each stack",
				*layer.Node().Path(), layerStack, *fn.Node().Path(), stackPath, stackPath, stackPath)), nil)
		}
		return layer
	}
	if stackPath == *awscdk.Stack_Of(e.Construct).Node().Path() {
		return layer
	}
	key := stackPath + "\x00" + arch
	if c := e.copies[key]; c != nil {
		return c
	}
	// One scope per extension in each stack, so that two extensions of one
	// app can both copy their layers into the same stack.
	id := jsii.String(*awscdk.Names_UniqueId(e.Construct) + "Layers")
	scope, _ := stack.Node().TryFindChild(id).(constructs.Construct)
	if scope == nil {
		scope = constructs.NewConstruct(stack, id)
	}
	c := newLayer(scope, arch, zipPath)
	e.copies[key] = c
	return c
}

// ValidateEnvironment checks KTE_ tuning variables with the extension's own
// config.Load, so that synthesis enforces exactly the extension's ranges. It
// also rejects names that are not KTE_ variables the extension reads, and
// KTE_STREAM (set from the stream). Values that are unresolved CDK tokens are
// skipped. The error joins one error per problem, each wrapping
// ErrInvalidProps.
func ValidateEnvironment(env map[string]string) error {
	var errs []error
	for _, err := range environmentErrors(env) {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidProps, err))
	}
	return errors.Join(errs...)
}

// environmentErrors returns ValidateEnvironment's errors, one per problem,
// without ErrInvalidProps.
func environmentErrors(env map[string]string) []error {
	known := make(map[string]bool, len(config.Vars))
	for _, v := range config.Vars {
		known[v.Name] = true
	}
	var errs []error
	lookupEnv := placeholders()
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		switch {
		case k == EnvStream:
			errs = append(errs, fmt.Errorf("%s is set from TelemetryExtensionProps.Stream; do not set it in Environment", EnvStream))
		case !strings.HasPrefix(k, "KTE_"):
			errs = append(errs, fmt.Errorf("the tuning environment holds %s, which is not a KTE_ variable; set other variables on the function itself", k))
		case !known[k]:
			errs = append(errs, fmt.Errorf("%s is not a variable the extension reads (known: %s)", k, strings.Join(slices.Sorted(maps.Keys(known)), ", ")))
		case *awscdk.Token_IsUnresolved(v):
			// Resolved only at deploy time; the extension checks it at start.
		default:
			lookupEnv[k] = v
		}
	}
	return append(errs, loadErrors(lookupEnv)...)
}

// placeholders returns an environment with what Attach and Lambda provide
// (the stream, the Runtime API, the region and the function's name), so that
// config.Load judges only the other variables.
func placeholders() map[string]string {
	return map[string]string{
		EnvStream:                  "kte-placeholder",
		config.EnvRuntimeAPI:       "127.0.0.1:9001",
		"AWS_REGION":               "us-east-1",
		"AWS_LAMBDA_FUNCTION_NAME": "kte-placeholder",
	}
}

// loadErrors returns what config.Load refuses in env, one error per
// variable.
func loadErrors(env map[string]string) []error {
	_, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		return nil
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		return joined.Unwrap()
	}
	return []error{err}
}

// lambdaDefaultMemoryMB is the memory of a function that sets none
// (AWS::Lambda::Function MemorySize, CloudFormation reference, read 2026-11).
const lambdaDefaultMemoryMB = 128

// functionSettings returns the variables of fn's environment whose values
// are literal strings, and its memory size in MB (0 when it is a token,
// resolved only at deploy time). It resolves fn's CloudFormation properties,
// so it belongs at synthesis (in a validation or an aspect): resolved
// earlier, a cached lazy value among them could miss later changes. ok is
// false when fn has no CfnFunction to read.
func functionSettings(fn awslambda.Function) (env map[string]string, memoryMB int, ok bool) {
	cfn, isCfn := fn.Node().DefaultChild().(awslambda.CfnFunction)
	if !isCfn {
		return nil, 0, false
	}
	// The CfnFunction's environment is a lazy value that jsii cannot hand
	// to Go; the tree inspector's copy of the properties can be resolved.
	ti := awscdk.NewTreeInspector()
	cfn.Inspect(ti)
	resolved, _ := awscdk.Stack_Of(fn).Resolve(ti).(map[string]any)
	attrs, _ := resolved["attributes"].(map[string]any)
	p, _ := attrs["aws:cdk:cloudformation:props"].(map[string]any)
	env = map[string]string{}
	envProp, _ := p["environment"].(map[string]any)
	vars, _ := envProp["variables"].(map[string]any)
	for k, v := range vars {
		if s, isStr := v.(string); isStr {
			env[k] = s
		}
	}
	switch m := p["memorySize"].(type) {
	case nil:
		memoryMB = lambdaDefaultMemoryMB
	case float64:
		memoryMB = int(m)
	}
	return env, memoryMB, true
}

// settingsErrors returns what the extension would refuse at init, and so
// fail every invocation, in a function's environment (from
// functionSettings) with memoryMB of memory (0: unknown). Each error names
// the variable, its value and what is accepted.
func settingsErrors(env map[string]string, memoryMB int) []error {
	lookup := placeholders()
	for k, v := range env {
		if _, isPlaceholder := lookup[k]; !isPlaceholder || k == EnvStream {
			lookup[k] = v
		}
	}
	if memoryMB > 0 {
		lookup[config.EnvMemorySize] = strconv.Itoa(memoryMB)
	}
	memory := "a MemorySize known only at deploy time"
	if memoryMB > 0 {
		memory = fmt.Sprintf("MemorySize %d MB", memoryMB)
	}
	var errs []error
	for _, err := range loadErrors(lookup) {
		errs = append(errs, fmt.Errorf("%w: with %s, the extension would refuse at init, failing every invocation: %w", ErrInvalidProps, memory, err))
	}
	return errs
}

// settingsCheck is the validation Attach adds to a function: at synthesis,
// when the function's environment and memory are final, it fails with what
// the extension would refuse (see settingsErrors).
type settingsCheck struct {
	fn awslambda.Function
}

// Validate implements constructs.IValidation.
func (c *settingsCheck) Validate() *[]*string {
	env, memoryMB, ok := functionSettings(c.fn)
	if !ok {
		return &[]*string{}
	}
	msgs := []*string{}
	for _, err := range settingsErrors(env, memoryMB) {
		msgs = append(msgs, jsii.String(err.Error()))
	}
	return &msgs
}

// noCopy makes `go vet` (copylocks) report copies of the struct embedding it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
