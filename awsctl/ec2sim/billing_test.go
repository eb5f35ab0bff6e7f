package ec2sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

func TestBillPerSecondWithMinimum(t *testing.T) {
	const r5Price = 0.126
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(40 * time.Second)})
	one := func(market awsctl.Market, typ string) string {
		insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Market: market, Capacity: 1, Tags: owner,
			Offerings: []awsctl.Offering{{InstanceType: typ, Zone: "us-east-1a", Weight: 1}}})
		require.NoError(t, err)
		return insts[0].ID
	}
	terminate := func(id string) {
		_, err := sim.Terminate(bgCtx, []string{id})
		require.NoError(t, err)
	}
	hour := one(awsctl.MarketOnDemand, "m5.large")         // runs exactly an hour
	brief := one(awsctl.MarketSpot, "m5.large")            // runs 10 s, billed the 60 s minimum
	neverRan := one(awsctl.MarketOnDemand, "c5.large")     // terminated while pending
	stillRunning := one(awsctl.MarketOnDemand, "r5.large") // $0.126 an hour

	require.NoError(t, sim.Advance(10*time.Second))
	terminate(neverRan)
	require.NoError(t, sim.Advance(40*time.Second)) // t = 50 s: everything else has run 10 s
	terminate(brief)
	require.NoError(t, sim.Advance(3590*time.Second)) // t = 3640 s
	terminate(hour)
	require.NoError(t, sim.Advance(500*time.Millisecond)) // stillRunning has run 3600.5 s: 3601 s billed

	bill := sim.Bill()
	want := map[string]float64{
		hour:         0.096,
		brief:        0.096 * 60 / 3600,
		neverRan:     0,
		stillRunning: r5Price * 3601 / 3600,
	}
	require.Len(t, bill.ByInstance, len(want))
	for id, cost := range want {
		assert.InDelta(t, cost, bill.ByInstance[id], 1e-12, id)
	}
	assert.InDelta(t, 0.096*60/3600, bill.ByMarket[awsctl.MarketSpot], 1e-12)
	assert.InDelta(t, 0.096+r5Price*3601/3600, bill.ByMarket[awsctl.MarketOnDemand], 1e-12)
	assert.InDelta(t, 0.096+0.096*60/3600+r5Price*3601/3600, bill.Total, 1e-12)

	// Terminated instances stop costing; the running one keeps going.
	require.NoError(t, sim.Advance(time.Hour))
	later := sim.Bill()
	assert.Equal(t, bill.ByInstance[hour], later.ByInstance[hour])
	assert.InDelta(t, r5Price*(3601+3600)/3600, later.ByInstance[stillRunning], 1e-12)
}

func TestBillMinimumAppliesFromFirstSecond(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), OnDemandPrices: map[string]float64{"m5.large": 0.36}})
	id := launch(t, sim, 1)[0].ID
	assert.InDelta(t, 0.36*60/3600, sim.Bill().ByInstance[id], 1e-12, "a running instance owes the minimum at once")
	require.NoError(t, sim.Advance(61*time.Second))
	assert.InDelta(t, 0.36*61/3600, sim.Bill().ByInstance[id], 1e-12, "Config.OnDemandPrices overrides the built-in price")
}

func TestBuiltinPrices(t *testing.T) {
	p, ok := ec2sim.BuiltinOnDemandPrice("c5.xlarge")
	assert.True(t, ok)
	assert.Equal(t, 0.17, p)
	_, ok = ec2sim.BuiltinOnDemandPrice("x9.mega")
	assert.False(t, ok)
}
