package etcdleader_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// The host's identity: both replicas are the same scaler, so they own the
// same instances and derive the same launch tokens.
const hostIdentity = "jobs"

// demandAt is the host's demand by pass: a scale-up, a scale-down with
// wind-downs and terminations, and a scale-up again.
func demandAt(pass int) int {
	switch {
	case pass < 12:
		return 4
	case pass < 24:
		return 1
	default:
		return 3
	}
}

const passes = 42

// ledger is what both replicas did to the one cloud, as the cloud saw it.
type ledger struct {
	mu          sync.Mutex
	violations  []string       // mutating calls by a replica etcd did not elect
	terminated  map[string]int // termination requests per instance
	provisioned map[string]int // provision hooks run per instance
}

func (l *ledger) violate(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.violations = append(l.violations, fmt.Sprintf(format, args...))
}

// guardedCloud is one replica's view of the shared simulated EC2. Before
// every mutating call it asks etcd who leads and records a violation unless
// it is this replica; after its killAt-th call it kills the replica's lease,
// so the replica dies as a leader between two of its cloud calls.
type guardedCloud struct {
	awsctl.CloudClient
	f    *failover
	name string

	mu     sync.Mutex
	calls  int
	killAt int
}

func (g *guardedCloud) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

func (g *guardedCloud) mutating(ctx context.Context, op string) {
	leader, err := g.f.admin.Get(ctx, g.f.prefix+"/", clientv3.WithFirstCreate()...)
	switch {
	case err != nil:
		g.f.ledger.violate("%s %s: cannot read the leader: %v", g.name, op, err)
	case len(leader.Kvs) == 0 || string(leader.Kvs[0].Value) != g.name:
		g.f.ledger.violate("%s called %s without holding the lease", g.name, op)
	}
}

// done counts a call and kills the replica's lease after its killAt-th.
func (g *guardedCloud) done() {
	g.mu.Lock()
	g.calls++
	kill := g.calls == g.killAt
	g.mu.Unlock()
	if kill {
		g.f.killLeader()
	}
}

func (g *guardedCloud) ListInstances(ctx context.Context, filter awsctl.ListFilter) ([]awsctl.Instance, error) {
	defer g.done()
	return g.CloudClient.ListInstances(ctx, filter)
}

func (g *guardedCloud) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	g.mutating(ctx, "Launch")
	defer g.done()
	return g.CloudClient.Launch(ctx, req)
}

func (g *guardedCloud) Terminate(ctx context.Context, ids []string) ([]string, error) {
	g.mutating(ctx, "Terminate")
	defer g.done()
	g.f.ledger.mu.Lock()
	for _, id := range ids {
		g.f.ledger.terminated[id]++
	}
	g.f.ledger.mu.Unlock()
	return g.CloudClient.Terminate(ctx, ids)
}

func (g *guardedCloud) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	g.mutating(ctx, "Tag")
	defer g.done()
	return g.CloudClient.Tag(ctx, ids, tags)
}

func (g *guardedCloud) Untag(ctx context.Context, ids []string, keys []string) error {
	g.mutating(ctx, "Untag")
	defer g.done()
	return g.CloudClient.Untag(ctx, ids, keys)
}

// replica is one process of the host: an elector and a scaler.
type replica struct {
	*candidate
	cloud  *guardedCloud
	scaler *autoscale.Scaler
	demand *manager.Fixed
}

// failover is two replicas of a host over one simulated EC2.
type failover struct {
	t      *testing.T
	sim    *ec2sim.Sim
	admin  *clientv3.Client
	prefix string
	ledger *ledger
	a, b   *replica
}

func newFailover(t *testing.T, endpoint, prefix string, killAt int) *failover {
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay:     ec2sim.Fixed(40 * time.Second),
		ShutdownDelay: ec2sim.Fixed(20 * time.Second),
		// A replica taking over mid-pass cannot see what the dead leader
		// launched a moment before: only the launch token saves the day.
		ListDelay: ec2sim.Fixed(5 * time.Second),
		Seed:      1,
	})
	require.NoError(t, err)
	f := &failover{t: t, sim: sim, admin: newClient(t, endpoint), prefix: prefix,
		ledger: &ledger{terminated: map[string]int{}, provisioned: map[string]int{}}}
	f.a = f.newReplica(endpoint, "a", killAt)
	f.b = f.newReplica(endpoint, "b", 0)
	f.a.start(t)
	f.a.await(t, true, 10*time.Second)
	f.b.start(t)
	awaitCandidates(t, f.admin, prefix, 2)
	return f
}

func (f *failover) newReplica(endpoint, name string, killAt int) *replica {
	t := f.t
	r := &replica{candidate: newCandidate(t, newClient(t, endpoint), f.prefix, name, ttl)}
	r.cloud = &guardedCloud{CloudClient: f.sim, f: f, name: name, killAt: killAt}
	demand, err := manager.NewFixed("jobs", demandAt(0))
	require.NoError(t, err)
	r.demand = demand
	worker, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(_ context.Context, inst awsctl.Instance) error {
			f.ledger.mu.Lock()
			f.ledger.provisioned[inst.ID]++
			f.ledger.mu.Unlock()
			return nil
		},
		Check: func(context.Context, awsctl.Instance) (role.Status, error) {
			return role.Status{Idle: true, WoundDown: true}, nil
		},
	})
	require.NoError(t, err)
	r.scaler, err = autoscale.New(r.cloud, []pool.Config{{
		Name:            "workers",
		Role:            worker,
		Managers:        []manager.Manager{demand},
		Types:           []pool.InstanceType{{Name: "m5.large"}},
		Zones:           []string{"us-east-1a", "us-east-1b"},
		Max:             10,
		WindDownTimeout: 10 * time.Minute,
	}}, autoscale.Options{
		Identity: hostIdentity,
		Interval: 10 * time.Second,
		Clock:    f.sim.Now,
		HookWait: time.Second,
		Leader:   r.Elector,
		// A new leader waits TTL + CallTimeout (simulated) before acting:
		// short here, so the run converges within its passes.
		CallTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{}) })
	return r
}

// killLeader revokes a's lease, as if a had died, and waits until a knows
// and b has taken over, so that what follows does not depend on timing.
func (f *failover) killLeader() {
	require.Equal(f.t, "a", revokeLeader(f.t, f.admin, f.prefix))
	f.a.await(f.t, false, 5*time.Second)
	f.b.await(f.t, true, 5*time.Second)
}

// run drives both replicas pass after pass, as their Run loops would: both
// step every pass, the follower's steps are no-ops.
func (f *failover) run() {
	ctx := context.Background()
	for pass := range passes {
		for _, r := range []*replica{f.a, f.b} {
			require.NoError(f.t, r.demand.Set(demandAt(pass)))
			_ = r.scaler.Step(ctx)
		}
		require.NoError(f.t, f.sim.Advance(10*time.Second))
	}
}

// outcome is the end state of the cloud after a run.
type outcome struct {
	created  int // instances ever launched
	live     int
	granted  int
	windDown int
}

func (f *failover) outcome() outcome {
	var o outcome
	for _, inst := range f.sim.Instances() {
		if inst.Tags[pool.TagOwner] != hostIdentity {
			continue
		}
		o.created++
		if !inst.State.Live() {
			continue
		}
		o.live++
		if inst.Tags[pool.TagManager] != "" {
			o.granted++
		}
		if inst.Tags[pool.TagWindDownStart] != "" {
			o.windDown++
		}
	}
	return o
}

// TestFailoverMidPass kills the leading replica between every two of its
// cloud calls in turn, over a scale-up, a scale-down and a scale-up again,
// and checks that the follower takes over and finishes the job without
// launching or terminating anything twice, and that no replica ever
// mutates the cloud without holding the lease.
func TestFailoverMidPass(t *testing.T) {
	endpoint := startEtcd(t)

	baseline := newFailover(t, endpoint, "/baseline", 0)
	baseline.run()
	want := baseline.outcome()
	require.Empty(t, baseline.ledger.violations)
	require.Equal(t, outcome{created: want.created, live: demandAt(passes - 1), granted: demandAt(passes - 1)}, want,
		"the scenario does not converge even without a failover")
	calls := baseline.a.cloud.count()
	require.Zero(t, baseline.b.cloud.count(), "the follower called the cloud")
	t.Logf("leader alone: %d cloud calls, %d instances launched", calls, want.created)

	for killAt := 1; killAt <= calls; killAt++ {
		t.Run(fmt.Sprintf("killed after call %d", killAt), func(t *testing.T) {
			f := newFailover(t, endpoint, fmt.Sprintf("/kill-%d", killAt), killAt)
			f.run()
			assert.Empty(t, f.ledger.violations)
			assert.Equal(t, killAt, f.a.cloud.count(), "the old leader called the cloud after losing its lease")
			assert.True(t, f.b.IsLeader(context.Background()), "the follower did not take over")
			got := f.outcome()
			assert.Equal(t, want, got, "end state differs from the run without a failover")
			for id, n := range f.ledger.terminated {
				assert.Equal(t, 1, n, "instance %s terminated %d times", id, n)
			}
			for id, n := range f.ledger.provisioned {
				// A provision the dead leader started may run again
				// on the new one: hooks are idempotent by contract.
				assert.LessOrEqual(t, n, 2, "instance %s provisioned %d times", id, n)
			}
		})
	}
	t.Logf("%d kill points tried", calls)
}
