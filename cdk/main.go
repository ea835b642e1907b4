// Command cdk is the KTE CDK app: it synthesises the stack of
// ktecdk.NewTelemetryStack (the Kinesis stream, the extension layers, the
// producer policy and, with -c demo=true, a demo function). Settings come
// from the CDK context; see the ktecdk Ctx* constants.
//
//	CDK_OUTDIR=cdk.out go run .      # template in cdk.out/, no AWS credentials needed
//	npx cdk synth | deploy           # the same through the CDK CLI (cdk.json)
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/kte-dev/kinesis-telemetry-extension/cdk/ktecdk"
)

func main() {
	err := run(nil)
	jsii.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run synthesises the app. props is nil in production: the app then reads
// its output folder (CDK_OUTDIR) and context (CDK_CONTEXT_JSON, from the CDK
// CLI) from the environment.
func run(props *awscdk.AppProps) (err error) {
	// CDK constructs fail by panicking (ktecdk's with an ErrInvalidProps
	// error whose text says what to fix); show the message, not a trace.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	app := awscdk.NewApp(props)
	cfg, err := ktecdk.ConfigFromContext(app.Node())
	if err != nil {
		return err
	}
	if cfg.Demo {
		dir, err := os.MkdirTemp("", "kte-demo-")
		if err != nil {
			return fmt.Errorf("cannot build the demo function: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := ktecdk.BuildDemoFunction(".", dir); err != nil {
			return err
		}
		cfg.Props.DemoCodeDir = dir
	}
	ktecdk.NewTelemetryStack(app, jsii.String(cfg.StackName), &cfg.Props)
	app.Synth(nil)
	return nil
}
