package main

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// runFigures is what a run of Scaler.Run itself is compared on.
type runFigures struct {
	ttc              []time.Duration
	unmet, demanded  float64
	launches, passes int
}

// runForReal runs policy name of cfg with the library's own Scaler.Run on
// the virtual time of a testing/synctest bubble: the simulated EC2 and the
// scaler read the bubble's clock, the role's Provision sleeps until the
// instance is ready, and the host observes each change of demand as it
// comes (which wakes Run) and checks the capacity working every second.
// The price trace is shifted to start at the bubble's time.
func runForReal(t *testing.T, cfg config, name string) runFigures {
	t.Helper()
	policies, err := choosePolicies(name)
	require.NoError(t, err)
	types, err := parseTypes(cfg.types)
	require.NoError(t, err)
	pt, err := loadPrices(cfg.prices, types, nil)
	require.NoError(t, err)
	trace, err := loadDemand(cfg, pt.start)
	require.NoError(t, err)
	start := time.Now()
	shift := start.Sub(pt.start)
	shifted := *pt
	shifted.records = slices.Clone(pt.records)
	for i := range shifted.records {
		shifted.records[i].Time = shifted.records[i].Time.Add(shift)
	}
	shifted.start, shifted.end = start, pt.end.Add(shift)
	sc, err := newScenario(&shifted, types, trace, cfg)
	require.NoError(t, err)
	sc.clock = time.Now
	w, err := sc.build(policies[0])
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.scaler.Run(ctx) }()

	var fig runFigures
	rises := &riseTracker{}
	now := time.Duration(0)
	_, level := w.work.advance(0)
	rises.arrive(0, level, 0)
	for now < sc.length {
		next := min(now+time.Second, sc.length)
		if change, ok := w.work.nextChange(); ok && change < next {
			next = max(change, now)
		}
		time.Sleep(time.Until(start.Add(next)))
		spot, od := w.work.working()
		d := w.work.demandNow()
		fig.demanded += float64(d) * (next - now).Seconds()
		fig.unmet += float64(d-min(d, spot+od)) * (next - now).Seconds()
		now = next
		if change, ok := w.work.nextChange(); ok && change <= now {
			before, after := w.work.advance(now)
			w.work.place()
			spot, od = w.work.working()
			if after > before {
				rises.arrive(now, after, spot+od)
			}
		}
		w.work.place()
		spot, od = w.work.working()
		rises.settle(now, spot+od, w.work.demandNow())
	}
	cancel()
	require.NoError(t, <-ran)
	require.NoError(t, w.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{}))
	fig.ttc, _ = rises.finish(sc.length)
	fig.launches = len(w.sim.Instances())
	fig.passes = w.cloud.Calls()["DescribeInstances"]
	return fig
}

// The simulation's model of Run's timing (-timing run) against Run itself,
// on a few hours of bursty jobs: the times to capacity, the demand left
// unserved and the passes agree within the second the host's checks add
// (the real run measures capacity once a second, the model at each pass).
func TestModelOfRunMatchesRun(t *testing.T) {
	cfg := shortRun()
	cfg.length = 6 * time.Hour
	cfg.servers = 40
	for _, name := range []string{"on-demand", "recommended"} {
		t.Run(name, func(t *testing.T) {
			cfg.policies = name
			rep, err := simulateAll(context.Background(), cfg)
			require.NoError(t, err)
			model := rep.results[0]
			var real runFigures
			synctest.Test(t, func(t *testing.T) { real = runForReal(t, cfg, name) })

			q := func(ds []time.Duration, p float64) time.Duration { return percentile(ds, p) }
			t.Logf("model: p50 %v p95 %v max %v unmet %.3f%% passes %d launches %d", q(model.ttc, .5), q(model.ttc, .95),
				q(model.ttc, 1), 100*model.unmet/model.demanded, model.passes, model.launches)
			t.Logf("Run:   p50 %v p95 %v max %v unmet %.3f%% passes %d launches %d", q(real.ttc, .5), q(real.ttc, .95),
				q(real.ttc, 1), 100*real.unmet/real.demanded, real.passes, real.launches)
			require.Equal(t, len(real.ttc), len(model.ttc), "the same rises")
			for _, p := range []float64{0.5, 0.9, 0.95} {
				assert.InDelta(t, q(real.ttc, p).Seconds(), q(model.ttc, p).Seconds(), 3, "p%.0f", 100*p)
			}
			assert.InEpsilon(t, real.unmet/real.demanded, model.unmet/model.demanded, 0.15)
			assert.InEpsilon(t, real.passes, model.passes, 0.1)
			assert.InEpsilon(t, real.launches, model.launches, 0.1)
		})
	}
}

func TestRunTimingWakesOnRisesAndHooks(t *testing.T) {
	tm := timing{run: true, interval: 30 * time.Second, busy: 10 * time.Second, gap: time.Second}
	assert.Equal(t, 30*time.Second, tm.next(0, poolStatus(0), 0, false), "idle: the interval")
	assert.Equal(t, 10*time.Second, tm.next(0, poolStatus(1), 0, false), "capacity on its way: the busy interval")
	assert.Equal(t, 4*time.Second, tm.next(0, poolStatus(1), 4*time.Second, true), "a hook ending wakes Run")
	assert.Equal(t, time.Second, tm.next(0, poolStatus(1), 0, true), "at least MinPassGap after the pass")
	loop := timing{interval: time.Minute}
	assert.Equal(t, time.Minute, loop.next(0, poolStatus(1), time.Second, true), "the host's loop ignores wake-ups")
	assert.Equal(t, awsctl.MarketSpot, awsctl.Market("spot"))
}

func poolStatus(booting int) pool.Status { return pool.Status{Booting: booting} }
