package etcdleader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
)

// ErrRunning is returned by Run when another Run of the same Elector is in
// progress.
var ErrRunning = errors.New("etcd elector already running")

// ErrClientClosed is returned by Run when the etcd client was closed under
// it: without a client there is nothing left to campaign with.
var ErrClientClosed = errors.New("etcd client closed")

// ErrNoLeader is returned by Leader when no replica holds the lease.
var ErrNoLeader = errors.New("no leader elected")

var (
	_ autoscale.Leader = (*Elector)(nil)
	_ autoscale.Terms  = (*Elector)(nil)
	_ autoscale.Lease  = (*Elector)(nil)
)

// done is the lease context of a replica that does not lead.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Elector campaigns for one lease of an etcd election on behalf of this
// replica and reports whether it holds it. It implements autoscale.Leader.
// Create it with New, start Run in a goroutine, and pass the Elector as
// autoscale.Options.Leader.
type Elector struct {
	client *clientv3.Client
	opts   Options
	// epoch is the base of validUntil, read through time.Since so that
	// the lease arithmetic runs on the monotonic clock.
	epoch time.Time

	running atomic.Bool
	leading atomic.Bool
	// validUntil (nanoseconds since epoch) is when this replica must
	// assume its lease expired: the last renewal it saw plus the TTL, less
	// a margin for the round trip.
	validUntil atomic.Int64

	mu  sync.Mutex
	key string // the election key this replica won, while it leads
	rev int64  // its create revision
	// lease ends with the leading period: when it ends, or when the
	// lease's validity runs out first.
	lease    context.Context
	endLease context.CancelFunc
	termRev  atomic.Uint64 // rev of the latest leading period

	resigned chan struct{}
}

// New returns an Elector campaigning through client. It does not contact
// etcd: Run does. Errors name the offending field and wrap
// ErrInvalidOptions.
func New(client *clientv3.Client, opts Options) (*Elector, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: client: must not be nil", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Elector{client: client, opts: o, epoch: time.Now(), resigned: make(chan struct{}, 1)}, nil
}

// Identity returns this replica's name, as given in Options.
func (e *Elector) Identity() string { return e.opts.Identity }

// IsLeader reports whether this replica holds the lease now. It reads two
// atomics and the clock and makes no call to etcd.
//
// It turns false as soon as this replica learns that its lease or election
// key is gone, and also, without waiting to learn anything, once a fifth of
// the TTL remains of the lease as of the last renewal it saw: a replica cut
// off from etcd stops acting before etcd can expire its lease and elect
// another one.
func (e *Elector) IsLeader(context.Context) bool {
	return e.leading.Load() && e.elapsed() < time.Duration(e.validUntil.Load()) && e.client.Ctx().Err() == nil
}

// Term returns the create revision of the election key of this replica's
// latest leading period: etcd gives every new key a higher revision, so the
// term changes each time the replica wins the election. It implements
// autoscale.Terms.
func (e *Elector) Term() uint64 { return e.termRev.Load() }

// LeaseContext returns a context that ends when this replica's current
// leading period ends: when it learns the lease or the key is gone, when
// it resigns, or, without learning anything, when the lease's validity as
// of the last renewal runs out (a partitioned or frozen replica). It is
// done already when the replica does not lead. It implements
// autoscale.Lease: a scaler bounds its cloud calls and role hooks by it.
func (e *Elector) LeaseContext() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lease == nil || !e.leading.Load() {
		return done
	}
	return e.lease
}

// TTL returns the session lease's TTL: a replica that wins the election
// may follow one whose lease was valid until this long before. It
// implements autoscale.Lease.
func (e *Elector) TTL() time.Duration { return e.opts.TTL }

// Leader returns the identity of the replica that holds the lease now, as
// etcd sees it, or ErrNoLeader.
func (e *Elector) Leader(ctx context.Context) (string, error) {
	resp, err := e.client.Get(ctx, e.opts.Prefix+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("read election leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", ErrNoLeader
	}
	return string(resp.Kvs[0].Value), nil
}

// Resign gives the lease up if this replica holds it: IsLeader turns false
// at once and the replica next in line takes over without waiting for the
// TTL. Run keeps going and campaigns again, now behind the other
// candidates; to stop campaigning, end Run's context instead, which also
// gives the lease up. Resign is a no-op when this replica does not lead.
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	key, rev := e.key, e.rev
	if key != "" {
		e.leading.Store(false)
		e.endLease() // calls in flight stop now, before the key goes
	}
	e.mu.Unlock()
	if key == "" {
		return nil
	}
	// Wake the leading loop even if the delete fails: it then checks the
	// key and takes the lease back, rather than holding it while idle.
	defer func() {
		select {
		case e.resigned <- struct{}{}:
		default:
		}
	}()
	// Delete only the key this term created, never a successor's.
	_, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("resign: %w", err)
	}
	return nil
}

// Run campaigns until ctx ends: it opens a session (a lease kept alive by
// the client), waits its turn in the election, leads until the session or
// its key is lost, and starts over. When ctx ends it resigns by revoking
// the session's lease, waiting at most the TTL for etcd, and returns nil.
// It returns ErrClientClosed if the client is closed under it and
// ErrRunning if already running. Failures to reach etcd are logged and
// retried every quarter TTL.
func (e *Elector) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer e.running.Store(false)
	for {
		err := e.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if cerr := e.client.Ctx().Err(); cerr != nil {
			return fmt.Errorf("%w: %w", ErrClientClosed, cerr)
		}
		if err == nil {
			continue // the session ended; campaign again with a new one
		}
		delay := e.opts.TTL / 4
		e.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "etcd election: retrying",
			slog.String("identity", e.opts.Identity), slog.String("error", err.Error()), slog.Duration("in", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// term runs one session: campaigns and leads until the session ends
// (returning nil) or etcd fails (returning the error).
func (e *Elector) term(ctx context.Context) error {
	opened := e.elapsed()
	ttl := e.opts.TTL
	sess, err := concurrency.NewSession(e.client, concurrency.WithTTL(int(ttl/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	// The lease was granted after opened, so it lasts at least until
	// opened+ttl whatever the round trip took.
	e.validUntil.Store(int64(opened + ttl - margin(ttl)))

	sctx, end := context.WithCancel(ctx)
	// A second listener on the session's keep-alive stream: the client
	// sends one renewal for both, and this one tells when each landed.
	renewals, err := e.client.KeepAlive(sctx, sess.Lease())
	if err != nil {
		end()
		e.release(ctx, sess)
		return fmt.Errorf("follow lease renewals: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer end() // the lease is gone: stop campaigning or leading
		for r := range renewals {
			granted := time.Duration(r.TTL) * time.Second
			e.validUntil.Store(int64(e.elapsed() + granted - margin(granted)))
		}
		e.validUntil.Store(0)
	})
	// The watchdog ends the session when the lease's validity runs out
	// without a renewal, whether or not anything reads IsLeader: the lease
	// context of a leading period must end then (a replica resumed after a
	// freeze must not find it live), and a renewal arriving after that
	// must not make the replica lead again on the same, suspect lease.
	wg.Go(func() {
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		for {
			left := time.Duration(e.validUntil.Load()) - e.elapsed()
			if left <= 0 {
				end()
				e.mu.Lock()
				e.leading.Store(false)
				e.mu.Unlock()
				return
			}
			t.Reset(left)
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	})
	defer func() {
		end()
		wg.Wait()
		e.release(ctx, sess)
	}()

	election := concurrency.NewElection(sess, e.opts.Prefix)
	for {
		if err := election.Campaign(sctx, e.opts.Identity); err != nil {
			// A lease revoked under a campaign ends the session as
			// surely as its keep-alive stream closing, only sooner.
			if sctx.Err() != nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return e.ended(ctx)
			}
			return fmt.Errorf("campaign: %w", err)
		}
		if err := e.lead(sctx, election); err != nil {
			return err
		}
		if sctx.Err() != nil {
			return e.ended(ctx)
		}
	}
}

func (e *Elector) ended(ctx context.Context) error {
	if ctx.Err() == nil {
		e.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "etcd election: session lost",
			slog.String("identity", e.opts.Identity))
	}
	return nil
}

// lead holds the lease won by election until ctx ends, the election key is
// deleted (resigned, revoked, or removed by hand) or Resign is called.
func (e *Elector) lead(ctx context.Context, election *concurrency.Election) error {
	select {
	case <-e.resigned: // stale: a Resign of an earlier term
	default:
	}
	key, rev := election.Key(), election.Rev()
	// Campaign returns once the keys ahead are gone, even if the lease
	// expired meanwhile: confirm the key is still this term's, and watch
	// it from that revision on.
	resp, err := e.client.Get(ctx, key)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("confirm election key: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != rev {
		return nil
	}
	// WithRequireLeader closes the watch when the member this client talks
	// to loses its quorum: a replica behind a minority partition stops
	// acting instead of waiting for its renewals to time out.
	wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stop()
	changes := e.client.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1))

	lease, endLease := context.WithCancel(ctx)
	defer endLease()
	e.mu.Lock()
	if ctx.Err() != nil { // the watchdog ended the session meanwhile
		e.mu.Unlock()
		return nil
	}
	e.key, e.rev = key, rev
	e.lease, e.endLease = lease, endLease
	e.termRev.Store(uint64(rev))
	e.leading.Store(true)
	e.mu.Unlock()
	e.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "etcd election: leading",
		slog.String("identity", e.opts.Identity), slog.String("key", key))
	if e.opts.OnChange != nil {
		e.opts.OnChange(true)
	}
	defer func() {
		e.mu.Lock()
		e.leading.Store(false)
		e.key, e.rev = "", 0
		e.lease, e.endLease = nil, nil
		e.mu.Unlock()
		endLease()
		e.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "etcd election: following",
			slog.String("identity", e.opts.Identity))
		if e.opts.OnChange != nil {
			e.opts.OnChange(false)
		}
	}()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.resigned:
			return nil
		case wr, ok := <-changes:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("watch on election key closed")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("watch election key: %w", err)
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return nil
				}
			}
		}
	}
}

// release ends a session: stops its renewals and revokes its lease, which
// deletes its election key so the next candidate takes over at once. It
// runs when ctx has ended too, bounded by the TTL: past that the lease is
// gone anyway.
func (e *Elector) release(ctx context.Context, sess *concurrency.Session) {
	sess.Orphan()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.TTL)
	defer cancel()
	if _, err := e.client.Revoke(rctx, sess.Lease()); err != nil {
		// Usually the lease expired already; nothing is left to do.
		e.opts.Logger.LogAttrs(ctx, slog.LevelDebug, "etcd election: revoke lease",
			slog.String("identity", e.opts.Identity), slog.String("error", err.Error()))
	}
}

func (e *Elector) elapsed() time.Duration { return time.Since(e.epoch) }

// margin is how long before a lease's expiry, as counted from a renewal's
// arrival, a replica stops trusting it: the renewal's round trip and clock
// rate differences must fit in it.
func margin(ttl time.Duration) time.Duration { return ttl / 5 }
