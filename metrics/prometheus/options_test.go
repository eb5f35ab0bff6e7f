package ec2autoscaleprom_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	ec2autoscaleprom "github.com/ec2autoscale/ec2autoscale/metrics/prometheus"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

func TestOptionsValidation(t *testing.T) {
	for name, opts := range map[string]ec2autoscaleprom.Options{
		"buckets not increasing": {PassBuckets: []float64{1, 0.5}},
		"reserved label name":    {ConstLabels: prometheus.Labels{"__name": "x"}},
		"clashes with a label":   {ConstLabels: prometheus.Labels{"pool": "x"}},
	} {
		_, err := ec2autoscaleprom.NewObserver(opts)
		assert.ErrorIs(t, err, ec2autoscaleprom.ErrInvalidOptions, name)
	}
	_, err := ec2autoscaleprom.NewCollector(nil, ec2autoscaleprom.Options{})
	assert.ErrorIs(t, err, ec2autoscaleprom.ErrInvalidOptions)
	w := newWorld(t, setup{target: 1})
	_, err = ec2autoscaleprom.NewCollector(w.scaler, ec2autoscaleprom.Options{ConstLabels: prometheus.Labels{"state": "x"}})
	assert.ErrorIs(t, err, ec2autoscaleprom.ErrInvalidOptions)
}

// Two scalers on one registry, told apart by a constant label.
func TestConstLabelsSeparateScalers(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for _, name := range []string{"blue", "green"} {
		w := newWorld(t, setup{target: 2})
		opts := ec2autoscaleprom.Options{ConstLabels: prometheus.Labels{"scaler": name}}
		obs, err := ec2autoscaleprom.NewObserver(opts)
		require.NoError(t, err)
		col, err := ec2autoscaleprom.NewCollector(w.scaler, opts)
		require.NoError(t, err)
		require.NoError(t, reg.Register(obs))
		require.NoError(t, reg.Register(col))
		obs.Observe(autoscale.Event{Kind: pool.EventLaunch, Pool: "workers", Market: awsctl.MarketSpot,
			Instances: []string{"i-1"}, Capacity: 1})
	}
	s := gather(t, reg)
	assert.Equal(t, 1.0, s[`ec2autoscale_launched_instances_total{market="spot",pool="workers",reason="capacity",scaler="blue"}`])
	assert.Equal(t, 1.0, s[`ec2autoscale_launched_instances_total{market="spot",pool="workers",reason="capacity",scaler="green"}`])
	assert.Equal(t, 20.0, s[`ec2autoscale_pool_max_capacity_units{pool="workers",scaler="green"}`])
}

// Events the observer must take without counting or panicking: a dry
// run, a negative capacity, names that are not UTF-8, kinds it does not
// know.
func TestObserveOddEvents(t *testing.T) {
	obs, err := ec2autoscaleprom.NewObserver(ec2autoscaleprom.Options{})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(obs))

	obs.Observe(autoscale.Event{Kind: pool.EventLaunch, Pool: "p", Capacity: 2, Instances: []string{"i-1", "i-2"}, DryRun: true})
	obs.Observe(autoscale.Event{Kind: pool.EventLaunchCapped, Pool: "p", Capacity: -3, Reason: "paused"})
	obs.Observe(autoscale.Event{Kind: pool.EventTerminate, Pool: "bad\xffname", Instance: "i-9", Market: awsctl.MarketOnDemand})
	obs.Observe(autoscale.Event{Kind: pool.EventKind(999), Pool: "p"})
	s := gather(t, reg)
	assert.Equal(t, 0.0, s.sum("ec2autoscale_launched_instances_total"), "a dry run launched nothing")
	assert.Equal(t, 0.0, s.sum("ec2autoscale_launch_capped_capacity_units_total"))
	assert.Equal(t, 1.0, s["ec2autoscale_terminations_total{market=\"on-demand\",pool=\"bad\uFFFDname\",reason=\"unknown\"}"],
		"a termination whose wind-down this process did not see")
	assert.Equal(t, 1.0, s[`ec2autoscale_events_total{kind="unknown",pool="p"}`])

	// A wind-down's reason carries over to the termination; a restore
	// forgets it.
	obs.Observe(autoscale.Event{Kind: pool.EventWindDown, Pool: "p", Instance: "i-1", Reason: "spare capacity"})
	obs.Observe(autoscale.Event{Kind: pool.EventTerminate, Pool: "p", Instance: "i-1", Market: awsctl.MarketSpot})
	obs.Observe(autoscale.Event{Kind: pool.EventWindDown, Pool: "p", Instance: "i-2", Reason: "manager holds 2, wants 1"})
	obs.Observe(autoscale.Event{Kind: pool.EventRestore, Pool: "p", Instance: "i-2", Reason: "demand returned"})
	obs.Observe(autoscale.Event{Kind: pool.EventWindDown, Pool: "p", Instance: "i-3",
		Reason: "wind-down passed its deadline; the server is still busy, waiting for it"})
	obs.Observe(autoscale.Event{Kind: pool.EventTerminate, Pool: "p", Instance: "i-2", Market: awsctl.MarketSpot})
	s = gather(t, reg)
	assert.Equal(t, 1.0, s[`ec2autoscale_terminations_total{market="spot",pool="p",reason="spare"}`])
	assert.Equal(t, 1.0, s[`ec2autoscale_terminations_total{market="spot",pool="p",reason="unknown"}`])
	assert.Equal(t, 1.0, s[`ec2autoscale_wind_downs_cancelled_total{pool="p",reason="demand-returned"}`])
	assert.Equal(t, 2.0, s.sum("ec2autoscale_wind_downs_started_total"), "an overdue notice is no new wind-down")
	assert.Equal(t, 1.0, s[`ec2autoscale_wind_down_timeouts_total{action="wait",pool="p"}`])
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestInstrumentStep(t *testing.T) {
	obs, err := ec2autoscaleprom.NewObserver(ec2autoscaleprom.Options{PassBuckets: []float64{1, 10}})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(obs))
	ctx := context.Background()
	boom := errors.New("boom")
	assert.NoError(t, obs.InstrumentStep(func(context.Context) error { return nil })(ctx))
	assert.ErrorIs(t, obs.InstrumentStep(func(context.Context) error { return boom })(ctx), boom)
	assert.ErrorIs(t, obs.InstrumentStep(func(context.Context) error { return autoscale.ErrNotLeader })(ctx), autoscale.ErrNotLeader)
	assert.Error(t, obs.InstrumentStep(nil)(ctx), "a nil step fails, it does not panic")
	s := gather(t, reg)
	for _, r := range []string{"ok", "error", "not-leader"} {
		assert.Equal(t, 1.0, s[`ec2autoscale_pass_duration_seconds_count{result="`+r+`"}`], r)
	}
}
