package ec2autoscaleprom_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// The exposition after a few passes: every gauge equals what Status,
// Servers and the simulator say, every counter what the events say, and
// the registry passes promlint.
func TestExpositionMatchesStatus(t *testing.T) {
	w := newWorld(t, setup{target: 3})
	p := w.scaler.Pool("workers")

	first := w.scrape()
	assert.False(t, first.has("ec2autoscale_servers"), "no per-server series before the pool builds its list")
	assert.False(t, first.has("ec2autoscale_pool_capacity_units"), "no status series before the first pass")
	assert.Equal(t, 20.0, first.sum("ec2autoscale_pool_max_capacity_units", `pool="workers"`), "Max is known from the start")
	assert.Equal(t, 0.0, first.sum("ec2autoscale_alarms_active"))
	assert.True(t, first.has(`ec2autoscale_alarms_active{kind="no-capacity",pool="workers"}`), "alarm series exist while quiet")

	w.run(8)
	s := w.scrape()
	st := p.Status()
	require.True(t, st.Observed)
	require.Equal(t, 3, st.Granted, "the scenario converged")

	for state, want := range map[string]int{
		"booting": st.Booting, "provisioning": st.Provisioning, "free": st.Free, "granted": st.Granted,
		"winding-down": st.WindingDown, "replacing": st.Replacing, "interrupted": st.Interrupted,
	} {
		assert.Equal(t, float64(want), s[`ec2autoscale_pool_capacity_units{pool="workers",state="`+state+`"}`], state)
	}
	assert.Equal(t, float64(st.Target), s[`ec2autoscale_pool_target_capacity_units{pool="workers"}`])
	assert.Equal(t, float64(st.MaxUsed), s[`ec2autoscale_pool_max_used_capacity_units{pool="workers"}`])
	assert.Equal(t, 20.0, s[`ec2autoscale_pool_max_capacity_units{pool="workers"}`])
	assert.Greater(t, st.HourlySpend, 0.0, "the price book knows m5.large")
	assert.InDelta(t, st.HourlySpend, s[`ec2autoscale_pool_spend_usd_per_hour{pool="workers"}`], 1e-9)
	assert.InDelta(t, st.UnitPrice, s[`ec2autoscale_pool_unit_price_usd_per_hour{pool="workers"}`], 1e-9)
	assert.InDelta(t, float64(st.Time.Unix()), s[`ec2autoscale_pool_last_pass_timestamp_seconds{pool="workers"}`], 1e-3)
	assert.Equal(t, 3.0, s[`ec2autoscale_manager_target_capacity_units{manager="jobs",pool="workers"}`])
	assert.Equal(t, 3.0, s[`ec2autoscale_manager_held_capacity_units{manager="jobs",pool="workers"}`])

	// Per server: the first scrape asked for the list, the passes since
	// built it.
	servers, _ := p.Servers()
	require.Len(t, servers, 3)
	live := 0
	for _, inst := range w.sim.Instances() {
		if inst.State.Live() {
			live++
		}
	}
	assert.Equal(t, float64(live), s.sum("ec2autoscale_servers", `pool="workers"`))
	assert.Equal(t, float64(st.Granted), s.sum("ec2autoscale_server_capacity_units", `pool="workers"`, `state="granted"`))
	perZone := map[string]float64{}
	for _, srv := range servers {
		perZone[srv.Zone]++
	}
	for zone, n := range perZone {
		assert.Equal(t, n, s[`ec2autoscale_servers{instance_type="m5.large",market="on-demand",pool="workers",state="granted",zone="`+zone+`"}`])
	}

	// Counters against the events.
	launched := 0
	for _, e := range w.eventsOf(pool.EventLaunch) {
		launched += len(e.Instances)
	}
	assert.Equal(t, 3, launched)
	assert.Equal(t, float64(launched), s[`ec2autoscale_launched_instances_total{market="on-demand",pool="workers",reason="capacity"}`])
	assert.Equal(t, float64(launched), s[`ec2autoscale_launched_capacity_units_total{market="on-demand",pool="workers",reason="capacity"}`])
	assert.Equal(t, float64(len(w.eventsOf(pool.EventLaunch))), s[`ec2autoscale_events_total{kind="launch",pool="workers"}`])
	assert.Equal(t, float64(len(w.eventsOf(pool.EventGrant))), s[`ec2autoscale_events_total{kind="grant",pool="workers"}`])
	assert.Equal(t, float64(w.steps), s[`ec2autoscale_pass_duration_seconds_count{result="ok"}`])
	assert.Equal(t, 0.0, s.sum("ec2autoscale_paused"))

	problems, err := testutil.GatherAndLint(w.reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
	assertBounded(t, s)

	text := w.fetch()
	for _, line := range []string{
		"# TYPE ec2autoscale_launched_instances_total counter",
		"# TYPE ec2autoscale_servers gauge",
		"# TYPE ec2autoscale_pass_duration_seconds histogram",
		`ec2autoscale_manager_held_capacity_units{manager="jobs",pool="workers"} 3`,
		`ec2autoscale_pool_capacity_units{pool="workers",state="granted"} 3`,
		`ec2autoscale_paused{action="launch"} 0`,
	} {
		assert.Contains(t, text, line+"\n")
	}
}

// assertBounded checks that no label value is an instance id, error text,
// or a reason this package did not recognise.
func assertBounded(t *testing.T, s samples) {
	t.Helper()
	for k := range s {
		assert.NotContains(t, k, `"i-`, "an instance id as a label value")
		assert.NotContains(t, k, `"other"`, "a reason the classification missed")
		assert.NotContains(t, k, `"unknown"`, "a termination whose wind-down was not seen")
		assert.NotContains(t, k, ": ", "free text as a label value")
	}
}

// A FastStart pool swaps its on-demand servers for spot, scales in, and
// loses a spot server to an interruption: each shows in its counter, with
// the reason.
func TestSwapScaleInAndInterruptionCounters(t *testing.T) {
	w := newWorld(t, setup{target: 3, spot: 0.030, mutate: func(c *pool.Config) { c.Market = pool.FastStart }})
	w.run(60)
	s := w.scrape()
	replaces := len(w.eventsOf(pool.EventReplace))
	require.Equal(t, 3, replaces, "every on-demand server was swapped")
	assert.Equal(t, 3.0, s[`ec2autoscale_replacements_total{pool="workers",reason="spot",stage="started"}`])
	assert.Equal(t, 3.0, s[`ec2autoscale_replacements_total{pool="workers",reason="spot",stage="completed"}`])
	assert.Equal(t, 3.0, s[`ec2autoscale_launched_instances_total{market="spot",pool="workers",reason="replacement"}`])
	assert.Equal(t, 3.0, s[`ec2autoscale_wind_downs_started_total{pool="workers",reason="replaced"}`])
	assert.Equal(t, 3.0, s[`ec2autoscale_terminations_total{market="on-demand",pool="workers",reason="replaced"}`])
	assert.Equal(t, 3.0, s.sum("ec2autoscale_servers", `market="spot"`, `state="granted"`))

	require.NoError(t, w.jobs.Set(1))
	w.run(60)
	s = w.scrape()
	assert.Equal(t, 2.0, s[`ec2autoscale_wind_downs_started_total{pool="workers",reason="scale-in"}`])
	assert.Equal(t, 2.0, s[`ec2autoscale_terminations_total{market="spot",pool="workers",reason="scale-in"}`])
	assert.Equal(t, 1.0, s.sum("ec2autoscale_servers", `pool="workers"`))

	servers, _ := w.scaler.Pool("workers").Servers()
	require.Len(t, servers, 1)
	require.NoError(t, w.sim.Interrupt(servers[0].ID))
	w.run(30)
	s = w.scrape()
	assert.Equal(t, 1.0, s[`ec2autoscale_spot_interruptions_total{pool="workers"}`])
	assert.Equal(t, 1.0, s[`ec2autoscale_wind_downs_started_total{pool="workers",reason="interruption"}`])
	assert.Equal(t, 1.0, s.sum("ec2autoscale_servers", `pool="workers"`, `state="granted"`), "replaced")

	terminated := float64(len(w.eventsOf(pool.EventTerminate)))
	assert.Equal(t, terminated, s.sum("ec2autoscale_terminations_total"), "one count per termination event")
	assert.Equal(t, float64(len(w.eventsOf(pool.EventWindDown))), s.sum("ec2autoscale_wind_downs_started_total"))
	st := w.scaler.Pool("workers").Status()
	assert.InDelta(t, st.HourlySpend, s[`ec2autoscale_pool_spend_usd_per_hour{pool="workers"}`], 1e-9)
	problems, err := testutil.GatherAndLint(w.reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
	assertBounded(t, s)
}

// Capacity errors, throttling and a failed listing are counted by
// operation and error kind, and the failed pass by its result.
func TestCloudErrorsByKind(t *testing.T) {
	start := ec2sim.DefaultStart
	w := newWorld(t, setup{target: 2, spot: 0.030, mutate: func(c *pool.Config) { c.Market = pool.Spot }})
	for _, z := range zones {
		w.sim.AddCapacityOutage(awsctl.MarketSpot, "m5.large", z, start, start.Add(5*time.Minute))
	}
	w.run(1) // spot fails in every zone; the same Step falls back to on-demand
	s := w.scrape()
	assert.Equal(t, 1.0, s[`ec2autoscale_pass_duration_seconds_count{result="error"}`], "Step returns the failed launches")
	assert.GreaterOrEqual(t, s[`ec2autoscale_launch_failures_total{error="insufficient-capacity",market="spot",pool="workers"}`], 1.0)
	assert.Equal(t, s.sum("ec2autoscale_launch_failures_total"),
		s[`ec2autoscale_cloud_errors_total{error="insufficient-capacity",operation="launch",pool="workers"}`])
	assert.Equal(t, 2.0, s[`ec2autoscale_launched_instances_total{market="on-demand",pool="workers",reason="capacity"}`])

	w.sim.FailNext(ec2sim.OpListInstances, ec2sim.Throttled(ec2sim.OpListInstances))
	w.run(1)
	s = w.scrape()
	assert.Equal(t, 1.0, s[`ec2autoscale_cloud_errors_total{error="throttled",operation="list",pool=""}`])
	assert.Equal(t, 2.0, s[`ec2autoscale_pass_duration_seconds_count{result="error"}`])
	assertBounded(t, s)
}

// A cap that bites raises an alarm, shown by the gauge while active, and
// the capacity it held back is counted; Pause shows too.
func TestAlarmsAndPause(t *testing.T) {
	w := newWorld(t, setup{target: 6, rails: autoscale.Rails{MaxLaunchPerMinute: 2}})
	w.run(1)
	s := w.scrape()
	require.NotEmpty(t, w.scaler.Alarms())
	assert.Equal(t, 1.0, s[`ec2autoscale_alarms_active{kind="launch-rate",pool="workers"}`])
	assert.Equal(t, 0.0, s[`ec2autoscale_alarms_active{kind="spend",pool="workers"}`])
	assert.Equal(t, 4.0, s[`ec2autoscale_launch_capped_capacity_units_total{pool="workers",reason="launch-rate"}`])

	w.scaler.Pause(autoscale.PauseOptions{StopTerminating: true})
	w.run(1)
	s = w.scrape()
	assert.Equal(t, 1.0, s[`ec2autoscale_paused{action="launch"}`])
	assert.Equal(t, 1.0, s[`ec2autoscale_paused{action="terminate"}`])
	assert.Greater(t, s[`ec2autoscale_launch_capped_capacity_units_total{pool="workers",reason="paused"}`], 0.0)
	w.scaler.Resume()
	w.run(12)
	s = w.scrape()
	assert.Equal(t, 0.0, s.sum("ec2autoscale_alarms_active"), "cleared once the cap stops biting")
	assert.Equal(t, 0.0, s.sum("ec2autoscale_paused"))
	assertBounded(t, s)
}

// Scrapes run while passes do: under -race this checks that Observe and
// Collect share nothing unguarded.
func TestScrapeDuringPasses(t *testing.T) {
	w := newWorld(t, setup{target: 4})
	step := w.step
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for range 30 {
			_ = step(context.Background())
			_ = w.sim.Advance(10 * time.Second)
		}
	})
	for scrapes := 0; ; scrapes++ {
		select {
		case <-done:
			wg.Wait()
			s := w.scrape()
			assert.Equal(t, 4.0, s[`ec2autoscale_manager_held_capacity_units{manager="jobs",pool="workers"}`])
			assert.Equal(t, 30.0, s.sum("ec2autoscale_pass_duration_seconds_count"))
			return
		default:
		}
		_, err := w.reg.Gather()
		require.NoError(t, err)
		if text := w.fetch(); !strings.Contains(text, "ec2autoscale_pool_max_capacity_units") {
			t.Fatalf("scrape %d lacks the pool gauges:\n%s", scrapes, text)
		}
	}
}
