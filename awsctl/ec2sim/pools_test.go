package ec2sim_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

func TestPendingIsFreeAndBootToReadyIsBilled(t *testing.T) {
	sim := newSim(t, ec2sim.Config{
		BootDelay:  ec2sim.Fixed(10 * time.Second),
		ReadyDelay: ec2sim.Fixed(30 * time.Second),
		TypeDelays: map[string]ec2sim.TypeDelays{"c5.large": {Pending: ec2sim.Fixed(5 * time.Second)}},
	})
	m5 := launch(t, sim, 1)[0]
	c5 := launch(t, sim, 1, c5b)[0]
	ready, ok := sim.ReadyAt(m5.ID)
	require.True(t, ok)
	assert.Equal(t, t0.Add(40*time.Second), ready, "10 s pending, then 30 s to ready")
	ready, _ = sim.ReadyAt(c5.ID)
	assert.Equal(t, t0.Add(35*time.Second), ready, "the type's pending delay, the general ready delay")
	_, ok = sim.ReadyAt("i-0000000000nothing")
	assert.False(t, ok)

	require.NoError(t, sim.Advance(9*time.Second))
	assert.Equal(t, awsctl.StatePending, state(t, sim, m5.ID))
	assert.Zero(t, sim.Bill().ByInstance[m5.ID], "pending is not billed")
	require.NoError(t, sim.Advance(time.Second))
	assert.Equal(t, awsctl.StateRunning, state(t, sim, m5.ID), "EC2 says running while the OS boots")

	require.NoError(t, sim.Advance(110*time.Second)) // 2 minutes after the launch
	_, err := sim.Terminate(bgCtx, []string{m5.ID, c5.ID})
	require.NoError(t, err)
	bill := sim.Bill()
	odM5, _ := ec2sim.BuiltinOnDemandPrice("m5.large")
	odC5, _ := ec2sim.BuiltinOnDemandPrice("c5.large")
	assert.InDelta(t, odM5*110/3600, bill.ByInstance[m5.ID], 1e-12, "billed from running, boot to ready included")
	assert.InDelta(t, odC5*115/3600, bill.ByInstance[c5.ID], 1e-12)
}

func TestReadyDelayLeavesASeedsPendingDelaysAlone(t *testing.T) {
	running := func(cfg ec2sim.Config) []time.Time {
		sim := newSim(t, cfg)
		var out []time.Time
		for _, inst := range launch(t, sim, 20) {
			ready, _ := sim.ReadyAt(inst.ID)
			require.False(t, ready.Before(inst.LaunchTime))
			require.NoError(t, sim.Advance(time.Minute))
			got, _ := sim.Instance(inst.ID)
			require.Equal(t, awsctl.StateRunning, got.State)
			out = append(out, ready)
		}
		return out
	}
	plain := running(ec2sim.Config{Seed: 4, BootDelay: ec2sim.LogNormal(15*time.Second, 0.3)})
	withReady := running(ec2sim.Config{Seed: 4, BootDelay: ec2sim.LogNormal(15*time.Second, 0.3), ReadyDelay: ec2sim.LogNormal(30*time.Second, 0.3)})
	for i := range plain {
		assert.Greater(t, withReady[i].Sub(plain[i]), 10*time.Second, "ready after a ready delay")
		assert.Less(t, withReady[i].Sub(plain[i]), 90*time.Second)
	}
}

func TestBootConfigValidation(t *testing.T) {
	for name, cfg := range map[string]ec2sim.Config{
		"ReadyDelay":        {ReadyDelay: ec2sim.Fixed(-time.Second)},
		"TypeDelays":        {TypeDelays: map[string]ec2sim.TypeDelays{"m5.large": {Ready: ec2sim.Uniform(time.Minute, time.Second)}}},
		"InterruptionShare": {InterruptionShare: 1.5},
	} {
		_, err := ec2sim.New(cfg)
		assert.ErrorIs(t, err, ec2sim.ErrInvalidConfig, name)
		assert.ErrorContains(t, err, name)
	}
	_, err := ec2sim.New(ec2sim.Config{InterruptionShare: math.NaN()})
	assert.ErrorContains(t, err, "InterruptionShare")
}

// With InterruptionShare, a pool's instances are interrupted together, and
// each instance still meets its type's monthly rate on average.
func TestCorrelatedInterruptionsHitAPoolAtOnce(t *testing.T) {
	const perPool, rate, share = 50, 0.9, 0.5
	types := []string{"m5.large", "c5.large", "m5.xlarge", "c5.xlarge", "r5.large", "m5a.large"}
	rates := map[string]float64{}
	for _, typ := range types {
		rates[typ] = rate
	}
	cfg := ec2sim.Config{Seed: 2, BootDelay: ec2sim.Fixed(0), RebalanceShare: -1, InterruptionShare: share, InterruptionRates: rates}
	run := func() (*ec2sim.Sim, []awsctl.SpotNotice) {
		sim := newSim(t, cfg)
		for _, typ := range types {
			for _, zone := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
				launchSpot(t, sim, perPool, awsctl.Offering{InstanceType: typ, Zone: zone, Weight: 1})
			}
		}
		launchSpot(t, sim, 50, awsctl.Offering{InstanceType: "t3.large", Zone: "us-east-1a", Weight: 1}) // no rate
		require.NoError(t, sim.Advance(30*24*time.Hour))
		notices, err := sim.SpotNotices(bgCtx)
		require.NoError(t, err)
		return sim, notices
	}
	sim, notices := run()
	require.NotEmpty(t, notices)
	type poolAt struct {
		typ, zone string
		at        time.Time
	}
	events := map[poolAt]int{}
	for _, nt := range notices {
		require.Equal(t, awsctl.Interruption, nt.Kind)
		inst, _ := sim.Instance(nt.InstanceID)
		require.NotEqual(t, "t3.large", inst.Type)
		events[poolAt{inst.Type, inst.Zone, nt.Time}]++
	}
	assert.Less(t, len(events), len(notices)/5, "notices come in pool events")
	// Each instance is interrupted within the month with probability rate:
	// 18 pools of 50 lose 90% on average (a pool's share left after its
	// events varies, by 0.15; the mean of 18 by 0.035).
	assert.InDelta(t, rate, float64(len(notices))/(18*perPool), 0.12, "share interrupted in 30 days")
	assert.Equal(t, len(notices), sim.Interruptions())

	_, replayed := run()
	assert.Equal(t, notices, replayed, "a seed repeats")
}

func TestCorrelatedEventsCanBeAnnouncedByRebalance(t *testing.T) {
	sim := newSim(t, ec2sim.Config{Seed: 5, BootDelay: ec2sim.Fixed(0), RebalanceShare: 1, InterruptionShare: 1,
		InterruptionRates: map[string]float64{"m5.large": 0.99}})
	insts := launchSpot(t, sim, 5, m5a)
	require.NoError(t, sim.Advance(30*24*time.Hour))
	notices, err := sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(notices), 2*len(insts))
	for i, nt := range notices[:len(insts)] {
		assert.Equal(t, awsctl.Rebalance, nt.Kind, "the whole pool is told first (%d)", i)
	}
	for _, nt := range notices[len(insts) : 2*len(insts)] {
		assert.Equal(t, awsctl.Interruption, nt.Kind, "then the whole pool is interrupted (share 1)")
		lead := nt.Time.Sub(notices[0].Time)
		assert.GreaterOrEqual(t, lead, 5*time.Minute)
		assert.LessOrEqual(t, lead, 30*time.Minute)
	}
	assert.Equal(t, len(insts), sim.Interruptions(), "the pool is empty after its first event")
}

func TestScheduleReclaimTakesRunningSpotWithNotice(t *testing.T) {
	sim := newSim(t, ec2sim.Config{Seed: 1, BootDelay: ec2sim.Fixed(30 * time.Second),
		SpotPrices: []awsctl.SpotPrice{price("m5.large", "us-east-1a", 0, 0.036), price("m5.large", "us-east-1b", 0, 0.036)}})
	all := launchSpot(t, sim, 40, m5a)
	other := launchSpot(t, sim, 10, m5b)
	require.NoError(t, sim.Advance(time.Minute))
	late := launchSpot(t, sim, 5, m5a) // still pending at the reclaim: spared
	owned := launchSpot(t, sim, 1, m5a)
	_, err := sim.Terminate(bgCtx, []string{owned[0].ID})
	require.NoError(t, err)
	at := sim.Now().Add(10 * time.Second)
	require.NoError(t, sim.ScheduleReclaim("m5.large", "us-east-1a", at, 0.5))
	sim.AddCapacityOutage(spot, "m5.large", "us-east-1a", at, at.Add(time.Hour))
	require.NoError(t, sim.Advance(10*time.Second))

	notices, err := sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	hit := map[string]bool{}
	for _, nt := range notices {
		assert.Equal(t, awsctl.Interruption, nt.Kind)
		assert.Equal(t, at, nt.Time)
		assert.Equal(t, at.Add(ec2sim.InterruptionNoticeLead), nt.Deadline, "the two-minute notice")
		hit[nt.InstanceID] = true
	}
	assert.Greater(t, len(hit), 10, "about half of 40")
	assert.Less(t, len(hit), 30)
	for _, inst := range append(append(other, late...), owned...) {
		assert.False(t, hit[inst.ID], "%s: another pool, pending or terminated", inst.ID)
	}
	require.NoError(t, sim.Advance(ec2sim.InterruptionNoticeLead))
	bill := sim.Bill()
	for _, inst := range all {
		got, _ := sim.Instance(inst.ID)
		assert.Equal(t, !hit[inst.ID], got.State == awsctl.StateRunning, inst.ID)
		if hit[inst.ID] {
			assert.Zero(t, bill.ByInstance[inst.ID], "reclaimed by EC2 in its first hour: free")
		}
	}
	assert.Equal(t, len(hit), sim.Interruptions())
	_, err = sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: spot, Capacity: 1, Tags: owner})
	assert.ErrorIs(t, err, awsctl.ErrInsufficientCapacity, "the outage refuses launches")

	assert.Error(t, sim.ScheduleReclaim("m5.large", "us-east-1a", at, 0))
	assert.Error(t, sim.ScheduleReclaim("m5.large", "us-east-1z", at, 1))
}
