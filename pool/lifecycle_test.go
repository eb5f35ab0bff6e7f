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
)

func windingDown(pl *pool.Plan) []string {
	var ids []string
	for _, ch := range pl.Changes {
		if _, ok := ch.Set[pool.TagWindDownStart]; ok {
			ids = append(ids, ch.Instance.ID)
		}
	}
	return ids
}

func TestHourlyScaleDownPicksTheServerWithLeastOfItsHourLeft(t *testing.T) {
	tenLeft := granted("i-10", "z1", "m", t0.Add(-50*time.Minute))
	threeLeft := granted("i-3", "z1", "m", t0.Add(-57*time.Minute))
	m := &want{name: "m", req: manager.Request{Target: 1}}
	p := newPool(t, func(c *pool.Config) { c.Billing = pool.Hourly }, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{tenLeft, threeLeft}})
	assert.Equal(t, []string{"i-3"}, windingDown(pl), "3 minutes of paid time are lost, not 10")
}

func TestHourlyServerMadeSpareByATakenBackHeavierOneLeavesAtItsHoursEnd(t *testing.T) {
	// Min 2 units; the pool holds a free 1-unit server 90 seconds before its
	// paid hour ends and a 2-unit one winding down. Taking the 2-unit one
	// back for Min makes the 1-unit one spare: it goes in this pass, since a
	// pass 30 seconds later is inside HourlyMargin and it would stay, and be
	// paid, another hour.
	m := &want{name: "m"}
	p := newPool(t, func(c *pool.Config) { c.Billing = pool.Hourly; c.Min = 2 }, m)
	light := granted("i-light", "z1", "", t0.Add(-time.Hour+90*time.Second))
	delete(light.Tags, pool.TagManager)
	light.Tags[pool.TagReady] = t0.Add(-55 * time.Minute).Format(time.RFC3339)
	heavy := granted("i-heavy", "z1", "", t0.Add(-20*time.Minute))
	delete(heavy.Tags, pool.TagManager)
	heavy.Type = "m5.xlarge"
	heavy.Tags[pool.TagWindDownStart] = t0.Add(-time.Minute).Format(time.RFC3339)
	heavy.Tags[pool.TagWindDownDeadline] = t0.Add(9 * time.Minute).Format(time.RFC3339)
	ctx := context.Background()
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: []awsctl.Instance{light, heavy}})
	restored := false
	for _, e := range pl.Events {
		restored = restored || e.Kind == pool.EventRestore && e.Instance == "i-heavy"
	}
	assert.True(t, restored, "the 2-unit server is taken back for Min")
	assert.Equal(t, []string{"i-light"}, windingDown(pl), "the 1-unit server is spare and its hour ends in 90 seconds")
	assert.Empty(t, pl.Launches)
}

func TestHourlySwapWaitsForTheEndOfThePaidHour(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, b, pool.FastStart, func(c *pool.Config) { c.Billing = pool.Hourly }, m)
	od := odServer("i-od", "z1", "m")
	spot := awsctl.Instance{ID: "i-spot", Type: "m5.large", Zone: "z1", Market: awsctl.MarketSpot, State: awsctl.StateRunning,
		Tags: map[string]string{pool.TagPool: "p", pool.TagReplaces: "i-od", pool.TagReady: "2026-01-01T00:00:00Z"}}

	// Minute 13 of the on-demand server's hour: the spot server is ready,
	// but the hour is paid; the swap waits.
	od.LaunchTime = t0.Add(-13 * time.Minute)
	spot.LaunchTime = t0.Add(-5 * time.Minute)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od, spot}})
	assert.Empty(t, windingDown(pl), "no wind-down at minute 13")
	assert.Empty(t, pl.Launches, "the waiting replacement is not replaced again")

	// Minute 50: the swap happens and the wind-down ends before the hour.
	od.LaunchTime = t0.Add(-50 * time.Minute)
	pl = p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od, spot}})
	assert.Equal(t, []string{"i-od"}, windingDown(pl))
	for _, ch := range pl.Changes {
		if ch.Instance.ID == "i-spot" {
			assert.Equal(t, "m", ch.Set[pool.TagManager], "the replacement takes the server's place")
		}
		if ch.Instance.ID == "i-od" {
			deadline, err := time.Parse(time.RFC3339, ch.Set[pool.TagWindDownDeadline])
			require.NoError(t, err)
			assert.False(t, deadline.After(od.LaunchTime.Add(time.Hour)), "done before the next hour starts")
		}
	}
}

func TestHourlyReplacementStartsOnlyNearTheEndOfTheHour(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, b, pool.FastStart, func(c *pool.Config) { c.Billing = pool.Hourly }, m)
	pastStart(t, p)
	od := odServer("i-od", "z1", "m")
	od.LaunchTime = t0.Add(-13 * time.Minute)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od}})
	assert.Empty(t, pl.Launches, "47 minutes are paid: no replacement yet")
	od.LaunchTime = t0.Add(-45 * time.Minute)
	pl = p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od}})
	require.Len(t, pl.Launches, 1)
	assert.Equal(t, "i-od", pl.Launches[0].Tags[pool.TagReplaces])
}

func TestInFlightReplacementKeepsItsTagAndIsNotCountedAsCapacity(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, b, pool.FastStart, nil, m)
	pastStart(t, p)
	ctx := context.Background()
	od := odServer("i-od", "z1", "m")
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od}})
	require.Len(t, pl.Launches, 1)
	require.Equal(t, "i-od", pl.Launches[0].Tags[pool.TagReplaces])
	// EC2 answers without tags, and the listing does not show the
	// replacement yet.
	p.Commit(ctx, pl, pool.Outcome{Launched: [][]awsctl.Instance{{{ID: "i-new", Type: "m5.large", Zone: "z1",
		Market: awsctl.MarketSpot, State: awsctl.StatePending, LaunchTime: t0}}}, LaunchErr: []error{nil}})
	m.req.Target = 2 // demand grows while the replacement is invisible
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(10 * time.Second), Instances: []awsctl.Instance{od}})
	n := 0
	for _, l := range pl.Launches {
		assert.NotEqual(t, "i-od", l.Tags[pool.TagReplaces], "i-od is not replaced twice")
		if l.Tags[pool.TagReplaces] == "" {
			n += l.Capacity
		}
	}
	assert.Equal(t, 1, n, "the replacement on its way is not capacity for new demand")
	assert.Equal(t, 1, p.Status().Replacing)
}

func TestLifecycleTableAllowsOnlyTheDocumentedTransitions(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"launching", "booting", true},
		{"provisioning", "granted", true},
		{"free", "granted", true},
		{"granted", "winding-down", true},
		{"winding-down", "restoring", true},
		{"restoring", "granted", true},
		{"stopped", "retiring", true},
		{"retiring", "granted", false},
		{"retiring", "restoring", false},
		{"interrupted", "granted", false},
		{"booting", "granted", false},
		{"winding-down", "granted", false},
	} {
		assert.Equal(t, tc.ok, pool.Transition(tc.from, tc.to), "%s -> %s", tc.from, tc.to)
	}
}

func TestVcpuQuotaTakesTheWholeFamilyOutOfTheMarket(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 2}}
	p := newPool(t, func(c *pool.Config) {
		c.Types = []pool.InstanceType{{Name: "c5.large"}, {Name: "c5.xlarge", Weight: 2}, {Name: "m5.large"}}
		c.Zones = []string{"z1"}
	}, m)
	ctx := context.Background()
	pl := p.Plan(ctx, pool.Snapshot{Now: t0})
	require.NotEmpty(t, pl.Launches)
	quota := &awsctl.LaunchError{Offering: awsctl.Offering{InstanceType: "c5.large", Zone: "z1", Weight: 1}, Market: awsctl.MarketOnDemand,
		Err: &awsctl.APIError{Op: "CreateFleet", Code: "VcpuLimitExceeded", Kind: awsctl.ErrQuotaExceeded}}
	errs := make([]error, len(pl.Launches))
	errs[0] = quota
	events := p.Commit(ctx, pl, pool.Outcome{Launched: make([][]awsctl.Instance, len(pl.Launches)), LaunchErr: errs})
	var said bool
	for _, e := range events {
		said = said || e.Kind == pool.EventLaunchFailed && e.Reason == "quota"
	}
	assert.True(t, said, "reported as a quota")
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(10 * time.Second)})
	require.NotEmpty(t, pl.Launches)
	for _, l := range pl.Launches {
		for _, o := range l.Offerings {
			assert.Equal(t, "m5.large", o.InstanceType, "the c5 family is out of on-demand for a while")
		}
	}
}

func TestFirstPassAnnouncesWhatEachManagerHolds(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 2}}
	p := newPool(t, nil, m)
	working := granted("i-1", "z1", "m", t0.Add(-time.Hour))
	leaving := granted("i-2", "z2", "m", t0.Add(-time.Hour))
	leaving.Tags[pool.TagWindDownStart] = t0.Add(-time.Minute).Format(time.RFC3339)
	leaving.Tags[pool.TagWindDownDeadline] = t0.Add(10 * time.Minute).Format(time.RFC3339)
	ctx := context.Background()
	snap := pool.Snapshot{Now: t0, Instances: []awsctl.Instance{working, leaving}}
	p.Commit(ctx, p.Plan(ctx, snap), pool.Outcome{})
	require.Len(t, m.adopted, 2)
	kinds := map[string]manager.NoticeKind{}
	for _, n := range m.adopted {
		kinds[n.Server.ID] = n.Kind
	}
	assert.Equal(t, map[string]manager.NoticeKind{"i-1": manager.Granted, "i-2": manager.WindDown}, kinds)
	snap.Now = t0.Add(10 * time.Second)
	p.Commit(ctx, p.Plan(ctx, snap), pool.Outcome{})
	assert.Len(t, m.adopted, 2, "announced once, in the first pass")
}

func TestAClampIsReportedWhenItStartsAndWhenItStops(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 60}}
	p := newPool(t, nil, m) // Max 20
	ctx := context.Background()
	clamps := func(pl *pool.Plan) []string {
		var out []string
		for _, e := range pl.Events {
			if e.Kind == pool.EventDemandClamped {
				out = append(out, e.Reason)
			}
		}
		return out
	}
	var reasons []string
	for i := range 5 {
		reasons = append(reasons, clamps(p.Plan(ctx, pool.Snapshot{Now: t0.Add(time.Duration(i) * time.Minute)}))...)
	}
	require.Len(t, reasons, 1, "held at Max for five passes: one event")
	m.req.Target = 10
	reasons = clamps(p.Plan(ctx, pool.Snapshot{Now: t0.Add(10 * time.Minute)}))
	assert.Equal(t, []string{"no longer clamped"}, reasons)
}
