package autoscale_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

var zones = []string{"us-east-1a", "us-east-1b"}

// spotWorld is a pool of m5.large (on-demand $0.096/h) over a simulated EC2
// whose spot market replays prices, with the scaler's price book reading
// spot prices and reservations from the simulator and spot notices polled
// from it.
func spotWorld(t *testing.T, cfg ec2sim.Config, strategy pool.MarketStrategy, target int, mutate func(*pool.Config)) (*world, *servers) {
	w, srv, _ := spotWorldM(t, cfg, strategy, target, mutate)
	return w, srv
}

func spotWorldM(t *testing.T, cfg ec2sim.Config, strategy pool.MarketStrategy, target int, mutate func(*pool.Config)) (*world, *servers, *manager.Fixed) {
	t.Helper()
	if cfg.BootDelay == nil {
		cfg.BootDelay = ec2sim.Fixed(40 * time.Second)
	}
	cfg.Seed = 1
	sim, err := ec2sim.New(cfg)
	require.NoError(t, err)
	b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: sim, Reservations: sim, SpotTTL: time.Minute})
	require.NoError(t, err)
	srv := newServers()
	m := fixed(t, "jobs", target)
	pc := poolConfig(srv.role(t), m)
	pc.Market, pc.Prices = strategy, b
	if mutate != nil {
		mutate(&pc)
	}
	w := newWorld(t, sim, pc)
	w.opts.SpotNotices = sim
	w.restart()
	return w, srv, m
}

func spotAt(at time.Time, price float64) []awsctl.SpotPrice {
	var out []awsctl.SpotPrice
	for _, z := range zones {
		out = append(out, awsctl.SpotPrice{InstanceType: "m5.large", Zone: z, PricePerHour: price, Time: at})
	}
	return out
}

func byMarketLive(w *world) map[awsctl.Market]int {
	out := map[awsctl.Market]int{}
	for _, inst := range w.live() {
		out[inst.Market]++
	}
	return out
}

func TestFastStartConvergesToSpotWithoutDroppingBelowDemand(t *testing.T) {
	w, _ := spotWorld(t, ec2sim.Config{SpotPrices: spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.030)}, pool.FastStart, 3, nil)
	w.step()
	launches := w.eventsOf(pool.EventLaunch)
	require.NotEmpty(t, launches)
	assert.Equal(t, awsctl.MarketOnDemand, launches[0].Market, "fast start boots on-demand")
	ready := false
	for range 40 {
		w.step()
		n := len(w.grantedTo("jobs"))
		if n == 3 {
			ready = true
		}
		if ready {
			require.GreaterOrEqual(t, n, 3, "never below demand during the swap")
		}
	}
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 3}, byMarketLive(w), "converged to spot")
	for _, inst := range w.grantedTo("jobs") {
		assert.NotContains(t, inst.Tags, pool.TagReplaces, "replacement tag cleared on the swap")
	}
	assert.Len(t, w.eventsOf(pool.EventReplace), 3)
}

func TestSwapSkippedWhenItWouldNotPayOff(t *testing.T) {
	w, _ := spotWorld(t, ec2sim.Config{SpotPrices: spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.075)}, pool.FastStart, 2,
		func(c *pool.Config) { c.Replace.ExpectedLife = 5 * time.Minute })
	w.steps(30)
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 2}, byMarketLive(w))
	assert.Len(t, w.eventsOf(pool.EventReplaceSkipped), 2)
	assert.Equal(t, 2, w.launched())
}

func TestSpotCapacityErrorsFallBackToOnDemandAndReturnToSpot(t *testing.T) {
	start := ec2sim.DefaultStart
	w, _ := spotWorld(t, ec2sim.Config{SpotPrices: spotAt(start.Add(-time.Hour), 0.030)}, pool.Spot, 2, nil)
	for _, z := range zones {
		w.sim.AddCapacityOutage(awsctl.MarketSpot, "m5.large", z, start, start.Add(5*time.Minute))
	}
	w.step() // spot fails everywhere, and the same Step falls back
	require.NotEmpty(t, w.eventsOf(pool.EventLaunchFailed))
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 2}, byMarketLive(w), "on-demand in the same Step")
	// After the outage and the unavailable entries expire, spot comes back:
	// the on-demand fallbacks are replaced by spot.
	w.steps(60)
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 2}, byMarketLive(w))
	assert.Len(t, w.grantedTo("jobs"), 2)
}

func TestInterruptedServerIsReplacedWithinOnePass(t *testing.T) {
	w, srv := spotWorld(t, ec2sim.Config{SpotPrices: spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.030)}, pool.Spot, 2, nil)
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	victim := held[0]
	srv.setBusy(victim.ID, true)
	require.NoError(t, w.sim.Interrupt(victim.ID))
	deadline := w.sim.Now().Add(ec2sim.InterruptionNoticeLead)
	before := w.launched()
	w.step()
	assert.Equal(t, before+1, w.launched(), "replacement launched in the same pass")
	inst, _ := w.sim.Instance(victim.ID)
	got, err := time.Parse(time.RFC3339, inst.Tags[pool.TagWindDownDeadline])
	require.NoError(t, err)
	assert.WithinDuration(t, deadline, got, time.Second, "wind-down carries the notice's deadline")
	assert.Equal(t, 1, srv.count(victim.ID, pool.HookWindDown))
	ev := w.eventsOf(pool.EventInterrupted)
	require.Len(t, ev, 1)
	w.steps(12)
	assert.Len(t, w.grantedTo("jobs"), 2)
}

func TestUnusedReservationsAreUsedBeforeSpotOnEC2(t *testing.T) {
	w, _ := spotWorld(t, ec2sim.Config{
		SpotPrices:   spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.030),
		Reservations: []awsctl.Reservation{{InstanceType: "m5.large", Count: 2}},
	}, pool.Spot, 3, func(c *pool.Config) { c.Policy.UseReservations = true })
	w.steps(10)
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 2, awsctl.MarketSpot: 1}, byMarketLive(w))
	w.steps(30)
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketOnDemand: 2, awsctl.MarketSpot: 1}, byMarketLive(w),
		"reserved servers are not replaced by spot: they cost nothing extra")
}

func TestPriceRiseAboveTheRatioStopsNewSpotLaunches(t *testing.T) {
	start := ec2sim.DefaultStart
	prices := append(spotAt(start.Add(-time.Hour), 0.030), spotAt(start.Add(10*time.Minute), 0.090)...)
	w, _, m := spotWorldM(t, ec2sim.Config{SpotPrices: prices}, pool.Spot, 2, nil)
	w.steps(8)
	require.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 2}, byMarketLive(w))
	for w.sim.Now().Before(start.Add(12 * time.Minute)) {
		w.step()
	}
	require.NoError(t, m.Set(4))
	w.steps(8)
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 2, awsctl.MarketOnDemand: 2}, byMarketLive(w),
		"0.090 > 0.8 x 0.096: new capacity is on-demand")
}
