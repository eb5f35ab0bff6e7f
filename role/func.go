package role

import (
	"context"
	"maps"
	"slices"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Hooks are the lifecycle steps of a [Func] role, as plain functions. Each
// may be nil; see [New] for what a nil hook does. The pool calls each
// function for several instances at once, so each must be safe for
// concurrent use.
type Hooks struct {
	Provision func(ctx context.Context, inst awsctl.Instance) error
	WindDown  func(ctx context.Context, inst awsctl.Instance) error
	Restore   func(ctx context.Context, inst awsctl.Instance) error
	Teardown  func(ctx context.Context, inst awsctl.Instance) error
	Check     func(ctx context.Context, inst awsctl.Instance) (Status, error)
}

// Func is a [Role] whose hooks are plain functions. Name and LaunchSpec are
// safe for concurrent use; each hook method is as safe as the [Hooks]
// function it calls.
type Func struct {
	name  string
	spec  awsctl.LaunchSpec
	hooks Hooks
}

var _ Role = (*Func)(nil)

// New returns a role named name whose instances launch from spec and whose
// lifecycle steps are hooks. A nil hook does nothing and succeeds:
// Provision, WindDown, Restore and Teardown return nil at once, and Check
// reports Status{Idle: true, WoundDown: true}, so a role without a Check is
// terminated as soon as its wind-down has been requested.
//
// The name must be 1 to [MaxNameLength] bytes of UTF-8, since it is written
// to an EC2 tag. spec is copied: changing the caller's maps or slices later
// does not change the role.
//
// spec must name an image (ImageID) or a launch template (by ID or by Name,
// not both), and each of its subnets an ID and a well-formed availability
// zone ("us-east-1a"), all of one region: a spec that breaks these rules
// would fail every launch, so New rejects it with a [ConfigError] naming
// the field. The role does not know the cloud's region, so a spec whose
// zones all belong to another region passes New: the cloud rejects it at
// the pool's first launch.
func New(name string, spec awsctl.LaunchSpec, hooks Hooks) (*Func, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	if err := validateSpec(name, spec); err != nil {
		return nil, err
	}
	return &Func{name: name, spec: cloneSpec(spec), hooks: hooks}, nil
}

// Name returns the role's name.
func (f *Func) Name() string { return f.name }

// LaunchSpec returns a copy of the role's launch spec.
func (f *Func) LaunchSpec() awsctl.LaunchSpec { return cloneSpec(f.spec) }

// Provision calls the Provision hook.
func (f *Func) Provision(ctx context.Context, inst awsctl.Instance) error {
	return call(ctx, f.hooks.Provision, inst)
}

// WindDown calls the WindDown hook.
func (f *Func) WindDown(ctx context.Context, inst awsctl.Instance) error {
	return call(ctx, f.hooks.WindDown, inst)
}

// Restore calls the Restore hook.
func (f *Func) Restore(ctx context.Context, inst awsctl.Instance) error {
	return call(ctx, f.hooks.Restore, inst)
}

// Teardown calls the Teardown hook.
func (f *Func) Teardown(ctx context.Context, inst awsctl.Instance) error {
	return call(ctx, f.hooks.Teardown, inst)
}

// WindsDownAtOnce reports whether the role has no WindDown, Check and
// Teardown hooks, so that a server it winds down is terminated at once. It
// implements [Immediate].
func (f *Func) WindsDownAtOnce() bool {
	return f.hooks.WindDown == nil && f.hooks.Check == nil && f.hooks.Teardown == nil
}

// Check calls the Check hook; without one the server counts as idle and
// wound down.
func (f *Func) Check(ctx context.Context, inst awsctl.Instance) (Status, error) {
	if f.hooks.Check == nil {
		return Status{Idle: true, WoundDown: true}, nil
	}
	return f.hooks.Check(ctx, inst)
}

func call(ctx context.Context, hook func(context.Context, awsctl.Instance) error, inst awsctl.Instance) error {
	if hook == nil {
		return nil
	}
	return hook(ctx, inst)
}

// cloneSpec copies everything in s that a caller could change through a
// reference.
func cloneSpec(s awsctl.LaunchSpec) awsctl.LaunchSpec {
	if s.LaunchTemplate != nil {
		lt := *s.LaunchTemplate
		s.LaunchTemplate = &lt
	}
	s.Subnets = slices.Clone(s.Subnets)
	s.SecurityGroupIDs = slices.Clone(s.SecurityGroupIDs)
	s.Tags = maps.Clone(s.Tags)
	return s
}
