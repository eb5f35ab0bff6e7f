package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Defaults of ForecastConfig fields left zero.
const (
	// DefaultBootTime is the time from launch to ready a Forecast assumes
	// while the pool has no estimate of its own (State.BootTime is 0).
	DefaultBootTime = 2 * time.Minute
	// DefaultPassSlack is the time a Forecast allows between a change of
	// its target and the launch it causes: the scaler's default interval
	// between passes.
	DefaultPassSlack = 30 * time.Second
	// DefaultSeason is the length of the repeating pattern a Forecast
	// learns: a day.
	DefaultSeason = 24 * time.Hour
	// DefaultSlot is the width of one slot of the season.
	DefaultSlot = time.Hour
	// DefaultMemory is how many seasons a slot's estimate mostly
	// remembers.
	DefaultMemory = 7
	// DefaultScaleStep is how far one rise that misses the goal moves the
	// buffer's scale.
	DefaultScaleStep = 0.05
)

// maxSlots bounds a Forecast's profile (a week of 5-minute slots).
const maxSlots = 7 * 24 * 12

// WaitGoal is a host's goal for the wait for capacity: a share Quantile of
// the rises of demand are served within Wait. "95% of jobs wait under two
// minutes for a server" is WaitGoal{Quantile: 0.95, Wait: 2 * time.Minute}.
type WaitGoal struct {
	// Quantile is the share of rises to serve within Wait, above 0 and
	// below 1.
	Quantile float64
	// Wait is the longest wait for capacity the goal allows; positive.
	Wait time.Duration
}

// ForecastConfig configures a [Forecast]. Goal is required; every other
// field has a documented default for its zero value.
type ForecastConfig struct {
	// Queue is how demand is counted and followed, as for a [Queue]: the
	// forecast's buffer comes on top of the Queue's target. Classes must
	// be empty: a Forecast is told totals, not job classes.
	Queue QueueConfig
	// Goal is the wait-time goal the buffer is sized to.
	Goal WaitGoal
	// BootTime is the time from launch to ready assumed while the pool has
	// no estimate (State.BootTime is 0); default DefaultBootTime.
	BootTime time.Duration
	// PassSlack is the time between a change of target and the launch it
	// causes; default DefaultPassSlack.
	PassSlack time.Duration
	// Season is the length of the pattern learned: 24h for a daily shape
	// (the default), 168h for a weekly one. Slots are placed on UTC time.
	Season time.Duration
	// Slot is the width of one slot of the season; it must divide Season,
	// and a season holds at most 2016 slots; default DefaultSlot.
	Slot time.Duration
	// Memory is how many seasons a slot's estimate mostly remembers: each
	// new season's figure moves it 1/Memory of the way; default
	// DefaultMemory.
	Memory int
	// ScaleStep is how far a rise that misses the goal raises the buffer's
	// scale (one that meets it lowers it by ScaleStep × (1-Quantile) /
	// Quantile); default DefaultScaleStep.
	ScaleStep float64
	// MaxBuffer caps the buffer in capacity units; 0 means no cap of its
	// own (Queue.Max and the pool's Max still apply).
	MaxBuffer int
}

// Forecast is a manager whose demand follows a job queue, as a [Queue]
// does, plus the smallest idle buffer that meets a wait-time goal. See the
// package documentation for the model, its assumptions and where it fails.
//
// The host reports its queue with [Forecast.Observe] and reads what the
// goal costs and how well it is met with [Forecast.Status]. A Forecast is
// safe for concurrent use.
type Forecast struct {
	q   *Queue
	cfg ForecastConfig

	mu       sync.Mutex
	seen     bool
	observed bool      // demand was observed (or read from the Signal)
	last     time.Time // latest event folded into the integrals
	d        int       // demand now, in units, before Min and Max
	// ready is the capacity working for the manager: State.Ready at the
	// latest pass, kept up by the notices since.
	ready int
	pass  time.Time // the latest pass
	// boot is the boot time in use: State.BootTime at the latest pass, or
	// cfg.BootTime while the pool has no estimate.
	boot   time.Duration
	buffer int

	// The learner: recent points, the slot being gathered, the profile.
	points   []point
	cur      int64 // stretch being gathered (slot widths since 1970); -1 before any
	stretch  []int // rises after the points of the slot being gathered
	profile  []slotEstimate
	overall  slotEstimate // every slot's figures alike: for slots not seen yet
	scale    float64
	pending  []pendingRise
	rises    int
	met      int
	bufferUH float64 // unit-hours of buffer
	idleUH   float64 // unit-hours of working capacity above demand
}

// point is the demand at a time and the highest it reached before the next
// point.
type point struct {
	at       time.Time
	d0, peak int
}

// slotEstimate is the learned rise of demand over the lead time for one
// slot of the season.
type slotEstimate struct {
	rise float64
	n    int
}

// pendingRise is a rise of demand that the working capacity did not cover
// when it came.
type pendingRise struct {
	at    time.Time
	level int
}

var (
	_ Manager = (*Forecast)(nil)
	_ Waker   = (*Forecast)(nil)
	_ Instant = (*Forecast)(nil)
)

// NewForecast returns a forecasting manager named name (see [NewQueue] for
// the name).
func NewForecast(name string, cfg ForecastConfig) (*Forecast, error) {
	qc := cfg.Queue
	qc.Signal = nil // read by the Forecast, which adds its buffer
	q, err := NewQueue(name, qc)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Kind = "forecast"
			if ce.Field != "Name" {
				ce.Field = "Queue." + ce.Field
			}
		}
		return nil, err
	}
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Kind: "forecast", Name: name, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	g := cfg.Goal
	switch {
	case len(cfg.Queue.Classes) > 0:
		// A Forecast reads totals (Observe), never classes: the classes
		// would be validated and then never reach Request.Work.
		return nil, bad("Queue.Classes", "a Forecast reports no job classes; describe work with a Queue")
	case !(g.Quantile > 0 && g.Quantile < 1):
		return nil, bad("Goal.Quantile", "must lie strictly between 0 and 1, got %g", g.Quantile)
	case g.Wait <= 0:
		return nil, bad("Goal.Wait", "must be positive, got %v", g.Wait)
	case cfg.BootTime < 0:
		return nil, bad("BootTime", "must not be negative, got %v", cfg.BootTime)
	case cfg.PassSlack < 0:
		return nil, bad("PassSlack", "must not be negative, got %v", cfg.PassSlack)
	case cfg.Season < 0:
		return nil, bad("Season", "must not be negative, got %v", cfg.Season)
	case cfg.Slot < 0:
		return nil, bad("Slot", "must not be negative, got %v", cfg.Slot)
	case cfg.Memory < 0:
		return nil, bad("Memory", "must not be negative, got %d", cfg.Memory)
	case !(cfg.ScaleStep >= 0) || math.IsInf(cfg.ScaleStep, 0):
		return nil, bad("ScaleStep", "must be a finite number not below 0, got %g", cfg.ScaleStep)
	case cfg.MaxBuffer < 0:
		return nil, bad("MaxBuffer", "must not be negative, got %d", cfg.MaxBuffer)
	}
	cfg.BootTime = cmp.Or(cfg.BootTime, DefaultBootTime)
	cfg.PassSlack = cmp.Or(cfg.PassSlack, DefaultPassSlack)
	cfg.Season = cmp.Or(cfg.Season, DefaultSeason)
	cfg.Slot = cmp.Or(cfg.Slot, DefaultSlot)
	cfg.Memory = cmp.Or(cfg.Memory, DefaultMemory)
	cfg.ScaleStep = cmp.Or(cfg.ScaleStep, DefaultScaleStep)
	if cfg.Season%cfg.Slot != 0 {
		return nil, bad("Slot", "%v does not divide Season %v", cfg.Slot, cfg.Season)
	}
	if n := cfg.Season / cfg.Slot; n > maxSlots {
		return nil, bad("Slot", "%v makes %d slots of Season %v, more than %d", cfg.Slot, n, cfg.Season, maxSlots)
	}
	return &Forecast{
		q: q, cfg: cfg, cur: -1, scale: 1, boot: cfg.BootTime,
		profile: make([]slotEstimate, cfg.Season/cfg.Slot),
	}, nil
}

// Name returns the manager's name.
func (f *Forecast) Name() string { return f.q.Name() }

// SetWake registers the scaler's wake-up; it implements [Waker].
func (f *Forecast) SetWake(wake func()) { f.q.SetWake(wake) }

// MarkIdle records whether the server id runs no jobs, as
// [Queue.MarkIdle] does.
func (f *Forecast) MarkIdle(id string, idle bool) { f.q.MarkIdle(id, idle) }

// DemandIsInstant reports whether Demand answers from memory: true unless
// the queue reads a Signal.
func (f *Forecast) DemandIsInstant() bool { return f.cfg.Queue.Signal == nil }

// Target returns the target of the latest Demand, buffer included; 0
// before the first.
func (f *Forecast) Target() int { return f.q.Target() }

// Observe reports the queue as it was at now, as [Queue.Observe] does, and
// feeds the forecast: the demand's history and the rises whose wait the
// goal counts.
func (f *Forecast) Observe(now time.Time, queued, running int) {
	raw := f.q.unitsFor(queued, running)
	buffer := f.note(now, raw)
	if wake := f.q.observe(now, f.q.clamp(raw+buffer), raw); wake != nil {
		wake() // after the unlock: the wake must not wait on a lock
	}
}

// note folds the demand d at now into the learner and the goal's
// bookkeeping, and returns the buffer in force.
func (f *Forecast) note(now time.Time, d int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen && now.Before(f.last) {
		return f.buffer // a late report: the history has moved on
	}
	f.advance(now)
	before := f.d
	f.d, f.observed = d, true
	f.record(now, d)
	switch {
	case d > before && d <= f.ready:
		f.resolve(true)
	case d > before:
		f.pending = append(f.pending, pendingRise{at: now, level: d})
		if len(f.pending) > maxPending {
			// A host that observes often between rare passes: count the
			// rises waiting past the goal now, to keep the list bounded.
			f.settle(now)
			if len(f.pending) > maxPending {
				f.resolve(false)
				f.pending = append(f.pending[:0], f.pending[1:]...)
			}
		}
	case d < before:
		f.settle(now)
	}
	return f.buffer
}

// Demand returns the target for the pass at s.Now: the Queue's rules
// (up at once, down after the scale-down delay) applied to demand plus
// the forecast's buffer.
func (f *Forecast) Demand(ctx context.Context, s State) (Request, error) {
	if sig := f.cfg.Queue.Signal; sig != nil {
		queued, running, err := sig(ctx)
		if err != nil {
			return Request{}, fmt.Errorf("manager: forecast %q: signal: %w", f.q.name, err)
		}
		f.note(s.Now, f.q.unitsFor(queued, running))
	}
	d, buffer, observed := f.plan(s)
	if observed {
		// No wake-up: this is the pass. Before the first observation the
		// Queue keeps what is held, as after a restart of the host.
		f.q.observe(s.Now, f.q.clamp(d+buffer), d)
	}
	return f.q.Demand(ctx, s)
}

// plan takes in the pass's state and returns the demand and the buffer
// for it, and whether demand was observed yet.
func (f *Forecast) plan(s State) (d, buffer int, observed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(s.Now)
	f.pass = s.Now
	f.ready = s.Ready()
	f.boot = f.cfg.BootTime
	if s.BootTime > 0 {
		f.boot = s.BootTime
	}
	f.record(s.Now, f.d)
	f.settle(s.Now)
	f.buffer = f.bufferAt(s.Now)
	return f.d, f.buffer, f.observed
}

// Notify keeps the working capacity up to date between passes (a server
// granted covers waiting rises at once) and forgets idle marks as a
// Queue's Notify does.
func (f *Forecast) Notify(n Notice) {
	f.q.Notify(n)
	w := max(n.Server.Weight, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch n.Kind {
	case Granted, Restored:
		f.ready += w
		f.settle(f.pass)
	case WindDown:
		f.ready = max(0, f.ready-w)
	case Revoked:
		if !n.Server.WindingDown {
			f.ready = max(0, f.ready-w)
		}
	}
}

// advance integrates the buffer and the idle capacity up to now. The
// caller holds f.mu.
func (f *Forecast) advance(now time.Time) {
	switch {
	case !f.seen:
		f.seen, f.last = true, now
	case now.After(f.last):
		h := now.Sub(f.last).Hours()
		f.bufferUH += float64(f.buffer) * h
		f.idleUH += float64(max(0, f.ready-f.d)) * h
		f.last = now
	}
}

// settle resolves the waiting rises the capacity now covers, and counts
// those that waited past the goal as missed. The caller holds f.mu.
func (f *Forecast) settle(now time.Time) {
	kept := f.pending[:0]
	for _, p := range f.pending {
		waited := now.Sub(p.at)
		switch {
		case p.level <= f.ready || f.d <= f.ready:
			f.resolve(waited <= f.cfg.Goal.Wait)
		case waited > f.cfg.Goal.Wait:
			f.resolve(false)
		default:
			kept = append(kept, p)
		}
	}
	f.pending = kept
}

// resolve counts one rise and moves the buffer's scale the way that brings
// the share met toward the goal's quantile: a stochastic estimate of a
// quantile, where misses push up and hits pull down in the ratio that
// balances at the goal. The caller holds f.mu.
func (f *Forecast) resolve(met bool) {
	f.rises++
	q := f.aim()
	if met {
		f.met++
		f.scale -= f.cfg.ScaleStep * (1 - q) / q
	} else {
		f.scale += f.cfg.ScaleStep
	}
	f.scale = min(max(f.scale, 0), maxScale)
}

// aim is the share of rises the feedback steers to: a fifth of the way
// from the goal's quantile to 1, so that the noise of a month's few
// thousand rises leaves the goal met rather than missed half the time.
func (f *Forecast) aim() float64 {
	q := f.cfg.Goal.Quantile
	return q + (1-q)/5
}

// maxScale bounds the buffer's scale, so that a goal no buffer can meet
// (rises far above any seen) does not grow the buffer without end.
const maxScale = 8

// lead is how far ahead the buffer must look: capacity asked for now is
// ready after the pass slack and the boot time, and a rise may wait the
// goal's Wait; never less than the pass slack.
func (f *Forecast) lead() time.Duration {
	return max(f.boot+f.cfg.PassSlack-f.cfg.Goal.Wait, f.cfg.PassSlack)
}

// stretchOf is the stretch of time t falls in: slot widths since 1970.
func (f *Forecast) stretchOf(t time.Time) int64 {
	ns, w := t.UnixNano(), int64(f.cfg.Slot)
	n := ns / w
	if ns%w < 0 {
		n-- // round toward the past, before 1970
	}
	return n
}

// slotOf is the slot of the season t falls in, on UTC time.
func (f *Forecast) slotOf(t time.Time) int { return f.slotOfStretch(f.stretchOf(t)) }

func (f *Forecast) slotOfStretch(n int64) int {
	k := int64(len(f.profile))
	return int(((n % k) + k) % k)
}

// record adds the demand d at now to the recent points, and learns the
// rise that followed each point older than the lead time. The caller holds
// f.mu.
func (f *Forecast) record(now time.Time, d int) {
	lead := f.lead()
	n := len(f.points)
	if n > 0 {
		f.points[n-1].peak = max(f.points[n-1].peak, d)
	}
	// Points closer together than a sixteenth of the lead share one entry:
	// the history stays small whatever the rate of reports.
	if n == 0 || now.Sub(f.points[n-1].at) >= lead/16 {
		f.points = append(f.points, point{at: now, d0: d, peak: d})
	}
	f.learn(now, lead)
}

// learn finalises the points whose lead time has passed: the rise after
// each is the highest demand within the lead time after it, less its
// demand. The highest rise of each slot's stretch of time is that slot's
// figure for the season; it is folded into the profile once the stretch
// is over. The caller holds f.mu.
func (f *Forecast) learn(now time.Time, lead time.Duration) {
	done := 0
	for i, p := range f.points {
		if now.Sub(p.at) < lead {
			break
		}
		peak := p.peak
		for _, later := range f.points[i+1:] {
			if later.at.Sub(p.at) > lead {
				break
			}
			peak = max(peak, later.peak)
		}
		f.gather(f.stretchOf(p.at), max(0, peak-p.d0))
		done = i + 1
	}
	// The window looks forward only: finalised points are not needed.
	f.points = append(f.points[:0], f.points[done:]...)
}

// gather adds the rise after a point of stretch n to the stretch being
// gathered, folding the one before into its slot's estimate when the
// stretch changes. The caller holds f.mu.
func (f *Forecast) gather(n int64, rise int) {
	if n != f.cur {
		if f.cur >= 0 {
			f.fold(f.slotOfStretch(f.cur))
		}
		f.cur, f.stretch = n, f.stretch[:0]
	}
	if rise == 0 {
		return
	}
	if len(f.stretch) == maxStretch {
		// Keep every other rise: the quantile stays, the memory bounded.
		for i := range maxStretch / 2 {
			f.stretch[i] = max(f.stretch[2*i], f.stretch[2*i+1])
		}
		f.stretch = f.stretch[:maxStretch/2]
	}
	f.stretch = append(f.stretch, rise)
}

// maxPending bounds the rises waiting for capacity a Forecast keeps.
const maxPending = 4096

// maxStretch bounds the rises kept for the slot being gathered.
const maxStretch = 1024

// fold moves a slot's estimate toward the figure of the stretch just
// gathered: the goal's quantile of the rises after its points. The caller
// holds f.mu.
func (f *Forecast) fold(slot int) {
	rise := 0.0
	if len(f.stretch) > 0 {
		slices.Sort(f.stretch)
		i := int(math.Ceil(f.cfg.Goal.Quantile*float64(len(f.stretch)))) - 1
		rise = float64(f.stretch[min(max(i, 0), len(f.stretch)-1)])
	}
	ewma(&f.profile[slot], rise, f.cfg.Memory)
	ewma(&f.overall, rise, f.cfg.Memory*len(f.profile))
}

func ewma(e *slotEstimate, x float64, memory int) {
	e.n++
	e.rise += (x - e.rise) / float64(min(e.n, memory))
}

// expected is the learned rise for the slot of t: the slot's own estimate,
// or every slot's while the slot has none. The caller holds f.mu.
func (f *Forecast) expected(t time.Time) float64 {
	if e := f.profile[f.slotOf(t)]; e.n > 0 {
		return e.rise
	}
	return f.overall.rise
}

// bufferAt is the buffer for a pass at now: the scale times the rise
// expected over the lead time, in the slot of now or, to launch ahead of a
// ramp, of the slot the lead time reaches. The caller holds f.mu.
func (f *Forecast) bufferAt(now time.Time) int {
	r := max(f.expected(now), f.expected(now.Add(f.lead())))
	b := int(math.Ceil(f.scale*r - 1e-9))
	if f.cfg.MaxBuffer > 0 {
		b = min(b, f.cfg.MaxBuffer)
	}
	return max(b, 0)
}

// ForecastStatus is what a [Forecast] reports of its goal and its cost.
type ForecastStatus struct {
	Goal WaitGoal
	// Rises counts the rises of demand resolved so far: served, or waited
	// past Goal.Wait. Met counts those served within Goal.Wait.
	Rises, Met int
	// Attainment is Met / Rises: 1 before any rise.
	Attainment float64
	// Buffer is the capacity the forecast adds to demand at the latest
	// pass.
	Buffer int
	// BufferUnitHours is the buffer held over time, in capacity-unit
	// hours: times the price of a unit-hour, what the goal costs.
	BufferUnitHours float64
	// IdleUnitHours is the working capacity held above demand over time,
	// in capacity-unit hours: the buffer's and the scale-down delay's.
	IdleUnitHours float64
	// BootTime is the boot time in use: the pool's estimate, or
	// ForecastConfig.BootTime while it has none.
	BootTime time.Duration
	// Lead is how far ahead the buffer looks.
	Lead time.Duration
	// Scale is the factor the feedback from attainment puts on the
	// learned rises.
	Scale float64
	// Seasons is how many seasons of history the profile holds, on
	// average over its slots.
	Seasons float64
}

// Status reports the goal's attainment and the buffer's cost so far.
func (f *Forecast) Status() ForecastStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := ForecastStatus{
		Goal: f.cfg.Goal, Rises: f.rises, Met: f.met, Attainment: 1, Buffer: f.buffer,
		BufferUnitHours: f.bufferUH, IdleUnitHours: f.idleUH, BootTime: f.boot, Scale: f.scale,
		Lead: f.lead(),
	}
	if f.rises > 0 {
		st.Attainment = float64(f.met) / float64(f.rises)
	}
	n := 0
	for _, e := range f.profile {
		n += e.n
	}
	st.Seasons = float64(n) / float64(len(f.profile))
	return st
}
