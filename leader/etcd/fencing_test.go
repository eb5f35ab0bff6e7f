package etcdleader_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"

	etcdleader "github.com/ec2autoscale/ec2autoscale/leader/etcd"
)

// These tests put the fencing of autoscale.Lease to work with the real
// elector: two replicas of a host, each an Elector and a Scaler, over one
// simulated EC2, where the leader is stopped between its leader check and
// the wire (a GC pause, SIGSTOP), loses the lease and wins it back, or
// loses it while a role hook of its own is still running.
//
// Passes run on the simulated clock, leases on the real one: a new term's
// fence (TTL + CallTimeout) passes in a few simulated passes, while a
// lease lapses in real seconds. The tests wait for etcd, the elector and
// the replicas on channels, each wait bounded, never with sleeps.

// callTimeout is the scalers' Options.CallTimeout. A new term waits TTL +
// callTimeout of simulated time (the third pass) before its first change.
// The same value bounds every mutating call in real time: it is well above
// the few real seconds a test holds a call frozen, so that only the lease,
// not the timeout, can end a frozen call in time, and a test run without
// the lease's fencing sees the frozen call go out.
const callTimeout = 20 * time.Second

// passInterval is the simulated time between two passes.
const passInterval = 10 * time.Second

// effect is one thing a role hook did outside EC2: a load balancer's
// (de)registration, say.
type effect struct {
	seq           int
	who, what, id string
}

// effects records, in order, what the replicas' role hooks did outside EC2.
type effects struct {
	mu   sync.Mutex
	list []effect
}

func (e *effects) add(who, what, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, effect{seq: len(e.list) + 1, who: who, what: what, id: id})
}

// seq returns the sequence number of the first effect matching, or 0.
func (e *effects) seq(who, what, id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.list {
		if x.who == who && x.what == what && x.id == id {
			return x.seq
		}
	}
	return 0
}

// ids returns the instances of the effects matching, in order.
func (e *effects) ids(who, what string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, x := range e.list {
		if x.who == who && x.what == what {
			out = append(out, x.id)
		}
	}
	return out
}

func (e *effects) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.list)
}

// countingLeader is the Elector as the scaler sees it, counting the
// scaler's lease checks. Term, LeaseContext and TTL are the Elector's.
type countingLeader struct {
	*etcdleader.Elector
	checks atomic.Int64
}

func (c *countingLeader) IsLeader(ctx context.Context) bool {
	c.checks.Add(1)
	return c.Elector.IsLeader(ctx)
}

// wire sits between one replica's scaler and its guarded cloud (which
// stands for EC2): like the SDK's transport, it sends nothing for a call
// whose context has ended. It can hold the next call of one kind after the
// scaler's leader check, as a GC pause or SIGSTOP would: the held call
// notices nothing until resumed, then goes out only if its context is
// still live at that moment.
type wire struct {
	awsctl.CloudClient
	now func() time.Time

	mu      sync.Mutex
	freeze  string          // the kind of call to hold next
	heldCtx context.Context // the held call's context
	sent    []wireCall      // mutating calls that went out

	held      chan context.Context // the held call, when it is held
	resume    chan struct{}
	resumeOne sync.Once
	went      chan bool // whether the held call went out, once resumed
}

type wireCall struct {
	op string
	at time.Time // simulated
}

func (c wireCall) String() string { return c.op + "@" + c.at.Format(time.TimeOnly) }

func newWire(cloud awsctl.CloudClient, now func() time.Time) *wire {
	return &wire{CloudClient: cloud, now: now, held: make(chan context.Context, 1),
		resume: make(chan struct{}), went: make(chan bool, 1)}
}

// hold arms the wire to hold the next call of kind op.
func (w *wire) hold(op string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.freeze = op
}

// unfreeze lets the held call go on (or wakes a call held later at once).
func (w *wire) unfreeze() { w.resumeOne.Do(func() { close(w.resume) }) }

func (w *wire) heldContext() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.heldCtx
}

// calls returns the mutating calls that went out.
func (w *wire) calls() []wireCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.sent)
}

func (w *wire) send(ctx context.Context, op string) error {
	w.mu.Lock()
	frozen := w.freeze == op
	if frozen {
		w.freeze, w.heldCtx = "", ctx
	}
	w.mu.Unlock()
	if frozen {
		w.held <- ctx
		<-w.resume
	}
	err := ctx.Err()
	if frozen {
		w.went <- err == nil
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.sent = append(w.sent, wireCall{op: op, at: w.now()})
	w.mu.Unlock()
	return nil
}

func (w *wire) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	if err := w.send(ctx, "Launch"); err != nil {
		return nil, err
	}
	return w.CloudClient.Launch(ctx, req)
}

func (w *wire) Terminate(ctx context.Context, ids []string) ([]string, error) {
	if err := w.send(ctx, "Terminate"); err != nil {
		return nil, err
	}
	return w.CloudClient.Terminate(ctx, ids)
}

func (w *wire) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	if err := w.send(ctx, "Tag"); err != nil {
		return err
	}
	return w.CloudClient.Tag(ctx, ids, tags)
}

func (w *wire) Untag(ctx context.Context, ids []string, keys []string) error {
	if err := w.send(ctx, "Untag"); err != nil {
		return err
	}
	return w.CloudClient.Untag(ctx, ids, keys)
}

// fenceReplica is a replica whose scaler calls EC2 through a wire and sees
// its Elector through a countingLeader.
type fenceReplica struct {
	*replica
	name   string
	leader *countingLeader
	wire   *wire
}

// rigConfig shapes a fenceRig.
type rigConfig struct {
	max int
	// hooks returns the role hooks of replica who; nil for hooks that
	// succeed at once (Check: wound down).
	hooks func(who string) role.Hooks
	// partitionable puts a's etcd connection behind a proxy the test can
	// cut.
	partitionable bool
}

// fenceRig is two replicas of a host, as in failover_test.go, over one
// simulated EC2 whose every mutating call is checked against etcd's leader
// (guardedCloud records a violation for a call by a replica etcd did not
// elect).
type fenceRig struct {
	t    *testing.T
	f    *failover
	max  int
	fx   *effects
	link *proxy
	a, b *fenceReplica
	// protect lists instances that must stay live from now on.
	protect []string
	// At b's election: whether a's held call, if any, and a's lease
	// context had ended.
	takenOver, heldEndedAtTakeover, leaseEndedAtTakeover atomic.Bool
	aLease                                               atomic.Pointer[context.Context]
}

func newFenceRig(t *testing.T, endpoint, prefix string, cfg rigConfig) *fenceRig {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay:     ec2sim.Fixed(40 * time.Second),
		ShutdownDelay: ec2sim.Fixed(20 * time.Second),
		ListDelay:     ec2sim.Fixed(5 * time.Second),
		Seed:          1,
	})
	require.NoError(t, err)
	f := &failover{t: t, sim: sim, admin: newClient(t, endpoint), prefix: prefix,
		ledger: &ledger{terminated: map[string]int{}, provisioned: map[string]int{}}}
	g := &fenceRig{t: t, f: f, max: cfg.max, fx: &effects{}}
	aEndpoint := endpoint
	if cfg.partitionable {
		g.link = startProxy(t, endpoint)
		aEndpoint = g.link.addr()
	}
	g.a = g.newReplica(aEndpoint, "a", cfg)
	g.b = g.newReplica(endpoint, "b", cfg)
	f.a, f.b = g.a.replica, g.b.replica
	g.b.onChange = func(leading bool) {
		if !leading || g.takenOver.Swap(true) {
			return
		}
		if c := g.a.wire.heldContext(); c != nil {
			g.heldEndedAtTakeover.Store(c.Err() != nil)
		}
		if c := g.aLease.Load(); c != nil {
			g.leaseEndedAtTakeover.Store((*c).Err() != nil)
		}
	}
	g.a.start(t)
	g.a.await(t, true, 10*time.Second)
	g.b.start(t)
	awaitCandidates(t, f.admin, prefix, 2)
	return g
}

func (g *fenceRig) newReplica(endpoint, name string, cfg rigConfig) *fenceReplica {
	t := g.t
	r := &fenceReplica{replica: &replica{candidate: newCandidate(t, newClient(t, endpoint), g.f.prefix, name, ttl)}, name: name}
	r.cloud = &guardedCloud{CloudClient: g.f.sim, f: g.f, name: name}
	r.wire = newWire(r.cloud, g.f.sim.Now)
	r.leader = &countingLeader{Elector: r.Elector}
	demand, err := manager.NewFixed("jobs", 0)
	require.NoError(t, err)
	r.demand = demand
	var hooks role.Hooks
	if cfg.hooks != nil {
		hooks = cfg.hooks(name)
	}
	worker, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, hooks)
	require.NoError(t, err)
	r.scaler, err = autoscale.New(r.wire, []pool.Config{{
		Name:            "workers",
		Role:            worker,
		Managers:        []manager.Manager{demand},
		Types:           []pool.InstanceType{{Name: "m5.large"}},
		Zones:           []string{"us-east-1a", "us-east-1b"},
		Max:             cfg.max,
		WindDownTimeout: 10 * time.Minute,
	}}, autoscale.Options{
		Identity:    hostIdentity,
		Interval:    passInterval,
		Clock:       g.f.sim.Now,
		HookWait:    time.Second,
		Leader:      r.leader,
		CallTimeout: callTimeout,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{}) })
	// Runs before the shutdown: a call still held must not hold it up.
	t.Cleanup(r.wire.unfreeze)
	return r
}

// check asserts what EC2 holds now, as any observer of the cloud could:
// no more live instances than Max, no instance terminated twice, no
// mutating call by a replica etcd did not elect, and every protected
// instance live and never terminated.
func (g *fenceRig) check(when string) {
	t := g.t
	t.Helper()
	live := map[string]bool{}
	for _, inst := range g.f.sim.Instances() {
		if inst.Tags[pool.TagOwner] == hostIdentity && inst.State.Live() {
			live[inst.ID] = true
		}
	}
	require.LessOrEqual(t, len(live), g.max, "%s: EC2 holds %d live instances, Max is %d", when, len(live), g.max)
	g.f.ledger.mu.Lock()
	violations := slices.Clone(g.f.ledger.violations)
	terminated := map[string]int{}
	for id, n := range g.f.ledger.terminated {
		terminated[id] = n
	}
	g.f.ledger.mu.Unlock()
	for id, n := range terminated {
		require.LessOrEqual(t, n, 1, "%s: instance %s terminated %d times", when, id, n)
	}
	for _, id := range g.protect {
		require.True(t, live[id], "%s: instance %s is gone", when, id)
		require.Zero(t, terminated[id], "%s: instance %s was terminated", when, id)
	}
	require.Empty(t, violations, "%s: a replica mutated EC2 without holding the lease", when)
}

// step runs one pass of r at demand d, then checks the cloud.
func (g *fenceRig) step(r *fenceReplica, d int) error {
	g.t.Helper()
	require.NoError(g.t, r.demand.Set(d))
	err := r.scaler.Step(context.Background())
	g.check(fmt.Sprintf("after a pass of %s at %s", r.name, g.f.sim.Now().Format(time.TimeOnly)))
	return err
}

func (g *fenceRig) advance(d time.Duration) {
	g.t.Helper()
	require.NoError(g.t, g.f.sim.Advance(d))
	g.check("after " + d.String())
}

// round runs one pass of each of rs at demand d, then advances the clock.
func (g *fenceRig) round(d int, rs ...*fenceReplica) {
	g.t.Helper()
	for _, r := range rs {
		_ = g.step(r, d)
	}
	g.advance(passInterval)
}

// converged reports whether EC2 holds d live instances, all granted and
// none winding down.
func (g *fenceRig) converged(d int) bool {
	o := g.f.outcome()
	return o.live == d && o.granted == d && o.windDown == 0
}

// converge runs rounds of rs at demand d until the fleet converges there
// and until also holds.
func (g *fenceRig) converge(d int, until func() bool, rs ...*fenceReplica) {
	g.t.Helper()
	for range 60 {
		if g.converged(d) && (until == nil || until()) {
			return
		}
		g.round(d, rs...)
	}
	g.t.Fatalf("no convergence at demand %d: %+v; hooks did %v", d, g.f.outcome(), g.fx)
}

// roundsUntil runs rounds of rs at demand d until cond holds.
func (g *fenceRig) roundsUntil(d int, cond func() bool, rs ...*fenceReplica) {
	g.t.Helper()
	for range 60 {
		if cond() {
			return
		}
		g.round(d, rs...)
	}
	g.t.Fatalf("not reached at demand %d: %+v; hooks did %v", d, g.f.outcome(), g.fx)
}

// awaitHeld runs rounds at demand d in which a's pass runs in the
// background, until a's wire holds a call. It returns the held call's
// context and a's pass, which ends once the call is let go.
func (g *fenceRig) awaitHeld(d int) (context.Context, <-chan error) {
	t := g.t
	t.Helper()
	for range 30 {
		require.NoError(t, g.a.demand.Set(d))
		pass := make(chan error, 1)
		go func() { pass <- g.a.scaler.Step(context.Background()) }()
		select {
		case ctx := <-g.a.wire.held:
			return ctx, pass
		case <-pass:
		}
		g.check("after a pass of a")
		_ = g.step(g.b, d)
		g.advance(passInterval)
	}
	t.Fatal("a never made the call to hold")
	return nil, nil
}

// liveIDs returns the owned instances EC2 holds live.
func (f *failover) liveIDs() []string {
	var ids []string
	for _, inst := range f.sim.Instances() {
		if inst.Tags[pool.TagOwner] == hostIdentity && inst.State.Live() {
			ids = append(ids, inst.ID)
		}
	}
	return ids
}

// TestPausedLeaderCannotActAfterItsLeaseLapses stops the leader between
// its leader check and the wire, in a launch or a termination, and cuts it
// off from etcd: its lease lapses, the other replica is elected and does
// the work (launches, terminates, or restores what was to be terminated),
// and only then does the stopped leader resume. Its call must not reach
// EC2: the call's context ended with the lease, found by the elector's
// watchdog alone, before the other replica was elected.
func TestPausedLeaderCannotActAfterItsLeaseLapses(t *testing.T) {
	endpoint := startEtcd(t)
	cases := []struct {
		name string
		op   string
		// Demand: the steady state before, while a makes the call it is
		// stopped in, and after, while b takes over.
		before, during, after int
		// pause is how much simulated time passes while a is stopped, before
		// b's first pass.
		pause time.Duration
		// bDoes is a call b must make to take over.
		bDoes string
		// want is the end state; base the end state of the same demands
		// without a pause.
		want, base outcome
	}{{
		// a launches for demand 4 (a call per zone) and is stopped in its
		// first launch for ten minutes, so that b launches the 2 under the
		// next token window's token, which EC2 cannot match with a's. a's
		// launch, had it gone out, would put a fifth instance in a pool
		// whose Max is 4 (issue 16, #10).
		name: "launch", op: "Launch", before: 2, during: 4, after: 4, pause: autoscale.TokenWindow, bDoes: "Launch",
		want: outcome{created: 4, live: 4, granted: 4},
		base: outcome{created: 4, live: 4, granted: 4},
	}, {
		// a terminates 2 wound-down servers and is stopped; b winds them
		// down again and terminates them. a's termination, had it gone
		// out, would terminate them twice and as a replica etcd did not
		// elect.
		name: "terminate", op: "Terminate", before: 3, during: 1, after: 1, bDoes: "Terminate",
		want: outcome{created: 3, live: 1, granted: 1},
		base: outcome{created: 3, live: 1, granted: 1},
	}, {
		// a terminates 2 wound-down servers and is stopped; demand comes
		// back and b restores them. a's termination, had it gone out, would
		// kill the servers b restored (issue 16, #10). Without a pause
		// the 2 are terminated and 2 others launched when demand returns:
		// the end state differs from the run without a pause only in
		// instances created.
		name: "terminate restored", op: "Terminate", before: 3, during: 1, after: 3, bDoes: "Untag",
		want: outcome{created: 3, live: 3, granted: 3},
		base: outcome{created: 5, live: 3, granted: 3},
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("no pause", func(t *testing.T) {
				g := newFenceRig(t, endpoint, fmt.Sprintf("/pause-%d-base", i), rigConfig{max: 4})
				g.converge(tc.before, nil, g.a, g.b)
				g.converge(tc.during, nil, g.a, g.b)
				g.converge(tc.after, nil, g.a, g.b)
				assert.Equal(t, tc.base, g.f.outcome())
				assert.True(t, g.a.IsLeader(context.Background()))
				assert.Empty(t, g.b.wire.calls(), "the follower called EC2")
			})

			g := newFenceRig(t, endpoint, fmt.Sprintf("/pause-%d", i), rigConfig{max: 4, partitionable: true})
			g.converge(tc.before, nil, g.a, g.b)
			lease := g.a.LeaseContext()
			require.NoError(t, lease.Err(), "a leads")
			g.aLease.Store(&lease)

			g.a.wire.hold(tc.op)
			held, pass := g.awaitHeld(tc.during)
			require.NoError(t, held.Err(), "a holds the lease as its call leaves for the wire")
			checks := g.a.leader.checks.Load()
			if tc.op == "Terminate" {
				// The servers a is stopped terminating: what b restores
				// must survive a.
				o := g.f.outcome()
				require.Equal(t, tc.before, o.live)
				require.Equal(t, tc.before-tc.during, o.windDown)
			}

			// Cut a off from etcd while it is stopped: nothing of a runs
			// but its elector.
			g.link.block()
			// Carry on if it does not end: what follows shows the harm.
			select {
			case <-held.Done():
			case <-time.After(ttl + 5*time.Second):
				t.Errorf("the held call's context outlived a's lease (TTL %v)", ttl)
			}
			assert.ErrorIs(t, context.Cause(held), autoscale.ErrNotLeader, "the call ended with the lease, not by its timeout")
			assert.Error(t, lease.Err(), "a's lease context ended")
			assert.Equal(t, checks, g.a.leader.checks.Load(),
				"a's scaler checked its lease: the lease context must end on the elector's watchdog alone")
			select {
			case err := <-pass:
				t.Fatalf("a's pass returned while a was stopped: %v", err)
			default:
			}
			g.b.await(t, true, ttl+5*time.Second)
			assert.True(t, g.heldEndedAtTakeover.Load(), "a's held call was still live when b was elected")
			assert.True(t, g.leaseEndedAtTakeover.Load(), "a's lease context was still live when b was elected")

			// b does the work while a is still stopped.
			if tc.pause > 0 {
				g.advance(tc.pause)
			}
			if tc.after > tc.during {
				g.protect = g.f.liveIDs() // b restores them: a must not kill them
			}
			g.converge(tc.after, nil, g.b)
			ops := map[string]bool{}
			for _, c := range g.b.wire.calls() {
				ops[c.op] = true
			}
			assert.True(t, ops[tc.bDoes], "b took over without a %s: %v", tc.bDoes, g.b.wire.calls())
			if tc.after > tc.during {
				assert.False(t, ops["Terminate"], "b terminated what it was to restore")
			}

			// a resumes: its call finds its context ended and goes nowhere.
			aSent := len(g.a.wire.calls())
			g.a.wire.unfreeze()
			select {
			case went := <-g.a.wire.went:
				assert.False(t, went, "a's held %s reached EC2 after a's lease lapsed", tc.op)
			case <-time.After(10 * time.Second):
				t.Fatal("a's held call did not return once resumed")
			}
			select {
			case err := <-pass:
				assert.ErrorIs(t, err, autoscale.ErrNotLeader, "a's pass reports the lost lease")
			case <-time.After(10 * time.Second):
				t.Fatal("a's pass did not return once resumed")
			}
			g.check("after a resumed")
			for range 6 {
				g.round(tc.after, g.a, g.b)
			}
			assert.Equal(t, tc.want, g.f.outcome(), "end state")
			assert.Len(t, g.a.wire.calls(), aSent, "a called EC2 after it was stopped")
			assert.True(t, g.b.IsLeader(context.Background()))
			t.Logf("b's calls: %v; end state %+v", g.b.wire.calls(), g.f.outcome())
		})
	}
}

// TestReelectedLeaderActsOnTheCloudNotOnItsLastTerm hands the lease from a
// to b and back (issue 16, #9). a loses it once two servers it winds down
// are wound down and torn down: its next pass would terminate them. b, with
// demand back, restores both (its Restore hooks put them back to work) and
// hands the lease back before its next pass removes their wind-down tags.
// a's scaler must start a new term (its Term changed), wait out b's lease
// and calls (TTL + CallTimeout) before its first change, and act on what
// EC2 and the role say now, not on what it learnt in its last term: the
// servers b restored are never terminated, and the fleet meets the demand.
// In the second variant a runs no pass while b leads, so only its changed
// Term tells it that its term ended.
func TestReelectedLeaderActsOnTheCloudNotOnItsLastTerm(t *testing.T) {
	endpoint := startEtcd(t)
	for i, aIdle := range []bool{false, true} {
		name := "a passes while b leads"
		if aIdle {
			name = "a idle while b leads"
		}
		t.Run(name, func(t *testing.T) {
			var g *fenceRig
			g = newFenceRig(t, endpoint, fmt.Sprintf("/reelect-%d", i), rigConfig{max: 4, hooks: func(who string) role.Hooks {
				return role.Hooks{
					Check: func(_ context.Context, inst awsctl.Instance) (role.Status, error) {
						g.fx.add(who, "wound down", inst.ID)
						return role.Status{Idle: true, WoundDown: true}, nil
					},
					Restore: func(_ context.Context, inst awsctl.Instance) error {
						g.fx.add(who, "restored", inst.ID)
						return nil
					},
					Teardown: func(_ context.Context, inst awsctl.Instance) error {
						g.fx.add(who, "torn down", inst.ID)
						return nil
					},
				}
			}})
			ctx := context.Background()
			g.converge(3, nil, g.a, g.b)
			firstTerm := g.a.Term()

			// Demand falls; a winds two servers down until they are torn
			// down: a's next pass would terminate them.
			g.roundsUntil(1, func() bool { return len(g.fx.ids("a", "torn down")) >= 2 }, g.a, g.b)
			down := g.fx.ids("a", "torn down")
			require.Len(t, down, 2)
			require.Empty(t, g.f.ledger.terminated, "a terminated before losing the lease: too late to test")
			require.Equal(t, 3, g.f.outcome().live)

			// a hands over; b, with demand back, restores both, and hands
			// the lease back before it removes their wind-down tags.
			require.NoError(t, g.a.Resign(ctx))
			g.b.await(t, true, 10*time.Second)
			passing := []*fenceReplica{g.a, g.b}
			if aIdle {
				passing = []*fenceReplica{g.b}
			}
			g.roundsUntil(3, func() bool { return len(g.fx.ids("b", "restored")) >= 2 }, passing...)
			assert.ElementsMatch(t, down, g.fx.ids("b", "restored"), "b restored other servers than a wound down")
			g.protect = down
			require.Equal(t, outcome{created: 3, live: 3, granted: 3, windDown: 2}, g.f.outcome(),
				"b removed the wind-down tags already: too late to test")
			awaitCandidates(t, g.f.admin, g.f.prefix, 2)
			require.NoError(t, g.b.Resign(ctx))

			// a wins back. It must not act on what it learnt in its last
			// term (wound down, torn down), nor before b's lease and calls
			// are over.
			g.a.await(t, true, 10*time.Second)
			require.NotEqual(t, firstTerm, g.a.Term(), "a's Term did not change")
			sent := len(g.a.wire.calls())
			won := g.f.sim.Now()
			err := g.step(g.a, 4)
			require.ErrorIs(t, err, autoscale.ErrNotLeader, "a new term makes no change at once")
			assert.Contains(t, err.Error(), "previous leader")
			_ = g.step(g.b, 4)
			g.advance(passInterval)
			g.converge(4, nil, g.a, g.b)

			calls := g.a.wire.calls()[sent:]
			require.NotEmpty(t, calls, "a did not act in its new term")
			assert.False(t, calls[0].at.Before(won.Add(ttl+callTimeout)),
				"a's first change of its new term at %v, before TTL + CallTimeout after it won at %v", calls[0].at, won)
			assert.Equal(t, outcome{created: 4, live: 4, granted: 4}, g.f.outcome(), "end state")
			t.Logf("hooks: %v; a's calls in its new term: %v (won at %v)", g.fx, calls, won.Format(time.TimeOnly))
		})
	}
}

// TestHookOfADeposedLeaderDoesNotLandAfterTheNewLeaderActs loses a's lease
// while a's WindDown hooks (a deregistration from a load balancer, say) are
// still under way, and a's pass loop runs no pass (stuck, say, in a slow
// listing). The hooks must end with the lease, on the elector alone; b then
// restores the servers (registers them again); a's hooks, let go only then,
// must not deregister anything after b's registration (issue 16, #11).
func TestHookOfADeposedLeaderDoesNotLandAfterTheNewLeaderActs(t *testing.T) {
	endpoint := startEtcd(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	started, returned := make(chan string, 8), make(chan string, 8)
	var g *fenceRig
	g = newFenceRig(t, endpoint, "/hook", rigConfig{max: 4, hooks: func(who string) role.Hooks {
		return role.Hooks{
			WindDown: func(ctx context.Context, inst awsctl.Instance) error {
				if who != "a" {
					g.fx.add(who, "deregistered", inst.ID)
					return nil
				}
				defer func() { returned <- inst.ID }()
				started <- inst.ID
				// The deregistration is on its way: it lands when let go,
				// unless its context ended first.
				select {
				case <-ctx.Done():
				case <-release:
				}
				if err := ctx.Err(); err != nil {
					g.fx.add(who, "deregistration dropped", inst.ID)
					return err
				}
				g.fx.add(who, "deregistered", inst.ID)
				return nil
			},
			Check: func(context.Context, awsctl.Instance) (role.Status, error) {
				return role.Status{}, nil // still busy: the wind-down goes on
			},
			Restore: func(_ context.Context, inst awsctl.Instance) error {
				g.fx.add(who, "registered", inst.ID)
				return nil
			},
		}
	}})
	t.Cleanup(letGo)
	g.converge(3, nil, g.a, g.b)

	// Demand falls: a winds two servers down; their hooks are under way.
	var winding []string
	for range 20 {
		g.round(1, g.a, g.b)
		for len(started) > 0 {
			winding = append(winding, <-started)
		}
		if len(winding) >= 2 {
			break
		}
	}
	require.Len(t, winding, 2, "a's WindDown hooks did not start")
	lease := g.a.LeaseContext()
	require.NoError(t, lease.Err())
	checks := g.a.leader.checks.Load()

	// a's lease is revoked, as etcd does when it expires. a runs no pass.
	require.Equal(t, "a", revokeLeader(t, g.f.admin, g.f.prefix))
	// Carry on if they do not end: what follows shows the harm.
	back := 0 // a's hooks that returned
	timeout := time.After(ttl + 5*time.Second)
wait:
	for back < len(winding) {
		select {
		case <-returned:
			back++
		case <-timeout:
			t.Errorf("a's WindDown hooks outlived a's lease (TTL %v)", ttl)
			break wait
		}
	}
	assert.Error(t, lease.Err(), "a's lease context ended")
	assert.Equal(t, checks, g.a.leader.checks.Load(), "a's scaler checked its lease: the hooks must end on the lease alone")

	// b takes over and restores both servers; a is still stuck.
	g.b.await(t, true, 10*time.Second)
	g.converge(3, func() bool { return len(g.fx.ids("b", "registered")) >= 2 }, g.b)
	assert.ElementsMatch(t, winding, g.fx.ids("b", "registered"))

	// Now a's hooks are let go, and a runs passes again as a follower.
	letGo()
	for ; back < len(winding); back++ {
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatal("a's WindDown hook did not return once let go")
		}
	}
	for range 3 {
		g.round(3, g.a, g.b)
	}
	for _, id := range winding {
		registered := g.fx.seq("b", "registered", id)
		require.NotZero(t, registered)
		if dereg := g.fx.seq("a", "deregistered", id); dereg != 0 {
			assert.Less(t, dereg, registered, "a's deregistration of %s landed after b registered it: %v", id, g.fx)
		}
		dropped := g.fx.seq("a", "deregistration dropped", id)
		assert.NotZero(t, dropped, "a's deregistration of %s did not end with its lease", id)
		assert.Less(t, dropped, registered, "a's deregistration of %s ended after b registered it: %v", id, g.fx)
	}
	assert.True(t, g.converged(3), "end state %+v", g.f.outcome())
	t.Logf("hooks: %v", g.fx)
}
