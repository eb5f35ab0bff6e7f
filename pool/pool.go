package pool

import (
	"context"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// Pool is one group of interchangeable instances with one role and one or
// more managers. It decides; the scaler carries the decisions out. A Pool is
// driven by one scaler: Plan and Commit must not run concurrently with each
// other (the scaler serialises its passes).
type Pool struct {
	cfg      Config
	types    map[string]int // instance type -> weight
	managers map[string]manager.Manager
	mgrIndex map[string]int // position in Config.Managers
	hooks    *hookRunner

	mu          sync.Mutex
	mem         map[string]*memo
	inflight    map[string]inflight
	terminating map[string]time.Time
	overlay     map[string]overlay
	lastTarget  map[string]int
	rr          int
	status      Status
	draining    bool
	spotExtra   int // MinimumSpot capacity of the last pass, for hysteresis
	pass        uint64
	// resLeft is this pass's unused reservations by scope.
	resLeft map[spotprice.ReservationKey]int
	// backing and ptrs are the buffers of a pass's servers, kept between
	// passes.
	backing []server
	ptrs    []*server
}

// memo is what the pool learnt about an instance from its hooks. It is only
// a cache: after a restart every fact here is either re-derived from tags or
// re-learnt by running an idempotent hook again.
type memo struct {
	provisioned  bool
	failed       error
	windDownSent bool
	woundDown    bool
	tornDown     bool
	restored     bool
	restoreFree  bool   // the restore hands the server back to the pool, not its manager
	interrupted  bool   // the interruption was acted on
	rebalanced   bool   // the manager was told of the rebalance recommendation
	swapSkipped  bool   // a replacement was judged not worth it (reported once)
	seen         uint64 // the last pass whose listing showed the instance
}

type inflight struct {
	inst awsctl.Instance
	at   time.Time
}

// overlay is a tag change the listing may not show yet (EC2 tags are
// eventually consistent): key -> value, or nil for a removed key.
type overlay struct {
	at   time.Time
	tags map[string]*string
}

// New validates cfg and returns a pool. Errors wrap ErrInvalidConfig and
// name the offending field.
func New(cfg Config) (*Pool, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cfg:         c,
		types:       map[string]int{},
		managers:    map[string]manager.Manager{},
		mgrIndex:    map[string]int{},
		hooks:       newHookRunner(c.Role),
		mem:         map[string]*memo{},
		inflight:    map[string]inflight{},
		terminating: map[string]time.Time{},
		overlay:     map[string]overlay{},
		lastTarget:  map[string]int{},
	}
	for _, t := range c.Types {
		p.types[t.Name] = t.Weight
	}
	for _, m := range c.Managers {
		p.managers[m.Name()] = m
		p.mgrIndex[m.Name()] = len(p.mgrIndex)
	}
	return p, nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.cfg.Name }

// Config returns the pool's configuration with defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Status returns what the pool saw and decided in its latest pass.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status
	s.Managers = cloneMap(s.Managers)
	return s
}

// OnHookDone registers f to be called, from the hook's goroutine, each
// time a role hook of the pool finishes; f must not block. The scaler uses
// it to pass again as soon as a server is ready. Call it before the first
// pass.
func (p *Pool) OnHookDone(f func()) { p.hooks.onDone = f }

// WaitHooks waits until no role hook of the pool is running, or ctx ends.
// Simulations on virtual time use it so that instant hooks take effect in
// the next pass deterministically.
func (p *Pool) WaitHooks(ctx context.Context) error { return p.hooks.waitIdle(ctx) }

// Close waits for the pool's hook goroutines to return, or ctx to end.
// Cancel the context given to Commit first so running hooks stop.
func (p *Pool) Close(ctx context.Context) error { return p.hooks.wait(ctx) }

// SetDraining makes every manager's target and the pool's Min count as zero
// while on, so that every server is wound down and terminated. The scaler
// uses it for a shutdown that winds everything down.
func (p *Pool) SetDraining(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draining = on
}

// Status summarises a pool after a pass, in capacity units.
type Status struct {
	Time time.Time
	// Target is the capacity the pool aims for: managers' targets plus the
	// spare that Min keeps.
	Target       int
	Booting      int // pending, or launched but not listed yet
	Provisioning int
	Free         int // ready, not granted
	Granted      int
	WindingDown  int
	// Replacing is capacity launched to replace servers (spot for
	// on-demand), on its way and not yet swapped in.
	Replacing int
	Managers  map[string]ManagerStatus
	// HourlySpend is what the pool's instances cost per hour now, in US
	// dollars, as far as the pool knows prices (see Config.Prices).
	HourlySpend float64
	// UnitPrice is the highest on-demand price per capacity unit among
	// the pool's types, or 0 without prices: a cautious estimate of what
	// one more unit costs.
	UnitPrice float64
}

// Ready is the capacity working or ready to work.
func (s Status) Ready() int { return s.Free + s.Granted }

// Live is the capacity of every instance that exists.
func (s Status) Live() int {
	return s.Booting + s.Provisioning + s.Free + s.Granted + s.WindingDown + s.Replacing
}

// ManagerStatus is one manager's position after a pass.
type ManagerStatus struct {
	Target int
	Held   int
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (p *Pool) weight(instanceType string) int {
	if w, ok := p.types[instanceType]; ok {
		return w
	}
	return 1 // a type removed from the config still counts
}

func (p *Pool) event(pl *Plan, e Event) {
	e.Time = pl.Now
	e.Pool = p.cfg.Name
	pl.Events = append(pl.Events, e)
}
