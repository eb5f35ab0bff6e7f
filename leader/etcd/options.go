package etcdleader

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultTTL is the session lease TTL when Options.TTL is zero. A replica
// that dies without resigning is replaced about this long after its last
// renewal.
const DefaultTTL = 10 * time.Second

// Options configure an Elector. Zero values take the documented defaults.
type Options struct {
	// Prefix is the etcd key prefix of the election, shared by every
	// replica that competes for the same lease, e.g.
	// "/ec2autoscale/leader/my-service". Required.
	Prefix string
	// Identity names this replica (host name, pod name); it is the value
	// of its election key and what Leader reports. Required.
	Identity string
	// TTL of the session lease, rounded up to whole seconds because etcd
	// leases count in seconds; at least one second. Default DefaultTTL.
	// A shorter TTL fails over faster after a crash but needs etcd to be
	// reachable more reliably, since a replica that cannot renew for a
	// fraction of the TTL stops acting.
	TTL time.Duration
	// Logger receives elections won and lost and etcd errors; nil
	// discards them.
	Logger *slog.Logger
	// OnChange, if set, is called from Run each time this replica wins
	// (true) or loses (false) the lease. It must not block. IsLeader may
	// turn false before the false call, as soon as renewals stop.
	OnChange func(leading bool)
}

// ErrInvalidOptions is wrapped by every validation error of New.
var ErrInvalidOptions = errors.New("invalid etcd elector options")

func (o Options) withDefaults() (Options, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidOptions, field, fmt.Sprintf(format, args...))
	}
	if o.Prefix == "" {
		return o, bad("Prefix", "must not be empty")
	}
	if o.Identity == "" {
		return o, bad("Identity", "must not be empty")
	}
	switch {
	case o.TTL == 0:
		o.TTL = DefaultTTL
	case o.TTL < time.Second:
		return o, bad("TTL", "must be at least 1s, got %v", o.TTL)
	}
	if rem := o.TTL % time.Second; rem != 0 {
		o.TTL += time.Second - rem
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
