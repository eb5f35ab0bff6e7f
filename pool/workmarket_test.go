package pool_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// ratedBook is a price book that knows an hourly interruption rate (a
// spot pool under pressure: 0.3 an hour, far above any Advisor bucket).
type ratedBook struct {
	*spotprice.Book
	rate float64
}

func (b ratedBook) InterruptionRate(string, string, time.Time) (float64, bool) { return b.rate, true }

// mixedWork is a target of 6: two units of ten-hour jobs without
// checkpoints, four of ten-minute jobs.
func mixedWork() manager.Request {
	return manager.Request{Target: 6, Work: []manager.Work{
		{Class: "long", Units: 2, Run: 10 * time.Hour},
		{Class: "short", Units: 4, Run: 10 * time.Minute},
	}}
}

func TestWorkMarketsLongJobsOnDemandShortOnSpot(t *testing.T) {
	// Spot at 0.03 against on-demand at 0.096: at 0.3 interruptions an
	// hour, a ten-hour job restarted from scratch costs e^3-1 = 19 times
	// its run on spot; a ten-minute job 1.03 times.
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	m := &want{name: "m", req: mixedWork()}
	pl := spotPool(t, b, pool.Spot, nil, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 2, awsctl.MarketSpot: 4}, byMarket(pl.Launches))

	chosen := map[string]pool.Event{}
	for _, e := range pl.Events {
		if e.Kind == pool.EventWorkMarket {
			chosen[e.Inputs[0].Value.String()] = e
		}
	}
	require.Len(t, chosen, 2)
	long, short := chosen["long"], chosen["short"]
	assert.Equal(t, awsctl.MarketOnDemand, long.Market)
	assert.Equal(t, 2, long.Capacity)
	assert.Equal(t, awsctl.MarketSpot, short.Market)
	figures := map[string]any{}
	for _, a := range long.Inputs {
		figures[a.Key] = a.Value.Any()
	}
	assert.InDelta(t, 0.030, figures["spot"], 1e-9)
	assert.InDelta(t, 0.096, figures["on_demand"], 1e-9)
	assert.Greater(t, figures["interruption"].(float64), 0.096-0.030)
	assert.Contains(t, long.Reason, "> on-demand $0.0960")
	assert.Contains(t, short.Reason, "<= on-demand")

	// The same pool at the Advisor's rate for m5.large: spot for both.
	m = &want{name: "m", req: mixedWork()}
	pl = spotPool(t, b.Book, pool.Spot, nil, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 6}, byMarket(pl.Launches))

	// Checkpoints every ten minutes make the long jobs cheap on spot.
	m = &want{name: "m", req: mixedWork()}
	m.req.Work[0].Checkpoint = 10 * time.Minute
	pl = spotPool(t, b, pool.Spot, nil, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 6}, byMarket(pl.Launches))

	// Without Work, the pool buys as before.
	m = &want{name: "m", req: manager.Request{Target: 6}}
	pl = spotPool(t, b, pool.Spot, nil, m).Plan(context.Background(), pool.Snapshot{Now: t0})
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 6}, byMarket(pl.Launches))
}

func TestWorkMarketsKeptAcrossRestart(t *testing.T) {
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	// What a pool that chose as above holds an hour later: two on-demand
	// servers, four spot.
	var held []awsctl.Instance
	for i := range 6 {
		s := odServer(fmt.Sprintf("i-%d", i), []string{"z1", "z2", "z3"}[i%3], "m")
		if i >= 2 {
			s.Market = awsctl.MarketSpot
		}
		held = append(held, s)
	}
	replacements := func(pl *pool.Plan) int {
		n := 0
		for _, r := range pl.Launches {
			if r.Tags[pool.TagReplaces] != "" {
				n++
			}
		}
		return n
	}
	ctx := context.Background()
	m := &want{name: "m", req: mixedWork()}
	restarted := spotPool(t, b, pool.Spot, nil, m)
	pl := restarted.Plan(ctx, pool.Snapshot{Now: t0, Instances: held})
	assert.Empty(t, pl.Launches, "a restarted scaler launches nothing and swaps nothing: the on-demand servers run the long work")
	pl = restarted.Plan(ctx, pool.Snapshot{Now: t0.Add(time.Minute), Instances: held})
	assert.Empty(t, pl.Launches)

	// Without Work, the on-demand servers are swapped for spot, since
	// that pays.
	plain := &want{name: "m", req: manager.Request{Target: 6}}
	plainPool := spotPool(t, b, pool.Spot, nil, plain)
	pastStart(t, plainPool, held...)
	pl = plainPool.Plan(ctx, pool.Snapshot{Now: t0, Instances: held})
	assert.Positive(t, replacements(pl), "one at a time, within the disruption budget")

	// Once the long work is done, they are kept for WorkKeep, then may go
	// to spot as well.
	m.req = manager.Request{Target: 6, Work: []manager.Work{{Class: "short", Units: 6, Run: 10 * time.Minute}}}
	pl = restarted.Plan(ctx, pool.Snapshot{Now: t0.Add(2 * time.Minute), Instances: held})
	assert.Zero(t, replacements(pl), "kept for the next long job")
	pl = restarted.Plan(ctx, pool.Snapshot{Now: t0.Add(2*time.Minute + pool.DefaultWorkKeep), Instances: held})
	assert.Positive(t, replacements(pl), "one at a time, within the disruption budget")
}

// heldMixed is what a pool that chose as mixedWork asks holds: two
// on-demand servers (the long work), four spot.
func heldMixed() []awsctl.Instance {
	var held []awsctl.Instance
	for i := range 6 {
		s := odServer(fmt.Sprintf("i-%d", i), []string{"z1", "z2", "z3"}[i%3], "m")
		if i >= 2 {
			s.Market = awsctl.MarketSpot
		}
		held = append(held, s)
	}
	return held
}

// odSwapsAndGoes counts the on-demand servers a plan swaps for spot or
// winds down.
func odSwapsAndGoes(pl *pool.Plan) (swapped, wound int) {
	for _, r := range pl.Launches {
		if r.Tags[pool.TagReplaces] != "" {
			swapped++
		}
	}
	for _, c := range pl.Changes {
		if c.Instance.Market == awsctl.MarketOnDemand && c.Set[pool.TagWindDownStart] != "" {
			wound++
		}
	}
	return swapped, wound
}

func TestWorkMarketsKeepOnDemandForTheNextLongJob(t *testing.T) {
	b := ratedBook{book(t, map[string]float64{"z1": 0.030, "z2": 0.031, "z3": 0.032}), 0.3}
	ctx := context.Background()
	held := heldMixed()
	shortOnly := manager.Request{Target: 6, Work: []manager.Work{{Class: "short", Units: 6, Run: 10 * time.Minute}}}
	ended := t0.Add(5 * time.Minute)

	// The long work runs, then ends: its on-demand servers stay WorkKeep,
	// neither swapped for spot nor wound down when the target falls.
	m := &want{name: "m", req: mixedWork()}
	p := spotPool(t, b, pool.Spot, nil, m)
	for at := t0; at.Before(ended); at = at.Add(time.Minute) {
		p.Plan(ctx, pool.Snapshot{Now: at, Instances: held})
	}
	m.req = shortOnly
	swapped, wound := odSwapsAndGoes(p.Plan(ctx, pool.Snapshot{Now: ended, Instances: held}))
	assert.Zero(t, swapped+wound, "kept for the next long job")
	m.req = manager.Request{Target: 2} // the queue empties: no Work at all
	swapped, wound = odSwapsAndGoes(p.Plan(ctx, pool.Snapshot{Now: ended.Add(pool.DefaultWorkKeep / 2), Instances: held}))
	assert.Zero(t, swapped+wound, "the spot servers go first")
	swapped, wound = odSwapsAndGoes(p.Plan(ctx, pool.Snapshot{Now: ended.Add(pool.DefaultWorkKeep), Instances: held}))
	assert.Positive(t, swapped+wound, "past WorkKeep the on-demand servers may go")

	// A scaler restarted just after the work ended keeps them alike: the
	// on-demand capacity held stands for what the work wanted.
	m.req = shortOnly
	p = spotPool(t, b, pool.Spot, nil, m)
	swapped, wound = odSwapsAndGoes(p.Plan(ctx, pool.Snapshot{Now: ended, Instances: held}))
	assert.Zero(t, swapped+wound, "a restarted scaler keeps them too")
	swapped, wound = odSwapsAndGoes(p.Plan(ctx, pool.Snapshot{Now: ended.Add(pool.DefaultWorkKeep), Instances: held}))
	assert.Positive(t, swapped+wound)

	// A negative WorkKeep swaps them as soon as the work ends.
	m.req = mixedWork()
	p = spotPool(t, b, pool.Spot, func(c *pool.Config) { c.WorkKeep = -1 }, m)
	p.Plan(ctx, pool.Snapshot{Now: t0, Instances: held})
	m.req = shortOnly
	swapped, wound = odSwapsAndGoes(p.Plan(ctx, pool.Snapshot{Now: ended, Instances: held}))
	assert.Positive(t, swapped+wound)
}
