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
)

// readyServer is a server of manager mgr that became ready boot after its
// launch, as the pool's TagReady records it.
func readyServer(id, typ, zone string, mk awsctl.Market, mgr string, launched time.Time, boot time.Duration) awsctl.Instance {
	return awsctl.Instance{ID: id, Type: typ, Zone: zone, Market: mk, State: awsctl.StateRunning, LaunchTime: launched,
		Tags: map[string]string{pool.TagPool: "p", pool.TagManager: mgr,
			pool.TagReady: launched.Add(boot).UTC().Format(time.RFC3339)}}
}

// states records what the pool tells a manager of itself.
type states struct {
	want
	last manager.State
}

func (s *states) Demand(ctx context.Context, st manager.State) (manager.Request, error) {
	s.last = st
	return s.want.Demand(ctx, st)
}

func TestBootTimeIsLearnedPerOfferingFromTheListing(t *testing.T) {
	m := &states{want: want{name: "m", req: manager.Request{Target: 8}}}
	p := newPool(t, nil, m)
	launched := t0.Add(-2 * time.Hour)
	var insts []awsctl.Instance
	for i, boot := range []time.Duration{40 * time.Second, 50 * time.Second, 60 * time.Second, 45 * time.Second} {
		insts = append(insts, readyServer(fmt.Sprintf("i-l%d", i), "m5.large", "z1", awsctl.MarketOnDemand, "m", launched, boot))
	}
	for i, boot := range []time.Duration{3 * time.Minute, 4 * time.Minute} {
		insts = append(insts, readyServer(fmt.Sprintf("i-x%d", i), "m5.xlarge", "z2", awsctl.MarketSpot, "m", launched, boot))
	}
	p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: insts})
	st := p.Status()
	assert.Equal(t, []pool.BootTime{
		{Type: "m5.large", Zone: "z1", Market: awsctl.MarketOnDemand, Estimate: 47*time.Second + 500*time.Millisecond, Samples: 4},
		{Type: "m5.xlarge", Zone: "z2", Market: awsctl.MarketSpot, Estimate: 210 * time.Second, Samples: 2},
	}, st.BootTimes)
	assert.Equal(t, 55*time.Second, st.BootTime, "pool-wide: the median of all six")
	assert.Equal(t, st.BootTime, m.last.BootTime, "managers get the pool-wide estimate")
}

func TestBootTimeIsZeroUntilEnoughServersWereSeenReady(t *testing.T) {
	m := &states{want: want{name: "m", req: manager.Request{Target: 2}}}
	p := newPool(t, nil, m)
	insts := []awsctl.Instance{
		readyServer("i-1", "m5.large", "z1", awsctl.MarketOnDemand, "m", t0.Add(-time.Hour), time.Minute),
		readyServer("i-2", "m5.large", "z1", awsctl.MarketOnDemand, "m", t0.Add(-time.Hour), time.Minute),
	}
	p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: insts})
	assert.Zero(t, p.Status().BootTime, "two samples are no estimate")
	assert.Zero(t, m.last.BootTime)
	require.Len(t, p.Status().BootTimes, 1)
	assert.Equal(t, 2, p.Status().BootTimes[0].Samples)
}

func TestBootTimeOutlierDoesNotMoveTheEstimate(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 6}}
	p := newPool(t, nil, m)
	launched := t0.Add(-3 * time.Hour)
	var insts []awsctl.Instance
	for i := range 5 {
		insts = append(insts, readyServer(fmt.Sprintf("i-%d", i), "m5.large", "z1", awsctl.MarketOnDemand, "m", launched, time.Minute))
	}
	// Provisioning retried for an hour on one server.
	insts = append(insts, readyServer("i-slow", "m5.large", "z1", awsctl.MarketOnDemand, "m", launched, time.Hour))
	p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: insts})
	assert.Equal(t, time.Minute, p.Status().BootTime)
	assert.Equal(t, time.Minute, p.Status().BootTimes[0].Estimate)
}

func TestBootTimeKeepsTheLatestServersToBecomeReady(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 40}}
	p := newPool(t, func(c *pool.Config) { c.Max = 50 }, m)
	var insts []awsctl.Instance
	// The pool's boots slowed from one minute to three: the older servers
	// fall out of the window.
	for i := range 2 * pool.BootWindow {
		boot := time.Minute
		if i >= pool.BootWindow {
			boot = 3 * time.Minute
		}
		launched := t0.Add(-2*time.Hour + time.Duration(i)*time.Minute)
		insts = append(insts, readyServer(fmt.Sprintf("i-%02d", i), "m5.large", "z1", awsctl.MarketOnDemand, "m", launched, boot))
	}
	// Listed newest first: the order the listing gives changes nothing.
	for i, j := 0, len(insts)-1; i < j; i, j = i+1, j-1 {
		insts[i], insts[j] = insts[j], insts[i]
	}
	p.Plan(context.Background(), pool.Snapshot{Now: t0, Instances: insts})
	st := p.Status()
	assert.Equal(t, 3*time.Minute, st.BootTime)
	assert.Equal(t, pool.BootWindow, st.BootTimes[0].Samples)
}

// cheapSpotPool is a FastStart pool of m5.large (on-demand 0.096/h, spot
// 0.030/h in z1) whose manager holds one on-demand server to replace
// (i-od) and three spot servers in z1 that booted in boot.
func cheapSpotPool(t *testing.T, boot time.Duration, mutate func(*pool.Config)) (*pool.Pool, []awsctl.Instance) {
	t.Helper()
	return cheapSpotPoolWith(t, "z1", awsctl.MarketSpot, boot, mutate)
}

// cheapSpotPoolWith is cheapSpotPool with the three servers that booted in
// boot in zone and market mk.
func cheapSpotPoolWith(t *testing.T, zone string, mk awsctl.Market, boot time.Duration, mutate func(*pool.Config)) (*pool.Pool, []awsctl.Instance) {
	t.Helper()
	m := &want{name: "m", req: manager.Request{Target: 4}}
	p := spotPool(t, book(t, map[string]float64{"z1": 0.030}), pool.FastStart, mutate, m)
	insts := []awsctl.Instance{odServer("i-od", "z1", "m")}
	for i := range 3 {
		insts = append(insts, readyServer(fmt.Sprintf("i-s%d", i), "m5.large", zone, mk, "m", t0.Add(-2*time.Hour), boot))
	}
	return p, insts
}

func replacementsOf(pl *pool.Plan, id string) int {
	n := 0
	for _, l := range pl.Launches {
		if l.Tags[pool.TagReplaces] == id {
			n++
		}
	}
	return n
}

func TestSwapIsPricedWithTheLearnedBootTime(t *testing.T) {
	ctx := context.Background()
	// Over 5 minutes of expected life spot saves $0.0055: more than a
	// 40-second swap costs ($0.0021, the spot server charged its minute),
	// less than a 5-minute one ($0.0105).
	short := func(c *pool.Config) { c.Replace.ExpectedLife = 5 * time.Minute }
	p, insts := cheapSpotPool(t, 40*time.Second, short)
	pastStart(t, p, insts...)
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Equal(t, 1, replacementsOf(pl, "i-od"), "spot servers here boot in 40 s: the swap pays")

	p, insts = cheapSpotPool(t, 40*time.Second, func(c *pool.Config) {
		short(c)
		c.Replace.Overlap = 5 * time.Minute
	})
	pastStart(t, p, insts...)
	pl = p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Zero(t, replacementsOf(pl, "i-od"), "an Overlap set in the config is used as it is")

	// Over an hour spot saves $0.066, less than a swap whose spot server
	// takes 40 minutes to boot costs ($0.084).
	p, insts = cheapSpotPool(t, 40*time.Minute, nil)
	pastStart(t, p, insts...)
	pl = p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Zero(t, replacementsOf(pl, "i-od"), "spot servers here boot in 40 minutes: the swap does not pay")
	var skipped []pool.Event
	for _, e := range pl.Events {
		if e.Kind == pool.EventReplaceSkipped {
			skipped = append(skipped, e)
		}
	}
	require.Len(t, skipped, 1)
	assert.Contains(t, fmt.Sprint(skipped[0].Inputs), "overlap=40m0s")
}

func TestHourlySwapLaunchesAheadByTheLearnedBootTime(t *testing.T) {
	ctx := context.Background()
	hourly := func(c *pool.Config) { c.Billing = pool.Hourly }
	// Spot servers take 30 minutes to be ready: to be swapped in as the
	// last WindDownTimeout (15 minutes) of the on-demand server's hour
	// starts, a replacement leaves 46 minutes before the hour ends.
	p, insts := cheapSpotPool(t, 30*time.Minute, hourly)
	pastStart(t, p, insts...)
	insts[0].LaunchTime = t0.Add(-10 * time.Minute)
	pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Zero(t, replacementsOf(pl, "i-od"), "50 minutes left: too early")

	p, insts = cheapSpotPool(t, 30*time.Minute, hourly)
	pastStart(t, p, insts...)
	insts[0].LaunchTime = t0.Add(-20 * time.Minute)
	pl = p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Equal(t, 1, replacementsOf(pl, "i-od"), "40 minutes left: launched, ready 10 minutes before the hour ends")

	// Set in the config, the overlap is the user's: 5 minutes ahead.
	p, insts = cheapSpotPool(t, 30*time.Minute, func(c *pool.Config) {
		hourly(c)
		c.Replace.Overlap = 5 * time.Minute
	})
	pastStart(t, p, insts...)
	insts[0].LaunchTime = t0.Add(-20 * time.Minute)
	pl = p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
	assert.Zero(t, replacementsOf(pl, "i-od"))
}

func TestBootTimeFallsBackToTheTypeThenToThePool(t *testing.T) {
	ctx := context.Background()
	hourly := func(c *pool.Config) { c.Billing = pool.Hourly }
	// No spot server was seen ready in z1, where the replacement goes:
	// those of the type in z2 stand in for it, and without any spot server
	// the pool's on-demand ones do (a FastStart pool's first servers).
	for _, tc := range []struct {
		zone string
		mk   awsctl.Market
	}{{"z2", awsctl.MarketSpot}, {"z1", awsctl.MarketOnDemand}} {
		p, insts := cheapSpotPoolWith(t, tc.zone, tc.mk, 30*time.Minute, hourly)
		pastStart(t, p, insts...)
		insts[0].LaunchTime = t0.Add(-20 * time.Minute)
		pl := p.Plan(ctx, pool.Snapshot{Now: t0, Instances: insts})
		assert.Equal(t, 1, replacementsOf(pl, "i-od"), "%s %s: launched 40 minutes ahead", tc.mk, tc.zone)
	}
}
