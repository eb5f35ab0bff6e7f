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
// does: the host reports it with [TargetTracking.Observe]. Implement Manager
// directly for any other demand signal.
package manager
