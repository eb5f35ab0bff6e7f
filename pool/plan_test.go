package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// want is a manager that asks for a fixed request.
type want struct {
	name    string
	req     manager.Request
	seen    []manager.Notice // notices of changes
	adopted []manager.Notice // the first pass's notices of what it holds
}

func (w *want) Name() string { return w.name }
func (w *want) Demand(context.Context, manager.State) (manager.Request, error) {
	return w.req, nil
}
func (w *want) Notify(n manager.Notice) {
	if n.Adopted {
		w.adopted = append(w.adopted, n)
		return
	}
	w.seen = append(w.seen, n)
}

// stub is a role with instant hooks.
type stub struct{}

func (stub) Name() string                  { return "worker" }
func (stub) LaunchSpec() awsctl.LaunchSpec { return awsctl.LaunchSpec{ImageID: "ami-1"} }
func (stub) Provision(context.Context, awsctl.Instance) error {
	return nil
}
func (stub) WindDown(context.Context, awsctl.Instance) error { return nil }
func (stub) Check(context.Context, awsctl.Instance) (role.Status, error) {
	return role.Status{Idle: true, WoundDown: true}, nil
}
func (stub) Restore(context.Context, awsctl.Instance) error  { return nil }
func (stub) Teardown(context.Context, awsctl.Instance) error { return nil }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newPool(t *testing.T, mutate func(*pool.Config), managers ...manager.Manager) *pool.Pool {
	t.Helper()
	cfg := pool.Config{
		Name:     "p",
		Role:     stub{},
		Managers: managers,
		Types:    []pool.InstanceType{{Name: "m5.large"}, {Name: "m5.xlarge", Weight: 2}},
		Zones:    []string{"z1", "z2", "z3"},
		Max:      20,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := pool.New(cfg)
	require.NoError(t, err)
	return p
}

func capacity(reqs []awsctl.LaunchRequest) int {
	n := 0
	for _, r := range reqs {
		n += r.Capacity
	}
	return n
}

func granted(id, zone, mgr string, launched time.Time) awsctl.Instance {
	return awsctl.Instance{ID: id, Type: "m5.large", Zone: zone, Market: awsctl.MarketOnDemand,
		State: awsctl.StateRunning, LaunchTime: launched,
		Tags: map[string]string{pool.TagPool: "p", pool.TagManager: mgr}}
}

func TestPlanLaunchesWhatIsMissingSpreadOverZones(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 7}}
	p := newPool(t, nil, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, 7, capacity(pl.Launches))
	zones := map[string]int{}
	for _, r := range pl.Launches {
		zones[r.Offerings[0].Zone] += r.Capacity
		assert.Equal(t, "p", r.Tags[pool.TagPool])
		assert.Equal(t, "worker", r.Tags[pool.TagRole])
		assert.Len(t, r.Offerings, 6, "every type in every zone, the request's zone first")
	}
	assert.Equal(t, map[string]int{"z1": 3, "z2": 2, "z3": 2}, zones)
}

func TestPlanCountsLaunchesInFlight(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 3}}
	p := newPool(t, nil, m)
	ctx := context.Background()
	pl := p.Plan(ctx, pool.Snapshot{Now: t0})
	require.Equal(t, 3, capacity(pl.Launches))
	var out pool.Outcome
	for i, r := range pl.Launches {
		out.Launched = append(out.Launched, nil)
		for j := range r.Capacity {
			out.Launched[i] = append(out.Launched[i], awsctl.Instance{ID: string(rune('a'+i)) + string(rune('0'+j)),
				Type: "m5.large", Zone: r.Offerings[0].Zone, State: awsctl.StatePending, LaunchTime: t0})
		}
	}
	p.Commit(ctx, pl, out)
	// The listing does not show them yet: nothing is launched again.
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(10 * time.Second)})
	assert.Zero(t, capacity(pl.Launches))
	// Past the launch grace, unseen launches are presumed lost.
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(pool.DefaultLaunchGrace + time.Minute)})
	assert.Equal(t, 3, capacity(pl.Launches))
}

func TestPlanNeverExceedsMax(t *testing.T) {
	a := &want{name: "a", req: manager.Request{Target: 15}}
	b := &want{name: "b", req: manager.Request{Target: 15}}
	p := newPool(t, nil, a, b)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, 20, capacity(pl.Launches))
	st := p.Status()
	assert.Equal(t, 10, st.Managers["a"].Target, "fair share")
	assert.Equal(t, 10, st.Managers["b"].Target)
}

func TestPlanFairShareGivesLeftoverToTheHungry(t *testing.T) {
	a := &want{name: "a", req: manager.Request{Target: 2}}
	b := &want{name: "b", req: manager.Request{Target: 100}}
	p := newPool(t, nil, a, b)
	p.Plan(context.Background(), pool.Snapshot{Now: t0})
	st := p.Status()
	assert.Equal(t, 2, st.Managers["a"].Target)
	assert.Equal(t, 18, st.Managers["b"].Target)
}

func TestPlanWindsDownIdleFirstThenMostExpensive(t *testing.T) {
	old := t0.Add(-time.Hour)
	insts := []awsctl.Instance{
		granted("i-1", "z1", "m", old),
		granted("i-2", "z1", "m", old),
		granted("i-3", "z2", "m", old),
		granted("i-4", "z2", "m", old),
	}
	insts[1].Market = awsctl.MarketSpot
	insts[3].LaunchTime = old.Add(time.Minute) // the newest
	m := &want{name: "m", req: manager.Request{Target: 2, Idle: []string{"i-3"}}}
	p := newPool(t, nil, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: insts})
	var winding []string
	for _, ch := range pl.Changes {
		if _, ok := ch.Set[pool.TagWindDownStart]; ok {
			winding = append(winding, ch.Instance.ID)
			assert.Equal(t, pool.HookWindDown, ch.Hook)
			deadline, err := time.Parse(time.RFC3339, ch.Set[pool.TagWindDownDeadline])
			require.NoError(t, err)
			assert.Equal(t, t0.Add(pool.DefaultWindDownTimeout), deadline)
		}
	}
	// i-3 is idle; then the on-demand ones cost more than spot i-2, and
	// of those the newest goes first.
	assert.ElementsMatch(t, []string{"i-3", "i-4"}, winding)
	assert.Empty(t, pl.Launches)
}

func TestPlanKeepsServersInsideTheMinimumCharge(t *testing.T) {
	insts := []awsctl.Instance{granted("i-1", "z1", "m", t0.Add(-30*time.Second))}
	m := &want{name: "m", req: manager.Request{Target: 0}}
	p := newPool(t, nil, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: insts})
	assert.Empty(t, pl.Changes, "paid for anyway, and demand may return")
	pl = p.Plan(context.Background(), pool.Snapshot{Now: t0.Add(time.Minute), Instances: insts})
	require.Len(t, pl.Changes, 1)
	assert.Contains(t, pl.Changes[0].Set, pool.TagWindDownStart)
}

func TestPlanGrantsByZoneMinimumsAndMarket(t *testing.T) {
	ready := func(id, zone string, mk awsctl.Market) awsctl.Instance {
		return awsctl.Instance{ID: id, Type: "m5.large", Zone: zone, Market: mk, State: awsctl.StateRunning,
			LaunchTime: t0, Tags: map[string]string{pool.TagPool: "p"}}
	}
	insts := []awsctl.Instance{
		ready("i-1", "z1", awsctl.MarketSpot),
		ready("i-2", "z2", awsctl.MarketOnDemand),
		ready("i-3", "z3", awsctl.MarketOnDemand),
	}
	zonal := &want{name: "zonal", req: manager.Request{Target: 1, ZoneMinimums: map[string]int{"z3": 1}}}
	safe := &want{name: "safe", req: manager.Request{Target: 1, Market: manager.OnDemandOnly}}
	p := newPool(t, nil, zonal, safe)
	ctx := context.Background()
	// The first pass provisions them; the next grants.
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	p.Commit(ctx, pl, pool.Outcome{})
	require.NoError(t, p.WaitHooks(ctx))
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(10 * time.Second), Instances: insts})
	grants := map[string]string{}
	for _, ch := range pl.Changes {
		if m, ok := ch.Set[pool.TagManager]; ok {
			grants[ch.Instance.ID] = m
		}
	}
	assert.Equal(t, "zonal", grants["i-3"], "the zone minimum picks the server")
	assert.Equal(t, "safe", grants["i-2"], "on-demand only never gets spot i-1")
	assert.NotContains(t, grants, "i-1")
}

func TestPlanReportsUnknownManagerTag(t *testing.T) {
	inst := granted("i-1", "z1", "ghost", t0.Add(-time.Hour))
	m := &want{name: "m", req: manager.Request{Target: 1}}
	p := newPool(t, nil, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{inst}})
	require.NotEmpty(t, pl.Changes)
	assert.Equal(t, "m", pl.Changes[0].Set[pool.TagManager], "the stale grant is replaced by a grant to a manager the pool has")
	var bad bool
	for _, e := range pl.Events {
		bad = bad || e.Kind == pool.EventBadTag
	}
	assert.True(t, bad)
	assert.Empty(t, pl.Terminate, "an instance with an odd tag is never terminated for it")
}

// The hooks that finished between two passes are reported in the order of
// their instances, not in whatever order a map gives: a host's logs and
// tests repeat from run to run.
func TestFinishedHooksAreReportedInInstanceOrder(t *testing.T) {
	var insts []awsctl.Instance
	for _, id := range []string{"i-7", "i-2", "i-9", "i-1", "i-5", "i-3", "i-8", "i-4", "i-6"} {
		insts = append(insts, awsctl.Instance{ID: id, Type: "m5.large", Zone: "z1", Market: awsctl.MarketOnDemand,
			State: awsctl.StateRunning, LaunchTime: t0, Tags: map[string]string{pool.TagPool: "p"}})
	}
	for range 5 { // a map's order would differ in some of them
		p := newPool(t, nil, &want{name: "m", req: manager.Request{Target: len(insts)}})
		ctx := context.Background()
		pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
		p.Commit(ctx, pl, pool.Outcome{})
		require.NoError(t, p.WaitHooks(ctx))
		pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(10 * time.Second), Instances: insts})
		var order []string
		for _, e := range pl.Events {
			if e.Kind == pool.EventProvisioned {
				order = append(order, e.Instance)
			}
		}
		assert.Equal(t, []string{"i-1", "i-2", "i-3", "i-4", "i-5", "i-6", "i-7", "i-8", "i-9"}, order)
	}
}
