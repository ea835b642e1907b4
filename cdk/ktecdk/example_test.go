package ktecdk_test

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"

	"github.com/kte-dev/kinesis-telemetry-extension/cdk/ktecdk"
)

// Attach the extension to a function of your own stack, using the outputs
// of a deployed KTE stack (the README sample).
func ExampleTelemetryExtension_Attach() {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("MyService"), nil)
	fn := awslambda.NewFunction(stack, jsii.String("Api"), &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_NODEJS_22_X(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("index.handler"),
		Code:         awslambda.Code_FromInline(jsii.String("exports.handler = async () => 'ok';")),
	})

	// The outputs of the KTE stack (StreamArn, LayerArm64Arn, LayerX8664Arn,
	// ProducerPolicyArn).
	kte := ktecdk.NewTelemetryExtension(stack, jsii.String("Kte"), &ktecdk.TelemetryExtensionProps{
		Stream: awskinesis.Stream_FromStreamArn(stack, jsii.String("KteStream"),
			jsii.String("arn:aws:kinesis:eu-west-1:111122223333:stream/kte-telemetry")),
		LayerArm64: awslambda.LayerVersion_FromLayerVersionArn(stack, jsii.String("KteLayerArm64"),
			jsii.String("arn:aws:lambda:eu-west-1:111122223333:layer:kte-arm64:1")),
		LayerX8664: awslambda.LayerVersion_FromLayerVersionArn(stack, jsii.String("KteLayerX8664"),
			jsii.String("arn:aws:lambda:eu-west-1:111122223333:layer:kte-x86_64:1")),
		Policy: awsiam.ManagedPolicy_FromManagedPolicyArn(stack, jsii.String("KtePolicy"),
			jsii.String("arn:aws:iam::111122223333:policy/kte-producer")),
		// Optional tuning, checked at synth time with the extension's ranges.
		Environment: map[string]string{"KTE_FLUSH": "end"},
	})
	kte.Attach(fn) // the arm64 layer, KTE_STREAM and KTE_FLUSH, the policy on fn's role

	// (Not part of the sample: show what the function got.)
	tmpl := assertions.Template_FromStack(stack, nil)
	for _, r := range *tmpl.FindResources(jsii.String("AWS::Lambda::Function"), nil) {
		p := (*r)["Properties"].(map[string]any)
		layers, _ := json.Marshal(p["Layers"])
		env, _ := json.Marshal(p["Environment"])
		fmt.Printf("Layers: %s\nEnvironment: %s\n", layers, env)
	}
	for _, r := range *tmpl.FindResources(jsii.String("AWS::IAM::Role"), nil) {
		arns, _ := json.Marshal((*r)["Properties"].(map[string]any)["ManagedPolicyArns"].([]any)[1])
		fmt.Printf("Policy: %s\n", arns)
	}
	// Output:
	// Layers: ["arn:aws:lambda:eu-west-1:111122223333:layer:kte-arm64:1"]
	// Environment: {"Variables":{"KTE_FLUSH":"end","KTE_STREAM":"arn:aws:kinesis:eu-west-1:111122223333:stream/kte-telemetry"}}
	// Policy: "arn:aws:iam::111122223333:policy/kte-producer"
}

// Attach the extension to every function of a stack.
func ExampleAttachAspect() {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("MyService"), nil)
	for _, id := range []string{"Orders", "Payments"} {
		awslambda.NewFunction(stack, jsii.String(id), &awslambda.FunctionProps{
			Runtime: awslambda.Runtime_PYTHON_3_13(),
			Handler: jsii.String("index.handler"),
			Code:    awslambda.Code_FromInline(jsii.String("def handler(event, context):\n    return 'ok'\n")),
		})
	}
	kte := ktecdk.NewTelemetryExtension(stack, jsii.String("Kte"), &ktecdk.TelemetryExtensionProps{
		Stream: awskinesis.Stream_FromStreamArn(stack, jsii.String("KteStream"),
			jsii.String("arn:aws:kinesis:eu-west-1:111122223333:stream/kte-telemetry")),
		LayerArm64: awslambda.LayerVersion_FromLayerVersionArn(stack, jsii.String("KteLayerArm64"),
			jsii.String("arn:aws:lambda:eu-west-1:111122223333:layer:kte-arm64:1")),
		LayerX8664: awslambda.LayerVersion_FromLayerVersionArn(stack, jsii.String("KteLayerX8664"),
			jsii.String("arn:aws:lambda:eu-west-1:111122223333:layer:kte-x86_64:1")),
		Policy: awsiam.ManagedPolicy_FromManagedPolicyArn(stack, jsii.String("KtePolicy"),
			jsii.String("arn:aws:iam::111122223333:policy/kte-producer")),
	})
	awscdk.Aspects_Of(stack).Add(&ktecdk.AttachAspect{Extension: kte}, nil)

	// (Not part of the sample.)
	tmpl := assertions.Template_FromStack(stack, nil)
	withLayer := tmpl.FindResources(jsii.String("AWS::Lambda::Function"), &map[string]any{
		"Properties": map[string]any{"Layers": []any{"arn:aws:lambda:eu-west-1:111122223333:layer:kte-x86_64:1"}},
	})
	fmt.Println("functions with the x86_64 layer:", len(*withLayer))
	// Output:
	// functions with the x86_64 layer: 2
}
