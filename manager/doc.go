// Package manager is how a host tells a pool how much capacity it wants.
//
// A [Manager] stands for one consumer of a pool: a job queue, a web tier, a
// tenant. At each pass the pool calls [Manager.Demand] with a [State] (the
// pass time and the servers the manager holds) and gets back a [Request]:
//
//   - Target is the capacity units the manager wants working for it. The
//     pool grants free servers or launches new ones to reach it, and winds
//     servers down when the manager holds more. Requests above the pool's
//     Max are clamped, and managers sharing a pool split it fairly.
//   - ZoneMinimums and Market constrain where and how its servers run.
//   - Idle names servers the manager can spare first when its target falls.
//   - Release names servers the manager wants gone and replaced (a worker
//     that stopped answering, say): they are wound down for good and
//     another is granted in their place.
//   - Work, optionally, says how long the work behind parts of Target runs
//     and how often it checkpoints, so the pool chooses a market per part:
//     on-demand where the work interruptions would lose makes spot dearer
//     (see package pool). A [Queue] fills it from [QueueConfig.Classes]
//     and [Queue.ObserveClasses].
//
// The pool then reports what it did through [Manager.Notify]: a server was
// granted, is winding down, was restored, revoked (with a reason: handed
// back, terminated, or lost outside the scaler), or is about to be
// interrupted. Demand and Notify run inside the pass: they must not call
// back into the scaler. Each Demand call is bounded by the pool's
// DemandTimeout (a manager that does not answer keeps its previous target),
// unless the manager implements [Instant] and says its Demand never blocks,
// as the ready-made ones do when they read no Signal. Decisions should use
// State.Now, not the wall clock, so they work on a simulated clock too.
//
// Three managers ship with the package. [Fixed] wants a number the host
// sets with [Fixed.Set]. [Queue] follows a job queue: the host reports how
// many jobs wait and run with [Queue.Observe], and the Queue scales up at
// once and down only after a delay. [TargetTracking] follows a load metric
// such as requests per second, the way EC2 Auto Scaling's target tracking
// does: the host reports it with [TargetTracking.Observe]. [Forecast] is a
// Queue that also keeps an idle buffer sized to a wait-time goal (below).
// Implement Manager directly for any other demand signal.
//
// # The forecast and its goal
//
// A [Forecast] is given a [WaitGoal] such as "95% of rises of demand are
// served within 2 minutes". A rise is an observation of demand above the
// one before (a job submitted, for a job queue); it is met if the capacity
// working for the manager covers it within the goal's Wait. Capacity asked
// for at a pass is ready a pass slack (PassSlack, the time to the launch)
// plus a boot time (State.BootTime, the pool's estimate, or
// ForecastConfig.BootTime) later, so a rise can meet the goal only if
// capacity for it was asked for a lead time L = boot + slack - Wait
// before it came (at least the slack). When boot + slack is at most the
// Wait, following demand meets the goal and the buffer is nothing.
//
// The goal counts rises, so the buffer is sized to rises: one of size r
// (below) is met, roughly, when the buffer asked for a lead time before it
// was at least r. The model, learned online from what the host observes,
// in bounded memory and a few operations a pass:
//
//   - The size of a rise at t is the demand it rose to, or the lowest
//     demand within the Wait after it if lower (jobs that ended free
//     capacity for it), less the demand at t - L: what the buffer had to
//     cover. With a boot shorter than the Wait every size is 0. The latest
//     4096 sizes are kept, each with the slot of the season (an hour of
//     the day by default, on UTC time) it came in.
//   - Sizes are pooled across the day: a slot's mean size (over its
//     latest 64 rises, drawn toward every slot's mean by the weight of 8
//     rises) plus an excess whose distribution is every rise's excess over
//     its own slot's mean. A month of a job log holds about two thousand
//     rises, a few dozen per hour of the day: too few for a quantile per
//     hour, enough for one distribution.
//   - Each slot has a rate of rises: an exponentially weighted mean of its
//     daily counts (weight 1/Memory, a week by default), drawn toward
//     every slot's mean rate by the weight of one day (an hour that was
//     quiet for a week still expects a few rises).
//   - The buffer of each slot h is b_h = mean_h + x_h, with the x_h that
//     minimise the buffer held (the sum of b_h) while the rises expected
//     to be missed, the sum of rate_h × (share of excesses above x_h),
//     stay within a miss budget times the rises expected. At the optimum
//     (a Lagrange multiplier, found by bisection over the lower convex
//     hull of the excesses' survival curve) one more unit of buffer saves
//     the same misses in every slot: hours with more rises hold more of
//     the buffer, quiet hours less, and the share met over the day is the
//     goal's. The slack the hull's coarse tail leaves is then spent
//     lowering the quietest slots. Buffers are whole units, never above
//     the largest rise seen.
//   - The miss budget is 1 - a, a a tenth of the way from the goal's
//     quantile to 1 (95.5% for a p95 goal, so that the noise of a month's
//     rises leaves the goal met), less one standard error of a share
//     estimated from the n sizes seen, sqrt(a(1-a)/n), and never below 0.
//     This is the warm-up: while n is small (below a/(1-a), 21 rises for a
//     p95 goal) the budget is 0 and each slot's buffer is its mean size
//     plus the largest excess seen: the largest rise seen where the
//     slots' means are alike, less in a slot of smaller rises than the
//     slot that rise came in; it comes down toward the goal's quantile as
//     rises are seen.
//   - The plan is solved again at the start of each slot, and as the
//     sample grows (at each rise sized while fewer than 64 are, then at
//     each eighth more); a pass reads it. The buffer at t is
//     the larger of the plans of the slots of t and of t + L: the second
//     launches ahead of a rise the day's shape predicts (the morning
//     ramp). The target is the Queue's rules (up at once, down after the
//     scale-down delay) applied to demand plus buffer.
//
// [Forecast.Status] reports the attainment (rises met within Wait, as the
// manager sees them: capacity working against demand observed) and the
// cost of the buffer in capacity-unit hours, with the boot time, the lead,
// the sizes sampled and the miss budget in use.
//
// The model assumes the demand's rises repeat by hour of the day: how
// often they come at 09:00 today is like the days before, and their sizes
// differ from one hour to another by a shift (the mean) only. It does not
// feed back what it measures: a month whose rises differ from those seen
// misses or overshoots the goal. Where the assumptions fail it gains
// nothing or loses:
//
//   - Demand with no daily pattern (steady, or bursts at random hours):
//     every slot learns about the same rate and mean, the buffer is about
//     flat and the forecast is a fixed buffer sized to the goal's quantile
//     of the sizes, no cheaper than the best fixed buffer; the simulator's
//     report (BENCHMARKS.md) shows it.
//   - Hours whose sizes are more spread than others' (a ramp's rises vary
//     more than the night's) share one distribution of excesses: the
//     spread hours miss more than the budget, the others fewer.
//   - A weekly pattern under a daily season is averaged over the week
//     (weekends hold the weekdays' buffer); a weekly Season learns it, but
//     needs weeks, not days.
//   - Demand that follows a local clock: slots are placed on UTC time, so
//     where clocks change for daylight saving the day's shape moves by an
//     hour twice a year, and the rates take about Memory seasons to
//     follow it.
//   - Rises in bursts (one user's batch of jobs): a burst's rises are
//     many and large together, and the hour's rate, a week's mean, does
//     not see it coming.
//   - The first day: while few rises are seen the buffer covers the
//     largest of them, and the first rises, before any is seen, wait for
//     boot; a host that restarts loses what was learned (it is memory,
//     not state: the pool's servers are not affected).
//   - Rises larger than anything seen (a new user's first batch) wait for
//     boot whatever the buffer.
package manager
