package ktecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
)

// AttachAspect attaches Extension to every awslambda.Function in the scope
// it is added to:
//
//	awscdk.Aspects_Of(stack).Add(&ktecdk.AttachAspect{Extension: ext}, nil)
//
// Container image functions are skipped (they cannot use layers), as are
// functions for which Skip returns true. Lower-level CfnFunction resources
// and functions built outside the Function construct (e.g.
// SingletonFunction providers) are not visited. The CDK calls Visit during
// synthesis, on one goroutine.
type AttachAspect struct {
	Extension *TelemetryExtension
	// Skip, when set, excludes functions, e.g. CDK-internal ones.
	Skip func(fn awslambda.Function) bool
}

// Visit implements awscdk.IAspect.
func (a *AttachAspect) Visit(node constructs.IConstruct) {
	fn, ok := node.(awslambda.Function)
	if !ok {
		return
	}
	if *fn.Runtime().Name() == *awslambda.Runtime_FROM_IMAGE().Name() {
		return
	}
	if a.Skip != nil && a.Skip(fn) {
		return
	}
	a.Extension.Attach(fn)
}
