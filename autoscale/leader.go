package autoscale

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Leader gates a scaler run by several replicas of a host: only the holder
// of a lease may act. Step asks before its pass and again before every
// mutating cloud call, so a replica that loses the lease stops mutating
// before its next call. Implementations are typically backed by a
// coordination service (module leader/etcd ships one on etcd's election).
type Leader interface {
	// IsLeader reports whether this replica holds the lease now. It must
	// be cheap: it is called several times per pass.
	IsLeader(ctx context.Context) bool
}

// Terms is an optional interface of a Leader that numbers its leases: a
// Term that changes between two passes means the lease was lost and won
// again, even if no pass saw it lost. Without it, the scaler notices a term
// only when a check finds the lease gone.
type Terms interface {
	// Term returns a number that changes every time this replica gains the
	// lease (an election's revision, say).
	Term() uint64
}

// Lease is an optional interface of a Leader whose lease has a known
// validity. It closes the gap between the leader check and the wire:
// a check says the lease is held now, but a rate-limiter wait, SDK retries,
// a GC pause or a stopped process may pass before the request leaves, and
// by then another replica may lead. With a Lease:
//
//   - every mutating cloud call runs under a context that ends when the
//     lease of the term it belongs to may have passed to another replica,
//     and lasts at most Options.CallTimeout; limiter waits and retries run
//     under it too, so a frozen leader's call fails when it wakes instead
//     of reaching EC2;
//   - role hooks run under the term's lease context, so they stop with it;
//   - a replica that gains the lease makes no mutating call for TTL plus
//     CallTimeout: the longest a previous leader's lease and its last call,
//     bounded as above, can outlast the moment this one won.
//
// What remains is the instant between the context's last check and the
// request on the wire (see RELIABILITY.md, Fencing).
type Lease interface {
	// LeaseContext returns a context that ends as soon as this replica's
	// current lease may no longer be valid: when the validity counted from
	// its latest renewal runs out, or when the loss is known, whichever
	// comes first. It is done already if the replica does not lead.
	LeaseContext() context.Context
	// TTL is how long a lease outlives its latest renewal.
	TTL() time.Duration
}

// ErrNotLeader is returned by Step when the replica does not hold the
// lease, lost it during the pass, or is waiting out a previous leader's
// lease. Run treats it as a normal, quiet pass.
var ErrNotLeader = errors.New("not the leader: pass skipped")

// mayAct reports whether the scaler may make a mutating call now. A check
// that finds the lease gone ends the term.
func (s *Scaler) mayAct(ctx context.Context) bool {
	if s.opts.Leader == nil {
		return true
	}
	if !s.leading {
		return false // the term ended earlier in this pass: the next pass starts another
	}
	if !s.opts.Leader.IsLeader(ctx) || (s.lease != nil && s.lease.Err() != nil) {
		s.loseTerm()
		return false
	}
	return true
}

// fenced returns the context of one mutating cloud call: ctx, bounded by
// CallTimeout and, with a Lease, by the lease of the current term. A call
// cut short by the lease fails with an error wrapping ErrNotLeader.
func (s *Scaler) fenced(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	if s.lease == nil {
		return c, cancel
	}
	fc, cancelCause := context.WithCancelCause(c)
	stop := context.AfterFunc(s.lease, func() { cancelCause(errLeaseEnded) })
	return fc, func() {
		stop()
		cancelCause(nil)
		cancel()
	}
}

// errLeaseEnded is the cause of a call context cut short by the lease.
var errLeaseEnded = fmt.Errorf("%w: the lease ended during the call", ErrNotLeader)

// leaseErr returns err, wrapping ErrNotLeader as well if ctx was cut
// short by the lease: the call failed because this replica stopped leading,
// not because the cloud refused it.
func leaseErr(ctx context.Context, err error) error {
	if err != nil && context.Cause(ctx) == errLeaseEnded && !errors.Is(err, ErrNotLeader) {
		return fmt.Errorf("%w: %w", errLeaseEnded, err)
	}
	return err
}

// fenceWait reports, for a pass at now, whether the term's first mutation
// must still wait out a previous leader, and until when.
func (s *Scaler) fenceWait(now time.Time) (time.Time, bool) {
	return s.actFrom, now.Before(s.actFrom)
}
