// Package pool holds one pool's configuration and its decisions.
//
// A pool is a group of interchangeable instances (one or more instance
// types, each with a capacity weight) that play one role and are shared by
// one or more managers. Most users only build a [Config] and hand it to
// autoscale.New, then read [Pool.Status]; the scaler drives the pool's
// passes. Start with [Config].
//
// # One pass
//
// Each pass the pool derives every server's state from what a restarted
// scaler could read back, counts capacity once in a ledger, asks every
// manager what it wants (each call bounded by [Config.DemandTimeout]), and
// decides, in order: what the world did (servers lost, stopped,
// interrupted), what the role hooks finished (provisioning, restores),
// swaps that are ready and servers managers release, then demand:
// wind-downs restored for managers whose demand returned, excess taken
// back, free servers granted, and the shortage covered by winding-down
// servers before anything is launched within Max, or spare servers wound
// down. Then wind-downs move on and on-demand servers are replaced by spot
// where it pays. Every decision moves a server through one function that
// keeps the ledger right, so no two decisions can disagree on what exists.
//
// What a pass read of an instance is kept for the next while the listing
// shows the instance alike: the same fields and the same Tags map (a cloud
// never modifies a map it returned, see awsctl.Instance). A steady pass
// thus costs a comparison per server, not a reading of its tags; what the
// pass decides is rebuilt every pass, from the tags and the memory.
//
// # Lifecycle
//
// A server's state is derived in one place from its EC2 state, its tags,
// the spot notices and the role hooks, in this precedence: stopped,
// interrupted, retiring, restoring, winding-down, launching, booting,
// provisioning, granted, free. The transitions a pass may decide:
//
//	launching ──► booting ──► provisioning ──► free ◄──────────► granted
//	 (in memory,   (pending)   (Provision       (TagReady)         (TagManager)
//	  not listed)               running)          │                  │
//	                                              ▼                  ▼
//	                    restoring ◄────────── winding-down ◄─────────┘
//	                   (Restore hook)        (TagWindDownStart)
//	                         │                    │
//	                         └─► free / granted   └─► terminated (after WindDown,
//	                                                  Check, Teardown)
//
//	released, failed provisioning, stopped ──► retiring (TagRetire) ──► terminated
//	spot notice ──► interrupted (TagInterrupted) ──► terminated
//
// A replacement (TagReplaces) is a server on its way that stands in for
// another: it is no capacity for new demand until it is granted in that
// server's place. Anything a restarted scaler needs to decide the same way
// is in tags or derived from the cloud: which servers are ready
// (TagReady), which leave for good (TagRetire), which are interrupted,
// MinimumSpot's hysteresis (from what the manager holds). What stays in
// memory is a cache a restart may lose at the price of an idempotent hook
// run again: which wind-down hooks already ran, launches not listed yet
// (found again through their idempotency token).
//
// # Capacity and Max
//
// Everything the pass sees counts toward [Config.Max] until EC2 shows it
// shutting down: servers winding down, interrupted ones until EC2 takes
// them, stopped ones until terminated, launches not listed yet, and the
// worst case of this pass's launches. EC2 fills a launch with any type it
// lists, so a type heavier than the room left is never listed; a pool above
// Max (a lowered Max) winds servers down until it is within.
//
// # Markets
//
// [Config.Market] chooses how capacity is bought: [OnDemand] (the default),
// [Spot] (spot when [Config.Policy] accepts its price, on-demand otherwise)
// or [FastStart] (on-demand first, then each server replaced by spot,
// make-before-break, when the saving pays for the swap). With
// [Config.Prices], launches go to the cheapest acceptable offerings,
// reservations first, spread by [Config.MaxSpotShare] over offerings within
// [Config.SpotShareMargin] of the cheapest; offerings that just failed for
// lack of capacity, and instance families whose vCPU quota is used up, are
// avoided for a while ([Config.Unavailable]); nothing is launched at an
// unknown price. While no spot offering can be bought, scale-down takes
// on-demand servers first and keeps spot ones over target for
// [Config.SpotHold], since a spot server shed then would be bought back
// on-demand.
//
// # Boot times
//
// A pool learns how long a new server takes from its launch to being ready
// for work: from EC2's LaunchTime to the time in TagReady, which the pass
// that sees the role's Provision hook succeed writes. That is the pending
// phase, the operating system's boot, Provision, and up to one pass
// interval of waiting for the pass (to the second). Both times are in the
// listing, so a restarted scaler rebuilds what a running one knows from its
// first listing, at no extra API call. Every server whose TagReady the
// pool reads is a sample, and a sample read again counts once.
//
// Samples are kept per offering (type, zone, market), per type and market,
// and pool-wide: each keeps the latest [BootWindow] (16) servers to become
// ready, and its estimate is their median, which a minority of outliers
// (a server whose provisioning retried for an hour) does not move. An
// offering's estimate is used once it rests on [BootMinSamples] (3)
// samples; until then its type and market's, then the pool-wide one, and
// without any of them the constant of the setting concerned. A pass learns
// only when a server's tags change, never by walking every server.
//
// The estimate replaces a constant where a boot is what the constant
// stood for. [ReplaceConfig.Overlap], left zero, is the learned boot time
// of the spot offering a swap launches (DefaultSwapOverlap before one is
// learned): it prices the swap, and with Hourly billing it says how far
// ahead of the paid hour's end the spot server is launched, to be ready as
// the hour's last WindDownTimeout starts, within which the replaced
// server's wind-down must end. Managers get the pool-wide estimate in
// manager.State.BootTime: it follows the offerings the pool launched of
// late, which a new server most likely gets too. [Status.BootTimes] shows
// each offering's estimate and samples. Settings that look alike are not
// boot times and stay constants: LaunchGrace and ListingLag are EC2's
// listing lag, HourlyMargin the time a termination takes, HealthGrace runs
// from ready.
//
// Where the model fails: a restart sees only live servers, so the samples
// of servers already terminated are lost; the restored estimate equals the
// running one while the latest servers of each window still run, and a
// pool that turned over entirely restarts from fewer samples (with the
// fallbacks). There is no decay in time: an offering launched rarely keeps
// old samples, and a change in boot time shows once half a window of new
// servers has become ready. The median is a typical boot, not a bound:
// half the servers take longer, and a bimodal boot (a warm cache, say) is
// reported as one of its modes. A server whose TagReady was written late
// (the scaler was down while it provisioned) is an outlier like any other.
// A FastStart pool prices its first swaps with its on-demand servers' boot
// times (the pool-wide fallback), although spot requests may take longer
// to be filled.
//
// # Job-aware markets
//
// A manager that accepts either market may describe the work behind parts
// of its target (manager.Request.Work: units, expected run time, checkpoint
// interval, width). In a pool that buys spot, each part is priced on the
// best spot offering with spotprice.SpotWorkCost (the spot price plus the
// expected cost of the work interruptions lose, at the offering's
// interruption rate, and of the wait for a replacement: the offering's boot
// time, as swaps take it, less the two minutes' notice, priced at
// on-demand) and compared with the cheapest on-demand price per unit: the
// manager is to hold that much on-demand capacity, the rest as the pool's
// strategy says. On-demand capacity it lacks for such work is launched, and
// granted, even when it already holds its target: the spare servers it then
// holds above target (idle spot ones first, as it lists them in
// Request.Idle) are wound down, so spot capacity kept through a scale-down
// delay is exchanged rather than given the work. On-demand servers it needs
// for the work are neither swapped for spot nor taken back while the work
// lasts. The choice is per pass, from the request, the prices and the
// markets of the servers the manager holds, so a restarted scaler makes it
// alike; a change of choice is an EventWorkMarket with its figures. What it
// does not do: move work already running on spot, or tell the host which
// server runs which job (the host places the work on on-demand servers,
// Notice.Server.Market says which are, and the event says which classes go
// there). When the work ends, its on-demand servers are kept
// Config.WorkKeep (one minute, the Queue's scale-down delay) for the next
// long job, neither swapped for spot nor wound down: the capacity kept is
// the most the work put on demand within that time, and a restarted
// scaler counts the on-demand capacity it finds held as such for one
// WorkKeep. Past it they are swapped for spot like any other, and may be
// launched again for a long job that comes later. With the
// Advisor buckets' rates, interruptions add under 1% to work shorter than a
// day, so spot wins unless the Prices give a higher rate
// (spotprice.InterruptionRater); see package spotprice for the model and
// where it fails.
//
// # Day two: drift, refreshes, lifetimes, EC2 events
//
// A server is due for replacement when the role's launch spec changed
// since its launch (a digest in TagSpec), its type left the pool, the host
// asked for a refresh (autoscale's Scaler.Refresh; TagRefresh), it is older
// than [Config.MaxLifetime], or EC2 scheduled an event for it (a
// retirement, a stop, a reboot). A due server that works for a manager is
// replaced make-before-break, as a spot swap is: the replacement boots, is
// provisioned and granted to the same manager, then the old server retires
// (its WindDown lets its work finish; it is never put back to work). Idle
// servers go first, then the oldest. Every voluntary replacement, spot
// swaps included, draws from one [Disruption] budget per pool (servers or a
// percentage under replacement at once, optionally only within windows);
// scheduled events, impaired EC2 status checks ([Config.ImpairedGrace]) and
// unhealthy readings are failures and do not wait for it. [Status.Due] and
// [Status.Replacing] show a roll's progress. A pool at Max rolls only as
// room allows: keep Max above the target by the budget.
//
// A launch template named by "$Latest" or "$Default" hides its changes
// from the digest: pin template versions for drift to be seen.
//
// # Billing
//
// A role with nothing to wind down (role.Immediate) has a server chosen to
// go terminated in the same pass. With [PerSecond] billing (the default) a server is kept for at least
// [MinimumCharge], since that much is paid anyway. With [Hourly] billing, a
// server is wound down only near the end of a paid hour (the one with the
// least of its hour left first), a swap to spot waits for the end of the
// replaced server's hour, and a wind-down that would cross into the next
// hour is cancelled instead. Either way, a server another manager needs is
// handed over whenever it is wound down.
package pool
