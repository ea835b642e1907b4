package ktecdk

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

func TestAttachAspect(t *testing.T) {
	arm64, x8664 := layerZips(t)
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Users"), nil)
	stream := awskinesis.NewStream(stack, jsii.String("Stream"), nil)
	ext := NewTelemetryExtension(stack, jsii.String("Kte"), &TelemetryExtensionProps{Stream: stream, LayerZipArm64: arm64, LayerZipX8664: x8664})

	nodeFunction(stack, "Arm", awslambda.Architecture_ARM_64())
	providedFunction(t, stack, "Intel", awslambda.Architecture_X86_64())
	nodeFunction(stack, "Skipped", awslambda.Architecture_ARM_64())
	repo := awsecr.Repository_FromRepositoryName(stack, jsii.String("Repo"), jsii.String("app"))
	awslambda.NewDockerImageFunction(stack, jsii.String("Image"), &awslambda.DockerImageFunctionProps{
		Code: awslambda.DockerImageCode_FromEcr(repo, nil),
	})
	awscdk.Aspects_Of(stack).Add(&AttachAspect{
		Extension: ext,
		Skip:      func(fn awslambda.Function) bool { return *fn.Node().Id() == "Skipped" },
	}, nil)
	tmpl := templateOf(t, stack)

	streamID, _ := onlyResource(t, tmpl, "AWS::Kinesis::Stream")
	streamEnv := mustMarshal(map[string]any{"Variables": map[string]any{"KTE_STREAM": getAttArn(streamID)}})
	for _, c := range []struct {
		prefix, arch string
		attached     bool
	}{{"Arm", ArchArm64, true}, {"Intel", ArchX8664, true}, {"Skipped", ArchArm64, false}, {"Image", ArchX8664, false}} {
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
}
