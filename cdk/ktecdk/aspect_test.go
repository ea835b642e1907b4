package ktecdk

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

func TestAttachAspect(t *testing.T) {
	app, stack, ext := usersExtension(t)

	nodeFunction(stack, "Arm", awslambda.Architecture_ARM_64())
	providedFunction(t, stack, "Intel", awslambda.Architecture_X86_64())
	nodeFunction(stack, "Skipped", awslambda.Architecture_ARM_64())
	awscdk.Aspects_Of(stack).Add(&AttachAspect{
		Extension: ext,
		Skip:      func(fn awslambda.Function) bool { return *fn.Node().Id() == "Skipped" },
	}, nil)
	// In another stack, the aspect (run at synthesis) copies the layer there.
	other := awscdk.NewStack(app, jsii.String("Other"), nil)
	nodeFunction(other, "Fn", awslambda.Architecture_ARM_64())
	awscdk.Aspects_Of(other).Add(&AttachAspect{Extension: ext}, nil)
	tmpl := templateOf(t, stack)

	streamID, _ := onlyResource(t, tmpl, "AWS::Kinesis::Stream")
	streamEnv := mustMarshal(map[string]any{"Variables": map[string]any{"KTE_STREAM": getAttArn(streamID)}})
	for _, c := range []struct {
		prefix, arch string
		attached     bool
	}{{"Arm", ArchArm64, true}, {"Intel", ArchX8664, true}, {"Skipped", ArchArm64, false}} {
		fn, _ := functionProps(t, tmpl, c.prefix)
		if !c.attached {
			if fn["Layers"] != nil || fn["Environment"] != nil {
				t.Errorf("unexpected attachment of %s; got layers %v, environment %v; want none", c.prefix, fn["Layers"], fn["Environment"])
			}
			continue
		}
		equalJSON(t, c.prefix+" layers", fn["Layers"], mustMarshal([]any{ref(layerID(t, tmpl, c.arch))}))
		equalJSON(t, c.prefix+" environment", fn["Environment"], streamEnv)
	}
	otherTmpl := templateOf(t, other)
	fn, _ := functionProps(t, otherTmpl, "Fn")
	equalJSON(t, "Other/Fn layers", fn["Layers"], mustMarshal([]any{ref(layerID(t, otherTmpl, ArchArm64))}))
}

// TestAttachAspectErrors: a function the aspect cannot attach to is a
// synthesis error on that function (cdk synth and cdk deploy stop), not
// skipped in silence nor a crash of the visit; the others are attached.
func TestAttachAspectErrors(t *testing.T) {
	_, stack, ext := usersExtension(t)

	repo := awsecr.Repository_FromRepositoryName(stack, jsii.String("Repo"), jsii.String("app"))
	awslambda.NewDockerImageFunction(stack, jsii.String("Image"), &awslambda.DockerImageFunctionProps{
		Code: awslambda.DockerImageCode_FromEcr(repo, nil),
	})
	custom := nodeFunction(stack, "Custom", awslambda.Architecture_Custom(jsii.String("riscv64"), nil))
	// The CDK's own template check would print a warning for it.
	awscdk.Validations_Of(custom).Acknowledge(&awscdk.Acknowledgment{
		Id: jsii.String("CloudFormation-Validate::W3030"), Reason: jsii.String("an architecture Lambda lacks, on purpose"),
	})
	awslambda.NewFunction(stack, jsii.String("Small"), &awslambda.FunctionProps{
		Runtime:     awslambda.Runtime_NODEJS_22_X(),
		Handler:     jsii.String("index.handler"),
		Code:        awslambda.Code_FromInline(jsii.String("exports.handler = async () => 'ok';")),
		Environment: &map[string]*string{"KTE_RING_BYTES": jsii.String("128MiB")},
	})
	nodeFunction(stack, "Good", awslambda.Architecture_ARM_64())
	awscdk.Aspects_Of(stack).Add(&AttachAspect{Extension: ext}, nil)
	tmpl := templateOf(t, stack)

	annotations := assertions.Annotations_FromStack(stack)
	checkMessage(t, annotations.FindError, "/Users/Image", "Users/Image is a container image function", "/opt/extensions/"+ExtensionName)
	checkMessage(t, annotations.FindError, "/Users/Custom", `Users/Custom has architecture "riscv64"`)
	checkMessage(t, annotations.FindError, "/Users/Small", "MemorySize 128 MB", `KTE_RING_BYTES="128MiB": must be at most half the function's memory, 64MiB`)
	if errs := *annotations.FindError(jsii.String("/Users/Good"), assertions.Match_AnyValue()); len(errs) != 0 {
		t.Errorf("unexpected errors on Users/Good; got %s; want none", mustMarshal(errs))
	}
	for _, c := range []struct {
		prefix   string
		attached bool
	}{{"Image", false}, {"Custom", false}, {"Small", false}, {"Good", true}} {
		fn, _ := functionProps(t, tmpl, c.prefix)
		if got := fn["Layers"] != nil; got != c.attached {
			t.Errorf("unexpected attachment of %s; got layers %v; want attached %t", c.prefix, fn["Layers"], c.attached)
		}
	}
}
