package role

import (
	"context"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Role says what a pool's instances are and how to bring one into work and
// out of it. The pool calls the hooks from background goroutines, at most one
// hook at a time per instance, each with a context bounded by the pool's hook
// timeout; a hook that hangs delays only its own instance. Hooks must be safe
// to call again for the same instance: after a scaler restart, in-memory
// progress is lost and a hook may be repeated.
//
// An implementation must be safe for concurrent use: the hooks of different
// instances run at the same time, and Name and LaunchSpec are called from
// the pass while hooks run.
type Role interface {
	// Name identifies the role; it is written to each instance's role tag.
	Name() string

	// LaunchSpec is what the role's instances are launched from.
	LaunchSpec() awsctl.LaunchSpec

	// Provision makes a running instance ready for work. The instance is
	// granted to a manager only after Provision returns nil; an error (or
	// the provision timeout) fails the instance and the pool replaces it.
	Provision(ctx context.Context, inst awsctl.Instance) error

	// WindDown asks the server to stop taking new work and finish what it
	// has. It should return once the request is delivered, not when the
	// work is done: completion is observed through Check.
	WindDown(ctx context.Context, inst awsctl.Instance) error

	// Check reports the server's state. The pool calls it only after
	// WindDown succeeded, until it reports WoundDown.
	Check(ctx context.Context, inst awsctl.Instance) (Status, error)

	// Restore cancels a wind-down and puts the server back to work.
	Restore(ctx context.Context, inst awsctl.Instance) error

	// Teardown is the last step before the instance is terminated (drain
	// logs, deregister). Its error is reported; termination goes ahead.
	Teardown(ctx context.Context, inst awsctl.Instance) error
}

// Status is what Check observed on a server. The pool reads WoundDown
// only; Idle is informational (for a wrapping role or the host's logs), and
// a role may leave it false. To have idle servers go first when a target
// falls, tell the manager instead (manager.Request.Idle, as
// [github.com/ec2autoscale/ec2autoscale/manager.Queue.MarkIdle] does).
type Status struct {
	// Idle: the server runs no work. Not read by the pool.
	Idle bool
	// WoundDown: a wind-down finished; the server may be terminated.
	WoundDown bool
	// Unhealthy: the server cannot do its work (it fails its health checks,
	// say). For a role that is a HealthReporter the pool calls Check on
	// granted servers every HealthInterval; after UnhealthyAfter such
	// readings in a row, past the server's grace period, it stops counting
	// the server as capacity, replaces it and winds it down for good.
	Unhealthy bool
}

// Immediate is implemented by roles whose servers need no wind-down: no
// work to drain, nothing to check or tear down. The pool then terminates a
// server in the pass that decides to remove it, instead of stepping through
// WindDown, Check and Teardown over the passes that follow, which would pay
// for the server for nothing.
type Immediate interface {
	// WindsDownAtOnce reports whether the role's servers may be
	// terminated as soon as they are chosen to go.
	WindsDownAtOnce() bool
}

// HealthReporter is implemented by roles whose Check tells, for a server in
// service, whether it is healthy (Status.Unhealthy). The pool polls the
// health of granted servers only for such roles, so a role whose Check
// only follows wind-downs costs nothing in a steady pass.
type HealthReporter interface {
	ReportsHealth() bool
}
