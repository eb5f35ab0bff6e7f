// Package autoscale is the entry point of the library: the [Scaler].
//
// Build pools (see package pool) with a role and managers, create a Scaler
// over a cloud client with [New], and call [Scaler.Run] — or call
// [Scaler.Step] from your own loop. Every decision is reported as an [Event]
// to the [Observer] and the logger of [Options]. [Scaler.Shutdown] stops it,
// optionally winding every server down first.
//
// One pass makes one listing of every instance the scaler owns, decides per
// pool with plain code, then carries the decisions out in as few cloud calls
// as possible: one call per launch batch, one tag call per distinct tag set,
// one termination call for all pools. Role hooks run in the background.
//
// [Scaler.Run] passes every Options.Interval, more often while capacity is
// on its way, and soon after a role hook finishes. Options.Rails caps
// launches and spend and raises alarms ([Scaler.Alarms]) when something runs
// away; [Scaler.Pause] stops launching. Spot interruption notices reach the
// scaler through [Scaler.HandleSpotNotice] or Options.SpotNotices. With
// Options.Leader, only the replica holding a lease acts.
//
// The scaler keeps no state of its own between restarts: create a new one
// with the same Options.Identity and it adopts the instances it finds.
package autoscale
