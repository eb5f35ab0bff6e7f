// Package etcdleader lets several replicas of a host share one autoscale
// Scaler safely: only the replica holding an etcd election's lease acts,
// and another takes over when it dies, resigns or is cut off from etcd.
//
// It is a thin layer over etcd's own election recipe
// (go.etcd.io/etcd/client/v3/concurrency: a session lease and a Campaign on
// a key prefix), lives in a module of its own so that the library's go.mod
// does not pull in etcd, and adds what a scaler needs on top:
//
//   - IsLeader is cheap (two atomic loads), as autoscale.Leader requires:
//     Step asks it before the pass and before every mutating cloud call.
//   - It turns false the moment the session's lease is lost or the
//     election key deleted, and also when renewals stop arriving for most
//     of the TTL, so a partitioned leader stops acting before etcd can
//     elect another one.
//   - It implements autoscale.Terms (the election key's revision) and
//     autoscale.Lease: LeaseContext ends when the leading period ends or
//     the lease's validity runs out, so a scaler's cloud calls and role
//     hooks stop with it, and a new leader waits out the TTL first.
//   - Run campaigns again after a lost session, and gives the lease up
//     (revokes it) when its context ends, so a replica shut down cleanly
//     is replaced at once rather than after the TTL.
//
// Start with New and Run, then set autoscale.Options.Leader to the Elector.
// Every replica runs its own Scaler with the same Identity and the same
// pools; the followers' passes return autoscale.ErrNotLeader and change
// nothing. The README in this directory shows a complete setup.
package etcdleader
