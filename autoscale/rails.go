package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// Defaults of Rails.
const (
	DefaultMaxLaunchPerMinute    = 500
	DefaultMaxLaunchCallsPerPass = 5
	DefaultNotReadyLimit         = 3
	DefaultLaunchFailureLimit    = 5
	DefaultFlapLimit             = 6
	DefaultAlarmWindow           = 30 * time.Minute
	DefaultCapacityFailureLimit  = 3
)

// Rails are the safety rails of a scaler: caps that hold whatever the
// managers ask, and detectors that raise an alarm when something runs away.
// Every cap that bites and every alarm is reported as an event and through
// Scaler.Alarms, never only in a log: each launch a cap (or Scaler.Pause)
// holds back is a pool.EventLaunchCapped, never a failed launch, and a cap
// raises its alarm in the pass it starts biting and clears it in the first
// pass it does not.
type Rails struct {
	// MaxLaunchPerMinute caps the capacity units launched in any rolling
	// minute, across pools (DefaultMaxLaunchPerMinute; negative: no cap).
	MaxLaunchPerMinute int
	// MaxLaunchCallsPerPass caps the launch calls of one pass, across
	// pools (DefaultMaxLaunchCallsPerPass, RunInstances' default burst, so
	// a burst never provokes throttling; negative: no cap). Launches beyond
	// it wait for the next pass, reported as EventLaunchCapped with
	// AlarmLaunchCalls.
	MaxLaunchCallsPerPass int
	// MaxSpendPerHour caps the hourly cost of all instances, in US
	// dollars, as the pools' price books see it: launches that would go
	// beyond it are cut. 0 means no cap. Pools without prices count 0.
	MaxSpendPerHour float64
	// Window over which the detectors count (DefaultAlarmWindow).
	Window time.Duration
	// NotReadyLimit: this many provisioning failures in a pool within
	// Window raise AlarmNeverReady (DefaultNotReadyLimit).
	NotReadyLimit int
	// LaunchFailureLimit: this many failed launches in a row in a pool
	// raise AlarmLaunchFailures (DefaultLaunchFailureLimit).
	LaunchFailureLimit int
	// CapacityFailureLimit: this many passes in a row in which no offering
	// could launch raise AlarmNoCapacity (DefaultCapacityFailureLimit).
	CapacityFailureLimit int
	// FlapLimit: a manager whose target turns back this many times within
	// Window, each time by at least half its level, or whose wind-downs are
	// cancelled this many times within Window in more than one pass, raises
	// AlarmFlapping (DefaultFlapLimit). Small moves both ways, a Queue
	// following the jobs of a busy queue, are not flapping.
	FlapLimit int
}

func (r Rails) withDefaults() (Rails, error) {
	if r.MaxSpendPerHour < 0 || r.Window < 0 || r.NotReadyLimit < 0 || r.LaunchFailureLimit < 0 ||
		r.CapacityFailureLimit < 0 || r.FlapLimit < 0 {
		return r, fmt.Errorf("%w: Rails: limits and Window must not be negative", ErrInvalidOptions)
	}
	if r.MaxLaunchPerMinute == 0 {
		r.MaxLaunchPerMinute = DefaultMaxLaunchPerMinute
	}
	if r.MaxLaunchCallsPerPass == 0 {
		r.MaxLaunchCallsPerPass = DefaultMaxLaunchCallsPerPass
	}
	if r.Window == 0 {
		r.Window = DefaultAlarmWindow
	}
	if r.NotReadyLimit == 0 {
		r.NotReadyLimit = DefaultNotReadyLimit
	}
	if r.LaunchFailureLimit == 0 {
		r.LaunchFailureLimit = DefaultLaunchFailureLimit
	}
	if r.CapacityFailureLimit == 0 {
		r.CapacityFailureLimit = DefaultCapacityFailureLimit
	}
	if r.FlapLimit == 0 {
		r.FlapLimit = DefaultFlapLimit
	}
	return r, nil
}

// AlarmKind names a runaway situation.
type AlarmKind string

// Alarm kinds.
const (
	AlarmNeverReady     AlarmKind = "never-ready"     // servers keep failing to provision
	AlarmNoCapacity     AlarmKind = "no-capacity"     // no offering can launch
	AlarmFlapping       AlarmKind = "flapping"        // a manager's demand swings up and down
	AlarmLaunchFailures AlarmKind = "launch-failures" // launches keep failing
	AlarmLaunchRate     AlarmKind = "launch-rate"     // the launch cap bit
	AlarmLaunchCalls    AlarmKind = "launch-calls"    // the launch-calls-per-pass cap bit
	AlarmSpend          AlarmKind = "spend"           // the spend cap bit
)

// isCap reports whether an alarm is raised by a cap biting, rather than by
// a detector.
func (k AlarmKind) isCap() bool {
	return k == AlarmLaunchRate || k == AlarmLaunchCalls || k == AlarmSpend
}

// Alarm is an active runaway situation.
type Alarm struct {
	Kind    AlarmKind
	Pool    string
	Manager string
	Since   time.Time
	Reason  string
}

// rails holds the detectors' counters.
type rails struct {
	cfg Rails

	mu       sync.Mutex
	launches []launchMark // launches in the last minute
	alarms   map[alarmKey]Alarm
	failures map[string][]time.Time // provisioning failures per pool
	launchKO map[string]int         // consecutive failed launches per pool
	invalid  map[string]string      // pools whose last launch EC2 refused as invalid
	restores map[string][]time.Time // wind-downs cancelled, per pool and manager
	// badProvision: pools whose last provisioning failed as a configuration
	// error.
	badProvision map[string]string
	noCap        map[string]int // consecutive passes with no capacity per pool
	targets      map[string][]targetMark
	paused       bool
	noTerm       bool
}

type launchMark struct {
	at    time.Time
	units int
}

type targetMark struct {
	at     time.Time
	target int
}

type alarmKey struct {
	kind          AlarmKind
	pool, manager string
}

func newRails(cfg Rails) *rails {
	return &rails{cfg: cfg, alarms: map[alarmKey]Alarm{}, failures: map[string][]time.Time{},
		launchKO: map[string]int{}, invalid: map[string]string{}, restores: map[string][]time.Time{}, badProvision: map[string]string{}, noCap: map[string]int{}, targets: map[string][]targetMark{}}
}

// launchBudget returns how many capacity units may still be launched this
// minute.
func (r *rails) launchBudget(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.MaxLaunchPerMinute < 0 {
		return int(^uint(0) >> 1)
	}
	r.launches = slices.DeleteFunc(r.launches, func(m launchMark) bool { return now.Sub(m.at) >= time.Minute })
	used := 0
	for _, m := range r.launches {
		used += m.units
	}
	return max(0, r.cfg.MaxLaunchPerMinute-used)
}

func (r *rails) launched(now time.Time, units int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.launches = append(r.launches, launchMark{now, units})
}

// observe feeds one pass's events and statuses to the detectors and
// returns the alarms raised and cleared, as events.
func (r *rails) observe(now time.Time, events []Event, statuses map[string]pool.Status) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	active := map[alarmKey]string{}
	noCapThisPass := map[string]bool{}
	for _, e := range events {
		switch e.Kind {
		case pool.EventProvisionFailed:
			r.failures[e.Pool] = append(r.failures[e.Pool], now)
			if e.Err != nil && errors.Is(e.Err, awsctl.ErrInvalidRequest) {
				// The role says no server can be ready as configured (a zone
				// the load balancer does not serve, say): alarm at once.
				r.badProvision[e.Pool] = e.Err.Error()
			}
		case pool.EventProvisioned:
			delete(r.badProvision, e.Pool)
		case pool.EventLaunch:
			r.launchKO[e.Pool] = 0
			delete(r.invalid, e.Pool)
		case pool.EventLaunchFailed:
			r.launchKO[e.Pool]++
			if e.Err != nil && errors.Is(e.Err, awsctl.ErrInvalidRequest) {
				// A configuration EC2 refuses (an image, subnet or zone it
				// does not know, a call not permitted) fails the same way
				// every pass: say so at once, not after LaunchFailureLimit.
				r.invalid[e.Pool] = e.Err.Error()
			}
		case pool.EventNoCapacity:
			noCapThisPass[e.Pool] = true
		case pool.EventRestore:
			// A cancelled wind-down is churn whatever the target did: a
			// slow wave can swing servers back and forth while the target
			// turns back too seldom to count.
			key := e.Pool + "\x00" + e.Manager
			r.restores[key] = append(r.restores[key], now)
		}
	}
	for name, st := range statuses {
		fails := slices.DeleteFunc(r.failures[name], func(t time.Time) bool { return now.Sub(t) > r.cfg.Window })
		r.failures[name] = fails
		if len(fails) >= r.cfg.NotReadyLimit {
			active[alarmKey{AlarmNeverReady, name, ""}] = fmt.Sprintf("%d servers failed to become ready within %v", len(fails), r.cfg.Window)
		} else if why, ok := r.badProvision[name]; ok {
			active[alarmKey{AlarmNeverReady, name, ""}] = "provisioning refused as a configuration error: " + why
		}
		if n := r.launchKO[name]; n >= r.cfg.LaunchFailureLimit {
			active[alarmKey{AlarmLaunchFailures, name, ""}] = fmt.Sprintf("%d launches failed in a row", n)
		} else if why, ok := r.invalid[name]; ok {
			active[alarmKey{AlarmLaunchFailures, name, ""}] = "launch refused as invalid (a configuration error): " + why
		}
		if noCapThisPass[name] {
			r.noCap[name]++
		} else {
			r.noCap[name] = 0
		}
		if n := r.noCap[name]; n >= r.cfg.CapacityFailureLimit {
			active[alarmKey{AlarmNoCapacity, name, ""}] = fmt.Sprintf("no offering could launch for %d passes", n)
		}
		for mgr, ms := range st.Managers {
			key := name + "\x00" + mgr
			marks := r.targets[key]
			if len(marks) == 0 || marks[len(marks)-1].target != ms.Target {
				marks = append(marks, targetMark{now, ms.Target})
			}
			marks = slices.DeleteFunc(marks, func(m targetMark) bool { return now.Sub(m.at) > r.cfg.Window })
			r.targets[key] = marks
			if turns := reversals(marks); turns >= r.cfg.FlapLimit {
				active[alarmKey{AlarmFlapping, name, mgr}] = fmt.Sprintf("target turned back by half its level or more %d times within %v", turns, r.cfg.Window)
			}
			restores := slices.DeleteFunc(r.restores[key], func(t time.Time) bool { return now.Sub(t) > r.cfg.Window })
			r.restores[key] = restores
			// One swing back (many servers restored in one pass) is not
			// flapping; swings back in several passes are.
			if n := len(restores); n >= r.cfg.FlapLimit && len(slices.Compact(slices.Clone(restores))) >= 2 {
				active[alarmKey{AlarmFlapping, name, mgr}] = fmt.Sprintf("%d wind-downs cancelled within %v", n, r.cfg.Window)
			}
		}
	}
	return r.reconcile(now, active, false)
}

// caps records the caps that bit in this pass's launches: an alarm for
// each that starts biting, a clearing for each that stopped.
func (r *rails) caps(now time.Time, bit map[alarmKey]string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reconcile(now, bit, true)
}

// reconcile raises the alarms of active not raised yet and clears those of
// the same family (caps, or detectors) no longer active.
func (r *rails) reconcile(now time.Time, active map[alarmKey]string, caps bool) []Event {
	var out []Event
	for k, reason := range active {
		if _, ok := r.alarms[k]; !ok {
			r.alarms[k] = Alarm{Kind: k.kind, Pool: k.pool, Manager: k.manager, Since: now, Reason: reason}
			out = append(out, Event{Time: now, Kind: pool.EventAlarm, Pool: k.pool, Manager: k.manager, Reason: string(k.kind) + ": " + reason})
		}
	}
	for k, a := range r.alarms {
		if k.kind.isCap() != caps {
			continue
		}
		if _, ok := active[k]; !ok {
			delete(r.alarms, k)
			out = append(out, Event{Time: now, Kind: pool.EventAlarmCleared, Pool: a.Pool, Manager: a.Manager, Reason: string(a.Kind)})
		}
	}
	return out
}

// reversals counts how often a series of targets turns back by at least
// half of its level: a zigzag with a relative threshold. A Queue that follows
// a job queue moves a few units up and down all the time, as it should; a
// manager that flaps swings between levels far apart.
func reversals(marks []targetMark) int {
	if len(marks) == 0 {
		return 0
	}
	far := func(a, b int) bool { return abs(a-b) >= max(1, (max(a, b)+1)/2) }
	turns, dir := 0, 0
	lo, hi := marks[0].target, marks[0].target // of the series so far, while dir is 0
	ext := 0                                   // the current leg's extreme, once dir is set
	for _, m := range marks[1:] {
		v := m.target
		switch {
		case dir == 0 && far(lo, v) && v > lo:
			dir, ext = 1, v
		case dir == 0 && far(hi, v) && v < hi:
			dir, ext = -1, v
		case dir == 0:
			lo, hi = min(lo, v), max(hi, v)
		case dir > 0 && v > ext, dir < 0 && v < ext:
			ext = v
		case far(ext, v):
			turns++
			dir, ext = -dir, v
		}
	}
	return turns
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Alarms returns the runaway situations active after the latest pass.
func (s *Scaler) Alarms() []Alarm {
	s.rails.mu.Lock()
	defer s.rails.mu.Unlock()
	out := make([]Alarm, 0, len(s.rails.alarms))
	for _, a := range s.rails.alarms {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Alarm) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(string(a.Kind)+a.Pool+a.Manager, string(b.Kind)+b.Pool+b.Manager)
	})
	return out
}

// PauseOptions say what a pause stops.
type PauseOptions struct {
	// StopTerminating also stops terminations (wind-downs still start and
	// finish, but the servers are left running).
	StopTerminating bool
}

// Pause stops the scaler from launching (and optionally terminating) until
// Resume. Passes go on: decisions are still made and reported.
func (s *Scaler) Pause(opts PauseOptions) {
	s.rails.mu.Lock()
	defer s.rails.mu.Unlock()
	s.rails.paused, s.rails.noTerm = true, opts.StopTerminating
}

// Resume undoes Pause.
func (s *Scaler) Resume() {
	s.rails.mu.Lock()
	defer s.rails.mu.Unlock()
	s.rails.paused, s.rails.noTerm = false, false
}

// Paused reports whether launches (and terminations) are paused.
func (s *Scaler) Paused() (launches, terminations bool) {
	s.rails.mu.Lock()
	defer s.rails.mu.Unlock()
	return s.rails.paused, s.rails.noTerm
}

// limitLaunches applies the pause switch and the launch and spend caps to
// the plans' launches, trimming them (a launch cut to zero capacity is not
// made), and reports what bit: an EventLaunchCapped per launch held back,
// and the caps' alarms. A dry run calls it too, so that it reports what the
// live scaler would launch.
func (s *Scaler) limitLaunches(ctx context.Context, now time.Time, plans []*pool.Plan, dryRun bool) {
	hold := func(pl *pool.Plan, req *awsctl.LaunchRequest, allowed int, reason string) {
		s.emit(ctx, Event{Time: now, Kind: pool.EventLaunchCapped, Pool: pl.Pool, Capacity: req.Capacity - allowed,
			Market: req.Market, Reason: reason, DryRun: dryRun,
			Inputs: []slog.Attr{slog.Int("requested", req.Capacity), slog.Int("allowed", allowed)}})
		req.Capacity = allowed
	}
	bit := map[alarmKey]string{}
	paused, _ := s.Paused()
	budget := s.rails.launchBudget(now)
	spend := 0.0
	for _, p := range s.pools {
		spend += p.Status().HourlySpend
	}
	calls := 0
	for i, pl := range plans {
		unitPrice := s.pools[i].Status().UnitPrice
		for j := range pl.Launches {
			req := &pl.Launches[j]
			switch {
			case req.Capacity <= 0:
				continue
			case paused:
				// An operator's choice, not a failure: it feeds no detector.
				hold(pl, req, 0, "paused")
				continue
			case s.rails.cfg.MaxLaunchCallsPerPass >= 0 && calls >= s.rails.cfg.MaxLaunchCallsPerPass:
				reason := fmt.Sprintf("more than %d launch calls a pass; the next pass launches it", s.rails.cfg.MaxLaunchCallsPerPass)
				// Across pools: whichever pool waits, the scaler's cap bit.
				bit[alarmKey{AlarmLaunchCalls, "", ""}] = reason
				hold(pl, req, 0, reason)
				continue
			case budget < req.Capacity:
				reason := fmt.Sprintf("more than %d units a minute", s.rails.cfg.MaxLaunchPerMinute)
				bit[alarmKey{AlarmLaunchRate, pl.Pool, ""}] = reason
				hold(pl, req, budget, reason)
			}
			if cap := s.rails.cfg.MaxSpendPerHour; cap > 0 && unitPrice > 0 {
				if room := max(0, int((cap-spend)/unitPrice)); room < req.Capacity {
					reason := fmt.Sprintf("spend $%.2f/h of cap $%.2f/h", spend, cap)
					bit[alarmKey{AlarmSpend, pl.Pool, ""}] = reason
					hold(pl, req, room, reason)
				}
			}
			if req.Capacity <= 0 {
				continue
			}
			budget -= req.Capacity
			spend += float64(req.Capacity) * unitPrice
			calls++
		}
	}
	for _, e := range s.rails.caps(now, bit) {
		e.DryRun = dryRun
		s.emit(ctx, e)
	}
}
