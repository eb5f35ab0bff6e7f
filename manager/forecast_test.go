package manager_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// day0 is a midnight UTC, where the slots of a daily season start.
var day0 = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)

// toyPool is a toy pool for a manager: a pass every 30 s, and capacity that
// becomes ready boot after the pass that asked for it.
type toyPool struct {
	t *testing.T
	m interface {
		manager.Manager
		Observe(time.Time, int, int)
	}
	boot  time.Duration
	asked []int // target asked at each pass
	ready int
	// late counts passes whose demand the capacity did not cover a
	// goal's wait (2 minutes) later.
	late    int
	recent  []int // demand of the latest passes
	lastReq int
}

const toyPass = 30 * time.Second

// run drives the pool from `from` for `length`, with demand(t) units.
func (p *toyPool) run(from time.Time, length time.Duration, demand func(time.Time) int) {
	lag := int(p.boot / toyPass)
	for now := from; now.Before(from.Add(length)); now = now.Add(toyPass) {
		d := demand(now)
		p.m.Observe(now, d, 0)
		if n := len(p.asked); n > lag {
			p.ready = p.asked[n-1-lag]
		}
		st := manager.State{Now: now, BootTime: p.boot, Servers: []manager.Server{{ID: "i-all", Weight: p.ready}}}
		if p.ready == 0 {
			st.Servers = nil
		}
		req, err := p.m.Demand(context.Background(), st)
		require.NoError(p.t, err)
		p.asked = append(p.asked, req.Target)
		if len(p.asked) > 1000 {
			p.asked = append(p.asked[:0], p.asked[len(p.asked)-lag-1:]...)
		}
		p.lastReq = req.Target
		p.recent = append(p.recent, d)
		if lag := int(2 * time.Minute / toyPass); len(p.recent) > lag {
			if p.recent[0] > p.ready {
				p.late++
			}
			p.recent = p.recent[1:]
		}
	}
}

// morning is a working day's demand: 10 units at night, a ramp of 2 units a
// minute from 08:00 to 10:00, 250 units until 18:00; all day, one more unit
// for 5 minutes in every 10.
func morning(t time.Time) int {
	m := t.Hour()*60 + t.Minute()
	jitter := 0
	if t.Minute()%10 < 5 {
		jitter = 1
	}
	switch {
	case m < 8*60 || m >= 18*60:
		return 10 + jitter
	case m < 10*60:
		return 10 + 2*(m-8*60) + jitter
	default:
		return 250 + jitter
	}
}

func newTestForecast(t *testing.T, cfg manager.ForecastConfig) *manager.Forecast {
	t.Helper()
	if cfg.Goal == (manager.WaitGoal{}) {
		cfg.Goal = manager.WaitGoal{Quantile: 0.95, Wait: 2 * time.Minute}
	}
	cfg.Queue.ScaleDownDelay = time.Nanosecond
	f, err := manager.NewForecast("batch", cfg)
	require.NoError(t, err)
	return f
}

func TestForecastLaunchesAheadOfALearnedMorningRamp(t *testing.T) {
	f := newTestForecast(t, manager.ForecastConfig{})
	p := &toyPool{t: t, m: f, boot: 5 * time.Minute}
	p.run(day0, 4*24*time.Hour, morning)

	// Day 5: at night the buffer covers the night's small rises; from
	// just before the ramp it covers the ramp's rise over the lead time
	// (5m boot + 30s slack - 2m wait = 3m30s, 7 units), ahead of the
	// first rise.
	p.run(day0.Add(4*24*time.Hour), 3*time.Hour, morning)
	night := f.Status()
	assert.Equal(t, 3*time.Minute+30*time.Second, night.Lead)
	assert.Equal(t, 5*time.Minute, night.BootTime, "the pool's boot time is used")
	assert.Less(t, night.Buffer, 7, "night: demand rises by 1 at a time")

	p.run(day0.Add(4*24*time.Hour+3*time.Hour), 5*time.Hour-2*time.Minute, morning) // to 07:58
	before := f.Status()
	assert.GreaterOrEqual(t, before.Buffer, 7, "before the ramp: launched ahead of it")
	assert.Greater(t, before.Buffer, night.Buffer)
	assert.Equal(t, morning(day0.Add(7*time.Hour+58*time.Minute))+before.Buffer, p.lastReq)

	// Over the ramp, hardly any pass waits past the goal's 2 minutes for
	// capacity, where with the plain Queue every pass does.
	late := p.late
	p.run(day0.Add(4*24*time.Hour+8*time.Hour-2*time.Minute), 2*time.Hour, morning)
	rampLate := p.late - late

	q, err := manager.NewQueue("batch", manager.QueueConfig{ScaleDownDelay: time.Nanosecond})
	require.NoError(t, err)
	plain := &toyPool{t: t, m: q, boot: 5 * time.Minute}
	plain.run(day0.Add(4*24*time.Hour+8*time.Hour-2*time.Minute), 2*time.Hour, morning)
	assert.Greater(t, plain.late, 200, "plain Queue: every pass of the ramp waits past the goal")
	assert.Less(t, rampLate, plain.late/20)

	st := f.Status()
	assert.Greater(t, st.Rises, 0)
	assert.GreaterOrEqual(t, st.Attainment, 0.95)
	assert.Greater(t, st.BufferUnitHours, 0.0)
	assert.GreaterOrEqual(t, st.IdleUnitHours, st.BufferUnitHours/2)
	assert.InDelta(t, 4.0, st.Seasons, 1.1)
}

func TestForecastSharesTheBufferByTheRateOfRises(t *testing.T) {
	// Jobs of 2 units, one in five of 10 (by turns, hour by hour and day
	// by day), each for 3 minutes: every 6
	// minutes from 00:00 to 06:00, every hour from 12:00 to 18:00. The
	// sizes are alike; the busy hours have ten times the rises, so they
	// hold more of the buffer: it meets more rises there for each
	// unit-hour.
	jobs := func(t time.Time) int {
		m := t.Hour()*60 + t.Minute()
		every := 0
		switch {
		case m < 6*60:
			every = 6
		case m >= 12*60 && m < 18*60:
			every = 60
		default:
			return 0
		}
		switch {
		case m%every >= 3:
			return 0
		case (t.YearDay()+m/every)%5 == 4:
			return 10
		default:
			return 2
		}
	}
	f := newTestForecast(t, manager.ForecastConfig{})
	// A lead time of 4m + 30s - 2m = 2m30s: shorter than the gaps
	// between jobs.
	p := &toyPool{t: t, m: f, boot: 4 * time.Minute}
	p.run(day0, 7*24*time.Hour+3*time.Hour, jobs)
	busy := f.Status().Buffer
	p.run(day0.Add(7*24*time.Hour+3*time.Hour), 12*time.Hour, jobs)
	quiet := f.Status().Buffer
	assert.Greater(t, busy, quiet, "03:00 sees more rises than 15:00")
	assert.Positive(t, quiet, "15:00 sees rises too")
	assert.Equal(t, 10, busy, "never above the largest rise")
	assert.GreaterOrEqual(t, f.Status().Attainment, 0.95)
}

func TestForecastWarmsUpOnTheLargestRiseSeen(t *testing.T) {
	f := newTestForecast(t, manager.ForecastConfig{BootTime: 5 * time.Minute})
	ctx := context.Background()
	now := day0
	pass := func() manager.ForecastStatus {
		_, err := f.Demand(ctx, manager.State{Now: now})
		require.NoError(t, err)
		return f.Status()
	}
	// A job of size units comes and stays 5 minutes (its size is known
	// once the goal's wait after it is over), then 5 quiet minutes.
	job := func(size int) {
		f.Observe(now, size, 0)
		now = now.Add(5 * time.Minute)
		pass()
		f.Observe(now, 0, 0)
		now = now.Add(5 * time.Minute)
	}
	f.Observe(now, 0, 0)
	st := pass()
	assert.Zero(t, st.Buffer, "no rise seen: no buffer")
	job(3)
	job(12)
	job(5)
	st = pass()
	assert.Equal(t, 3, st.Sizes)
	assert.Zero(t, st.MissBudget, "few rises seen: no miss budgeted")
	assert.Equal(t, 12, st.Buffer, "the largest rise seen")

	// Hundreds of jobs later, of 2 units but for one in 50 of 12: the
	// sample tells the rare large ones may be missed (2% of rises).
	for k := range 500 {
		if k%50 == 0 {
			job(12)
		} else {
			job(2)
		}
	}
	st = pass()
	assert.Greater(t, st.MissBudget, 0.03)
	assert.Less(t, st.MissBudget, 0.045)
	assert.Less(t, st.Buffer, 12, "the 2% of rises above the common size are within the budget")
}

func TestForecastWithoutADailyPatternKeepsAFlatBuffer(t *testing.T) {
	// The same jump of 6 units every 10 minutes, all day long.
	jumps := func(t time.Time) int {
		if t.Minute()%10 < 3 {
			return 26
		}
		return 20
	}
	f := newTestForecast(t, manager.ForecastConfig{})
	p := &toyPool{t: t, m: f, boot: 5 * time.Minute}
	p.run(day0, 3*24*time.Hour+3*time.Hour+9*time.Minute, jumps)
	night := f.Status().Buffer
	p.run(day0.Add(3*24*time.Hour+3*time.Hour+9*time.Minute), 12*time.Hour, jumps)
	day := f.Status().Buffer
	assert.Equal(t, night, day, "no daily shape: the buffer is the same at 03:09 and 15:09")
	assert.Positive(t, day, "a buffer for the jumps")
	assert.GreaterOrEqual(t, f.Status().Attainment, 0.95)
}

func TestForecastMeasuresAttainment(t *testing.T) {
	f := newTestForecast(t, manager.ForecastConfig{BootTime: 5 * time.Minute})
	ctx := context.Background()
	held := func(n int) manager.State { return manager.State{Servers: []manager.Server{{ID: "a", Weight: n}}} }
	at := func(d time.Duration) time.Time { return day0.Add(d) }

	pass := func(d time.Duration, ready int) {
		st := held(ready)
		st.Now = at(d)
		_, err := f.Demand(ctx, st)
		require.NoError(t, err)
	}
	pass(0, 4)
	f.Observe(at(time.Second), 3, 0) // covered when it comes: met
	f.Observe(at(2*time.Second), 6, 0)
	pass(time.Minute, 4)
	f.Notify(manager.Notice{Kind: manager.Granted, Server: manager.Server{ID: "b", Weight: 2}}) // covered within a minute: met
	f.Observe(at(2*time.Minute), 9, 0)
	pass(3*time.Minute, 6)
	pass(5*time.Minute+time.Second, 6) // waited past the goal's 2 minutes: missed
	st := f.Status()
	assert.Equal(t, 3, st.Rises)
	assert.Equal(t, 2, st.Met)
	assert.InDelta(t, 2.0/3, st.Attainment, 1e-9)
	pass(6*time.Minute, 10)
	f.Notify(manager.Notice{Kind: manager.WindDown, Server: manager.Server{ID: "c", Weight: 3}})
	f.Observe(at(6*time.Minute+time.Second), 10, 0) // 7 units work: waits
	pass(9*time.Minute, 7)
	st = f.Status()
	assert.Equal(t, 4, st.Rises)
	assert.Equal(t, 2, st.Met, "a server winding down works no more")
	assert.Equal(t, manager.WaitGoal{Quantile: 0.95, Wait: 2 * time.Minute}, st.Goal)
	assert.Equal(t, 5*time.Minute, st.BootTime, "the configured boot time while the pool has none")
}

func TestForecastRejectsBadConfig(t *testing.T) {
	goal := manager.WaitGoal{Quantile: 0.95, Wait: time.Minute}
	for _, tc := range []struct {
		cfg   manager.ForecastConfig
		field string
	}{
		{manager.ForecastConfig{}, "Goal.Quantile"},
		{manager.ForecastConfig{Goal: manager.WaitGoal{Quantile: 1, Wait: time.Minute}}, "Goal.Quantile"},
		{manager.ForecastConfig{Goal: manager.WaitGoal{Quantile: 0.9}}, "Goal.Wait"},
		{manager.ForecastConfig{Goal: goal, BootTime: -time.Second}, "BootTime"},
		{manager.ForecastConfig{Goal: goal, PassSlack: -time.Second}, "PassSlack"},
		{manager.ForecastConfig{Goal: manager.WaitGoal{Quantile: math.NaN(), Wait: time.Minute}}, "Goal.Quantile"},
		{manager.ForecastConfig{Goal: goal, Season: -time.Hour}, "Season"},
		{manager.ForecastConfig{Goal: goal, Slot: -time.Hour}, "Slot"},
		{manager.ForecastConfig{Goal: goal, Slot: 7 * time.Minute}, "Slot"},
		{manager.ForecastConfig{Goal: goal, Season: time.Hour, Slot: 2 * time.Hour}, "Slot"},
		{manager.ForecastConfig{Goal: goal, Season: 7 * 24 * time.Hour, Slot: time.Minute}, "Slot"},
		{manager.ForecastConfig{Goal: goal, Memory: -1}, "Memory"},
		{manager.ForecastConfig{Goal: goal, MaxBuffer: -1}, "MaxBuffer"},
		{manager.ForecastConfig{Goal: goal, Queue: manager.QueueConfig{Min: -1}}, "Queue.Min"},
		{manager.ForecastConfig{Goal: goal, Queue: manager.QueueConfig{Market: -1}}, "Queue.Market"},
		{manager.ForecastConfig{Goal: goal, Queue: manager.QueueConfig{Classes: []manager.JobClass{{Name: "long", Run: time.Hour}}}}, "Queue.Classes"},
	} {
		_, err := manager.NewForecast("batch", tc.cfg)
		require.Error(t, err, tc.field)
		assert.True(t, errors.Is(err, manager.ErrInvalidConfig), "%v", err)
		var ce *manager.ConfigError
		require.True(t, errors.As(err, &ce))
		assert.Equal(t, tc.field, ce.Field, "%v", err)
		assert.Equal(t, "forecast", ce.Kind)
	}
	_, err := manager.NewForecast("", manager.ForecastConfig{Goal: goal})
	var ce *manager.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Name", ce.Field, "the name is the Forecast's, not its Queue's")
	assert.Equal(t, "forecast", ce.Kind)
}

func TestForecastKeepsWhatIsHeldUntilItObservesDemand(t *testing.T) {
	f := newTestForecast(t, manager.ForecastConfig{})
	held := manager.State{Servers: []manager.Server{{ID: "a", Weight: 7}}}
	for k := range 10 {
		held.Now = day0.Add(time.Duration(k) * time.Minute)
		req, err := f.Demand(context.Background(), held)
		require.NoError(t, err)
		assert.Equal(t, 7, req.Target, "pass %d: a restarted host that has not reported its queue yet", k)
	}
	f.Observe(day0.Add(10*time.Minute), 2, 0)
	held.Now = day0.Add(12 * time.Minute)
	req, err := f.Demand(context.Background(), held)
	require.NoError(t, err)
	assert.Less(t, req.Target, 7, "followed once observed")
}

func TestForecastReadsItsSignal(t *testing.T) {
	jobs := 5
	f, err := manager.NewForecast("batch", manager.ForecastConfig{
		Goal:  manager.WaitGoal{Quantile: 0.9, Wait: time.Minute},
		Queue: manager.QueueConfig{Signal: func(context.Context) (int, int, error) { return jobs, 1, nil }},
	})
	require.NoError(t, err)
	assert.False(t, f.DemandIsInstant())
	req, err := f.Demand(context.Background(), manager.State{Now: day0})
	require.NoError(t, err)
	assert.Equal(t, 6, req.Target)

	boom := errors.New("queue unreachable")
	f, err = manager.NewForecast("batch", manager.ForecastConfig{
		Goal:  manager.WaitGoal{Quantile: 0.9, Wait: time.Minute},
		Queue: manager.QueueConfig{Signal: func(context.Context) (int, int, error) { return 0, 0, boom }},
	})
	require.NoError(t, err)
	_, err = f.Demand(context.Background(), manager.State{Now: day0})
	assert.ErrorIs(t, err, boom)
}

func TestForecastCountsRisesWaitingPastTheGoalBetweenRarePasses(t *testing.T) {
	f := newTestForecast(t, manager.ForecastConfig{})
	_, err := f.Demand(context.Background(), manager.State{Now: day0})
	require.NoError(t, err)
	// A host that reports every rise of a long climb, and no pass comes.
	for k := range 20000 {
		f.Observe(day0.Add(time.Duration(k)*time.Millisecond*50), k+1, 0)
	}
	st := f.Status()
	assert.Greater(t, st.Rises, 20000-4096-1, "rises waiting past the goal counted as missed")
	assert.Less(t, st.Attainment, 0.01)
}

func TestForecastDoesNotCountAdoptedServersTwice(t *testing.T) {
	// A restarted scaler's first pass: the State already holds the servers,
	// and the Granted notices it sends for them after Demand say so again.
	f := newTestForecast(t, manager.ForecastConfig{BootTime: 5 * time.Minute})
	ctx := context.Background()
	held := manager.State{Now: day0, Servers: []manager.Server{{ID: "a", Weight: 4}}}
	_, err := f.Demand(ctx, held)
	require.NoError(t, err)
	f.Notify(manager.Notice{Kind: manager.Granted, Adopted: true, Server: held.Servers[0]})
	f.Observe(day0.Add(time.Second), 6, 0) // above the 4 units working: waits
	held.Now = day0.Add(3 * time.Minute)
	_, err = f.Demand(ctx, held)
	require.NoError(t, err)
	st := f.Status()
	assert.Equal(t, 1, st.Rises)
	assert.Zero(t, st.Met, "the rise to 6 waited past the goal on 4 units")
}

func TestForecastLearnsNothingTwiceWhenTheClockGoesBack(t *testing.T) {
	// A pass every 30 s for a day, with one pass whose clock is two hours
	// behind: the hours it went back over are not counted again.
	steady := func(back bool) float64 {
		f := newTestForecast(t, manager.ForecastConfig{})
		ctx := context.Background()
		for now := day0; now.Before(day0.Add(24 * time.Hour)); now = now.Add(toyPass) {
			f.Observe(now, 1+now.Minute()%2, 0)
			at := now
			if back && now == day0.Add(12*time.Hour) {
				at = now.Add(-2 * time.Hour)
			}
			_, err := f.Demand(ctx, manager.State{Now: at})
			require.NoError(t, err)
		}
		return f.Status().Seasons
	}
	assert.Equal(t, steady(false), steady(true))
}

func TestForecastTargetSaturatesOnAHugeQueue(t *testing.T) {
	f := newTestForecast(t, manager.ForecastConfig{BootTime: 5 * time.Minute, Queue: manager.QueueConfig{Max: 100}})
	ctx := context.Background()
	now := day0
	for range 3 { // a rise of 5 units, sized once the goal's wait is over
		f.Observe(now, 0, 0)
		now = now.Add(5 * time.Minute)
		f.Observe(now, 5, 0)
		now = now.Add(5 * time.Minute)
		_, err := f.Demand(ctx, manager.State{Now: now})
		require.NoError(t, err)
	}
	require.Positive(t, f.Status().Buffer)
	now = now.Add(time.Minute)
	f.Observe(now, math.MaxInt, 0)
	req, err := f.Demand(ctx, manager.State{Now: now.Add(time.Second)})
	require.NoError(t, err)
	assert.Equal(t, 100, req.Target, "a queue beyond counting asks for Max")
}

func TestForecastCountsNoIdleCapacityBeforeItObservesDemand(t *testing.T) {
	// A restarted host that holds 10 units and reports its queue an hour
	// later: the hour's demand is unknown, not nothing.
	f := newTestForecast(t, manager.ForecastConfig{})
	held := manager.State{Servers: []manager.Server{{ID: "a", Weight: 10}}}
	for k := range 120 {
		held.Now = day0.Add(time.Duration(k) * toyPass)
		_, err := f.Demand(context.Background(), held)
		require.NoError(t, err)
	}
	f.Observe(day0.Add(time.Hour), 4, 0)
	held.Now = day0.Add(2 * time.Hour)
	_, err := f.Demand(context.Background(), held)
	require.NoError(t, err)
	assert.InDelta(t, 6.0, f.Status().IdleUnitHours, 1e-9, "the hour after the report: 6 units above demand")
}

// jobsEvery10Minutes reports a job of size units every 10 minutes from now
// on, n times, each for 5 minutes, with a pass after each (the job's size
// is learned once the goal's wait after it is over); it returns the time
// after them.
func jobsEvery10Minutes(t *testing.T, f *manager.Forecast, now time.Time, size, n int) time.Time {
	t.Helper()
	for range n {
		f.Observe(now, size, 0)
		now = now.Add(5 * time.Minute)
		_, err := f.Demand(context.Background(), manager.State{Now: now})
		require.NoError(t, err)
		f.Observe(now, 0, 0)
		now = now.Add(5 * time.Minute)
	}
	_, err := f.Demand(context.Background(), manager.State{Now: now})
	require.NoError(t, err)
	return now
}

func TestForecastCapsItsBufferAtMaxBuffer(t *testing.T) {
	f := newTestForecast(t, manager.ForecastConfig{BootTime: 5 * time.Minute, MaxBuffer: 5})
	jobsEvery10Minutes(t, f, day0, 12, 3)
	assert.Equal(t, 5, f.Status().Buffer, "12 units asked for, 5 allowed")
	assert.Equal(t, 5, f.Target())
}

func TestForecastHoldsNoBufferWhenBootIsWithinTheWait(t *testing.T) {
	// Capacity asked for at a rise is ready 1m + 30s later, within the
	// goal's 2 minutes: following demand meets the goal.
	f := newTestForecast(t, manager.ForecastConfig{BootTime: time.Minute})
	jobsEvery10Minutes(t, f, day0, 12, 30)
	st := f.Status()
	assert.Equal(t, 29, st.Sizes, "every rise after the first observation is sized")
	assert.Zero(t, st.Buffer)
	assert.Equal(t, manager.DefaultPassSlack, st.Lead, "the lead is never shorter than the pass slack")
}

func TestForecastLearnsAWeeklySeason(t *testing.T) {
	// Jobs of 8 units every 10 minutes on Mondays only, 1 unit every 10
	// minutes otherwise. A weekly season holds the large buffer on Monday
	// and a small one on Tuesday.
	f := newTestForecast(t, manager.ForecastConfig{BootTime: 5 * time.Minute, Season: 7 * 24 * time.Hour})
	now := day0 // a Monday
	require.Equal(t, time.Monday, now.Weekday())
	for range 3 {
		for d := range 7 {
			size := 1
			if d == 0 {
				size = 8
			}
			now = jobsEvery10Minutes(t, f, now, size, 6*24)
		}
	}
	now = jobsEvery10Minutes(t, f, now, 8, 6*12) // Monday to 12:00
	monday := f.Status().Buffer
	now = jobsEvery10Minutes(t, f, now, 8, 6*12)
	jobsEvery10Minutes(t, f, now, 1, 6*12) // Tuesday to 12:00
	tuesday := f.Status().Buffer
	assert.Equal(t, 8, monday)
	assert.Less(t, tuesday, 4)
}

func TestForecastConcurrentUse(t *testing.T) {
	// The host observes and reads the status while the scaler passes and
	// notifies (run with -race).
	f := newTestForecast(t, manager.ForecastConfig{BootTime: 5 * time.Minute})
	servers := []manager.Server{{ID: "a", Weight: 2}, {ID: "b", Weight: 3}}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 300 {
				f.Observe(day0.Add(time.Duration(i)*10*time.Second), (i+w)%9, 0)
				f.MarkIdle(servers[w].ID, i%2 == 0)
			}
		})
	}
	wg.Go(func() {
		for i := range 300 {
			st := f.Status()
			assert.GreaterOrEqual(t, st.Buffer, 0)
			assert.LessOrEqual(t, st.Met, st.Rises)
			assert.GreaterOrEqual(t, f.Target(), 0)
			f.Notify(manager.Notice{Kind: manager.Granted, Server: servers[i%2]})
		}
	})
	wg.Go(func() {
		for i := range 300 {
			req, err := f.Demand(context.Background(), manager.State{Now: day0.Add(time.Duration(i) * 10 * time.Second), Servers: servers})
			assert.NoError(t, err)
			assert.GreaterOrEqual(t, req.Target, 0)
			f.Notify(manager.Notice{Kind: manager.WindDown, Server: servers[i%2]})
		}
	})
	wg.Wait()
}
