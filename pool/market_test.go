package pool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// book returns a us-east-1 price book (m5.large on-demand 0.096) with the
// given spot price for m5.large in every zone.
func book(t *testing.T, spot map[string]float64) *spotprice.Book {
	t.Helper()
	b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	require.NoError(t, err)
	var prices []awsctl.SpotPrice
	for zone, p := range spot {
		prices = append(prices, awsctl.SpotPrice{InstanceType: "m5.large", Zone: zone, PricePerHour: p, Time: t0.Add(-time.Hour)})
	}
	b.SetSpot(prices)
	return b
}

func spotPool(t *testing.T, b spotprice.Prices, strategy pool.MarketStrategy, mutate func(*pool.Config), managers ...manager.Manager) *pool.Pool {
	return newPool(t, func(c *pool.Config) {
		c.Types = []pool.InstanceType{{Name: "m5.large"}}
		c.Market = strategy
		c.Prices = b
		if mutate != nil {
			mutate(c)
		}
	}, managers...)
}

// pastStart plans p's first pass, with insts listed, ListingLag before t0
// and drops the plan: a pool holds replacements for ListingLag after it
// starts, and tests of the replacement logic plan at t0.
func pastStart(t *testing.T, p *pool.Pool, insts ...awsctl.Instance) {
	t.Helper()
	p.Plan(context.Background(), pool.Snapshot{Now: t0.Add(-pool.DefaultListingLag), Instances: insts})
}

func byMarket(reqs []awsctl.LaunchRequest) map[awsctl.Market]int {
	out := map[awsctl.Market]int{}
	for _, r := range reqs {
		out[r.Market] += r.Capacity
	}
	return out
}

func TestSpotAtStartLaunchesSpotWhenCheapEnough(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 4}}
	cheap := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	pl := spotPool(t, cheap, pool.Spot, nil, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 4}, byMarket(pl.Launches))
	assert.Equal(t, "z1", pl.Launches[0].Offerings[0].Zone, "cheapest zone first")
}

func TestSpotAboveTheRatioLaunchesOnDemand(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 3}}
	// 0.08 > 0.8 x 0.096 = 0.0768
	dear := book(t, map[string]float64{"z1": 0.080, "z2": 0.080, "z3": 0.080})
	pl := spotPool(t, dear, pool.Spot, nil, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 3}, byMarket(pl.Launches))
	zones := map[string]int{}
	for _, r := range pl.Launches {
		zones[r.Offerings[0].Zone] += r.Capacity
	}
	assert.Equal(t, map[string]int{"z1": 1, "z2": 1, "z3": 1}, zones, "equal prices spread over zones")
}

func TestUnknownPriceNeverLaunches(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 2}}
	b := book(t, nil)
	p := newPool(t, func(c *pool.Config) {
		c.Types = []pool.InstanceType{{Name: "x9.unheard-of"}}
		c.Market = pool.Spot
		c.Prices = b
	}, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Empty(t, pl.Launches)
	var reported bool
	for _, e := range pl.Events {
		if e.Kind == pool.EventNoCapacity {
			reported = true
			assert.Contains(t, e.Reason, "no on-demand price")
		}
	}
	assert.True(t, reported)
}

func TestCapacityErrorFallsBackThenReturns(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 2}}
	cheap := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, cheap, pool.Spot, nil, m)
	ctx := context.Background()
	pl := p.Plan(ctx, pool.Snapshot{Now: t0})
	require.NotEmpty(t, pl.Launches)
	// Every spot offering fails for lack of capacity.
	out := pool.Outcome{}
	for _, r := range pl.Launches {
		var errs []error
		for _, o := range r.Offerings {
			errs = append(errs, &awsctl.LaunchError{Offering: o, Market: r.Market, Err: &awsctl.APIError{
				Op: "CreateFleet", Code: "InsufficientInstanceCapacity", Kind: awsctl.ErrInsufficientCapacity}})
		}
		out.Launched = append(out.Launched, nil)
		out.LaunchErr = append(out.LaunchErr, errors.Join(errs...))
	}
	p.Commit(ctx, pl, out)

	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(30 * time.Second)})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 2}, byMarket(pl.Launches), "on-demand within one pass")

	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(spotprice.DefaultUnavailableTTL + time.Minute)})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 2}, byMarket(pl.Launches), "back to spot once the entry expires")
}

func TestSpotOnlyManagerWithNoSpotCapacityIsReported(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 2, Market: manager.SpotOnly}}
	cheap := book(t, map[string]float64{"z1": 0.030})
	u := spotprice.NewUnavailable(time.Hour)
	u.Mark(t0, "m5.large", "z1", awsctl.MarketSpot)
	p := spotPool(t, cheap, pool.Spot, func(c *pool.Config) { c.Unavailable = u }, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Empty(t, pl.Launches)
	kinds := map[pool.EventKind]bool{}
	for _, e := range pl.Events {
		kinds[e.Kind] = true
	}
	assert.True(t, kinds[pool.EventNoCapacity])
}

func TestSpotShareCapDiversifiesWithinTheMargin(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 9}}
	// z1 is cheapest, the others within 5% of it; no spot pool may hold
	// more than 40%.
	b := book(t, map[string]float64{"z1": 0.0300, "z2": 0.0305, "z3": 0.0310})
	pl := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.MaxSpotShare = 0.4 }, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	zones := map[string]int{}
	for _, r := range pl.Launches {
		zones[r.Offerings[0].Zone] += r.Capacity
	}
	assert.Equal(t, 9, zones["z1"]+zones["z2"]+zones["z3"])
	for z, n := range zones {
		assert.LessOrEqual(t, n, 3, "zone %s holds at most 40%% of 9", z)
	}
}

func odServer(id, zone, mgr string) awsctl.Instance {
	return awsctl.Instance{ID: id, Type: "m5.large", Zone: zone, Market: awsctl.MarketOnDemand,
		State: awsctl.StateRunning, LaunchTime: t0.Add(-time.Hour),
		Tags: map[string]string{pool.TagPool: "p", pool.TagManager: mgr}}
}

func TestFastStartLaunchesOnDemandThenReplacesWithSpot(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, b, pool.FastStart, nil, m)
	pastStart(t, p)
	ctx := context.Background()
	pl := p.Plan(ctx, pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 1}, byMarket(pl.Launches), "fast start boots on-demand")

	od := odServer("i-od", "z2", "m")
	pl = p.Plan(ctx, pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od}})
	require.Len(t, pl.Launches, 1)
	r := pl.Launches[0]
	assert.Equal(t, awsctl.MarketSpot, r.Market)
	assert.Equal(t, "i-od", r.Tags[pool.TagReplaces])
	assert.Empty(t, pl.Changes, "make before break: the on-demand server keeps working")

	// The replacement is up and provisioned: it is granted, and only then
	// does the on-demand server wind down, in the same pass.
	spot := awsctl.Instance{ID: "i-spot", Type: "m5.large", Zone: "z1", Market: awsctl.MarketSpot,
		State: awsctl.StateRunning, LaunchTime: t0.Add(-2 * time.Minute),
		Tags: map[string]string{pool.TagPool: "p", pool.TagReplaces: "i-od"}}
	insts := []awsctl.Instance{od, spot}
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(time.Minute), Instances: insts})
	assert.Empty(t, pl.Launches, "a replacement on its way is not launched again")
	p.Commit(ctx, pl, pool.Outcome{})
	require.NoError(t, p.WaitHooks(ctx))
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(2 * time.Minute), Instances: insts})
	var granted, wound bool
	for _, ch := range pl.Changes {
		if ch.Instance.ID == "i-spot" && ch.Set[pool.TagManager] == "m" {
			granted = true
			assert.Contains(t, ch.Remove, pool.TagReplaces)
		}
		if ch.Instance.ID == "i-od" && ch.Set[pool.TagWindDownStart] != "" {
			wound = true
		}
	}
	assert.True(t, granted, "replacement granted to the same manager")
	assert.True(t, wound, "on-demand server winds down once replaced")
	assert.Empty(t, pl.Launches)
}

func TestReplacementSkippedWhenItWouldNotPayOff(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	// Spot just under the ratio saves 0.02/h; over 5 minutes of expected
	// life that is less than running both servers during the swap.
	b := book(t, map[string]float64{"z1": 0.076})
	p := spotPool(t, b, pool.FastStart, func(c *pool.Config) {
		c.Replace.ExpectedLife = 5 * time.Minute
	}, m)
	pastStart(t, p)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{odServer("i-od", "z1", "m")}})
	assert.Empty(t, pl.Launches)
	var skipped bool
	for _, e := range pl.Events {
		skipped = skipped || e.Kind == pool.EventReplaceSkipped
	}
	assert.True(t, skipped)
}

func TestInterruptionWindsDownWithDeadlineAndReplacesInOnePass(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 2}}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031})
	p := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.Zones = []string{"z1", "z2"} }, m)
	a := odServer("i-a", "z1", "m")
	a.Market = awsctl.MarketSpot
	c := odServer("i-c", "z2", "m")
	c.Market = awsctl.MarketSpot
	deadline := t0.Add(2 * time.Minute)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{a, c},
		Interrupted: map[string]time.Time{"i-a": deadline}})
	require.Len(t, pl.Launches, 1, "replacement in the same pass")
	assert.Equal(t, 1, pl.Launches[0].Capacity)
	assert.Equal(t, "z2", pl.Launches[0].Offerings[0].Zone, "the interrupted offering is avoided")
	var wound bool
	for _, ch := range pl.Changes {
		if ch.Instance.ID == "i-a" {
			wound = true
			assert.Equal(t, deadline.Format(time.RFC3339), ch.Set[pool.TagWindDownDeadline])
			assert.Equal(t, pool.HookWindDown, ch.Hook)
		}
	}
	assert.True(t, wound)
	p.Commit(context.Background(), pl, pool.Outcome{})
	require.Len(t, m.seen, 1)
	assert.Equal(t, manager.Interrupted, m.seen[0].Kind)
	assert.Equal(t, deadline, m.seen[0].Deadline)
}

func TestRebalanceTellsTheManagerOnly(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	b := book(t, map[string]float64{"z1": 0.030})
	p := spotPool(t, b, pool.Spot, nil, m)
	a := odServer("i-a", "z1", "m")
	a.Market = awsctl.MarketSpot
	snap := pool.Snapshot{Now: t0, Instances: []awsctl.Instance{a}, Rebalance: map[string]time.Time{"i-a": t0}}
	pl := p.Plan(context.Background(), snap)
	assert.Empty(t, pl.Launches, "no replacement unless demand asks")
	p.Commit(context.Background(), pl, pool.Outcome{})
	require.Len(t, m.seen, 1)
	assert.Equal(t, manager.Rebalance, m.seen[0].Kind)
	p.Commit(context.Background(), p.Plan(context.Background(), snap), pool.Outcome{})
	assert.Len(t, m.seen, 1, "told once")
}

// reservations is a fixed reservation source.
type reservations []awsctl.Reservation

func (r reservations) Reservations(context.Context) ([]awsctl.Reservation, error) { return r, nil }

func TestUnusedReservationsAreUsedBeforeSpot(t *testing.T) {
	b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1",
		Reservations: reservations{{InstanceType: "m5.large", Zone: "z3", Count: 2, End: t0.Add(24 * time.Hour)}}})
	require.NoError(t, err)
	require.NoError(t, b.Refresh(context.Background(), t0, []string{"m5.large"}))
	b.SetSpot([]awsctl.SpotPrice{{InstanceType: "m5.large", Zone: "z1", PricePerHour: 0.03, Time: t0}})
	m := &want{name: "m", req: manager.Request{Target: 3}}
	p := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.Policy.UseReservations = true }, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0})
	got := map[string]int{}
	for _, r := range pl.Launches {
		got[string(r.Market)+"/"+r.Offerings[0].Zone] += r.Capacity
	}
	assert.Equal(t, map[string]int{"on-demand/z3": 2, "spot/z1": 1}, got)
}

func TestMinimumSpotAddsAndKeepsWithHysteresis(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	b := book(t, map[string]float64{"z1": 0.020}) // 0.21 of on-demand
	p := spotPool(t, b, pool.Spot, func(c *pool.Config) {
		c.MinimumSpot = &pool.MinimumSpot{Manager: "m", Capacity: 3}
	}, m)
	ctx := context.Background()
	p.Plan(ctx, pool.Snapshot{Now: t0})
	assert.Equal(t, 4, p.Status().Managers["m"].Target, "very cheap: 3 extra")

	// The hysteresis reads what exists, so a restarted scaler keeps it too:
	// between the thresholds, the extra the manager holds is kept.
	var held []awsctl.Instance
	for i := range 4 {
		s := odServer(fmt.Sprintf("i-%d", i), "z1", "m")
		s.Market = awsctl.MarketSpot
		held = append(held, s)
	}
	b.SetSpot([]awsctl.SpotPrice{{InstanceType: "m5.large", Zone: "z1", PricePerHour: 0.033, Time: t0}}) // 0.34
	p.Plan(ctx, pool.Snapshot{Now: t0.Add(time.Minute), Instances: held})
	assert.Equal(t, 4, p.Status().Managers["m"].Target, "between the thresholds: kept")
	restarted := spotPool(t, b, pool.Spot, func(c *pool.Config) {
		c.MinimumSpot = &pool.MinimumSpot{Manager: "m", Capacity: 3}
	}, m)
	restarted.Plan(ctx, pool.Snapshot{Now: t0.Add(time.Minute), Instances: held})
	assert.Equal(t, 4, restarted.Status().Managers["m"].Target, "a restarted scaler keeps it too")

	b.SetSpot([]awsctl.SpotPrice{{InstanceType: "m5.large", Zone: "z1", PricePerHour: 0.040, Time: t0.Add(time.Minute)}}) // 0.42
	p.Plan(ctx, pool.Snapshot{Now: t0.Add(2 * time.Minute), Instances: held})
	assert.Equal(t, 1, p.Status().Managers["m"].Target, "above keep: dropped")

	b.SetSpot([]awsctl.SpotPrice{{InstanceType: "m5.large", Zone: "z1", PricePerHour: 0.033, Time: t0.Add(2 * time.Minute)}})
	p.Plan(ctx, pool.Snapshot{Now: t0.Add(3 * time.Minute), Instances: held[:1]})
	assert.Equal(t, 1, p.Status().Managers["m"].Target, "between the thresholds: not added back")
}

func TestSpotStrategiesNeedAPriceBook(t *testing.T) {
	_, err := pool.New(pool.Config{Name: "p", Role: stub{}, Managers: []manager.Manager{&want{name: "m"}},
		Types: []pool.InstanceType{{Name: "m5.large"}}, Zones: []string{"z1"}, Market: pool.Spot})
	require.ErrorIs(t, err, pool.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "Prices")
	_, err = pool.New(pool.Config{Name: "p", Role: stub{}, Managers: []manager.Manager{&want{name: "m"}},
		Types: []pool.InstanceType{{Name: "m5.large"}}, Zones: []string{"z1"}, Policy: spotprice.Policy{SpotRatio: 1.5}})
	require.ErrorIs(t, err, pool.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "SpotRatio")
}

func TestSpotShareCapDoesNotBuyDiversityAtAnyPrice(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 9}}
	// z2 and z3 cost half as much again as z1: past the margin, the pool
	// launches over the cap in z1 and says so.
	b := book(t, map[string]float64{"z1": 0.020, "z2": 0.030, "z3": 0.031})
	pl := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.MaxSpotShare = 0.4 }, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	zones := map[string]int{}
	for _, r := range pl.Launches {
		zones[r.Offerings[0].Zone] += r.Capacity
	}
	assert.Equal(t, map[string]int{"z1": 9}, zones)
	over := false
	for _, e := range pl.Events {
		over = over || e.Kind == pool.EventNoCapacity && strings.Contains(e.Reason, "over the cap")
	}
	assert.True(t, over, "going over the cap is reported")
}

func TestSwapNeverBuysSpotThePolicyRefuses(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	// 0.090 > 0.8 x 0.096: refused at launch. Over ten hours the saving
	// would pay for any swap, but the policy's ratio still holds.
	b := book(t, map[string]float64{"z1": 0.090})
	p := spotPool(t, b, pool.FastStart, func(c *pool.Config) { c.Replace.ExpectedLife = 10 * time.Hour }, m)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{odServer("i-od", "z1", "m")}})
	assert.Empty(t, pl.Launches)
}

// A scaler that died right after launching a replacement leaves it
// unlisted for a while; its successor's first passes must not replace the
// same server again. Replacements wait ListingLag after a start, by which
// time the listing shows the first one.
func TestARestartedPoolWaitsForThePredecessorsReplacementToBeListed(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, b, pool.FastStart, nil, m)
	ctx := context.Background()
	od := odServer("i-od", "z2", "m")
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od}})
	assert.Zero(t, replacementsOf(pl, "i-od"), "the first pass after a start replaces nothing")
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(pool.DefaultListingLag / 2), Instances: []awsctl.Instance{od}})
	assert.Zero(t, replacementsOf(pl, "i-od"), "nor does any pass within ListingLag")

	// The predecessor's replacement is listed now: it is not launched again.
	spot := awsctl.Instance{ID: "i-spot", Type: "m5.large", Zone: "z1", Market: awsctl.MarketSpot,
		State: awsctl.StatePending, LaunchTime: t0.Add(-10 * time.Second),
		Tags: map[string]string{pool.TagPool: "p", pool.TagReplaces: "i-od"}}
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(pool.DefaultListingLag), Instances: []awsctl.Instance{od, spot}})
	assert.Zero(t, replacementsOf(pl, "i-od"), "replaced once")

	// Had there been none, the swap goes ahead once the hold is over.
	q := spotPool(t, b, pool.FastStart, nil, &want{name: "m", req: manager.Request{Target: 1}})
	q.Plan(ctx, pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od}})
	pl = q.Plan(ctx, pool.Snapshot{Now: t0.Add(pool.DefaultListingLag), Instances: []awsctl.Instance{od}})
	assert.Equal(t, 1, replacementsOf(pl, "i-od"))
}
