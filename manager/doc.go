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
//
// The pool then reports what it did through [Manager.Notify]: a server was
// granted, is winding down, was restored, revoked, or is about to be
// interrupted. Demand and Notify run inside the pass, so they must be quick
// and must not call back into the scaler. Decisions should use State.Now,
// not the wall clock, so they work on a simulated clock too.
//
// Three managers ship with the package. [Fixed] wants a number the host
// sets with [Fixed.Set]. [Queue] follows a job queue: the host reports how
// many jobs wait and run with [Queue.Observe], and the Queue scales up at
// once and down only after a delay. [TargetTracking] follows a load metric
// such as requests per second, the way EC2 Auto Scaling's target tracking
// does: the host reports it with [TargetTracking.Observe]. Implement Manager
// directly for any other demand signal.
package manager
