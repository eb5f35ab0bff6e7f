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
// before it came (at least the slack). When the boot is shorter than the
// Wait, following demand meets the goal and the buffer falls to nothing.
//
// The model, learned online from what the host observes, in bounded memory
// and a few operations a pass:
//
//   - The rise after a moment is the highest demand within L after it, less
//     the demand then. The season (a day by default) is cut into slots (an
//     hour by default); each slot's figure for one day is the goal's
//     quantile of the nonzero rises after the moments of that hour, 0 if
//     demand did not rise, and the slot's estimate is an exponentially
//     weighted mean of its daily figures (weight 1/Memory, a week by
//     default). It thus grows with how often and how much demand rises in
//     that hour of the day. A slot not seen yet uses the mean of all slots.
//   - The buffer at t is s × the larger of the estimates of the slots of t
//     and of t + L: the second launches ahead of a rise the day's shape
//     predicts (the morning ramp). The target is the Queue's rules (up at
//     once, down after the scale-down delay) applied to demand plus buffer.
//   - The scale s is fed back from measured attainment: every rise met
//     lowers it by ScaleStep × (1-a)/a, every one missed raises it by
//     ScaleStep, which settles where a share a of the rises are met (a
//     stochastic estimate of a quantile). a is a fifth of the way from the
//     goal's quantile to 1, so that noise leaves the goal met more often
//     than not. s starts at 1 and stays within [0, 8].
//
// [Forecast.Status] reports the attainment (rises met within Wait, as the
// manager sees them: capacity working against demand observed) and the
// cost of the buffer in capacity-unit hours, with the boot time and lead
// in use.
//
// The model assumes the demand's rises repeat by hour of the day: their
// size and frequency at 09:00 today are like those at 09:00 the days
// before. Where that fails it gains nothing or loses:
//
//   - Demand with no daily pattern (steady, or bursts at random hours):
//     every slot learns the same figure, the buffer is flat and the forecast
//     is a fixed buffer sized by feedback, no cheaper than the best fixed
//     buffer; the simulator's report (BENCHMARKS.md) shows it.
//   - A weekly pattern under a daily season is averaged over the week
//     (weekends hold the weekdays' buffer); a weekly Season learns it, but
//     needs weeks, not days.
//   - Rare, heavy-tailed rises (a job log: a few dozen submissions a day,
//     some of them a hundred units): a month holds too few rises for the
//     feedback to settle, and a buffer that moves with the feedback serves
//     fewer of them than a constant one of the same mean size.
//   - The first day: no slot has a figure and the buffer follows the
//     feedback alone; a host that restarts loses what was learned (it is
//     memory, not state: the pool's servers are not affected).
//   - Rises larger than anything seen (a new user's first batch) wait for
//     boot whatever the buffer.
package manager
