package ktecdk

import (
	"maps"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// AttachAspect attaches Extension to every awslambda.Function in the scope
// it is added to:
//
//	awscdk.Aspects_Of(stack).Add(&ktecdk.AttachAspect{Extension: ext}, nil)
//
// A function it cannot attach to gets an error annotation instead, so that
// `cdk synth` and `cdk deploy` stop and name it: a container image function
// (layers are not supported; copy the extension into the image), an
// architecture the extension is not built for, or settings the extension
// would refuse at init with the function's memory (see Attach), such as a
// KTE_RING_BYTES over half of its MemorySize. Functions for which Skip
// returns true are left alone. Lower-level CfnFunction resources and
// functions built outside the Function construct (e.g. SingletonFunction
// providers) are not visited. The CDK calls Visit during synthesis, on one
// goroutine.
type AttachAspect struct {
	Extension *TelemetryExtension
	// Skip, when set, excludes functions, e.g. CDK-internal ones or
	// container image functions that carry the extension in their image.
	Skip func(fn awslambda.Function) bool
}

// Visit implements awscdk.IAspect.
func (a *AttachAspect) Visit(node constructs.IConstruct) {
	fn, ok := node.(awslambda.Function)
	if !ok {
		return
	}
	if a.Skip != nil && a.Skip(fn) {
		return
	}
	e := a.Extension
	if e.attached[*fn.Node().Path()] {
		return
	}
	errs := e.unattachable(fn)
	if len(errs) == 0 {
		// Aspects run at synthesis, where the function's settings can be
		// read (see functionSettings); check them as they will be once
		// attached, with the extension's variables.
		if env, memoryMB, ok := functionSettings(fn); ok {
			attached := maps.Clone(env)
			for k, v := range e.Environment() {
				if !*awscdk.Token_IsUnresolved(v) {
					attached[k] = v
				} else {
					delete(attached, k)
				}
			}
			errs = settingsErrors(attached, memoryMB)
		}
	}
	for _, err := range errs {
		awscdk.Annotations_Of(fn).AddError(jsii.String(err.Error()))
	}
	if len(errs) == 0 {
		e.Attach(fn)
	}
}
