// Package poolctl hands package autoscale the operations of a pool that
// drive it (a pass's plan and commit, draining, hook waits), which package
// pool does not export: an embedder sees a read-only pool and the Scaler's
// methods, never half of a pass.
//
// Package pool fills Ops in its init. The fields hold pool's method
// expressions as any, since this package cannot import pool; autoscale
// asserts them to their types once.
package poolctl

// Ops are pool's driving operations.
var Ops struct {
	Plan        any // func(*pool.Pool, context.Context, pool.Snapshot) *pool.Plan
	Commit      any // func(*pool.Pool, context.Context, *pool.Plan, pool.Outcome) []pool.Event
	SetDraining any // func(*pool.Pool, bool)
	OnHookDone  any // func(*pool.Pool, func())
	WaitHooks   any // func(*pool.Pool, context.Context) error
	Close       any // func(*pool.Pool, context.Context) error
	WindingDown any // func(*pool.Pool) []string
	Reset       any // func(*pool.Pool)
	Refresh     any // func(*pool.Pool, time.Time)
}
