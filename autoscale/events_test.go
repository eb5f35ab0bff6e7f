package autoscale_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// records is a slog.Handler that keeps every record.
type records struct {
	mu  sync.Mutex
	all []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = append(h.all, r.Clone())
	return nil
}

func (h *records) atLeast(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.all {
		if r.Level >= level {
			var b []string
			r.Attrs(func(a slog.Attr) bool { b = append(b, a.String()); return true })
			out = append(out, fmt.Sprint(r.Message, b))
		}
	}
	return out
}

func sumCapacity(events []autoscale.Event) int {
	n := 0
	for _, e := range events {
		n += e.Capacity
	}
	return n
}

// An operator pausing during an incident must not be paged for it: held
// launches are reported as held, never as failed.
func TestPauseIsNotALaunchFailure(t *testing.T) {
	srv := newServers()
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), fixed(t, "jobs", 2)))
	w.scaler.Pause(autoscale.PauseOptions{})
	w.steps(10)

	assert.Empty(t, w.scaler.Alarms(), "no alarm for a pause")
	assert.Empty(t, w.eventsOf(pool.EventAlarm))
	assert.Empty(t, w.eventsOf(pool.EventLaunchFailed), "pausing is not failing")
	held := w.eventsOf(pool.EventLaunchCapped)
	assert.Equal(t, 10*2, sumCapacity(held), "each pass says what the pause holds back")
	for _, e := range held {
		assert.Equal(t, "paused", e.Reason)
	}

	w.scaler.Resume()
	w.steps(8)
	assert.Len(t, w.grantedTo("jobs"), 2)
	assert.Empty(t, w.scaler.Alarms())
}

// threePools is three pools of 3 units each: three launch calls in the
// first pass.
func threePools(t *testing.T, srv *servers) []pool.Config {
	var cfgs []pool.Config
	for _, name := range []string{"a", "b", "c"} {
		cfg := poolConfig(srv.role(t), fixed(t, name+"-jobs", 3))
		cfg.Name = name
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

func TestLaunchCallsCapIsReportedAndClears(t *testing.T) {
	srv := newServers()
	sim := newSim(t)
	w := newWorld(t, sim, threePools(t, srv)...)
	w.opts.Rails = autoscale.Rails{MaxLaunchCallsPerPass: 1}
	w.restart()
	callsAlarms := func() int {
		n := 0
		for _, e := range w.eventsOf(pool.EventAlarm) {
			if strings.HasPrefix(e.Reason, string(autoscale.AlarmLaunchCalls)) {
				n++
			}
		}
		return n
	}

	w.step()
	assert.Equal(t, 1, sim.Calls()[ec2sim.OpLaunch])
	held := w.eventsOf(pool.EventLaunchCapped)
	require.NotEmpty(t, held, "each launch the cap held back is reported")
	assert.Equal(t, 9-w.launched(), sumCapacity(held), "what is held back is what is missing")
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmLaunchCalls)
	for i := 0; w.launched() < 9; i++ {
		require.Less(t, i, 10, "the cap slows launches, it does not stop them")
		sim.ResetCalls()
		w.step()
		assert.LessOrEqual(t, sim.Calls()[ec2sim.OpLaunch], 1)
	}
	assert.Equal(t, 1, callsAlarms(), "raised once while the cap bites, not every pass")
	w.step()
	assert.NotContains(t, alarmKinds(w.scaler), autoscale.AlarmLaunchCalls, "cleared once the cap stops biting")
	var cleared []string
	for _, e := range w.eventsOf(pool.EventAlarmCleared) {
		cleared = append(cleared, e.Reason)
	}
	assert.Equal(t, []string{string(autoscale.AlarmLaunchCalls)}, cleared)
}

// A dry run reports what the live scaler would do, caps included.
func TestDryRunReportsLaunchesAfterTheCaps(t *testing.T) {
	pass := func(dryRun bool) (launches []autoscale.Event, held []autoscale.Event) {
		srv := newServers()
		w := newWorld(t, newSim(t), threePools(t, srv)...)
		w.opts.Rails = autoscale.Rails{MaxLaunchCallsPerPass: 1}
		w.opts.DryRun = dryRun
		w.restart()
		w.step()
		if dryRun {
			assert.Zero(t, w.launched())
			assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmLaunchCalls, "the dry run's alarms are the live ones")
		}
		return w.eventsOf(pool.EventLaunch), w.eventsOf(pool.EventLaunchCapped)
	}
	live, liveHeld := pass(false)
	dry, dryHeld := pass(true)
	require.NotEmpty(t, dry)
	assert.Len(t, dry, len(live), "as many launches as live")
	assert.Equal(t, sumCapacity(live), sumCapacity(dry), "as many units as live")
	assert.Equal(t, sumCapacity(liveHeld), sumCapacity(dryHeld), "the same held back")
	for _, e := range slices.Concat(dry, dryHeld) {
		assert.True(t, e.DryRun)
	}
}

func TestLaunchEventsCarryTypeZoneMarketAndInstances(t *testing.T) {
	srv := newServers()
	sim := newSim(t)
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 4)))
	w.step()

	byID := map[string]awsctl.Instance{}
	for _, inst := range w.live() {
		byID[inst.ID] = inst
	}
	require.Len(t, byID, 4)
	seen := 0
	for _, e := range w.eventsOf(pool.EventLaunch) {
		require.NotEmpty(t, e.Instances)
		assert.Equal(t, len(e.Instances), e.Capacity, "weight 1: one unit per instance")
		for _, id := range e.Instances {
			inst, ok := byID[id]
			require.True(t, ok, "%s is a launched instance", id)
			assert.Equal(t, inst.Type, e.InstanceType)
			assert.Equal(t, inst.Zone, e.Zone)
			assert.Equal(t, inst.Market, e.Market)
			seen++
		}
	}
	assert.Equal(t, 4, seen, "every launched instance is in a launch event")
}

func TestWindDownPastItsDeadlineIsItsOwnKind(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 2)
	cfg := poolConfig(srv.role(t), m)
	cfg.OnWindDownTimeout = pool.Terminate
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	granted := w.grantedTo("jobs")
	require.Len(t, granted, 2)
	for _, inst := range granted {
		srv.setBusy(inst.ID, true) // never finishes its jobs
	}
	require.NoError(t, m.Set(0))
	w.steps(int(cfg.WindDownTimeout/w.opts.Interval) + 6)

	var timedOut []string
	for _, e := range w.eventsOf(pool.EventWindDownTimedOut) {
		timedOut = append(timedOut, e.Instance)
	}
	var want []string
	for _, inst := range granted {
		want = append(want, inst.ID)
	}
	assert.ElementsMatch(t, want, timedOut)
	for _, e := range w.eventsOf(pool.EventWindDown) {
		assert.NotContains(t, e.Reason, "terminating anyway", "a timeout is not reported as a plain wind-down")
	}
	assert.Empty(t, w.live())
}

// Records say when the decision was made on the scaler's clock, not when
// the process happened to log it.
func TestLogRecordsUseTheScalersClock(t *testing.T) {
	srv := newServers()
	sim := newSim(t)
	h := &records{}
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 2)))
	w.opts.Logger = slog.New(h)
	w.restart()
	at := sim.Now()
	w.step()

	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.all)
	for _, r := range h.all {
		assert.True(t, r.Time.Equal(at), "record %q at %v, pass at %v", r.Message, r.Time, at)
	}
}

// blockedList is a cloud whose listing waits until its context ends.
type blockedList struct {
	awsctl.CloudClient
	once    sync.Once
	entered chan struct{}
	calls   atomic.Int32
}

func (c *blockedList) ListInstances(ctx context.Context, f awsctl.ListFilter) ([]awsctl.Instance, error) {
	c.calls.Add(1)
	c.once.Do(func() { close(c.entered) })
	<-ctx.Done()
	return nil, fmt.Errorf("list instances: %w", ctx.Err())
}

// Every deploy cancels Run's context: that is a clean stop, not a cloud
// error.
func TestCancellingRunIsACleanStop(t *testing.T) {
	srv := newServers()
	sim := newSim(t)
	h := &records{}
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 2)))
	cloud := &blockedList{CloudClient: sim, entered: make(chan struct{})}
	w.cloud = cloud
	w.opts.Logger = slog.New(h)
	w.restart()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.scaler.Run(ctx) }()
	<-cloud.entered // a pass is listing
	cancel()
	require.NoError(t, <-done)

	assert.Empty(t, w.eventsOf(pool.EventCloudError))
	assert.Empty(t, h.atLeast(slog.LevelWarn))

	// A Run started with a context already done does not try a pass.
	listed := cloud.calls.Load()
	require.NoError(t, w.scaler.Run(ctx))
	assert.Equal(t, listed, cloud.calls.Load())
	assert.Empty(t, w.eventsOf(pool.EventCloudError))
}

func TestAManagersOwnMaxIsReportedLikeThePools(t *testing.T) {
	q, err := manager.NewQueue("jobs", manager.QueueConfig{JobsPerUnit: 1, Max: 2, ScaleDownDelay: time.Nanosecond})
	require.NoError(t, err)
	cfg := poolConfig(newServers().role(t), q)
	cfg.Max = 3
	w := newWorld(t, newSim(t), cfg)
	clamps := func() []string {
		var out []string
		for _, e := range w.eventsOf(pool.EventDemandClamped) {
			out = append(out, e.Reason)
		}
		return out
	}
	for range 5 {
		q.Observe(w.sim.Now(), 5, 0)
		w.step()
	}
	require.Equal(t, []string{"wants 5, above its own max 2"}, clamps(), "once while it bites")
	for range 3 {
		q.Observe(w.sim.Now(), 1, 0)
		w.step()
	}
	assert.Equal(t, []string{"wants 5, above its own max 2", "no longer clamped"}, clamps())
}
