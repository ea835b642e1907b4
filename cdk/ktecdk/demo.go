package ktecdk

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// DemoPackage is the demo function's Go package, relative to the cdk module
// root.
const DemoPackage = "./demofunction"

// BuildDemoFunction compiles the demo function for Lambda (linux/arm64,
// static, -tags lambda.norpc) into outDir/bootstrap, the layout the
// provided.al2023 runtime expects. moduleDir is the cdk module root (the
// folder holding cdk/go.mod). It runs `go build`, so it needs the Go
// toolchain, and it takes a few seconds.
func BuildDemoFunction(moduleDir, outDir string) error {
	out, err := filepath.Abs(filepath.Join(outDir, "bootstrap"))
	if err != nil {
		return fmt.Errorf("cannot build the demo function: %w", err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out, DemoPackage)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot build the demo function (%s in %s): %w\n%s", DemoPackage, moduleDir, err, stderr.Bytes())
	}
	return nil
}

// newDemoFunction creates the demo function from codeDir (holding
// bootstrap): provided.al2023 on arm64, 128 MB, 10 s timeout.
func newDemoFunction(scope constructs.Construct, codeDir string) awslambda.Function {
	return awslambda.NewFunction(scope, jsii.String("DemoFunction"), &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(codeDir), nil),
		MemorySize:   jsii.Number(128),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(10)),
		Description:  jsii.String("KTE demo: writes a few log lines per invocation; the extension ships them to Kinesis"),
	})
}
