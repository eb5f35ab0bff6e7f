// Package ec2sim is a simulated EC2 region that implements
// [awsctl.CloudClient], for tests, examples and simulations of the scaler,
// with no AWS account and no network.
//
// Start with [New] and a [Config]; the zero Config is a us-east-1 with three
// zones whose instances boot in 40 s and shut down in 20 s:
//
//	sim, err := ec2sim.New(ec2sim.Config{Seed: 1})
//	insts, err := sim.Launch(ctx, req)
//	err = sim.Advance(time.Minute)
//	bill := sim.Bill()
//
// # Time
//
// Nothing happens in the background. Each instance's state follows from
// times fixed when it is launched or terminated (a boot delay, a shutdown
// delay, a list delay, each sampled from a [Delay]), so the sim only needs a
// clock. By default that is a manual clock moved by [Sim.Advance]. With
// Config.Clock set to time.Now inside a testing/synctest bubble, the sim
// follows the bubble's fake time instead, which suits code that sleeps and
// uses timers itself.
//
// # What it models
//
//   - Launch walks the offerings in order, honours weights, capacity limits
//     per offering ([Sim.SetCapacity]) and an account instance limit, and
//     reports shortfalls per offering as *awsctl.LaunchError alongside
//     what it did launch. Client tokens make launches idempotent.
//   - Terminate accepts ids again once they are shutting down, and reports
//     unknown ids while still terminating the known ones of the call.
//   - Tag and Untag are all or nothing and enforce EC2's tag limits.
//   - ListInstances is eventually consistent (Config.ListDelay), hides
//     terminated instances unless asked, and forgets them after
//     Config.TerminatedVisibleFor. Its cost follows the instances it
//     returns: instances are indexed by tag.
//   - Errors are *awsctl.APIError values with EC2's error codes, of the
//     awsctl kinds (awsctl.ErrInvalidRequest, awsctl.ErrNotFound, ...).
//
// # Inspection and faults
//
// [Sim.Instance] and [Sim.Instances] show the true state, ignoring the list
// delay. [Sim.Calls] counts calls per operation (listings per page of
// [ListPageSize]), and [Sim.Bill] prices every instance per second with a
// one-minute minimum at on-demand list prices. [Sim.SetErrorRate],
// [Sim.FailNext] and [Sim.FailNextAfterEffect] inject faults such as
// [Throttled] and [ServerError]; with the same [Config.Seed] and the same
// calls, every run is identical.
//
// Spot launches behave like on-demand ones and are billed at the on-demand
// price: the sim has no spot prices, interruptions or reservations.
//
// To check another CloudClient against the behaviour the scaler relies on,
// see package cloudtest.
package ec2sim
