package manager

import (
	"context"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Manager is implemented by the host for each consumer of a pool. Each pass
// the pool asks every manager what it wants, then grants it servers or takes
// servers back, and tells it so through Notify.
//
// Demand and Notify are called from the reconcile pass: they must return
// quickly and must not call Step, Run or Shutdown. The host's own calls and
// the pool's run concurrently, and a Demand that timed out may still be
// running when the next pass calls Notify, so an implementation must be safe
// for concurrent use. A manager belongs to one pool.
type Manager interface {
	// Name identifies the manager inside its pool; it is written to the
	// grant tag of the servers it holds, so it must stay stable across
	// restarts.
	Name() string

	// Demand says what the manager wants now, given what it holds.
	Demand(ctx context.Context, s State) (Request, error)

	// Notify tells the manager that one of its servers changed hands or
	// state.
	Notify(n Notice)
}

// Waker is implemented by managers that learn of demand between passes
// (Queue.Observe, Fixed.Set). The scaler hands them a function to call when
// their target rises, and passes again at once (within its MinPassGap)
// instead of waiting out its interval: a rise is acted on in a second, not
// a pass later.
type Waker interface {
	// SetWake registers wake, to be called when demand rises. wake never
	// blocks and is safe to call from any goroutine; a manager must not
	// call it while holding a lock its Demand takes.
	SetWake(wake func())
}

// Instant is implemented by managers whose Demand answers from memory and
// never blocks (the ready-made ones, when they read no Signal). The pool
// calls them directly; any other manager is called on a goroutine of its
// own with the pool's DemandTimeout, so that a manager that hangs stalls
// nothing.
type Instant interface {
	Manager
	// DemandIsInstant reports whether Demand never blocks.
	DemandIsInstant() bool
}

// State is what a manager holds when it is asked for its demand.
// State.Servers is the source of truth for what the manager holds; notices
// report changes to it.
type State struct {
	// Now is the pass's time.
	Now time.Time
	// Servers granted to this manager, including those winding down. The
	// slice is the pool's: read it, keep it if you like, but do not modify
	// it. A pass may hand the same slice again when what the manager holds
	// has not changed.
	Servers []Server
	// Max is the most capacity the pool can hold; a request above it is
	// clamped.
	Max int
	// BootTime is the pool's current estimate of the time from launch to
	// ready for a new server (learned from the servers it has seen become
	// ready); 0 while it has none.
	BootTime time.Duration
}

// Ready returns the capacity of the servers in s that are working for the
// manager: granted, not winding down, and not on their way out because a
// replacement already works in their place.
func (s State) Ready() int {
	n := 0
	for _, srv := range s.Servers {
		if !srv.WindingDown && !srv.Replaced {
			n += srv.Weight
		}
	}
	return n
}

// Server is a pool instance as a manager sees it.
type Server struct {
	ID        string
	Type      string
	Zone      string
	Market    awsctl.Market
	PrivateIP string
	// Weight is the capacity units the server provides.
	Weight      int
	LaunchTime  time.Time
	WindingDown bool
	// Deadline is when a wind-down in progress must end; zero otherwise.
	Deadline time.Time
	// Replaced is set on a server whose replacement already works for the
	// manager: the pool winds it down in this pass. Ready does not count it,
	// so a swap in progress is not counted twice.
	Replaced bool
}

// MarketPreference says which markets a manager accepts for its servers.
type MarketPreference int

// Market preferences. The zero value lets the pool decide by price.
const (
	// AnyMarket: spot or on-demand, whichever the pool's strategy picks.
	AnyMarket MarketPreference = iota
	// OnDemandOnly: never spot (for work that cannot be interrupted).
	OnDemandOnly
	// SpotOnly: never on-demand (for work that can always wait).
	SpotOnly
)

// Request is a manager's demand for one pass.
type Request struct {
	// Target is the capacity units the manager wants working for it.
	// Negative values count as 0; the pool clamps values above its max.
	Target int
	// ZoneMinimums asks for at least this much of Target in each zone.
	ZoneMinimums map[string]int
	// Market restricts the markets used for this manager's servers.
	Market MarketPreference
	// Idle lists servers the manager can give up first: when Target falls
	// below what it holds, these are wound down before the others.
	Idle []string
	// Unclamped is what the manager would want without its own cap (a
	// Queue's or TargetTracking's Max), when that cap holds Target down; 0
	// otherwise. The pool reports a clamp by the manager's own cap the way
	// it reports its own: once when it starts biting, once when it stops.
	Unclamped int
	// Work describes, optionally, the work behind parts of Target, so that
	// the pool can choose a market per part (job-aware market choice): a
	// part whose expected cost on spot, counting the work interruptions
	// would lose, is above the on-demand price is launched on demand. Units
	// beyond what Work describes, and every unit when Work is empty, are
	// bought as Market and the pool's strategy say.
	Work []Work
	// Release lists servers the manager wants gone and replaced (an
	// unhealthy worker, say). Each is wound down for good (its WindDown
	// notice says "released"), never put back to work, and no longer
	// counts toward what the manager holds, so the pool grants or launches
	// another in its place while Target is unchanged. Ids the manager does
	// not hold are ignored.
	Release []string
}

// Work is part of a manager's target, with what an interruption would cost
// the work that runs on it.
type Work struct {
	// Class names the kind of work in the pool's events, such as "long".
	Class string
	// Units is the capacity this work wants.
	Units int
	// Run is how long one piece of the work (a job) is expected to run.
	Run time.Duration
	// Checkpoint is how often a piece saves its progress, so that an
	// interruption loses at most this much; zero means it restarts from
	// scratch.
	Checkpoint time.Duration
	// Width is the capacity units one piece runs on at once (a job of
	// several processes); an interruption of any of its servers interrupts
	// it. Zero means 1.
	Width int
}

// NoticeKind says what happened to a server.
type NoticeKind int

// Notice kinds.
const (
	// Granted: the server now works for the manager.
	Granted NoticeKind = iota + 1
	// WindDown: the server is being wound down and will be taken away; the
	// manager should not start new work on it.
	WindDown
	// Restored: a wind-down was cancelled; the server works for the
	// manager again.
	Restored
	// Revoked: the server no longer belongs to the manager: terminated by
	// the pool after its wind-down, handed back to the pool, or lost outside
	// the scaler (terminated by EC2 or a person, stopped); Reason says which.
	Revoked
	// Interrupted: EC2 will reclaim the spot server at Notice.Deadline.
	Interrupted
	// Rebalance: EC2 warns the spot server is at elevated risk of
	// interruption; avoid giving it long work.
	Rebalance
)

var noticeNames = [...]string{"", "granted", "wind-down", "restored", "revoked", "interrupted", "rebalance"}

func (k NoticeKind) String() string {
	if k > 0 && int(k) < len(noticeNames) {
		return noticeNames[k]
	}
	return "unknown"
}

// Notice tells a manager about one of its servers.
type Notice struct {
	Kind   NoticeKind
	Server Server
	// Deadline is when a wind-down or interruption takes the server away.
	Deadline time.Time
	// Reason says why, in a few words.
	Reason string
	// Adopted marks the notices a scaler sends in its first pass for the
	// servers it finds a manager already holding (after a restart of the
	// host or of the scaler): Granted for those working, WindDown for those
	// winding down. A host that lost its bookkeeping rebuilds it from them.
	Adopted bool
}
