package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
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
	// DefaultMemory is how many seasons a slot's rate of rises mostly
	// remembers.
	DefaultMemory = 7
)

// maxSlots bounds a Forecast's slots (a week of 5-minute slots).
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
	// Memory is how many seasons a slot's rate of rises mostly remembers:
	// each new season's count moves it 1/Memory of the way; default
	// DefaultMemory.
	Memory int
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

	// The learner: the demand of the latest lead time, the sizes of the
	// latest rises, the rate of rises per slot of the season.
	history []point
	unsized []unsizedRise
	sizes   []sizedRise // ring of the latest rises' sizes
	means   []meanSize  // each slot's mean rise size
	nSizes  int         // rises ever sized; the next goes to sizes[nSizes%maxSizes]
	cur     int64       // stretch being counted (slot widths since 1970); -1 before any
	count   int         // rises in the stretch being counted
	rates   []rateEstimate
	// The buffer's plan, from the latest solve.
	share    sharing
	solvedN  int   // nSizes at the latest solve
	solved   int64 // stretch of the latest solve
	pending  []pendingRise
	rises    int
	met      int
	bufferUH float64 // unit-hours of buffer
	idleUH   float64 // unit-hours of working capacity above demand
}

// point is the demand observed from a time on.
type point struct {
	at time.Time
	d  int
}

// meanSize is a slot's mean rise size, over its latest rises.
type meanSize struct {
	mean float64
	n    int
}

// rateEstimate is the learned count of rises per stretch of one slot: a
// weighted mean over n stretches.
type rateEstimate struct {
	rate float64
	n    int
}

// unsizedRise is a rise of demand whose size is known once its wait is
// over: the demand a lead time before it (base), the level it rose to,
// and the lowest demand since.
type unsizedRise struct {
	at               time.Time
	level, base, low int
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
	case cfg.MaxBuffer < 0:
		return nil, bad("MaxBuffer", "must not be negative, got %d", cfg.MaxBuffer)
	}
	cfg.BootTime = cmp.Or(cfg.BootTime, DefaultBootTime)
	cfg.PassSlack = cmp.Or(cfg.PassSlack, DefaultPassSlack)
	cfg.Season = cmp.Or(cfg.Season, DefaultSeason)
	cfg.Slot = cmp.Or(cfg.Slot, DefaultSlot)
	cfg.Memory = cmp.Or(cfg.Memory, DefaultMemory)
	if cfg.Season%cfg.Slot != 0 {
		return nil, bad("Slot", "%v does not divide Season %v", cfg.Slot, cfg.Season)
	}
	if n := cfg.Season / cfg.Slot; n > maxSlots {
		return nil, bad("Slot", "%v makes %d slots of Season %v, more than %d", cfg.Slot, n, cfg.Season, maxSlots)
	}
	n := int(cfg.Season / cfg.Slot)
	return &Forecast{
		q: q, cfg: cfg, cur: -1, solved: -1, boot: cfg.BootTime,
		rates: make([]rateEstimate, n),
		means: make([]meanSize, n),
		share: sharing{slots: make([]int, n), mean: make([]float64, n), rate: make([]float64, n), excess: make([]hullPoint, n), order: make([]int, 0, n)},
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
	if wake := f.q.observe(now, f.q.clamp(plus(raw, buffer)), raw); wake != nil {
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

// plus is demand d plus a buffer, at most math.MaxInt: a queue counted as
// math.MaxInt units must not wrap around to no demand.
func plus(d, buffer int) int {
	if d > math.MaxInt-buffer {
		return math.MaxInt
	}
	return d + buffer
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
		f.q.observe(s.Now, f.q.clamp(plus(d, buffer)), d)
	}
	return f.q.Demand(ctx, s)
}

// plan takes in the pass's state and returns the demand and the buffer
// for it, and whether demand was observed yet.
func (f *Forecast) plan(s State) (d, buffer int, observed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := s.Now
	if f.seen && now.Before(f.last) {
		// A clock that went back: the stretches since then are counted
		// already, and would be counted again.
		now = f.last
	}
	f.advance(now)
	f.pass = now
	f.ready = s.Ready()
	f.boot = f.cfg.BootTime
	if s.BootTime > 0 {
		f.boot = s.BootTime
	}
	if f.observed {
		f.record(now, f.d)
	} else {
		f.roll(now) // no history of demand before the first observation
	}
	f.settle(now)
	f.buffer = f.bufferAt(now)
	return f.d, f.buffer, f.observed
}

// Notify keeps the working capacity up to date between passes (a server
// granted covers waiting rises at once) and forgets idle marks as a
// Queue's Notify does. Adopted notices change nothing: they describe
// servers the pass's State already held.
func (f *Forecast) Notify(n Notice) {
	f.q.Notify(n)
	if n.Adopted {
		return
	}
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

// advance integrates the buffer and the idle capacity up to now; no
// capacity is idle while demand is unknown, before the first observation.
// The caller holds f.mu.
func (f *Forecast) advance(now time.Time) {
	switch {
	case !f.seen:
		f.seen, f.last = true, now
	case now.After(f.last):
		h := now.Sub(f.last).Hours()
		f.bufferUH += float64(f.buffer) * h
		if f.observed {
			f.idleUH += float64(max(0, f.ready-f.d)) * h
		}
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

// resolve counts one rise as met or missed. The caller holds f.mu.
func (f *Forecast) resolve(met bool) {
	f.rises++
	if met {
		f.met++
	}
}

// aim is the share of rises the buffer is sized to meet: a tenth of the
// way from the goal's quantile to 1, so that the noise of a month's few
// thousand rises leaves the goal met rather than missed half the time.
func (f *Forecast) aim() float64 {
	q := f.cfg.Goal.Quantile
	return q + (1-q)/10
}

// confidence is how many standard errors of a sample's share of misses
// the miss budget keeps below 1 - aim: with few rises seen, the buffer is
// sized to cover every one of them.
const confidence = 1

// missBudget is the share of rises the buffer may miss, for a sample of n
// rise sizes: 1 - aim, less confidence standard errors of a share
// estimated from n rises; 0 (cover every rise seen) while n is small.
func (f *Forecast) missBudget(n int) float64 {
	if n == 0 {
		return 0
	}
	a := f.aim()
	return max(0, (1-a)-confidence*math.Sqrt(a*(1-a)/float64(n)))
}

// lead is how far ahead the buffer must look: capacity asked for now is
// ready after the pass slack and the boot time, and a rise may wait the
// goal's Wait; never less than the pass slack.
func (f *Forecast) lead() time.Duration {
	return max(f.boot+f.cfg.PassSlack-f.cfg.Goal.Wait, f.cfg.PassSlack)
}

// stretchOf is the stretch of time t falls in: slot widths since 1970.
func (f *Forecast) stretchOf(t time.Time) int64 { return floorDiv(t.UnixNano(), int64(f.cfg.Slot)) }

func floorDiv(a, b int64) int64 {
	n := a / b
	if a%b < 0 {
		n-- // round toward the past, before 1970
	}
	return n
}

// slotOf is the slot of the season t falls in, on UTC time.
func (f *Forecast) slotOf(t time.Time) int { return f.slotOfStretch(f.stretchOf(t)) }

func (f *Forecast) slotOfStretch(n int64) int {
	k := int64(len(f.rates))
	return int(((n % k) + k) % k)
}

// Bounds of a Forecast's memory.
const (
	// maxPending bounds the rises a Forecast keeps waiting for capacity,
	// and those waiting to be sized.
	maxPending = 4096
	// maxSizes is how many of the latest rises' sizes the estimate of
	// their distribution holds.
	maxSizes = 4096
	// maxHistory bounds the points of demand kept over the lead time.
	maxHistory = 256
)

// record notes the demand d observed at now: it sizes a rise, counts it
// in its slot, and keeps the demand's history over the lead time. The
// caller holds f.mu.
func (f *Forecast) record(now time.Time, d int) {
	f.roll(now)
	lead := f.lead()
	// Size the rises whose wait is over: the rise a buffer asked for a
	// lead time before it had to cover, from the demand then to the
	// demand it rose to, or to the lowest demand within the Wait after
	// it, if lower (jobs that ended free capacity for it). When capacity
	// asked at the rise is ready within the Wait, no buffer is needed.
	short := f.boot+f.cfg.PassSlack <= f.cfg.Goal.Wait
	done := 0
	for _, u := range f.unsized {
		if now.Sub(u.at) <= f.cfg.Goal.Wait && len(f.unsized)-done < maxPending {
			break
		}
		size := max(0, min(u.level, u.low)-u.base)
		if short {
			size = 0
		}
		f.addSize(u.at, size)
		done++
	}
	f.unsized = append(f.unsized[:0], f.unsized[done:]...)
	// The lowest demand since each rise never falls from an older rise to
	// a newer one: only a tail of them is above d.
	for i := len(f.unsized) - 1; i >= 0 && f.unsized[i].low > d; i-- {
		f.unsized[i].low = d
	}
	n := len(f.history)
	if n > 0 && d > f.history[n-1].d {
		base := f.history[0].d
		for _, p := range f.history {
			if p.at.After(now.Add(-lead)) {
				break
			}
			base = p.d
		}
		f.unsized = append(f.unsized, unsizedRise{at: now, level: d, base: base, low: d})
		f.count++
	}
	switch {
	case n > 0 && f.history[n-1].d == d:
	case n == maxHistory || n > 0 && !now.After(f.history[n-1].at):
		f.history[n-1].d = d // coarser, to stay bounded
	default:
		f.history = append(f.history, point{at: now, d: d})
	}
	// Keep one point at or before now - lead: the demand then.
	drop := 0
	for drop+1 < len(f.history) && !f.history[drop+1].at.After(now.Add(-lead)) {
		drop++
	}
	f.history = append(f.history[:0], f.history[drop:]...)
}

// roll moves the count of rises on to the stretch of now, folding each
// stretch's count into its slot's rate when it is over. The caller holds
// f.mu.
func (f *Forecast) roll(now time.Time) {
	if n := f.stretchOf(now); n != f.cur {
		if f.cur >= 0 {
			for s := f.cur; s < n && s < f.cur+int64(len(f.rates)); s++ {
				// A stretch the host did not report in counts no rises.
				c := 0.0
				if s == f.cur {
					c = float64(f.count)
				}
				ewma(&f.rates[f.slotOfStretch(s)], c, f.cfg.Memory)
			}
		}
		f.cur, f.count = n, 0
	}
}

func ewma(e *rateEstimate, x float64, memory int) {
	e.n++
	e.rate += (x - e.rate) / float64(min(e.n, memory))
}

// ratesInto sets the rate of rises (per stretch) of each slot: its own
// estimate drawn toward the mean of all slots' by one season's weight (a
// slot whose hour saw no rise for a week still expects a few), or that
// mean while it has none. The caller holds f.mu.
func (f *Forecast) ratesInto(out []float64) {
	all, seen := 0.0, 0
	for _, e := range f.rates {
		if e.n > 0 {
			all += e.rate
			seen++
		}
	}
	if seen > 0 {
		all /= float64(seen)
	}
	for s, e := range f.rates {
		w := float64(min(e.n, f.cfg.Memory))
		out[s] = (w*e.rate + all) / (w + 1)
	}
}

// addSize adds the size of a rise at t to the ring of the latest and to
// its slot's mean size. The caller holds f.mu.
func (f *Forecast) addSize(t time.Time, size int) {
	slot := f.slotOf(t)
	r := sizedRise{size: int32(min(size, math.MaxInt32)), slot: int32(slot)}
	if len(f.sizes) < maxSizes {
		f.sizes = append(f.sizes, r)
	} else {
		f.sizes[f.nSizes%maxSizes] = r
	}
	f.nSizes++
	m := &f.means[slot]
	m.n++
	m.mean += (float64(size) - m.mean) / float64(min(m.n, meanMemory))
}

// sizedRise is a rise's size and the slot it came in.
type sizedRise struct{ size, slot int32 }

// Weights of a slot's mean rise size.
const (
	// meanMemory is how many of a slot's latest rises its mean size
	// mostly remembers.
	meanMemory = 64
	// meanPrior is the weight, in rises, of every slot's mean size in a
	// slot's: a slot with few rises gets mostly every slot's.
	meanPrior = 8
)

// sharing is the buffer's plan: per slot, the rate of rises and the mean
// size; the distribution of the sizes less their slot's mean as the lower
// convex hull of its survival curve; the multiplier that shares the miss
// budget among slots; and the buffer of each slot.
type sharing struct {
	// hull holds excesses x over a slot's mean size (increasing) and the
	// share of rises whose excess is larger (decreasing, convex): the
	// buffers worth holding.
	hull  []hullPoint
	nu    float64 // buffer unit-stretches a rise missed is worth
	slots []int
	mean  []float64 // each slot's mean size, drawn toward every slot's
	rate  []float64
	// excess is each slot's excess over its mean size, and the share of
	// rises above it; sorted and order are scratch space.
	excess []hullPoint
	sorted []float64
	order  []int
}

type hullPoint struct{ x, over float64 }

// pick is the hull point for a slot whose rises come at rate λ per
// stretch: the one that minimises x + nu·λ·over(x). The hull's slopes
// flatten as x grows, so it is the last point whose step from the one
// before still pays.
func (p *sharing) pick(lambda float64) hullPoint {
	c := p.nu * lambda
	if len(p.hull) == 0 {
		return hullPoint{}
	}
	i := sort.Search(len(p.hull)-1, func(i int) bool {
		a, b := p.hull[i], p.hull[i+1]
		return c*(a.over-b.over) <= b.x-a.x
	})
	return p.hull[i]
}

// solve sizes the buffer of each slot: the smallest total buffer whose
// expected misses, the sum over slots of rate × share of rises above the
// slot's buffer, stay within the miss budget times the rises expected.
// Its Lagrange condition gives every slot the buffer where one more unit
// saves the same misses: slots with more rises hold more, on top of their
// mean size. The caller holds f.mu.
func (f *Forecast) solve() {
	n := min(f.nSizes, maxSizes)
	f.solvedN, f.solved = f.nSizes, f.cur
	p := &f.share
	p.hull, p.nu = p.hull[:0], 0
	clear(p.slots)
	if n == 0 {
		return
	}
	all := 0.0
	for _, r := range f.sizes[:n] {
		all += float64(r.size)
	}
	all /= float64(n)
	f.ratesInto(p.rate)
	total := 0.0
	for s, m := range f.means {
		w := float64(min(m.n, meanMemory))
		p.mean[s] = (w*m.mean + meanPrior*all) / (w + meanPrior)
		total += p.rate[s]
	}
	if total == 0 {
		// No rises counted yet: every slot alike.
		for s := range p.rate {
			p.rate[s] = 1
		}
		total = float64(len(p.rate))
	}
	excess := p.sorted[:0]
	for _, r := range f.sizes[:n] {
		excess = append(excess, float64(r.size)-p.mean[r.slot])
	}
	p.sorted = excess
	slices.Sort(excess)
	// The survival curve at each distinct excess, starting from the
	// smallest (where every rise is over or at it), and its lower convex
	// hull (a monotone chain).
	add := func(x, over float64) {
		for len(p.hull) >= 2 {
			a, b := p.hull[len(p.hull)-2], p.hull[len(p.hull)-1]
			// Drop b if it lies on or above the chord from a to (x, over).
			if (b.over-a.over)*(x-a.x) >= (over-a.over)*(b.x-a.x) {
				p.hull = p.hull[:len(p.hull)-1]
				continue
			}
			break
		}
		p.hull = append(p.hull, hullPoint{x, over})
	}
	lowest := -slices.Max(p.mean) // a buffer of 0 in every slot
	if excess[0] > lowest {
		add(lowest, 1)
	}
	for i := 0; i < n; {
		j := i
		for j < n && excess[j] == excess[i] {
			j++
		}
		add(excess[i], float64(n-j)/float64(n))
		i = j
	}
	missed := func(nu float64) float64 {
		p.nu = nu
		m := 0.0
		for _, l := range p.rate {
			m += l * p.pick(l).over
		}
		return m
	}
	budget := f.missBudget(n) * total
	if missed(0) > budget {
		// nu grows until every slot with rises holds the largest excess;
		// then bisect, in log scale, for the least nu within the budget.
		lo, hi := 0.0, 1.0
		for missed(hi) > budget && hi < 1e18 {
			lo, hi = hi, hi*4
		}
		for range 40 {
			mid := (lo + hi) / 2
			if lo > 0 {
				mid = math.Sqrt(lo * hi)
			}
			if missed(mid) > budget {
				lo = mid
			} else {
				hi = mid
			}
		}
		p.nu = hi
	}
	slack := budget
	for s, l := range p.rate {
		p.excess[s] = p.pick(l)
		slack -= l * p.excess[s].over
	}
	p.useSlack(excess, lowest, slack)
	// Sizes are whole units: round up, but never above the largest rise
	// seen, beyond which a buffer meets no more.
	largest := int32(0)
	for _, r := range f.sizes[:n] {
		largest = max(largest, r.size)
	}
	for s := range p.rate {
		p.slots[s] = min(max(0, int(math.Ceil(p.mean[s]+p.excess[s].x-1e-9))), int(largest))
	}
}

// useSlack lowers slots' excesses below the hull's picks while the misses
// expected stay within budget (slack is what the picks leave of it): the
// hull's points lie far apart in the tail, and between them lie sizes
// that meet almost as many rises. The slots with the fewest rises go
// first, to the least excess of the sorted sample that the slack allows;
// lowest is the excess of no buffer.
func (p *sharing) useSlack(excess []float64, lowest, slack float64) {
	n := len(excess)
	order := p.order[:0]
	for s := range p.rate {
		order = append(order, s)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p.rate[a], p.rate[b]) })
	for _, s := range order {
		l, e := p.rate[s], p.excess[s]
		if l <= 0 || slack <= 0 {
			continue
		}
		// At most k rises of the sample above x.
		k := int(math.Floor((e.over+slack/l)*float64(n) + 1e-9))
		x, over := lowest, 1.0
		if k < n {
			x = excess[n-1-k]
			over = float64(n-sort.SearchFloat64s(excess, math.Nextafter(x, math.Inf(1)))) / float64(n)
		}
		if x < e.x {
			slack -= l * (over - e.over)
			p.excess[s] = hullPoint{x, over}
		}
	}
}

// bufferAt is the buffer for a pass at now: the larger of the plan's for
// the slot of now and for the slot the lead time reaches, to launch ahead
// of the rises the day's shape predicts. The plan is solved again when a
// stretch begins, and as the sample of sizes grows while it is small. The
// caller holds f.mu.
func (f *Forecast) bufferAt(now time.Time) int {
	f.roll(now)
	if grew := f.nSizes - f.solvedN; f.cur != f.solved || grew > 0 && (f.nSizes < 64 || grew >= f.solvedN/8) {
		f.solve()
	}
	b := max(f.share.slots[f.slotOf(now)], f.share.slots[f.slotOf(now.Add(f.lead()))])
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
	// since demand was first observed, in capacity-unit hours: the
	// buffer's and the scale-down delay's.
	IdleUnitHours float64
	// BootTime is the boot time in use: the pool's estimate, or
	// ForecastConfig.BootTime while it has none.
	BootTime time.Duration
	// Lead is how far ahead the buffer looks.
	Lead time.Duration
	// Sizes is how many rise sizes the estimate of their distribution
	// holds (the latest 4096 at most).
	Sizes int
	// MissBudget is the share of rises the buffer is sized to miss: a
	// tenth below 1 - Goal.Quantile once many rises are seen, less (0:
	// every rise seen is covered, see the package documentation) while
	// few are.
	MissBudget float64
	// Seasons is how many seasons the slots' rates of rises were learned
	// over, on average over the slots.
	Seasons float64
}

// Status reports the goal's attainment and the buffer's cost so far.
func (f *Forecast) Status() ForecastStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := ForecastStatus{
		Goal: f.cfg.Goal, Rises: f.rises, Met: f.met, Attainment: 1, Buffer: f.buffer,
		BufferUnitHours: f.bufferUH, IdleUnitHours: f.idleUH, BootTime: f.boot,
		Lead: f.lead(), Sizes: min(f.nSizes, maxSizes), MissBudget: f.missBudget(min(f.nSizes, maxSizes)),
	}
	if f.rises > 0 {
		st.Attainment = float64(f.met) / float64(f.rises)
	}
	n := 0
	for _, e := range f.rates {
		n += e.n
	}
	st.Seasons = float64(n) / float64(len(f.rates))
	return st
}
