package ec2sim_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

var (
	t0   = ec2sim.DefaultStart
	spot = awsctl.MarketSpot
	c5a  = awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1}
)

func price(typ, zone string, at time.Duration, perHour float64) awsctl.SpotPrice {
	return awsctl.SpotPrice{InstanceType: typ, Zone: zone, PricePerHour: perHour, Time: t0.Add(at)}
}

// launchSpot launches n spot instances and requires them all.
func launchSpot(t testing.TB, sim *ec2sim.Sim, n int, offs ...awsctl.Offering) []awsctl.Instance {
	t.Helper()
	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: offs, Market: spot, Capacity: n, Tags: owner})
	require.NoError(t, err)
	require.Len(t, insts, n)
	return insts
}

// launchErrors returns the *awsctl.LaunchError values joined in err.
func launchErrors(t testing.TB, err error) []*awsctl.LaunchError {
	t.Helper()
	var out []*awsctl.LaunchError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *awsctl.LaunchError
		require.ErrorAs(t, e, &le)
		out = append(out, le)
	}
	return out
}

func apiCode(err error) string {
	var ae *awsctl.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestSpotPricesReplayTheHistory(t *testing.T) {
	sim := newSim(t, ec2sim.Config{SpotPrices: []awsctl.SpotPrice{
		price("m5.large", "us-east-1a", 90*time.Minute, 0.035), // out of order on purpose
		price("m5.large", "us-east-1a", -time.Hour, 0.040),
		price("m5.large", "us-east-1a", 30*time.Minute, 0.050),
		price("m5.large", "us-east-1b", time.Hour, 0.045),
		price("c5.large", "us-east-1a", -2*time.Hour, 0.030),
		price("c5.large", "us-east-1d", -2*time.Hour, 0.020), // a zone the sim lacks
	}})
	assert.NotContains(t, sim.Calls(), ec2sim.OpSpotPrices, "not reported before the first call")
	at := func(types ...string) []awsctl.SpotPrice {
		t.Helper()
		prices, err := sim.SpotPrices(bgCtx, types)
		require.NoError(t, err)
		return prices
	}
	want := func(typ, zone string, at time.Duration, perHour float64) awsctl.SpotPrice {
		return price(typ, zone, at, perHour)
	}

	assert.Equal(t, []awsctl.SpotPrice{
		want("c5.large", "us-east-1a", -2*time.Hour, 0.030),
		want("m5.large", "us-east-1a", -time.Hour, 0.040),
	}, at("m5.large", "c5.large", "m5.large"), "no price in 1b before its first record")

	require.NoError(t, sim.Advance(30*time.Minute))
	assert.Equal(t, []awsctl.SpotPrice{want("m5.large", "us-east-1a", 30*time.Minute, 0.050)}, at("m5.large"),
		"a record is in effect from its own time")

	require.NoError(t, sim.Advance(59*time.Minute+59*time.Second))
	assert.Equal(t, []awsctl.SpotPrice{
		want("m5.large", "us-east-1a", 30*time.Minute, 0.050),
		want("m5.large", "us-east-1b", time.Hour, 0.045),
	}, at("m5.large"), "one second before the next change")

	require.NoError(t, sim.Advance(time.Second))
	assert.Equal(t, []awsctl.SpotPrice{
		want("c5.large", "us-east-1a", -2*time.Hour, 0.030),
		want("m5.large", "us-east-1a", 90*time.Minute, 0.035),
		want("m5.large", "us-east-1b", time.Hour, 0.045),
	}, at(), "no types means every type")
	assert.Empty(t, at("r5.large"))
	assert.Equal(t, 5, sim.Calls()[ec2sim.OpSpotPrices])

	sim.FailNext(ec2sim.OpSpotPrices, ec2sim.Throttled(ec2sim.OpSpotPrices))
	_, err := sim.SpotPrices(bgCtx, nil)
	assert.ErrorIs(t, err, awsctl.ErrThrottled)
}

func TestSpotLaunchNeedsAKnownPrice(t *testing.T) {
	sim := newSim(t, ec2sim.Config{SpotPrices: []awsctl.SpotPrice{
		price("m5.large", "us-east-1a", 0, 0.04),
		price("m5.large", "us-east-1b", time.Hour, 0.04),
	}})
	insts := launchSpot(t, sim, 2, m5b, m5a)
	for _, inst := range insts {
		assert.Equal(t, "us-east-1a", inst.Zone, "1b has no spot price yet")
	}

	for _, off := range []awsctl.Offering{m5b, c5b} {
		insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{off}, Market: spot, Capacity: 1})
		assert.Empty(t, insts)
		require.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
		les := launchErrors(t, err)
		require.Len(t, les, 1)
		assert.Equal(t, off, les[0].Offering)
		assert.Equal(t, "InsufficientInstanceCapacity", apiCode(err))
	}
	launch(t, sim, 1, m5b) // on-demand needs no spot price

	require.NoError(t, sim.Advance(time.Hour))
	launchSpot(t, sim, 1, m5b)
}

func TestSpotMaxPriceTooLow(t *testing.T) {
	sim := newSim(t, ec2sim.Config{
		SpotPrices: []awsctl.SpotPrice{
			price("m5.large", "us-east-1a", 0, 0.05),
			price("m5.large", "us-east-1b", 0, 0.03),
			price("c5.large", "us-east-1a", 0, 0.05),
		},
		OnDemandPrices: map[string]float64{"c5.large": 0.045},
	})
	req := func(maxPrice float64, offs ...awsctl.Offering) awsctl.LaunchRequest {
		return awsctl.LaunchRequest{Spec: spec, Offerings: offs, Market: spot, Capacity: 2, MaxPrice: maxPrice}
	}

	insts, err := sim.Launch(bgCtx, req(0.04, m5a, m5b))
	require.NoError(t, err, "the cheaper zone fills the request")
	require.Len(t, insts, 2)
	assert.Equal(t, "us-east-1b", insts[0].Zone)

	insts, err = sim.Launch(bgCtx, req(0.04, m5a))
	assert.Empty(t, insts)
	require.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	assert.Equal(t, "SpotMaxPriceTooLow", apiCode(err))
	assert.Equal(t, m5a, launchErrors(t, err)[0].Offering)

	insts, err = sim.Launch(bgCtx, req(0.05, m5a))
	require.NoError(t, err, "a maximum equal to the price is enough")
	assert.Len(t, insts, 2)

	// Without a maximum, EC2 caps at the on-demand price.
	_, err = sim.Launch(bgCtx, req(0, c5a))
	assert.Equal(t, "SpotMaxPriceTooLow", apiCode(err))
	_, err = sim.Launch(bgCtx, req(0, m5a))
	assert.NoError(t, err, "m5.large on-demand is 0.096")
}

func TestSpotBillingIntegratesPriceChanges(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), SpotPrices: []awsctl.SpotPrice{
		price("m5.large", "us-east-1a", 0, 0.030),
		price("m5.large", "us-east-1a", 30*time.Minute, 0.060),
		price("m5.large", "us-east-1a", 90*time.Minute, 0.045),
	}})
	require.NoError(t, sim.Advance(10*time.Minute))
	both := launchSpot(t, sim, 2, m5a)
	onDemand := launch(t, sim, 1, m5a)[0]

	require.NoError(t, sim.Advance(79*time.Minute+30*time.Second)) // 89m30s
	brief := launchSpot(t, sim, 1, m5a)[0]
	require.NoError(t, sim.Advance(40*time.Second)) // 90m10s: brief ran 40 s across a change
	_, err := sim.Terminate(bgCtx, []string{brief.ID})
	require.NoError(t, err)

	require.NoError(t, sim.Advance(29*time.Minute+50*time.Second)) // 120m
	_, err = sim.Terminate(bgCtx, []string{both[0].ID})
	require.NoError(t, err)

	// 20 min at 0.03, 60 at 0.06 and 30 at 0.045.
	const twoChanges = 0.01 + 0.06 + 0.0225
	// 30 s at 0.06, 10 s at 0.045, and the 20 s up to the minute at the
	// last price.
	const briefCost = (30*0.06 + 10*0.045 + 20*0.045) / 3600
	bill := sim.Bill()
	assert.InDelta(t, twoChanges, bill.ByInstance[both[0].ID], 1e-12)
	assert.InDelta(t, twoChanges, bill.ByInstance[both[1].ID], 1e-12, "still running: billed up to now")
	assert.InDelta(t, briefCost, bill.ByInstance[brief.ID], 1e-12)
	assert.InDelta(t, 0.096*110/60, bill.ByInstance[onDemand.ID], 1e-12, "on-demand keeps its price")
	assert.InDelta(t, 2*twoChanges+briefCost, bill.ByMarket[spot], 1e-12)
	assert.InDelta(t, 2*twoChanges+briefCost+0.096*110/60, bill.Total, 1e-12)

	require.NoError(t, sim.Advance(time.Hour))
	later := sim.Bill()
	assert.Equal(t, bill.ByInstance[both[0].ID], later.ByInstance[both[0].ID], "terminated: no more charges")
	assert.InDelta(t, twoChanges+0.045, later.ByInstance[both[1].ID], 1e-12)
}

func TestSpotInterruptedByEC2InFirstHourIsFree(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), SpotPrices: []awsctl.SpotPrice{price("m5.large", "us-east-1a", 0, 0.036)}})
	insts := launchSpot(t, sim, 4, m5a)
	early, owned, edge, late := insts[0].ID, insts[1].ID, insts[2].ID, insts[3].ID
	advanceTo := func(d time.Duration) { require.NoError(t, sim.Advance(t0.Add(d).Sub(sim.Now()))) }

	advanceTo(30 * time.Minute)
	require.NoError(t, sim.Interrupt(early)) // reclaimed at 32 min
	_, err := sim.Terminate(bgCtx, []string{owned})
	require.NoError(t, err)
	advanceTo(31 * time.Minute)
	assert.InDelta(t, 0.036*31/60, sim.Bill().ByInstance[early], 1e-12, "billed as usual until EC2 reclaims it")
	advanceTo(58 * time.Minute)
	require.NoError(t, sim.Interrupt(edge)) // reclaimed after exactly an hour
	advanceTo(70 * time.Minute)
	require.NoError(t, sim.Interrupt(late)) // reclaimed at 72 min
	advanceTo(3 * time.Hour)

	bill := sim.Bill()
	assert.Zero(t, bill.ByInstance[early], "interrupted by EC2 within the first hour")
	assert.InDelta(t, 0.036*30/60, bill.ByInstance[owned], 1e-12, "terminated by its owner: charged")
	assert.InDelta(t, 0.036, bill.ByInstance[edge], 1e-12, "a full hour is not within the first hour")
	assert.InDelta(t, 0.036*72/60, bill.ByInstance[late], 1e-12, "interrupted after an hour: every second charged")
	assert.InDelta(t, 0.036*(30+60+72)/60, bill.ByMarket[spot], 1e-12)
	assert.Equal(t, 3, sim.Interruptions())
}

func TestInterruptionNoticeComesTwoMinutesBeforeTermination(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), ShutdownDelay: ec2sim.Fixed(20 * time.Second)})
	inst := launchSpot(t, sim, 1, m5a)[0]
	require.NoError(t, sim.Advance(10*time.Minute))
	require.NoError(t, sim.Interrupt(inst.ID))
	noticeAt := sim.Now()

	notices, err := sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	assert.Equal(t, []awsctl.SpotNotice{{InstanceID: inst.ID, Kind: awsctl.Interruption, Time: noticeAt,
		Deadline: noticeAt.Add(2 * time.Minute), Action: "terminate"}}, notices)

	require.NoError(t, sim.Advance(2*time.Minute-time.Second))
	assert.Equal(t, awsctl.StateRunning, state(t, sim, inst.ID))
	require.NoError(t, sim.Advance(time.Second))
	assert.Equal(t, awsctl.StateShuttingDown, state(t, sim, inst.ID))
	listed, err := sim.ListInstances(bgCtx, awsctl.ListFilter{Tags: owner})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Equal(t, awsctl.StateShuttingDown, listed[0].State)
	require.NoError(t, sim.Advance(20*time.Second))
	assert.Equal(t, awsctl.StateTerminated, state(t, sim, inst.ID))
	assert.Zero(t, sim.Bill().ByInstance[inst.ID], "12 minutes, reclaimed by EC2")
	notices, err = sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	assert.Empty(t, notices, "a notice is returned once")
}

func TestInterruptErrors(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	spotInst := launchSpot(t, sim, 1, m5a)[0]
	gone := launchSpot(t, sim, 1, m5a)[0]
	_, err := sim.Terminate(bgCtx, []string{gone.ID})
	require.NoError(t, err)

	assert.ErrorIs(t, sim.Interrupt("i-0000000000000000f"), awsctl.ErrNotFound)
	assert.ErrorIs(t, sim.Interrupt(launch(t, sim, 1)[0].ID), awsctl.ErrInvalidRequest, "on-demand")
	assert.ErrorIs(t, sim.Interrupt(gone.ID), awsctl.ErrInvalidRequest, "shutting down")

	require.NoError(t, sim.Interrupt(spotInst.ID))
	require.NoError(t, sim.Advance(time.Minute))
	require.NoError(t, sim.Interrupt(spotInst.ID), "a second call keeps the first notice")
	notices, err := sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	require.Len(t, notices, 1)
	require.NoError(t, sim.Advance(time.Minute))
	assert.Equal(t, awsctl.StateShuttingDown, state(t, sim, spotInst.ID), "the first deadline holds")
	assert.Equal(t, 1, sim.Interruptions())
}

func TestOwnerTerminationPreemptsInterruption(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), InterruptionRates: map[string]float64{"m5.large": 0.99}, RebalanceShare: -1, Seed: 3})
	insts := launchSpot(t, sim, 100, m5a)
	_, err := sim.Terminate(bgCtx, ids(insts[:99]))
	require.NoError(t, err)

	// The last one gets its notice and is terminated by its owner before the
	// deadline: charged like any owner termination.
	last := insts[99].ID
	require.NoError(t, sim.Interrupt(last))
	require.NoError(t, sim.Advance(time.Minute))
	_, err = sim.Terminate(bgCtx, []string{last})
	require.NoError(t, err)

	require.NoError(t, sim.Advance(365*24*time.Hour))
	notices, err := sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	assert.Len(t, notices, 1, "terminated instances get no notices")
	assert.Equal(t, 1, sim.Interruptions())
	assert.InDelta(t, 0.096/60, sim.Bill().ByInstance[last], 1e-12)
}

// The monthly rate sets an exponential time to interruption: with rate p,
// a share 1-(1-p)^(1/30) of instances is interrupted within a day.
func TestInterruptionRateStatistics(t *testing.T) {
	const n, rate = 2000, 0.9
	sim := newSim(t, ec2sim.Config{Seed: 1, RebalanceShare: -1, InterruptionRates: map[string]float64{"m5.large": rate}})
	launchSpot(t, sim, n, m5a, m5b)
	launchSpot(t, sim, 100, c5a) // no rate: never interrupted
	require.NoError(t, sim.Advance(24*time.Hour))

	perDay := 1 - math.Pow(1-rate, 1.0/30)
	mean, sigma := n*perDay, math.Sqrt(n*perDay*(1-perDay))
	got := sim.Interruptions()
	assert.InDelta(t, mean, float64(got), 3*sigma, "expected %.1f ± %.1f", mean, sigma)
	assert.Equal(t, 139, got, "seed 1 always gives the same draws")

	notices, err := sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	assert.Len(t, notices, got)
	for i, nt := range notices {
		assert.Equal(t, awsctl.Interruption, nt.Kind, "RebalanceShare < 0: no recommendations")
		inst, _ := sim.Instance(nt.InstanceID)
		assert.Equal(t, "m5.large", inst.Type)
		if i > 0 {
			assert.False(t, nt.Time.Before(notices[i-1].Time), "notices in time order")
		}
		if !nt.Deadline.After(sim.Now()) {
			assert.False(t, inst.State.Live(), "reclaimed at the deadline")
		}
	}

	again := newSim(t, ec2sim.Config{Seed: 1, RebalanceShare: -1, InterruptionRates: map[string]float64{"m5.large": rate}})
	launchSpot(t, again, n, m5a, m5b)
	launchSpot(t, again, 100, c5a)
	require.NoError(t, again.Advance(24*time.Hour))
	replayed, err := again.SpotNotices(bgCtx)
	require.NoError(t, err)
	assert.Equal(t, notices, replayed)
}

// Interruptions drawn at launch happen at their exact times, whenever the
// clock is read: a second sim with the same seed is stopped just before
// and at each deadline of the first.
func TestSampledInterruptionsHappenAtTheirDeadline(t *testing.T) {
	cfg := ec2sim.Config{Seed: 5, BootDelay: ec2sim.Fixed(0), InterruptionRates: map[string]float64{"m5.large": 0.5}}
	first := newSim(t, cfg)
	launchSpot(t, first, 50, m5a)
	require.NoError(t, first.Advance(30*24*time.Hour))
	notices, err := first.SpotNotices(bgCtx)
	require.NoError(t, err)
	var interruptions []awsctl.SpotNotice
	for _, nt := range notices {
		if nt.Kind == awsctl.Interruption {
			interruptions = append(interruptions, nt)
		}
	}
	require.NotEmpty(t, interruptions)

	now := t0
	cfg.Clock = func() time.Time { return now }
	second := newSim(t, cfg)
	launchSpot(t, second, 50, m5a)
	for _, nt := range interruptions {
		now = nt.Deadline.Add(-time.Nanosecond)
		assert.Equal(t, awsctl.StateRunning, state(t, second, nt.InstanceID))
		now = nt.Deadline
		assert.Equal(t, awsctl.StateShuttingDown, state(t, second, nt.InstanceID))
	}
	again, err := second.SpotNotices(bgCtx)
	require.NoError(t, err)
	assert.Equal(t, notices[:len(again)], again)
}

func TestRebalanceRecommendationPrecedesNotice(t *testing.T) {
	for _, c := range []struct {
		share float64
		want  func(t *testing.T, rebalanced, interrupted int)
	}{
		{1, func(t *testing.T, rebalanced, interrupted int) { assert.Equal(t, interrupted, rebalanced) }},
		{-1, func(t *testing.T, rebalanced, _ int) { assert.Zero(t, rebalanced) }},
		{0, func(t *testing.T, rebalanced, interrupted int) { // the default, one half
			sigma := math.Sqrt(float64(interrupted) * 0.25)
			assert.InDelta(t, float64(interrupted)/2, float64(rebalanced), 3*sigma)
		}},
	} {
		sim := newSim(t, ec2sim.Config{Seed: 2, RebalanceShare: c.share, InterruptionRates: map[string]float64{"m5.large": 0.95}})
		insts := launchSpot(t, sim, 400, m5a)
		require.NoError(t, sim.Advance(10*24*time.Hour))
		notices, err := sim.SpotNotices(bgCtx)
		require.NoError(t, err)

		rebalanceAt := map[string]time.Time{}
		interrupted := 0
		for _, nt := range notices {
			switch nt.Kind {
			case awsctl.Rebalance:
				assert.NotContains(t, rebalanceAt, nt.InstanceID, "one recommendation per instance")
				assert.Zero(t, nt.Deadline)
				rebalanceAt[nt.InstanceID] = nt.Time
			case awsctl.Interruption:
				interrupted++
				at, ok := rebalanceAt[nt.InstanceID]
				if !ok {
					continue
				}
				lead := nt.Time.Sub(at)
				if at.Equal(insts[0].LaunchTime) && lead < 30*time.Minute {
					continue // notice too soon after launch: recommended at launch
				}
				assert.GreaterOrEqual(t, lead, 5*time.Minute)
				assert.LessOrEqual(t, lead, 30*time.Minute)
			}
		}
		require.Greater(t, interrupted, 50)
		c.want(t, len(rebalanceAt), interrupted)
	}
}

func TestSpotNoticesFollowAnExternalClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(t, ec2sim.Config{Clock: time.Now, Seed: 4, RebalanceShare: 1,
			InterruptionRates: map[string]float64{"m5.large": 0.5}})
		insts := launchSpot(t, sim, 20, m5a)
		forced := insts[0].ID
		require.NoError(t, sim.Interrupt(forced))
		time.Sleep(2 * time.Minute)
		assert.Equal(t, awsctl.StateShuttingDown, state(t, sim, forced))

		var all []awsctl.SpotNotice
		for range 30 {
			time.Sleep(24 * time.Hour)
			notices, err := sim.SpotNotices(bgCtx)
			require.NoError(t, err)
			for _, nt := range notices {
				assert.False(t, nt.Time.After(time.Now()), "nothing from the future")
			}
			all = append(all, notices...)
		}
		interrupted := map[string]bool{}
		for _, nt := range all {
			if nt.Kind == awsctl.Interruption {
				assert.False(t, interrupted[nt.InstanceID], "each notice once")
				interrupted[nt.InstanceID] = true
			}
		}
		assert.True(t, interrupted[forced])
		assert.Equal(t, len(interrupted), sim.Interruptions())
		assert.Greater(t, len(interrupted), 3, "a 50 percent monthly rate interrupts some of 20 in a month")
	})
}

func TestCapacityOutageWindow(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	sim.AddCapacityOutage(onDmd, "m5.large", "us-east-1a", t0.Add(10*time.Minute), t0.Add(20*time.Minute))
	sim.AddCapacityOutage(onDmd, "m5.large", "us-east-1b", t0.Add(time.Hour), t0) // inverted: ignored
	sim.SetCapacity(onDmd, "m5.large", "us-east-1b", 2)
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, m5b}, Market: onDmd, Capacity: 3, Tags: owner}

	insts, err := sim.Launch(bgCtx, req)
	require.NoError(t, err, "before the window")
	assert.Len(t, insts, 3)

	require.NoError(t, sim.Advance(10*time.Minute))
	insts, err = sim.Launch(bgCtx, req)
	require.Len(t, insts, 2, "the other offering still fills, up to its capacity")
	for _, inst := range insts {
		assert.Equal(t, "us-east-1b", inst.Zone)
	}
	require.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	les := launchErrors(t, err)
	require.Len(t, les, 2)
	assert.Equal(t, m5a, les[0].Offering)
	assert.Equal(t, "InsufficientInstanceCapacity", apiCode(les[0]))
	assert.Contains(t, les[0].Error(), "outage")
	assert.Equal(t, m5b, les[1].Offering)

	spotInst := launchSpot(t, sim, 1, m5a)
	assert.Len(t, spotInst, 1, "the outage is of one market")

	require.NoError(t, sim.Advance(10*time.Minute-time.Second))
	_, err = sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 1})
	assert.ErrorIs(t, err, awsctl.ErrInsufficientCapacity, "one second before the end")
	require.NoError(t, sim.Advance(time.Second))
	launch(t, sim, 1, m5a)
}

func TestSpotConfigValidation(t *testing.T) {
	ok := price("m5.large", "us-east-1a", 0, 0.04)
	with := func(change func(*awsctl.SpotPrice)) []awsctl.SpotPrice {
		p := ok
		change(&p)
		return []awsctl.SpotPrice{ok, p}
	}
	cases := []struct {
		field string
		cfg   ec2sim.Config
	}{
		{"SpotPrices[1]", ec2sim.Config{SpotPrices: with(func(p *awsctl.SpotPrice) { p.InstanceType = "" })}},
		{"SpotPrices[1]", ec2sim.Config{SpotPrices: with(func(p *awsctl.SpotPrice) { p.Zone = "eu-west-1a" })}},
		{"SpotPrices[1]", ec2sim.Config{SpotPrices: with(func(p *awsctl.SpotPrice) { p.PricePerHour = 0 })}},
		{"SpotPrices[1]", ec2sim.Config{SpotPrices: with(func(p *awsctl.SpotPrice) { p.PricePerHour = math.NaN() })}},
		{"SpotPrices[1]", ec2sim.Config{SpotPrices: with(func(p *awsctl.SpotPrice) { p.Time = time.Time{} })}},
		{"InterruptionRates", ec2sim.Config{InterruptionRates: map[string]float64{"m5.large": 1}}},
		{"InterruptionRates", ec2sim.Config{InterruptionRates: map[string]float64{"m5.large": -0.1}}},
		{"InterruptionRates", ec2sim.Config{InterruptionRates: map[string]float64{"": 0.1}}},
		{"RebalanceShare", ec2sim.Config{RebalanceShare: 1.5}},
		{"RebalanceShare", ec2sim.Config{RebalanceShare: math.NaN()}},
		{"Reservations[0]", ec2sim.Config{Reservations: []awsctl.Reservation{{Zone: "us-east-1a", Count: 1}}}},
		{"Reservations[0]", ec2sim.Config{Reservations: []awsctl.Reservation{{InstanceType: "m5.large", Zone: "us-east-1d", Count: 1}}}},
		{"Reservations[0]", ec2sim.Config{Reservations: []awsctl.Reservation{{InstanceType: "m5.large"}}}},
		{"ReservedPriceRatio", ec2sim.Config{ReservedPriceRatio: 1.2}},
		{"ReservedPriceRatio", ec2sim.Config{ReservedPriceRatio: -0.5}},
	}
	for _, c := range cases {
		_, err := ec2sim.New(c.cfg)
		if assert.ErrorIs(t, err, ec2sim.ErrInvalidConfig, c.field) {
			assert.Contains(t, err.Error(), c.field)
		}
	}
	// The caller's slice may change after New without effect.
	prices := []awsctl.SpotPrice{ok}
	sim := newSim(t, ec2sim.Config{SpotPrices: prices})
	prices[0].PricePerHour = 1
	got, err := sim.SpotPrices(bgCtx, nil)
	require.NoError(t, err)
	assert.Equal(t, []awsctl.SpotPrice{ok}, got)
}

// Replaying a real trace: prices of the testdata move the bill.
func TestReplayTestdataTrace(t *testing.T) {
	prices := readTrace(t, usEast1Trace)
	start := time.Date(2021, 3, 3, 0, 0, 0, 0, time.UTC)
	sim := newSim(t, ec2sim.Config{Start: start, BootDelay: ec2sim.Fixed(0), SpotPrices: prices})
	inst := launchSpot(t, sim, 1, c5a)[0]
	require.NoError(t, sim.Advance(24*time.Hour))

	// Reference: walk the records of the series by hand.
	var series []awsctl.SpotPrice
	for _, p := range prices {
		if p.InstanceType == "c5.large" && p.Zone == "us-east-1a" {
			series = append(series, p)
		}
	}
	end := start.Add(24 * time.Hour)
	want := 0.0
	for i, p := range series {
		from, to := p.Time, end
		if i+1 < len(series) {
			to = series[i+1].Time
		}
		from, to = maxTime(from, start), minTime(to, end)
		if to.After(from) {
			want += p.PricePerHour * to.Sub(from).Hours()
		}
	}
	assert.InDelta(t, want, sim.Bill().ByInstance[inst.ID], 1e-12)
	assert.Less(t, want, 0.085*24/2, "c5.large spot was well under half of on-demand")
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// BenchmarkSpotNotices polls notices every minute of a sim holding many
// spot instances that may be interrupted: the cost follows the notices
// due, not the instances held.
func BenchmarkSpotNotices(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			sim := newSim(b, ec2sim.Config{InterruptionRates: map[string]float64{"m5.large": 0.05}})
			launchSpot(b, sim, n, m5a)
			b.ReportAllocs()
			for b.Loop() {
				if err := sim.Advance(time.Minute); err != nil {
					b.Fatal(err)
				}
				if _, err := sim.SpotNotices(bgCtx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
