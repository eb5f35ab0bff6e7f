package manager

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Defaults of QueueConfig fields left zero.
const (
	DefaultJobsPerUnit    = 1
	DefaultScaleDownDelay = time.Minute
)

// QueueConfig configures a [Queue]. The zero value of every field has a
// documented default.
type QueueConfig struct {
	// JobsPerUnit is how many jobs one capacity unit runs at a time, so a
	// server of an instance type of weight 2 runs twice as many; default
	// DefaultJobsPerUnit.
	JobsPerUnit int
	// Min is the least capacity wanted, even with an empty queue. Max caps
	// the capacity wanted; 0 means no cap of the manager's own (the pool's
	// Max still applies).
	Min, Max int
	// ScaleDownDelay is how long demand must stay below the current target
	// before the target drops; default DefaultScaleDownDelay, one minute.
	// Bursts shorter than this are served by the servers already there
	// instead of by new launches. EC2 bills per second from running, so an
	// idle server kept a minute costs about what a new one costs until it
	// is ready (a typical launch to ready is under a minute): holding it
	// longer pays only when demand returns after longer gaps. Raise it for
	// servers that take longer to be ready; to follow every drop at the
	// next pass, set a delay shorter than the pass interval, such as
	// time.Nanosecond.
	ScaleDownDelay time.Duration
	// Market restricts the markets of the manager's servers; default
	// AnyMarket.
	Market MarketPreference
	// ZoneMinimums asks for at least this much of the target in each zone
	// (see Request.ZoneMinimums); default none. The map is copied.
	ZoneMinimums map[string]int
	// Signal, if set, is called at each pass to read the queue, as an
	// alternative to calling Observe. It runs inside the pass, so it must
	// be quick (read a counter, not query a remote service) and must not
	// call into the scaler. An error fails the pass's demand, and the pool
	// keeps the previous target. It is called from Demand, never twice at
	// once by one pool, but concurrently with the host's own calls.
	Signal func(ctx context.Context) (queued, running int, err error)
	// Classes describe kinds of jobs by how long they run and how often
	// they checkpoint, for job-aware market choice: the host reports jobs
	// by class with [Queue.ObserveClasses], and each Request's Work says
	// how much of the target each class wants. Default none. The slice is
	// copied.
	Classes []JobClass
}

// Queue is a manager whose demand follows a job queue: it wants
// ceil((queued+running) / JobsPerUnit) capacity units, within [Min, Max].
//
// The host reports the queue with [Queue.Observe] whenever it likes (or
// sets QueueConfig.Signal). A rise in demand raises the target at once (and
// wakes the scaler, see [Waker]). A fall lowers it to the highest demand of
// the last ScaleDownDelay, in the first pass that sees that window pass: a
// queue that empties and refills between passes does not make servers go
// and come back, and a queue that stays low is followed without waiting a
// pass longer than the delay.
//
// Servers the host reports idle with [Queue.MarkIdle] are offered back first
// when the target falls.
//
// A Queue is safe for concurrent use by multiple goroutines: the host calls
// Observe, MarkIdle and Target from any goroutine while the pool calls
// Demand and Notify from its pass.
type Queue struct {
	name string
	cfg  QueueConfig

	mu       sync.Mutex
	observed bool
	lastAt   time.Time // time of the latest observation
	desired  int       // desired capacity by the latest observation
	raw      int       // the same before Min and Max

	hasTarget bool
	target    int
	// hist holds the observations whose demand may still be in effect
	// within the last ScaleDownDelay, oldest first: each holds from its
	// time to the next one's.
	hist []demandAt
	// floor is what was held at the first pass: the target does not fall
	// below it before floorUntil, one delay later.
	floor      int
	floorUntil time.Time

	idle map[string]bool
	wake func() // set once, before the first pass
	// classUnits is, per class of cfg.Classes, the units the latest
	// observation asked for; nil when it did not say.
	classUnits []int
}

var (
	_ Manager = (*Queue)(nil)
	_ Waker   = (*Queue)(nil)
	_ Waker   = (*Fixed)(nil)
)

// NewQueue returns a queue manager named name. The name must be 1 to
// [MaxNameLength] bytes of UTF-8 and stay the same across restarts.
func NewQueue(name string, cfg QueueConfig) (*Queue, error) {
	if err := validateName("queue", name); err != nil {
		return nil, err
	}
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Kind: "queue", Name: name, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	switch {
	case cfg.JobsPerUnit < 0:
		return nil, bad("JobsPerUnit", "must be positive, got %d", cfg.JobsPerUnit)
	case cfg.JobsPerUnit == 0:
		cfg.JobsPerUnit = DefaultJobsPerUnit
	}
	if cfg.Min < 0 {
		return nil, bad("Min", "must not be negative, got %d", cfg.Min)
	}
	if cfg.Max < 0 {
		return nil, bad("Max", "must not be negative, got %d", cfg.Max)
	}
	if cfg.Max > 0 && cfg.Min > cfg.Max {
		return nil, bad("Min", "%d is above Max %d", cfg.Min, cfg.Max)
	}
	switch {
	case cfg.ScaleDownDelay == 0:
		cfg.ScaleDownDelay = DefaultScaleDownDelay
	case cfg.ScaleDownDelay < 0:
		return nil, bad("ScaleDownDelay", "must not be negative, got %v", cfg.ScaleDownDelay)
	}
	if err := validateRequestParts("queue", name, cfg.Market, cfg.ZoneMinimums); err != nil {
		return nil, err
	}
	if err := validateClasses(name, cfg.Classes); err != nil {
		return nil, err
	}
	cfg.ZoneMinimums = maps.Clone(cfg.ZoneMinimums)
	cfg.Classes = slices.Clone(cfg.Classes)
	return &Queue{name: name, cfg: cfg, idle: map[string]bool{}}, nil
}

// Name returns the manager's name.
func (q *Queue) Name() string { return q.name }

// Observe reports the queue as it was at now: jobs waiting and jobs
// running. Negative counts count as 0. now should come from the same clock
// as the scaler's pass time. It says nothing of the jobs' classes: the
// Work of later requests is empty until [Queue.ObserveClasses] reports
// them again.
func (q *Queue) Observe(now time.Time, queued, running int) {
	raw := q.unitsFor(queued, running)
	d := q.clamp(raw)
	if wake := q.observe(now, d, raw); wake != nil {
		wake() // after the unlock: the wake must not wait on q.mu
	}
}

// observe records an observation and returns the wake-up to call when it
// asks for more than the target.
func (q *Queue) observe(now time.Time, d, raw int) func() {
	return q.observeWork(now, d, raw, nil)
}

// observeWork is observe with the units of each job class (nil when the
// observation does not say).
func (q *Queue) observeWork(now time.Time, d, raw int, classUnits []int) func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.observed && now.Before(q.lastAt) {
		// A late report from a concurrent caller: it is still evidence of
		// demand within the window, but not the queue's latest state.
		i, _ := slices.BinarySearchFunc(q.hist, now, func(o demandAt, t time.Time) int { return o.at.Compare(t) })
		q.hist = slices.Insert(q.hist, i, demandAt{now, d})
		return nil
	}
	rise := q.hasTarget && d > q.target
	q.observed, q.lastAt, q.desired, q.raw = true, now, d, raw
	q.classUnits = classUnits
	q.hist = append(q.hist, demandAt{now, d})
	q.windowMax(now) // forgets what is older than the window, so a host that observes between rare passes keeps a bounded history
	if rise {
		return q.wake
	}
	return nil
}

// SetWake registers the scaler's wake-up, called when an observation
// asks for more than the current target. It implements [Waker].
func (q *Queue) SetWake(wake func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wake = wake
}

// MarkIdle records whether the server id runs no jobs. Idle servers are
// listed in Request.Idle, so they are the first to go when the target
// falls. A server is forgotten when it is revoked.
func (q *Queue) MarkIdle(id string, idle bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if idle {
		q.idle[id] = true
	} else {
		delete(q.idle, id)
	}
}

// Target returns the target of the latest Demand, 0 before the first.
func (q *Queue) Target() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.target
}

// Demand returns the target for the pass at s.Now.
//
// Before the queue is first observed, the manager keeps what it holds (as
// after a restart of the host), within [Min, Max].
func (q *Queue) Demand(ctx context.Context, s State) (Request, error) {
	if q.cfg.Signal != nil {
		queued, running, err := q.cfg.Signal(ctx)
		if err != nil {
			return Request{}, fmt.Errorf("manager: queue %q: signal: %w", q.name, err)
		}
		raw := q.unitsFor(queued, running)
		q.observe(s.Now, q.clamp(raw), raw) // no wake-up: this is the pass
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case !q.hasTarget:
		// First pass: start from what is held, so that a restarted host
		// does not drop servers before the delay says so: what is held
		// counts as demand observed now.
		q.target, q.hasTarget = q.clamp(s.Ready()), true
		if q.observed {
			q.target = max(q.target, q.desired)
		}
		q.floor, q.floorUntil = q.target, s.Now.Add(q.cfg.ScaleDownDelay)
	case !q.observed:
	case q.desired >= q.target:
		q.target = q.desired
	default:
		// Lower only: the window's highest demand, but never above the
		// target already set.
		q.target = min(q.target, max(q.desired, q.windowMax(s.Now)))
	}
	req := Request{
		Target:       q.target,
		ZoneMinimums: maps.Clone(q.cfg.ZoneMinimums),
		Market:       q.cfg.Market,
		Idle:         q.heldIdle(s.Servers),
		Work:         q.work(),
	}
	if q.cfg.Max > 0 && q.observed && q.raw > q.cfg.Max && q.target == q.cfg.Max {
		req.Unclamped = q.raw
	}
	return req, nil
}

// DemandIsInstant reports whether Demand answers from memory: true unless
// the queue reads a Signal.
func (q *Queue) DemandIsInstant() bool { return q.cfg.Signal == nil }

// Notify forgets the idle mark of a revoked server.
func (q *Queue) Notify(n Notice) {
	if n.Kind != Revoked {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.idle, n.Server.ID)
}

// demandAt is the capacity a queue asked for from a time on.
type demandAt struct {
	at time.Time
	d  int
}

// windowMax is the highest demand in effect during the last
// ScaleDownDelay before now; it forgets what is older. The caller holds
// q.mu.
func (q *Queue) windowMax(now time.Time) int {
	from := now.Add(-q.cfg.ScaleDownDelay)
	// An observation is over once the next one starts, before the window.
	drop := 0
	for drop+1 < len(q.hist) && !q.hist[drop+1].at.After(from) {
		drop++
	}
	q.hist = slices.Delete(q.hist, 0, drop)
	m := 0
	if now.Before(q.floorUntil) {
		m = q.floor
	}
	for _, o := range q.hist {
		m = max(m, o.d)
	}
	return m
}

// unitsFor is the capacity a queue asks for, before Min and Max.
func (q *Queue) unitsFor(queued, running int) int {
	queued, running = max(queued, 0), max(running, 0)
	jobs := queued + running
	if jobs < 0 { // overflow
		jobs = math.MaxInt
	}
	n := jobs / q.cfg.JobsPerUnit
	if jobs%q.cfg.JobsPerUnit != 0 {
		n++
	}
	return n
}

func (q *Queue) clamp(n int) int {
	n = max(n, q.cfg.Min)
	if q.cfg.Max > 0 {
		n = min(n, q.cfg.Max)
	}
	return n
}

// heldIdle lists, in id order, the servers marked idle among those held.
// The caller holds q.mu.
func (q *Queue) heldIdle(servers []Server) []string {
	var ids []string
	for _, srv := range servers {
		if q.idle[srv.ID] {
			ids = append(ids, srv.ID)
		}
	}
	slices.Sort(ids)
	return ids
}
