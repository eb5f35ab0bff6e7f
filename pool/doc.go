// Package pool holds one pool's configuration and its decisions.
//
// A pool is a group of interchangeable instances (one or more instance
// types, each with a capacity weight) that play one role and are shared by
// one or more managers. Each pass, [Pool.Plan] rebuilds the pool's state from
// the instances' tags and the results of role hooks, asks every manager what
// it wants, and decides: which ready servers to grant to which manager, what
// to launch (counting launches still in flight), which servers to wind down
// when demand drops (idle ones first, then the most expensive, never one
// still inside its minimum charge), which wind-downs to cancel when demand
// returns, and which wound-down servers to terminate. The scaler carries the
// plan out and reports back with [Pool.Commit].
//
// Most users only build a [Config] and hand it to autoscale.New; the Plan
// and Commit methods are for the scaler, for tests and for simulations.
//
// # State in tags
//
// Every instance is tagged at launch with [TagOwner], [TagPool] and
// [TagRole]. A grant writes [TagManager]; a wind-down writes
// [TagWindDownStart] and [TagWindDownDeadline]. Nothing else is needed to
// resume after a restart: in-memory knowledge (which servers were
// provisioned, which hooks ran) is re-learnt by running idempotent hooks
// again.
//
// # Markets
//
// [Config.Market] chooses how capacity is bought: [OnDemand] (the default),
// [Spot] (spot when [Config.Policy] accepts its price, on-demand otherwise)
// or [FastStart] (on-demand first, then each server replaced by spot,
// make-before-break, when the saving pays for the swap). With
// [Config.Prices], launches go to the cheapest acceptable offerings,
// reservations first, spread by [Config.MaxSpotShare]; offerings that just
// failed for lack of capacity are avoided for a while ([Config.Unavailable]);
// nothing is launched at an unknown price. Spot interruption notices, given
// in the [Snapshot], wind a server down with the notice's deadline and
// replace it in the same pass.
//
// # Billing
//
// With [PerSecond] billing (the default) a server is kept for at least
// [MinimumCharge], since that much is paid anyway. With [Hourly] billing, a
// server is wound down only near the end of a paid hour, and a wind-down that
// would cross into the next hour is cancelled instead.
package pool
