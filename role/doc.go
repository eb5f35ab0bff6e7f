// Package role says what a pool's instances are and how each is brought into
// work and out of it.
//
// A [Role] pairs a launch spec (image or launch template, subnets, security
// groups, tags) with five hooks the pool calls on each instance:
//
//   - Provision, once the instance runs, makes it ready for work. Only then
//     is it granted to a manager.
//   - WindDown asks the server to stop taking new work and finish what it
//     has. It returns once the request is delivered; it does not wait for
//     the work to end.
//   - Check reports whether the wind-down is complete. The pool calls it,
//     once WindDown succeeded, until it says WoundDown, then tears the
//     instance down and terminates it. (Status.Idle is not read.)
//   - Restore cancels a wind-down when demand comes back.
//   - Teardown is the last step before termination.
//
// Hooks run in background goroutines, one at a time per instance but for
// many instances at once, bounded by the pool's timeouts: a Role must be
// safe for concurrent use. Hooks must be idempotent: after a restart the
// scaler may repeat a hook it had already run.
//
// [New] and [NewHTTP] reject a launch spec that no launch could use (no
// image nor launch template, a subnet without an ID or with a malformed
// zone, zones of two regions), naming the field in a [ConfigError].
//
// Start with [New], which builds a role from plain functions ([Hooks]) and
// gives every missing hook a harmless default. If the servers expose HTTP
// endpoints for these steps, [NewHTTP] calls them at each instance's private
// address instead. Implement Role directly only when neither fits.
package role
