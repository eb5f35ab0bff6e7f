package autoscale

import (
	"context"
	"errors"
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

// ErrNotLeader is returned by Step when the replica does not hold the
// lease, or lost it during the pass. Run treats it as a normal, quiet pass.
var ErrNotLeader = errors.New("not the leader: pass skipped")

// mayAct reports whether the scaler may make a mutating call now. A check
// that finds the lease gone ends the term.
func (s *Scaler) mayAct(ctx context.Context) bool {
	if s.opts.Leader == nil {
		return true
	}
	if !s.opts.Leader.IsLeader(ctx) {
		s.loseTerm()
		return false
	}
	return true
}
