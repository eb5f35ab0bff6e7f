package manager

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"
)

// Defaults of TargetTrackingConfig fields left zero.
const (
	// DefaultScaleInCooldown is the stabilisation window of a scale-in,
	// EC2 Auto Scaling's default scale-in cooldown.
	DefaultScaleInCooldown = 5 * time.Minute
	// DefaultTolerance is the dead band around the target value: within
	// ±10 % of it, the target stays where it is.
	DefaultTolerance = 0.1
	// DefaultScaleInShare is the default cap on one scale-in: a tenth of
	// the current target, at least one capacity unit.
	DefaultScaleInShare = 0.1
	// MaxScaleInBackoff is how far a flapping load stretches the scale-in
	// window: up to this many times ScaleInCooldown.
	MaxScaleInBackoff = 8
)

// EC2 Auto Scaling's target tracking adds capacity in proportion to the
// metric as fast as it can but removes it gradually, only once the metric
// has stayed low long enough to call the demand gone; its scale-in cooldown
// is the least time between two scale-ins, and a scale-out during it goes
// ahead at once; and a metric with insufficient data never causes a
// scale-in, since missing data is not low utilisation (EC2 and Application
// Auto Scaling user guides, "target tracking scaling policies"). The
// defaults below follow that: a fall waits for a full window, removes at
// most a tenth of the target, and the next one waits for the window again.

// TargetTrackingConfig configures a [TargetTracking] manager. The zero value
// of every field but TargetPerServer has a documented default.
type TargetTrackingConfig struct {
	// TargetPerServer is the metric value one capacity unit should carry,
	// for example 100 requests per second, or 400 open connections.
	// Required; choose it with headroom below the load where a server's
	// latency degrades, since the metric may run up to Tolerance above it.
	TargetPerServer float64
	// Min is the least capacity wanted, even with no load. Max caps it; 0
	// means no cap of the manager's own (the pool's Max still applies).
	Min, Max int
	// Tolerance is the dead band, as a fraction of the load the current
	// target is sized for: while the metric stays within it, the target
	// does not move, so a metric hovering at a boundary between two sizes
	// does not add and remove a server at every pass. 0 means
	// DefaultTolerance; a negative value means none. Must be below 1.
	Tolerance float64
	// ScaleInCooldown is the stabilisation window: the target falls only
	// to what the highest metric seen during the last ScaleInCooldown asks
	// for, so it falls only once the load has stayed lower for that long.
	// It is also, as in EC2 Auto Scaling, the least time between two
	// scale-ins (a rise never waits for it). A scale-in that the load undoes
	// (a rise less than MaxScaleInBackoff windows after it) shows a load
	// swinging with a period longer than the window: the window then
	// doubles, up to MaxScaleInBackoff times ScaleInCooldown, and halves
	// back after each scale-in that holds that long, so a wave is followed
	// up but not back down at every trough. 0 means DefaultScaleInCooldown; to follow every fall at the next
	// pass, set a window shorter than the pass interval (time.Nanosecond).
	ScaleInCooldown time.Duration
	// ScaleOutCooldown is the least time between two rises of the target;
	// 0 (the default) scales out at once every time the load asks for it.
	// Capacity already on its way counts towards the target, so a rise
	// never asks twice for the same load.
	ScaleOutCooldown time.Duration
	// MaxScaleInPerPass caps the capacity the target falls by in one
	// scale-in. 0 means the default: a tenth of the current target
	// (DefaultScaleInShare), rounded down, at least 1. A negative value
	// means no cap: the target falls to what the window's highest metric
	// asks for at once. With a cap, a large fall is spread over several
	// scale-ins, ScaleInCooldown apart.
	MaxScaleInPerPass int
	// ZeroIsIdle makes a metric of 0 mean no load even while servers are in
	// service, for a metric that is never missing (one the host counts
	// itself). By default such a 0 is missing data and never lowers the
	// target (see TargetTracking).
	ZeroIsIdle bool
	// DisableScaleIn makes the manager only ever raise its target, for a
	// host that removes capacity some other way.
	DisableScaleIn bool
	// WarmUp holds scale-ins while any of the manager's servers is younger
	// than this (counted from its launch): a server just put in service is
	// still warming its caches, so the load the others carry is not yet
	// the steady load. 0 means no warm-up.
	WarmUp time.Duration
	// Market restricts the markets of the manager's servers; default
	// AnyMarket.
	Market MarketPreference
	// ZoneMinimums asks for at least this much of the target in each zone
	// (see Request.ZoneMinimums); default none. The map is copied.
	ZoneMinimums map[string]int
	// Signal, if set, is called at each pass to read the metric, as an
	// alternative to calling Observe. It runs inside the pass, so it must
	// be quick, and must not call into the scaler. An error fails the
	// pass's demand, and the pool keeps the previous target. It is called
	// from Demand, never twice at once by one pool, but concurrently with
	// the host's own calls.
	Signal func(ctx context.Context) (float64, error)
}

// TargetTracking is a manager that holds a metric at a target value per
// server, as EC2 Auto Scaling's target tracking policies do. The host reports
// the metric summed over its fleet (total requests per second, total open
// connections) with [TargetTracking.Observe]; the manager wants
// ceil(metric / TargetPerServer) capacity units, within [Min, Max].
//
// The sum is used rather than a per-server average because it does not
// depend on how many servers there are: servers still booting, or just put in
// service with cold caches, do not drag it down, so a rise never asks twice
// for the same load.
//
// A rise raises the target at the next pass (unless ScaleOutCooldown holds
// it). A fall lowers it only to what the highest metric of the last
// ScaleInCooldown asks for, by at most MaxScaleInPerPass (a tenth of the
// target by default), at most once per ScaleInCooldown, and not while
// servers are warming up. Within the Tolerance band around the current
// target nothing moves.
//
// A metric of 0 while the manager holds servers that are not winding down
// is missing data, not an idle fleet: a fleet in service always carries
// some load, and a metric source that has lost its data (a load balancer
// publishing no data point for a quiet minute, a broken exporter) reports
// 0. Such a reading never lowers the target; it can only be followed by a
// scale-in once the host reports a positive value again (set ZeroIsIdle for
// a metric that is never missing).
//
// A TargetTracking is safe for concurrent use by multiple goroutines: the
// host calls Observe and Target from any goroutine while the pool calls
// Demand and Notify from its pass.
type TargetTracking struct {
	name string
	cfg  TargetTrackingConfig

	mu       sync.Mutex
	observed bool
	since    time.Time // first observation: the window is not full before since+ScaleInCooldown
	lastAt   time.Time
	last     float64
	// window holds the metrics that can still be the highest of a
	// scale-in window, with the time from which each (or a higher one
	// after it) was in force: times rise and values fall from front to
	// back.
	window []observation

	hasTarget bool
	target    int
	raisedAt  time.Time
	// loweredAt is the latest scale-in: the next waits a window.
	loweredAt time.Time
	// judging is set while the latest scale-in may still be undone by a
	// rise; backoff doubles the window per scale-in
	// undone, and halves it back per scale-in that held.
	judging bool
	backoff int
}

type observation struct {
	at     time.Time
	metric float64
}

var _ Manager = (*TargetTracking)(nil)

// NewTargetTracking returns a target-tracking manager named name. The name
// must be 1 to [MaxNameLength] bytes of UTF-8 and stay the same across
// restarts.
func NewTargetTracking(name string, cfg TargetTrackingConfig) (*TargetTracking, error) {
	const kind = "target-tracking"
	if err := validateName(kind, name); err != nil {
		return nil, err
	}
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Kind: kind, Name: name, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if t := cfg.TargetPerServer; !(t > 0) || math.IsInf(t, 0) {
		return nil, bad("TargetPerServer", "must be a positive number, got %v", t)
	}
	switch {
	case cfg.Min < 0:
		return nil, bad("Min", "must not be negative, got %d", cfg.Min)
	case cfg.Max < 0:
		return nil, bad("Max", "must not be negative, got %d", cfg.Max)
	case cfg.Max > 0 && cfg.Min > cfg.Max:
		return nil, bad("Min", "%d is above Max %d", cfg.Min, cfg.Max)
	}
	switch tol := cfg.Tolerance; {
	case math.IsNaN(tol) || tol >= 1:
		return nil, bad("Tolerance", "must be below 1, got %v", tol)
	case tol == 0:
		cfg.Tolerance = DefaultTolerance
	case tol < 0:
		cfg.Tolerance = 0
	}
	switch {
	case cfg.ScaleInCooldown < 0:
		return nil, bad("ScaleInCooldown", "must not be negative, got %v", cfg.ScaleInCooldown)
	case cfg.ScaleInCooldown == 0:
		cfg.ScaleInCooldown = DefaultScaleInCooldown
	}
	if cfg.ScaleOutCooldown < 0 {
		return nil, bad("ScaleOutCooldown", "must not be negative, got %v", cfg.ScaleOutCooldown)
	}
	if cfg.WarmUp < 0 {
		return nil, bad("WarmUp", "must not be negative, got %v", cfg.WarmUp)
	}
	if err := validateRequestParts(kind, name, cfg.Market, cfg.ZoneMinimums); err != nil {
		return nil, err
	}
	cfg.ZoneMinimums = maps.Clone(cfg.ZoneMinimums)
	return &TargetTracking{name: name, cfg: cfg}, nil
}

// Name returns the manager's name.
func (t *TargetTracking) Name() string { return t.name }

// Observe reports the metric, summed over the fleet, as it was at now.
// Negative values count as 0 and NaN is ignored. now should come from the
// same clock as the scaler's pass time; a report older than the latest one
// counts as seen at the latest one's time.
func (t *TargetTracking) Observe(now time.Time, metric float64) {
	if math.IsNaN(metric) {
		return
	}
	metric = max(metric, 0)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.observed {
		t.observed, t.since = true, now
	}
	if now.Before(t.lastAt) {
		now = t.lastAt
	}
	t.lastAt, t.last = now, metric
	// An older value no higher than this one can no longer be the highest
	// of any window that holds this one. The new entry takes over its start
	// time, because that is when the value before it stopped being in
	// force.
	at := now
	for n := len(t.window); n > 0 && t.window[n-1].metric <= metric; n-- {
		at = t.window[n-1].at
		t.window = t.window[:n-1]
	}
	t.window = append(t.window, observation{at, metric})
}

// Target returns the target of the latest Demand, 0 before the first.
func (t *TargetTracking) Target() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.target
}

// DemandIsInstant reports whether Demand answers from memory: true unless
// the manager reads a Signal.
func (t *TargetTracking) DemandIsInstant() bool { return t.cfg.Signal == nil }

// Demand returns the target for the pass at s.Now.
//
// Before the metric is first observed, the manager keeps what it holds (as
// after a restart of the host), within [Min, Max]; a scale-in then waits for
// a full ScaleInCooldown of observations.
func (t *TargetTracking) Demand(ctx context.Context, s State) (Request, error) {
	if t.cfg.Signal != nil {
		m, err := t.cfg.Signal(ctx)
		if err != nil {
			return Request{}, fmt.Errorf("manager: target-tracking %q: signal: %w", t.name, err)
		}
		t.Observe(s.Now, m)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := s.Now
	switch {
	case !t.hasTarget:
		t.hasTarget = true
		t.target = t.clamp(s.Ready())
		if t.observed {
			t.target = max(t.target, t.recommend(t.last))
		}
	case !t.observed:
	default:
		window := t.scaleInWindow()
		// A scale-in holds once the longest window has passed without a
		// rise: judging it on a shorter time would relax in the calm half
		// of a slow wave and flap again.
		if t.judging && now.Sub(t.loweredAt) >= stretch(t.cfg.ScaleInCooldown, MaxScaleInBackoff) {
			t.judging, t.backoff = false, max(t.backoff-1, 0)
		}
		if up := t.recommend(t.last); up > t.target {
			if t.cfg.ScaleOutCooldown == 0 || t.raisedAt.IsZero() || now.Sub(t.raisedAt) >= t.cfg.ScaleOutCooldown {
				t.target, t.raisedAt = up, now
				if t.judging { // the load came back: that scale-in was too soon
					t.judging, t.backoff = false, min(t.backoff+1, maxBackoffSteps)
				}
			}
			break
		}
		if t.cfg.DisableScaleIn || now.Sub(t.since) < window || t.warming(s) ||
			(!t.loweredAt.IsZero() && now.Sub(t.loweredAt) < window) ||
			(t.last == 0 && !t.cfg.ZeroIsIdle && inService(s)) {
			break
		}
		down := t.recommend(t.highest(now, now.Add(-window)))
		if down < t.target {
			t.target, t.loweredAt, t.judging = max(down, t.target-t.scaleInCap()), now, true
		}
	}
	req := Request{
		Target:       t.target,
		ZoneMinimums: maps.Clone(t.cfg.ZoneMinimums),
		Market:       t.cfg.Market,
	}
	if raw := t.unclamped(t.last); t.cfg.Max > 0 && t.observed && raw > t.cfg.Max && t.target == t.cfg.Max {
		req.Unclamped = raw
	}
	return req, nil
}

// unclamped is the capacity metric asks for, before Min and Max.
func (t *TargetTracking) unclamped(metric float64) int {
	servers := metric / t.cfg.TargetPerServer
	if servers >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int(math.Ceil(servers - 1e-9))
}

// Notify does nothing: the demand follows the metric, not the servers.
func (t *TargetTracking) Notify(Notice) {}

// recommend returns the capacity metric asks for, within [Min, Max]: the
// current target while metric is within the tolerance band around the load
// that target is sized for. The caller holds t.mu.
func (t *TargetTracking) recommend(metric float64) int {
	servers := metric / t.cfg.TargetPerServer
	if t.target > 0 && t.cfg.Tolerance > 0 {
		ratio := servers / float64(t.target)
		if ratio >= 1-t.cfg.Tolerance && ratio <= 1+t.cfg.Tolerance {
			return t.clamp(t.target)
		}
	}
	const most = math.MaxInt32 // far above any pool, and safe to convert
	if servers >= most {
		return t.clamp(most)
	}
	// The epsilon keeps a quotient like 1.1/0.1 = 11.000000000000002 from
	// rounding up to 12.
	return t.clamp(int(math.Ceil(servers - 1e-9)))
}

// highest returns the highest metric in force since start, dropping the
// observations that ended before the longest window could start. The caller
// holds t.mu.
func (t *TargetTracking) highest(now, start time.Time) float64 {
	first := func(start time.Time) int {
		i := 0
		for i+1 < len(t.window) && !t.window[i+1].at.After(start) {
			i++ // window[i+1] replaced window[i] before start
		}
		return i
	}
	t.window = t.window[first(now.Add(-stretch(t.cfg.ScaleInCooldown, MaxScaleInBackoff))):]
	return t.window[first(start)].metric
}

// maxBackoffSteps is the number of doublings that reach MaxScaleInBackoff.
const maxBackoffSteps = 3 // 1<<3 == MaxScaleInBackoff

// window returns the scale-in window: ScaleInCooldown, stretched while the
// load flaps. The caller holds t.mu.
func (t *TargetTracking) scaleInWindow() time.Duration {
	return stretch(t.cfg.ScaleInCooldown, 1<<t.backoff)
}

// stretch returns d times n, at most a century (no overflow).
func stretch(d time.Duration, n int) time.Duration {
	const century = 100 * 365 * 24 * time.Hour
	if d > century/time.Duration(n) {
		return century
	}
	return d * time.Duration(n)
}

// scaleInCap returns the most the target may fall by in one scale-in. The
// caller holds t.mu.
func (t *TargetTracking) scaleInCap() int {
	switch c := t.cfg.MaxScaleInPerPass; {
	case c > 0:
		return c
	case c < 0:
		return t.target
	}
	return max(1, int(float64(t.target)*DefaultScaleInShare))
}

// inService reports whether the manager holds a server that is not winding
// down: one that should be carrying some of the load.
func inService(s State) bool {
	for _, srv := range s.Servers {
		if !srv.WindingDown {
			return true
		}
	}
	return false
}

// warming reports whether a server working for the manager is within its
// warm-up. The caller holds t.mu.
func (t *TargetTracking) warming(s State) bool {
	if t.cfg.WarmUp == 0 {
		return false
	}
	for _, srv := range s.Servers {
		if !srv.WindingDown && !srv.LaunchTime.IsZero() && s.Now.Sub(srv.LaunchTime) < t.cfg.WarmUp {
			return true
		}
	}
	return false
}

func (t *TargetTracking) clamp(n int) int {
	n = max(n, t.cfg.Min)
	if t.cfg.Max > 0 {
		n = min(n, t.cfg.Max)
	}
	return n
}
