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
		{"holds during the window, then drops to its highest metric", manager.TargetTrackingConfig{ScaleInCooldown: 5 * time.Minute, MaxScaleInPerPass: -1}, []reading{
			{0, 2000, 20},
			{time.Minute, 300, 20},
			{2 * time.Minute, 800, observeOnly},
			{3 * time.Minute, 400, 20},
			{6*time.Minute - time.Second, 300, 20},
			{6 * time.Minute, 300, 8}, // 800 was seen during the window
			{8 * time.Minute, 300, 8}, // 800 gave way to 400 at 3m, but the last scale-in was 2m ago
			{11*time.Minute - time.Second, 300, 8},
			{11 * time.Minute, 300, 3}, // 400 gave way to 300 just before 6m
		}},
		{"the default window is five minutes", manager.TargetTrackingConfig{MaxScaleInPerPass: -1}, []reading{
			{0, 1000, 10},
			{time.Second, 100, 10},
			{5 * time.Minute, 100, 10},
			{5*time.Minute + time.Second, 100, 1},
		}},
		{"a metric lasts until the next report", manager.TargetTrackingConfig{ScaleInCooldown: 5 * time.Minute, MaxScaleInPerPass: -1}, []reading{
			{0, 1000, 10},
			{10 * time.Minute, 200, 10}, // 1000 was in force until now
			{15*time.Minute - time.Second, 200, 10},
			{15 * time.Minute, 200, 2},
		}},
		{"a burst between passes holds a scale-in", manager.TargetTrackingConfig{ScaleInCooldown: 2 * time.Minute, MaxScaleInPerPass: -1}, []reading{
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
		{"scale-in capped, one scale-in per cooldown", manager.TargetTrackingConfig{ScaleInCooldown: time.Minute, MaxScaleInPerPass: 5}, []reading{
			{0, 2000, 20},
			{30 * time.Second, 400, 20},
			{90 * time.Second, 400, 15},
			{2 * time.Minute, 400, 15}, // a minute since the last scale-in
			{150 * time.Second, 400, 10},
			{3 * time.Minute, 400, 10},
			{210 * time.Second, 400, 5},
			{270 * time.Second, 400, 4},
		}},
		{"by default a scale-in removes a tenth of the target, at least one", manager.TargetTrackingConfig{ScaleInCooldown: time.Minute}, []reading{
			{0, 2500, 25},
			{30 * time.Second, 400, 25},
			{90 * time.Second, 400, 23}, // 25 / 10, rounded down
			{150 * time.Second, 400, 21},
			{210 * time.Second, 400, 19},
			{270 * time.Second, 400, 18},
			{330 * time.Second, 400, 17},
		}},
		{"a rise never waits for the scale-in cooldown", manager.TargetTrackingConfig{ScaleInCooldown: 5 * time.Minute}, []reading{
			{0, 1000, 10},
			{time.Second, 500, observeOnly},
			{5*time.Minute + time.Second, 500, 9},
			{6 * time.Minute, 1500, 15},
		}},
		{"scale-in disabled", manager.TargetTrackingConfig{ScaleInCooldown: time.Nanosecond, DisableScaleIn: true}, []reading{
			{0, 1000, 10},
			{time.Hour, 0, 10},
			{2 * time.Hour, 1500, 15},
		}},
		{"min and max clamp", manager.TargetTrackingConfig{Min: 2, Max: 8, ScaleInCooldown: time.Minute, MaxScaleInPerPass: -1}, []reading{
			{0, 0, 2},
			{time.Minute, 5000, 8},
			{2 * time.Minute, 900, 8},
			{3 * time.Minute, 0, 8},
			{4 * time.Minute, 0, 2},
		}},
		{"negative metrics count as zero, NaN is ignored", manager.TargetTrackingConfig{ScaleInCooldown: time.Minute, MaxScaleInPerPass: -1}, []reading{
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
		TargetPerServer: 100, ScaleInCooldown: time.Minute, WarmUp: 3 * time.Minute, MaxScaleInPerPass: -1,
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
	// The rise a minute after the scale-in at 4m doubled the window to 2m.
	assert.Equal(t, 1, demand(8*time.Minute, winding), "a server winding down is not warming")
}

func TestTargetTrackingKeepsWhatItHoldsUntilObserved(t *testing.T) {
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: 5 * time.Minute, MaxScaleInPerPass: -1})
	require.NoError(t, err)
	servers := held(1, 2, 1)
	servers[2].WindingDown = true

	req, err := m.Demand(context.Background(), manager.State{Now: start, Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 3, req.Target, "a restarted host keeps its servers")

	m.Observe(start.Add(time.Minute), 40)
	req, err = m.Demand(context.Background(), manager.State{Now: start.Add(5 * time.Minute), Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 3, req.Target, "the window counts from the first observation")
	req, err = m.Demand(context.Background(), manager.State{Now: start.Add(6 * time.Minute), Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 1, req.Target)
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
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: 5 * time.Minute, MaxScaleInPerPass: -1})
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
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: time.Minute, MaxScaleInPerPass: -1,
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
	_, err = manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 1, MaxScaleInPerPass: -1})
	assert.NoError(t, err, "a negative MaxScaleInPerPass means no cap")
}

// fleet returns n servers of weight 1 in service.
func fleet(n int) []manager.Server {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return held(w...)
}

// An eight-minute gap in the metric (the load balancer published nothing)
// reads as 0: it must not take the fleet down, and a real fall of that length
// takes off a little at a time.
func TestTargetTrackingTrafficGap(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		during float64
		least  int
	}{
		{"a zero with servers in service is missing data", 0, 18},
		{"a real fall is capped per scale-in", 100, 17},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, Min: 2})
			require.NoError(t, err)
			lowest := math.MaxInt
			for at := time.Duration(0); at < 20*time.Minute; at += 30 * time.Second {
				metric := 1800.0
				if at >= 10*time.Minute && at < 18*time.Minute {
					metric = tc.during
				}
				now := start.Add(at)
				m.Observe(now, metric)
				req, err := m.Demand(context.Background(), manager.State{Now: now, Servers: fleet(m.Target())})
				require.NoError(t, err)
				lowest = min(lowest, req.Target)
			}
			assert.Equal(t, tc.least, lowest, "the lowest target during the gap")
		})
	}
}

func TestTargetTrackingZeroWithoutServersInService(t *testing.T) {
	m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: time.Minute, MaxScaleInPerPass: -1})
	require.NoError(t, err)
	m.Observe(start, 300)
	_, err = m.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	m.Observe(start.Add(time.Second), 0)
	leaving := fleet(3)
	for i := range leaving {
		leaving[i].WindingDown = true
	}
	req, err := m.Demand(context.Background(), manager.State{Now: start.Add(2 * time.Minute), Servers: leaving})
	require.NoError(t, err)
	assert.Equal(t, 0, req.Target, "no server carries load: 0 is the load")

	idle, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, ScaleInCooldown: time.Minute,
		MaxScaleInPerPass: -1, ZeroIsIdle: true})
	require.NoError(t, err)
	idle.Observe(start, 300)
	_, err = idle.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	idle.Observe(start.Add(time.Second), 0)
	req, err = idle.Demand(context.Background(), manager.State{Now: start.Add(2 * time.Minute), Servers: fleet(3)})
	require.NoError(t, err)
	assert.Equal(t, 0, req.Target, "ZeroIsIdle: a 0 is no load")
}

// A load that swings between 600 and 1200 requests per second every twelve
// minutes must not wind servers down at each trough only to want them back
// at the next peak: that churned 150 wind-downs and restores in six hours.
// Once the swings stop, the fleet follows the load down again.
func TestTargetTrackingDoesNotFlapOnAWave(t *testing.T) {
	for _, tc := range []struct {
		period      time.Duration
		turns, fell int // at most, in five hours; 49 and 50, 12 and 19 without damping
	}{
		{12 * time.Minute, 1, 1},
		{30 * time.Minute, 6, 6}, // a slow wave: about one scale-in an hour
	} {
		period := tc.period
		t.Run(period.String(), func(t *testing.T) {
			m, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: 100, Min: 2})
			require.NoError(t, err)
			var targets []int
			pass := func(at time.Duration, metric float64) {
				now := start.Add(at)
				m.Observe(now, metric)
				req, err := m.Demand(context.Background(), manager.State{Now: now, Servers: fleet(m.Target())})
				require.NoError(t, err)
				targets = append(targets, req.Target)
			}
			const wave = 6 * time.Hour
			for at := time.Duration(0); at < wave; at += 30 * time.Second {
				pass(at, 900-300*math.Cos(2*math.Pi*at.Minutes()/period.Minutes()))
			}
			// Direction changes, as the scaler's flapping detector counts
			// them, and servers wound down, after the first hour.
			turns, dir, falls := 0, 0, 0
			for i := 120; i < len(targets); i++ {
				d := targets[i] - targets[i-1]
				if d > 0 && dir < 0 || d < 0 && dir > 0 {
					turns++
				}
				if d < 0 {
					falls += targets[i-1] - targets[i]
				}
				if d != 0 {
					dir = d
				}
			}
			assert.LessOrEqual(t, turns, tc.turns, "the target changed direction %d times in five hours", turns)
			assert.LessOrEqual(t, falls, tc.fell, "%d servers' worth of scale-ins in five hours", falls)
			assert.GreaterOrEqual(t, m.Target(), 11, "the peak needs 12 servers, 11 within the tolerance")

			for at := wave; at < wave+2*time.Hour; at += 30 * time.Second {
				pass(at, 300)
			}
			assert.Equal(t, 3, m.Target(), "two hours after the swings stopped")
		})
	}
}
