package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

func spotServer(id, zone, mgr string) awsctl.Instance {
	inst := odServer(id, zone, mgr)
	inst.Market = awsctl.MarketSpot
	return inst
}

func windDowns(pl *pool.Plan) []string {
	var ids []string
	for _, e := range pl.Events {
		if e.Kind == pool.EventWindDown {
			ids = append(ids, e.Instance)
		}
	}
	return ids
}

// While spot cannot be bought, scale-down takes on-demand servers first,
// idle spot ones included, and keeps spot servers over target for
// SpotHold rather than shed what would be bought back on-demand.
func TestSpotShortageKeepsSpotAndShedsOnDemandFirst(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 4}}
	u := spotprice.NewUnavailable(time.Hour)
	for _, z := range []string{"z1", "z2", "z3"} {
		u.Mark(t0, "m5.large", z, awsctl.MarketSpot) // no spot capacity anywhere
	}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, b, pool.Spot, func(c *pool.Config) { c.Unavailable = u }, m)
	insts := []awsctl.Instance{
		spotServer("i-s1", "z1", "m"), spotServer("i-s2", "z2", "m"), spotServer("i-s3", "z3", "m"),
		odServer("i-o1", "z1", "m"),
	}
	m.req.Target, m.req.Idle = 1, []string{"i-s1", "i-s2", "i-s3"} // demand falls; the spot ones are idle
	ctx := context.Background()
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Equal(t, []string{"i-o1"}, windDowns(pl), "the on-demand server goes; the idle spot ones are kept")
	p.Commit(ctx, pl, pool.Outcome{})

	insts = insts[:3]
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(5 * time.Minute), Instances: insts})
	assert.Empty(t, windDowns(pl), "within SpotHold: spot kept over target")
	p.Commit(ctx, pl, pool.Outcome{})
	pl = p.Plan(ctx, pool.Snapshot{Now: t0.Add(pool.DefaultSpotHold + time.Second), Instances: insts})
	assert.Len(t, windDowns(pl), 2, "the hold is bounded: past SpotHold the surplus goes")
}

func TestWithSpotAvailableIdleServersGoFirst(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 4}}
	b := book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032})
	p := spotPool(t, b, pool.Spot, nil, m)
	insts := []awsctl.Instance{spotServer("i-s1", "z1", "m"), odServer("i-o1", "z1", "m")}
	m.req.Target, m.req.Idle = 1, []string{"i-s1"}
	pl := p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: insts})
	assert.Equal(t, []string{"i-s1"}, windDowns(pl), "spot can be bought back: the idle server goes, whatever its market")
}
