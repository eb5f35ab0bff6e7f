package manager_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// reading is one moment of a metric's life: an observation, then (unless
// want is observeOnly) a pass that must yield target want.
type reading struct {
	at     time.Duration
	metric float64
	want   int
}

func TestTargetTrackingScaling(t *testing.T) {
	const rps = 100 // requests per second per server
	for _, tc := range []struct {
		desc  string
		cfg   manager.TargetTrackingConfig
		steps []reading
	}{
		{"scales out at once", manager.TargetTrackingConfig{}, []reading{
			{0, 0, 0},
			{30 * time.Second, 250, 3},
			{time.Minute, 1000, 10},
		}},
		{"rounds up to whole servers", manager.TargetTrackingConfig{Tolerance: -1}, []reading{
			{0, 101, 2},
			{time.Minute, 110, 2},
			{2 * time.Minute, 1100, 11},
		}},
		{"no change within the tolerance band", manager.TargetTrackingConfig{ScaleInCooldown: time.Minute}, []reading{
			{0, 1000, 10},
			{30 * time.Second, 1090, 10}, // 9% over: 10 servers at 109/s
			{time.Minute, 910, 10},       // 9% under
			{3 * time.Minute, 910, 10},   // still inside the band after the window
			{4 * time.Minute, 1120, 12},  // out of the band: sized for the load
			{5 * time.Minute, 1090, 12},  // 12 servers sized for 1200: within 10%
			{7 * time.Minute, 1040, 12},  // 1090 was in force a minute ago
			{8 * time.Minute, 1040, 11},  // 13% under 1200 for the whole window
		}},
		{"a negative tolerance follows every server's worth", manager.TargetTrackingConfig{Tolerance: -1, ScaleInCooldown: time.Nanosecond}, []reading{
			{0, 1000, 10},
			{30 * time.Second, 1001, 11},
			{time.Minute, 999, observeOnly},
			{90 * time.Second, 999, 10},
		}},
		{"holds during the window, then drops to its highest metric", manager.TargetTrackingConfig{ScaleInCooldown: 5 * time.Minute}, []reading{
			{0, 2000, 20},
			{time.Minute, 300, 20},
			{2 * time.Minute, 800, observeOnly},
			{3 * time.Minute, 400, 20},
			{6*time.Minute - time.Second, 300, 20},
			{6 * time.Minute, 300, 8}, // 800 was seen during the window
			{8*time.Minute - time.Second, 300, 8},
			{8 * time.Minute, 300, 4},  // 800 gave way to 400 at 3m
			{11 * time.Minute, 300, 3}, // and 400 to 300 just before 6m
		}},
		{"the default window is five minutes", manager.TargetTrackingConfig{}, []reading{
			{0, 1000, 10},
			{time.Second, 100, 10},
			{5 * time.Minute, 100, 10},
			{5*time.Minute + time.Second, 100, 1},
		}},
		{"a metric lasts until the next report", manager.TargetTrackingConfig{ScaleInCooldown: 5 * time.Minute}, []reading{
			{0, 1000, 10},
			{10 * time.Minute, 200, 10}, // 1000 was in force until now
			{15*time.Minute - time.Second, 200, 10},
			{15 * time.Minute, 200, 2},
		}},
		{"a burst between passes holds a scale-in", manager.TargetTrackingConfig{ScaleInCooldown: 2 * time.Minute}, []reading{
			{0, 1000, 10},
			{time.Minute, 200, 10},
			{2 * time.Minute, 1000, observeOnly}, // gone by the next pass
			{2*time.Minute + 10*time.Second, 200, 10},
			{4 * time.Minute, 200, 10},
			{4*time.Minute + 10*time.Second, 200, 2},
		}},
		{"scale-out cooldown spaces rises", manager.TargetTrackingConfig{ScaleOutCooldown: 2 * time.Minute}, []reading{
			{0, 500, 5},
			{30 * time.Second, 1000, 10},
			{time.Minute, 2000, 10},
			{150*time.Second - time.Second, 2000, 10},
			{150 * time.Second, 2000, 20},
		}},
		{"scale-in capped per pass", manager.TargetTrackingConfig{ScaleInCooldown: time.Minute, MaxScaleInPerPass: 5}, []reading{
			{0, 2000, 20},
			{30 * time.Second, 400, 20},
			{90 * time.Second, 400, 15},
			{2 * time.Minute, 400, 10},
			{150 * time.Second, 400, 5},
			{3 * time.Minute, 400, 4},
		}},
		{"scale-in disabled", manager.TargetTrackingConfig{ScaleInCooldown: time.Nanosecond, DisableScaleIn: true}, []reading{
			{0, 1000, 10},
			{time.Hour, 0, 10},
			{2 * time.Hour, 1500, 15},
		}},
		{"min and max clamp", manager.TargetTrackingConfig{Min: 2, Max: 8, ScaleInCooldown: time.Minute}, []reading{
			{0, 0, 2},
			{time.Minute, 5000, 8},
			{2 * time.Minute, 900, 8},
			{3 * time.Minute, 0, 8},
			{4 * time.Minute, 0, 2},
		}},
		{"negative metrics count as zero, NaN is ignored", manager.TargetTrackingConfig{ScaleInCooldown: time.Minute}, []reading{
			{0, 300, 3},
			{30 * time.Second, math.NaN(), 3},
			{time.Minute, -50, 3},
			{2 * time.Minute, math.NaN(), 0},
		}},
		{"an unbounded metric asks for the max", manager.TargetTrackingConfig{Max: 40}, []reading{
			{0, math.Inf(1), 40},
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tc.cfg.TargetPerServer = rps
			m, err := manager.NewTargetTracking("web", tc.cfg)
			require.NoError(t, err)
			for i, s := range tc.steps {
				now := start.Add(s.at)
				m.Observe(now, s.metric)
				if s.want == observeOnly {
					continue
				}
				req, err := m.Demand(context.Background(), manager.State{Now: now})
				require.NoError(t, err)
				require.Equal(t, s.want, req.Target, "step %d at %v: metric %v", i, s.at, s.metric)
				assert.Equal(t, s.want, m.Target())
			}
		})
	}
}

func TestTargetTrackingWarmUpHoldsScaleIn(t *testing.T) {
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{
		TargetPerServer: 100, ScaleInCooldown: time.Minute, WarmUp: 3 * time.Minute,
	})
	require.NoError(t, err)
	demand := func(at time.Duration, servers []manager.Server) int {
		req, err := m.Demand(context.Background(), manager.State{Now: start.Add(at), Servers: servers})
		require.NoError(t, err)
		return req.Target
	}
	m.Observe(start, 400)
	assert.Equal(t, 4, demand(0, nil))
	fresh := []manager.Server{
		{ID: "i-old", Weight: 1, LaunchTime: start.Add(-time.Hour)},
		{ID: "i-new", Weight: 1, LaunchTime: start.Add(time.Minute)},
	}
	m.Observe(start.Add(time.Minute), 100)
	assert.Equal(t, 4, demand(3*time.Minute, fresh), "i-new is two minutes old: still warming")
	assert.Equal(t, 1, demand(4*time.Minute, fresh), "warm now")

	m.Observe(start.Add(5*time.Minute), 600)
	assert.Equal(t, 6, demand(5*time.Minute, fresh), "warm-up never holds a scale-out")

	winding := []manager.Server{{ID: "i-new2", Weight: 1, LaunchTime: start.Add(6 * time.Minute), WindingDown: true}}
	m.Observe(start.Add(6*time.Minute), 100)
	assert.Equal(t, 1, demand(7*time.Minute, winding), "a server winding down is not warming")
}

func TestTargetTrackingKeepsWhatItHoldsUntilObserved(t *testing.T) {
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: 5 * time.Minute})
	require.NoError(t, err)
	servers := held(1, 2, 1)
	servers[2].WindingDown = true

	req, err := m.Demand(context.Background(), manager.State{Now: start, Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 3, req.Target, "a restarted host keeps its servers")

	m.Observe(start.Add(time.Minute), 0)
	req, err = m.Demand(context.Background(), manager.State{Now: start.Add(5 * time.Minute), Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 3, req.Target, "the window counts from the first observation")
	req, err = m.Demand(context.Background(), manager.State{Now: start.Add(6 * time.Minute), Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 0, req.Target)
}

func TestTargetTrackingFirstPassAfterObservation(t *testing.T) {
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, Tolerance: -1})
	require.NoError(t, err)
	m.Observe(start, 950)
	req, err := m.Demand(context.Background(), manager.State{Now: start, Servers: held(1, 1)})
	require.NoError(t, err)
	assert.Equal(t, 10, req.Target, "more than it holds: scale out at once")
}

func TestTargetTrackingLateObservation(t *testing.T) {
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: 5 * time.Minute})
	require.NoError(t, err)
	m.Observe(start, 1000)
	_, err = m.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	m.Observe(start.Add(2*time.Minute), 100)
	m.Observe(start.Add(time.Minute), 700) // late: counts as seen at 2m
	req, err := m.Demand(context.Background(), manager.State{Now: start.Add(7 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 7, req.Target, "the late report is the latest state")
}

func TestTargetTrackingRequestCarriesMarketAndZones(t *testing.T) {
	zones := map[string]int{"eu-west-1a": 1, "eu-west-1b": 1}
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 50, Market: manager.OnDemandOnly, ZoneMinimums: zones})
	require.NoError(t, err)
	zones["eu-west-1a"] = 5
	m.Observe(start, 120)
	req, err := m.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	assert.Equal(t, manager.Request{Target: 3, Market: manager.OnDemandOnly, ZoneMinimums: map[string]int{"eu-west-1a": 1, "eu-west-1b": 1}}, req)
	assert.Equal(t, "web", m.Name())
}

func TestTargetTrackingSignal(t *testing.T) {
	rate := 450.0
	errDown := errors.New("metrics service down")
	var fail bool
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: time.Minute,
		Signal: func(context.Context) (float64, error) {
			if fail {
				return 0, errDown
			}
			return rate, nil
		}})
	require.NoError(t, err)
	req, err := m.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	assert.Equal(t, 5, req.Target)

	fail = true
	_, err = m.Demand(context.Background(), manager.State{Now: start.Add(30 * time.Second)})
	require.ErrorIs(t, err, errDown)
	assert.Contains(t, err.Error(), `target-tracking "web"`)

	fail, rate = false, 50
	req, err = m.Demand(context.Background(), manager.State{Now: start.Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 5, req.Target)
	req, err = m.Demand(context.Background(), manager.State{Now: start.Add(2 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 1, req.Target)
}

func TestTargetTrackingConcurrentUse(t *testing.T) {
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 10, ScaleInCooldown: time.Minute, Max: 100})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 300 {
				m.Observe(start.Add(time.Duration(i)*time.Second), float64((i*7+w)%500))
				m.Notify(manager.Notice{Kind: manager.Granted})
			}
		})
	}
	wg.Go(func() {
		for i := range 300 {
			req, err := m.Demand(context.Background(), manager.State{Now: start.Add(time.Duration(i) * time.Second)})
			assert.NoError(t, err)
			assert.GreaterOrEqual(t, req.Target, 0)
			assert.LessOrEqual(t, req.Target, 100)
		}
	})
	wg.Wait()
}

func TestNewTargetTrackingValidates(t *testing.T) {
	ok := func(c manager.TargetTrackingConfig) manager.TargetTrackingConfig {
		if c.TargetPerServer == 0 {
			c.TargetPerServer = 100
		}
		return c
	}
	for _, tc := range []struct {
		field string
		cfg   manager.TargetTrackingConfig
	}{
		{"TargetPerServer", manager.TargetTrackingConfig{}},
		{"TargetPerServer", manager.TargetTrackingConfig{TargetPerServer: -1}},
		{"TargetPerServer", manager.TargetTrackingConfig{TargetPerServer: math.NaN()}},
		{"TargetPerServer", manager.TargetTrackingConfig{TargetPerServer: math.Inf(1)}},
		{"Min", ok(manager.TargetTrackingConfig{Min: -1})},
		{"Max", ok(manager.TargetTrackingConfig{Max: -1})},
		{"Min", ok(manager.TargetTrackingConfig{Min: 5, Max: 4})},
		{"Tolerance", ok(manager.TargetTrackingConfig{Tolerance: 1})},
		{"Tolerance", ok(manager.TargetTrackingConfig{Tolerance: math.NaN()})},
		{"ScaleInCooldown", ok(manager.TargetTrackingConfig{ScaleInCooldown: -time.Second})},
		{"ScaleOutCooldown", ok(manager.TargetTrackingConfig{ScaleOutCooldown: -time.Second})},
		{"MaxScaleInPerPass", ok(manager.TargetTrackingConfig{MaxScaleInPerPass: -1})},
		{"WarmUp", ok(manager.TargetTrackingConfig{WarmUp: -time.Second})},
		{"Market", ok(manager.TargetTrackingConfig{Market: manager.SpotOnly + 1})},
		{"ZoneMinimums", ok(manager.TargetTrackingConfig{ZoneMinimums: map[string]int{"us-east-1a": -1}})},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, err := manager.NewTargetTracking("web", tc.cfg)
			require.ErrorIs(t, err, manager.ErrInvalidConfig)
			var ce *manager.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.Equal(t, "target-tracking", ce.Kind)
			assert.True(t, strings.HasPrefix(err.Error(), `manager: target-tracking "web": `+tc.field+" "), err.Error())
		})
	}
	_, err := manager.NewTargetTracking("", manager.TargetTrackingConfig{TargetPerServer: 1})
	assert.ErrorIs(t, err, manager.ErrInvalidConfig)
	_, err = manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 0.5, Min: 3})
	assert.NoError(t, err, "Min without Max: no cap")
}
