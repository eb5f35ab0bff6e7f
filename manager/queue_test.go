package manager_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

var start = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// step is one moment of a queue's life: an observation of the queue, then
// (unless want is observeOnly) a pass that must yield target want.
type step struct {
	at              time.Duration
	queued, running int
	want            int
}

const observeOnly = -1

func TestQueueScaling(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		cfg   manager.QueueConfig
		steps []step
	}{
		{"scales up at once", manager.QueueConfig{}, []step{
			{0, 0, 0, 0},
			{30 * time.Second, 4, 1, 5},
			{time.Minute, 20, 5, 25},
		}},
		{"jobs per unit round up", manager.QueueConfig{JobsPerUnit: 4}, []step{
			{0, 1, 0, 1},
			{time.Minute, 5, 4, 3},
			{2 * time.Minute, 8, 8, 4},
		}},
		{"holds during the delay, drops after it", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute}, []step{
			{0, 10, 0, 10},
			{time.Minute, 2, 0, 10},
			{3 * time.Minute, 2, 0, 10},
			{6*time.Minute - time.Second, 2, 0, 10},
			{6 * time.Minute, 2, 0, 2},
		}},
		{"the default delay is one minute", manager.QueueConfig{}, []step{
			{0, 10, 0, 10},
			{time.Second, 0, 0, 10},
			{time.Minute, 0, 0, 10},
			{time.Minute + time.Second, 0, 0, 0},
		}},
		{"demand back at the target restarts the delay", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute}, []step{
			{0, 10, 0, 10},
			{time.Minute, 2, 0, 10},
			{3 * time.Minute, 10, 0, 10},
			{4 * time.Minute, 2, 0, 10},
			{8 * time.Minute, 2, 0, 10},
			{9 * time.Minute, 2, 0, 2},
		}},
		{"a rise between passes restarts the delay", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute}, []step{
			{0, 10, 0, 10},
			{time.Minute, 2, 0, 10},
			{2 * time.Minute, 12, 0, observeOnly}, // gone by the next pass
			{2*time.Minute + 10*time.Second, 2, 0, observeOnly},
			{6 * time.Minute, 2, 0, 10},
			{7*time.Minute + 10*time.Second, 2, 0, 2},
		}},
		{"drops to the highest demand seen during the delay", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute}, []step{
			{0, 10, 0, 10},
			{time.Minute, 2, 0, 10},
			{2 * time.Minute, 6, 0, observeOnly},
			{3 * time.Minute, 3, 0, observeOnly},
			{6 * time.Minute, 2, 0, 6},
			// The highest demand of the last five minutes: 3, in effect
			// from 3m to 6m.
			{10 * time.Minute, 2, 0, 3},
			{11*time.Minute - time.Second, 2, 0, 3},
			{11 * time.Minute, 2, 0, 2},
		}},
		{"a rise above the target during the delay scales up", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute}, []step{
			{0, 10, 0, 10},
			{time.Minute, 2, 0, 10},
			{2 * time.Minute, 15, 0, 15},
			{3 * time.Minute, 2, 0, 15},
			{8 * time.Minute, 2, 0, 2},
		}},
		{"min and max clamp", manager.QueueConfig{Min: 2, Max: 8, ScaleDownDelay: time.Minute}, []step{
			{0, 0, 0, 2},
			{time.Minute, 50, 50, 8},
			{2 * time.Minute, 9, 0, 8},
			{3 * time.Minute, 0, 0, 8},
			{4 * time.Minute, 0, 0, 2},
		}},
		{"negative counts count as zero", manager.QueueConfig{ScaleDownDelay: time.Minute}, []step{
			{0, -5, 3, 3},
			{time.Minute, 2, -9, 3},
			{2 * time.Minute, 2, -9, 2},
		}},
		{"a tiny delay follows drops at the next pass", manager.QueueConfig{ScaleDownDelay: time.Nanosecond}, []step{
			{0, 10, 0, 10},
			{30 * time.Second, 3, 0, observeOnly},
			{60 * time.Second, 4, 0, 4},
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			q, err := manager.NewQueue("batch", tc.cfg)
			require.NoError(t, err)
			for i, s := range tc.steps {
				now := start.Add(s.at)
				q.Observe(now, s.queued, s.running)
				if s.want == observeOnly {
					continue
				}
				req, err := q.Demand(context.Background(), manager.State{Now: now})
				require.NoError(t, err)
				require.Equal(t, s.want, req.Target, "step %d at %v: %d queued, %d running", i, s.at, s.queued, s.running)
				assert.Equal(t, s.want, q.Target())
			}
		})
	}
}

func held(weights ...int) []manager.Server {
	servers := make([]manager.Server, len(weights))
	for i, w := range weights {
		servers[i] = manager.Server{ID: fmt.Sprintf("i-%d", i), Weight: w}
	}
	return servers
}

func TestQueueKeepsWhatItHoldsUntilObserved(t *testing.T) {
	q, err := manager.NewQueue("batch", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute})
	require.NoError(t, err)
	servers := held(1, 2, 1)
	servers[2].WindingDown = true // not working for it: not counted

	req, err := q.Demand(context.Background(), manager.State{Now: start, Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 3, req.Target, "a restarted host keeps its servers")

	// The queue turns out to be empty: the usual delay applies.
	q.Observe(start.Add(time.Minute), 0, 0)
	req, err = q.Demand(context.Background(), manager.State{Now: start.Add(time.Minute), Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 3, req.Target)
	req, err = q.Demand(context.Background(), manager.State{Now: start.Add(6 * time.Minute), Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 0, req.Target)
}

func TestQueueFirstPassAfterObservation(t *testing.T) {
	q, err := manager.NewQueue("batch", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute})
	require.NoError(t, err)
	q.Observe(start, 1, 0)
	req, err := q.Demand(context.Background(), manager.State{Now: start, Servers: held(1, 1, 1, 1)})
	require.NoError(t, err)
	assert.Equal(t, 4, req.Target, "what it holds, until the delay has passed")
	req, err = q.Demand(context.Background(), manager.State{Now: start.Add(5 * time.Minute), Servers: held(1, 1, 1, 1)})
	require.NoError(t, err)
	assert.Equal(t, 1, req.Target)
}

func TestQueueIdleServers(t *testing.T) {
	q, err := manager.NewQueue("batch", manager.QueueConfig{})
	require.NoError(t, err)
	servers := held(1, 1, 1, 1) // i-0 .. i-3
	demand := func() []string {
		req, err := q.Demand(context.Background(), manager.State{Now: start, Servers: servers})
		require.NoError(t, err)
		return req.Idle
	}
	assert.Empty(t, demand())

	q.MarkIdle("i-3", true)
	q.MarkIdle("i-1", true)
	q.MarkIdle("i-9", true) // not one of its servers
	assert.Equal(t, []string{"i-1", "i-3"}, demand())

	q.MarkIdle("i-3", false)
	assert.Equal(t, []string{"i-1"}, demand())

	q.Notify(manager.Notice{Kind: manager.WindDown, Server: servers[1]})
	assert.Equal(t, []string{"i-1"}, demand(), "still its server while winding down")

	q.Notify(manager.Notice{Kind: manager.Revoked, Server: servers[1]})
	assert.Empty(t, demand(), "a revoked server is forgotten")
	q.Notify(manager.Notice{Kind: manager.Granted, Server: servers[1]})
	assert.Empty(t, demand(), "and is not idle when granted again")
}

func TestQueueRequestCarriesMarketAndZones(t *testing.T) {
	zones := map[string]int{"eu-west-1a": 2}
	q, err := manager.NewQueue("batch", manager.QueueConfig{Market: manager.SpotOnly, ZoneMinimums: zones})
	require.NoError(t, err)
	zones["eu-west-1a"] = 5
	q.Observe(start, 3, 0)
	req, err := q.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	assert.Equal(t, manager.Request{Target: 3, Market: manager.SpotOnly, ZoneMinimums: map[string]int{"eu-west-1a": 2}}, req)
}

func TestQueueSignal(t *testing.T) {
	queued, running := 6, 1
	errDown := errors.New("queue service down")
	var fail bool
	q, err := manager.NewQueue("batch", manager.QueueConfig{JobsPerUnit: 2, ScaleDownDelay: time.Minute,
		Signal: func(context.Context) (int, int, error) {
			if fail {
				return 0, 0, errDown
			}
			return queued, running, nil
		}})
	require.NoError(t, err)
	req, err := q.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	assert.Equal(t, 4, req.Target)

	fail = true
	_, err = q.Demand(context.Background(), manager.State{Now: start.Add(30 * time.Second)})
	require.ErrorIs(t, err, errDown)
	assert.Contains(t, err.Error(), `queue "batch"`)

	// The pass time of each Demand is the observation time.
	fail, queued, running = false, 0, 0
	req, err = q.Demand(context.Background(), manager.State{Now: start.Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 4, req.Target)
	req, err = q.Demand(context.Background(), manager.State{Now: start.Add(2 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 0, req.Target)
}

func TestQueueLateObservation(t *testing.T) {
	// Two goroutines report the queue; one report arrives after a newer one.
	q, err := manager.NewQueue("batch", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute})
	require.NoError(t, err)
	q.Observe(start, 10, 0)
	_, err = q.Demand(context.Background(), manager.State{Now: start})
	require.NoError(t, err)
	q.Observe(start.Add(time.Minute), 1, 0)
	q.Observe(start.Add(2*time.Minute), 1, 0)
	q.Observe(start.Add(2*time.Minute-time.Second), 7, 0) // late
	req, err := q.Demand(context.Background(), manager.State{Now: start.Add(2 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 10, req.Target)
	req, err = q.Demand(context.Background(), manager.State{Now: start.Add(6 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 7, req.Target, "the late report counts as demand seen during the delay")
	req, err = q.Demand(context.Background(), manager.State{Now: start.Add(11 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 1, req.Target, "but not as the queue's latest state")
}

func TestQueueConcurrentUse(t *testing.T) {
	q, err := manager.NewQueue("batch", manager.QueueConfig{ScaleDownDelay: time.Minute})
	require.NoError(t, err)
	servers := held(1, 1, 1)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 200 {
				q.Observe(start.Add(time.Duration(i)*time.Second), i%7, w)
				q.MarkIdle(servers[w].ID, i%2 == 0)
				q.Notify(manager.Notice{Kind: manager.Revoked, Server: servers[(w+1)%3]})
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			req, err := q.Demand(context.Background(), manager.State{Now: start.Add(time.Duration(i) * time.Second), Servers: servers})
			assert.NoError(t, err)
			assert.GreaterOrEqual(t, req.Target, 0)
		}
	})
	wg.Wait()
}

func TestNewQueueValidates(t *testing.T) {
	for _, tc := range []struct {
		field string
		cfg   manager.QueueConfig
	}{
		{"JobsPerUnit", manager.QueueConfig{JobsPerUnit: -1}},
		{"Min", manager.QueueConfig{Min: -1}},
		{"Max", manager.QueueConfig{Max: -1}},
		{"Min", manager.QueueConfig{Min: 5, Max: 4}},
		{"ScaleDownDelay", manager.QueueConfig{ScaleDownDelay: -time.Second}},
		{"Market", manager.QueueConfig{Market: -1}},
		{"ZoneMinimums", manager.QueueConfig{ZoneMinimums: map[string]int{"us-east-1a": -2}}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, err := manager.NewQueue("x", tc.cfg)
			require.ErrorIs(t, err, manager.ErrInvalidConfig)
			var ce *manager.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.True(t, strings.HasPrefix(err.Error(), `manager: queue "x": `+tc.field+" "), err.Error())
		})
	}
	_, err := manager.NewQueue("x", manager.QueueConfig{JobsPerUnit: -3})
	assert.EqualError(t, err, `manager: queue "x": JobsPerUnit must be positive, got -3`)
	_, err = manager.NewQueue("", manager.QueueConfig{})
	assert.ErrorIs(t, err, manager.ErrInvalidConfig)
	_, err = manager.NewQueue("x", manager.QueueConfig{Min: 3})
	assert.NoError(t, err, "Min without Max: no cap")
}

func TestQueueAfterARestartCountsASwapInProgressOnce(t *testing.T) {
	q, err := manager.NewQueue("batch", manager.QueueConfig{ScaleDownDelay: 5 * time.Minute})
	require.NoError(t, err)
	// A swap a crash cut in half: the spot replacement already works for
	// the manager, and the on-demand server it replaces is about to go.
	servers := held(1, 1)
	servers[0].Replaced = true
	req, err := q.Demand(context.Background(), manager.State{Now: start, Servers: servers})
	require.NoError(t, err)
	assert.Equal(t, 1, req.Target, "one server's worth of work, not two")
}

func TestInstantManagersSayTheyNeverBlock(t *testing.T) {
	f, err := manager.NewFixed("f", 1)
	require.NoError(t, err)
	q, err := manager.NewQueue("q", manager.QueueConfig{})
	require.NoError(t, err)
	signalled, err := manager.NewQueue("s", manager.QueueConfig{Signal: func(context.Context) (int, int, error) { return 0, 0, nil }})
	require.NoError(t, err)
	assert.True(t, f.DemandIsInstant())
	assert.True(t, q.DemandIsInstant())
	assert.False(t, signalled.DemandIsInstant(), "a Signal may block: called with a timeout")
}

func TestQueueWakesTheScalerWhenAnObservationAsksForMore(t *testing.T) {
	q, err := manager.NewQueue("jobs", manager.QueueConfig{JobsPerUnit: 1})
	require.NoError(t, err)
	woken := 0
	q.SetWake(func() { woken++ })
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q.Observe(t0, 2, 0)
	assert.Zero(t, woken, "no target yet: the first pass reads it")
	_, err = q.Demand(context.Background(), manager.State{Now: t0})
	require.NoError(t, err)
	q.Observe(t0.Add(time.Second), 1, 0)
	assert.Zero(t, woken, "less than the target: nothing to hurry")
	q.Observe(t0.Add(2*time.Second), 5, 0)
	assert.Equal(t, 1, woken, "more than the target: the scaler passes at once")
}
