package pool_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// Found by the model check (autoscale TestModelCheck with job classes):
// each test here fails without the fix it names.

func TestWorkBeyondAFairShareIsNotBoughtOnDemand(t *testing.T) {
	// Two managers want 6 each from a pool of Max 6: a fair share of 3
	// each. The first says all its 6 units are long work: only the 3 of
	// its share go on demand, and the second still gets its 3.
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	long := &want{name: "long", req: manager.Request{Target: 6, Work: []manager.Work{{Class: "long", Units: 6, Run: 10 * time.Hour}}}}
	other := &want{name: "other", req: manager.Request{Target: 6}}
	pl := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.Max = 6 }, long, other).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 3, awsctl.MarketSpot: 3}, byMarket(pl.Launches))
	for _, e := range pl.Events {
		if e.Kind == pool.EventWorkMarket {
			assert.Equal(t, 3, e.Capacity, "the event reports the work within the share")
		}
	}
}

func TestWorkTooLongToEverFinishOnSpotGoesOnDemand(t *testing.T) {
	// At 0.3 interruptions an hour, a job of 100 days without checkpoints
	// would restart about e^720 times on spot: an expected cost beyond
	// what a float64 holds, which is above on-demand all the same.
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	// A replacement that boots within the notice leaves the work no wait
	// to price, which once made the overflowed cost NaN.
	for _, overlap := range []time.Duration{0, time.Minute} {
		for _, width := range []int{1, 64} {
			m := &want{name: "m", req: manager.Request{Target: 3, Work: []manager.Work{
				{Class: "long", Units: 2, Run: 2400 * time.Hour, Width: width},
				{Class: "short", Units: 1, Run: 10 * time.Minute},
			}}}
			p := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.Replace.Overlap = overlap }, m)
			pl := p.Plan(context.Background(), pool.Snapshot{Now: t0})
			assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 2, awsctl.MarketSpot: 1}, byMarket(pl.Launches),
				"width %d, overlap %v", width, overlap)
		}
	}
}

// retiredAndReplaced splits a plan's handling of a due server: retired
// without a replacement, or replaced make-before-break.
func retiredAndReplaced(pl *pool.Plan, id string) (retired, replaced bool) {
	for _, c := range pl.Changes {
		if c.Instance.ID == id && c.Set[pool.TagRetire] != "" {
			retired = true
		}
	}
	for _, r := range pl.Launches {
		if r.Tags[pool.TagReplaces] == id {
			replaced = true
		}
	}
	return retired, replaced
}

func TestADueOnDemandServerKeptForWorkIsReplacedNotRetired(t *testing.T) {
	// The manager's one unit of long work runs on i-od, which is past
	// MaxLifetime; a spot server of an hourly pool, twenty minutes into
	// its paid hour (so not wound down yet), makes the manager hold its
	// target without i-od. i-od is still needed for the work: it is
	// replaced on demand, make-before-break, not retired for a new
	// on-demand launch later.
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	m := &want{name: "m", req: manager.Request{Target: 1, Work: []manager.Work{{Class: "long", Units: 1, Run: 10 * time.Hour}}}}
	p := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.MaxLifetime, c.Billing = 30*time.Minute, pool.Hourly }, m)
	pastStart(t, p)
	od := odServer("i-od", "z1", "m")
	spot := odServer("i-spot", "z2", "m")
	spot.Market, spot.LaunchTime = awsctl.MarketSpot, t0.Add(-20*time.Minute)
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od, spot}})
	retired, replaced := retiredAndReplaced(pl, "i-od")
	assert.False(t, retired, "still runs the long work")
	assert.True(t, replaced)
	for _, r := range pl.Launches {
		assert.Equal(t, awsctl.MarketOnDemand, r.Market)
	}
}

func TestADueServerHoldingAZoneMinimumIsReplacedNotRetired(t *testing.T) {
	// The manager wants 1 unit, at least 1 in z1: i-z1 holds the minimum
	// and is past MaxLifetime; i-z2, twenty minutes into its paid hour in
	// an hourly pool (so not wound down yet), keeps the target without it
	// but not the minimum. i-z1 is replaced in z1, make-before-break.
	m := &want{name: "m", req: manager.Request{Target: 1, ZoneMinimums: map[string]int{"z1": 1}}}
	p := newPool(t, func(c *pool.Config) { c.MaxLifetime, c.Billing = 30*time.Minute, pool.Hourly }, m)
	pastStart(t, p)
	old := granted("i-z1", "z1", "m", t0.Add(-time.Hour))
	recent := granted("i-z2", "z2", "m", t0.Add(-20*time.Minute))
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: []awsctl.Instance{old, recent}})
	retired, replaced := retiredAndReplaced(pl, "i-z1")
	assert.False(t, retired, "holds the zone minimum")
	if assert.True(t, replaced) {
		for _, r := range pl.Launches {
			for _, o := range r.Offerings {
				assert.Equal(t, "z1", o.Zone)
			}
		}
	}
}

func TestOnDemandOnItsWayIsNotTakenForASpotZoneMinimum(t *testing.T) {
	// The manager wants 2, both in z1, and 1 unit of long work on demand.
	// Once launched, two spot servers in z1 meet the minimum and an
	// on-demand one the work: while they boot, the next pass launches
	// nothing more (the zone's supply is spot; the on-demand one on its
	// way is the work's).
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	m := &want{name: "m", req: manager.Request{Target: 2, ZoneMinimums: map[string]int{"z1": 2},
		Work: []manager.Work{{Class: "long", Units: 1, Run: 10 * time.Hour}, {Class: "short", Units: 1, Run: 10 * time.Minute}}}}
	p := spotPool(t, b, pool.Spot, nil, m)
	ctx := context.Background()
	var insts []awsctl.Instance
	for _, inst := range []struct {
		zone string
		mk   awsctl.Market
	}{{"z1", awsctl.MarketSpot}, {"z1", awsctl.MarketSpot}, {"z2", awsctl.MarketOnDemand}} {
		insts = append(insts, awsctl.Instance{ID: fmt.Sprintf("i-%d", len(insts)), Type: "m5.large", Zone: inst.zone, Market: inst.mk,
			State: awsctl.StatePending, LaunchTime: t0.Add(-10 * time.Minute), Tags: map[string]string{pool.TagPool: "p"}})
	}
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Empty(t, pl.Launches)
}

func TestAZoneMinimumAndOnDemandWorkShareTheirServers(t *testing.T) {
	// The manager wants 2, both in z1, and 1 unit of long work on demand:
	// one on-demand server in z1 meets the minimum and the work, one spot
	// server the rest, rather than two spot servers in z1 and a third, on
	// demand, above the target.
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	m := &want{name: "m", req: manager.Request{Target: 2, ZoneMinimums: map[string]int{"z1": 2},
		Work: []manager.Work{{Class: "long", Units: 1, Run: 10 * time.Hour}, {Class: "short", Units: 1, Run: 10 * time.Minute}}}}
	pl := spotPool(t, b, pool.Spot, nil, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 1, awsctl.MarketSpot: 1}, byMarket(pl.Launches))
	for _, r := range pl.Launches {
		for _, o := range r.Offerings {
			assert.Equal(t, "z1", o.Zone, "%s launch", r.Market)
		}
	}
}

func TestAnOnDemandServerRestoredForWorkIsNotLaunchedAgain(t *testing.T) {
	// The manager's on-demand server winds down; its long work comes
	// back: the server is restored, and no other is launched for the work.
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	m := &want{name: "m", req: manager.Request{Target: 1, Work: []manager.Work{{Class: "long", Units: 1, Run: 10 * time.Hour}}}}
	od := odServer("i-od", "z1", "m")
	od.Tags[pool.TagWindDownStart] = t0.Add(-time.Minute).Format(time.RFC3339)
	od.Tags[pool.TagWindDownDeadline] = t0.Add(9 * time.Minute).Format(time.RFC3339)
	p := spotPool(t, b, pool.Spot, nil, m)
	ctx := context.Background()
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: []awsctl.Instance{od}})
	restored := false
	for _, e := range pl.Events {
		restored = restored || e.Kind == pool.EventRestore && e.Instance == "i-od"
	}
	assert.True(t, restored)
	assert.Empty(t, pl.Launches)
	// Nor in the next pass, while its Restore hook still runs.
	p.Commit(ctx, pl, pool.Outcome{})
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(30 * time.Second), Instances: []awsctl.Instance{od}})
	assert.Empty(t, pl.Launches, "being restored to its manager, it is the work's")
}
