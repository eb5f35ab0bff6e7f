package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// Pool is one group of interchangeable instances with one role and one or
// more managers. Embedders see it read-only, through autoscale.Scaler: its
// name, configuration and status. The scaler drives its passes.
type Pool struct {
	cfg      Config
	types    map[string]int // instance type -> weight
	mgrIndex map[string]int // position in Config.Managers
	mgrNames []string       // Config.Managers' names, in order
	hooks    *hookRunner
	health   bool // poll granted servers' health (the role reports it)
	// immediate: the role has nothing to wind down (role.Immediate), so a
	// server chosen to go is terminated in the same pass.
	immediate  bool
	status     atomic.Pointer[Status]
	left       atomic.Pointer[[]string] // servers still there while draining
	serverList serverList
	refreshAt  atomic.Int64 // a pending Refresh request (unix nanoseconds), 0 for none

	mu          sync.Mutex // one pass at a time
	mem         map[string]*memo
	inflight    map[string]inflight
	terminating map[string]time.Time
	overlay     map[string]overlay
	// overlayKept is how many overlays the latest sweep kept (see
	// sweepOverlay).
	overlayKept int
	lastTarget  map[string]int
	clamped     map[string]clampKey // managers whose target is clamped, as last reported
	stuck       []*demandCall       // per manager: a Demand call past its timeout
	draining    bool
	pass        uint64
	// spotHoldSince is when scale-down first kept a spot server over
	// target because spot could not be bought (zero when none is kept).
	spotHoldSince time.Time
	// holdUntil: launches wait until then, after a start that found a
	// predecessor's recent launches (see Config.ListingLag).
	holdUntil time.Time
	holdSaid  bool
	// replaceHoldUntil: replacements (swaps, refreshes) wait until then
	// after any start, so that one a predecessor launched is listed before
	// the same server is replaced again (see Config.ListingLag).
	replaceHoldUntil time.Time
	// workMarket is the market last reported per manager and work class
	// (see workMarkets): a change is an event, a repeat is not.
	workMarket map[string]awsctl.Market
	// workKept is, per manager, the on-demand capacity its work wanted
	// over the last WorkKeep (see keepWorkOD), oldest first.
	workKept map[string][]odAt
	bugs     []string
	// resLeft is this pass's unused reservations by scope.
	resLeft map[spotprice.ReservationKey]int
	// ptrs is the buffer of a pass's servers, kept between passes.
	ptrs []*server
	// victimKeys is sortVictims' buffer, kept between passes.
	victimKeys []victimKey
	// listed is the memos of the latest listing's instances in its order,
	// for the next pass to find them without a lookup by id (listedNext is
	// its spare buffer); seenCount is how many memos that listing showed.
	listed, listedNext []listedMemo
	seenCount          int
	// held is what each manager held in the latest pass, as handed to it;
	// heldCount and heldDirty are what observe saw of it this pass: the
	// servers each holds, and whether any joined, left or changed.
	held      [][]manager.Server
	heldCount []int
	heldDirty []bool
	// observed is the ledger observe counted, when no replacement needs
	// linking; linked: some did in the latest pass, relinked: in it or the
	// one before (what managers were handed shows them).
	observed         *ledger
	linked, relinked bool
	few              fewServers // this pass's, as observe saw them
	// offers are the offerings the pool's servers were seen in (server.offer
	// indexes them), offerIndex the converse.
	offers     []offeringKey
	offerIndex map[offeringKey]int32
	// boot is what the pool learnt of its servers' time from launch to
	// ready.
	boot bootTimes
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
// name the offending field. Most users hand configs to autoscale.New
// instead, which builds the pools.
func New(cfg Config) (*Pool, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cfg:         c,
		types:       map[string]int{},
		mgrIndex:    map[string]int{},
		hooks:       newHookRunner(c.Role),
		mem:         map[string]*memo{},
		inflight:    map[string]inflight{},
		terminating: map[string]time.Time{},
		overlay:     map[string]overlay{},
		lastTarget:  map[string]int{},
		clamped:     map[string]clampKey{},
		stuck:       make([]*demandCall, len(c.Managers)),
	}
	for _, t := range c.Types {
		p.types[t.Name] = t.Weight
	}
	if hr, ok := c.Role.(role.HealthReporter); ok && hr.ReportsHealth() && c.HealthInterval > 0 {
		p.health = true
	}
	if im, ok := c.Role.(role.Immediate); ok && im.WindsDownAtOnce() {
		p.immediate = true
	}
	for _, m := range c.Managers {
		p.mgrIndex[m.Name()] = len(p.mgrIndex)
		p.mgrNames = append(p.mgrNames, m.Name())
	}
	p.status.Store(&Status{Managers: map[string]ManagerStatus{}})
	return p, nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.cfg.Name }

// Config returns the pool's configuration with defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Status returns what the pool saw and decided in its latest pass. It
// never waits for a pass in progress, so it is safe to call from anywhere,
// a manager's Notify included.
//
// Name, Config, Managers and Status are safe for concurrent use.
func (p *Pool) Status() Status {
	s := *p.status.Load()
	s.Managers = cloneMap(s.Managers)
	return s
}

func (p *Pool) publish(s Status) { p.status.Store(&s) }

// Managers returns the pool's managers in configuration order.
func (p *Pool) Managers() []manager.Manager { return append([]manager.Manager(nil), p.cfg.Managers...) }

// onHookDone registers f to be called, from the hook's goroutine, each
// time a role hook of the pool finishes; f must not block.
func (p *Pool) onHookDone(f func()) { p.hooks.onDone = f }

// waitHooks waits until no role hook of the pool is running, or ctx ends.
func (p *Pool) waitHooks(ctx context.Context) error { return p.hooks.waitIdle(ctx) }

// close waits for the pool's hook goroutines to return, or ctx to end.
func (p *Pool) close(ctx context.Context) error { return p.hooks.wait(ctx) }

// setDraining makes every manager's target and the pool's Min count as zero
// while on, so that every server is wound down and terminated.
func (p *Pool) setDraining(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draining = on
}

// reset forgets everything the pool learnt in memory, as a new process
// would start: the scaler calls it when its replica gains the lease again.
// Hooks still running from before are abandoned: their results are dropped.
func (p *Pool) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mem = map[string]*memo{}
	p.listed, p.held, p.linked = nil, nil, true
	p.inflight = map[string]inflight{}
	p.terminating = map[string]time.Time{}
	p.overlay, p.overlayKept = map[string]overlay{}, 0
	p.pass = 0 // the next pass is a first pass: adoption, ListingLag hold
	p.holdUntil, p.holdSaid, p.replaceHoldUntil = time.Time{}, false, time.Time{}
	p.serverList.keep = 0
	p.boot = bootTimes{} // learnt again from the listing, as a new process would
	p.workKept = nil     // derived again from what is held, as a new process would
	p.hooks.forget()
}

// windingDown lists the servers of the latest pass that were still there
// while the pool drained, for a shutdown that runs out of time. It never
// waits for a pass in progress.
func (p *Pool) windingDown() []string {
	if ids := p.left.Load(); ids != nil {
		return append([]string(nil), *ids...)
	}
	return nil
}

// Status summarises a pool after a pass, in capacity units.
type Status struct {
	// Observed is false until the pool's first pass: an all-zero status
	// then means "not seen yet", not an empty fleet.
	Observed bool
	Time     time.Time
	// Target is the capacity the pool aims for: managers' targets plus the
	// spare that Min keeps.
	Target       int
	Booting      int // pending, or launched but not listed yet
	Provisioning int
	Free         int // ready, not granted
	Granted      int
	// WindingDown counts servers winding down, being restored, or leaving
	// for good (released, failed, stopped).
	WindingDown int
	// Replacing is capacity launched to replace servers (spot for
	// on-demand, drift, lifetimes, refreshes, scheduled events), on its way
	// and not yet swapped in.
	Replacing int
	// Due is the capacity due for replacement that waits for the
	// Disruption budget, its window, room under Max or an offering: with
	// Replacing, the progress of a roll. Zero when nothing is left to roll.
	Due int
	// Interrupted is spot capacity EC2 is about to reclaim.
	Interrupted int
	// MaxUsed is the capacity counted toward Max: every server that runs or
	// may run, launches not yet listed included.
	MaxUsed  int
	Max      int
	Managers map[string]ManagerStatus
	// HourlySpend is what the pool's instances cost per hour now, in US
	// dollars, as far as the pool knows prices (see Config.Prices).
	HourlySpend float64
	// UnitPrice is the highest on-demand price per capacity unit among
	// the pool's types, or 0 without prices: a cautious estimate of what
	// one more unit costs.
	UnitPrice float64
	// BootTime is the pool-wide estimate of the time from launch to ready
	// (the median over the latest servers to become ready, whatever their
	// offering), as managers get it in manager.State.BootTime; 0 until
	// BootMinSamples servers were seen ready.
	BootTime time.Duration
	// BootTimes are the estimates per offering (type, zone, market) the
	// pool has seen servers of become ready, by type, zone and market. The
	// slice is shared by every reader of the same pass's status (a pass
	// that learns nothing new hands out the previous one again): read it,
	// keep it if you like, but do not modify it.
	BootTimes []BootTime
}

// Ready is the capacity working or ready to work.
func (s Status) Ready() int { return s.Free + s.Granted }

// Live is the capacity of every instance that exists.
func (s Status) Live() int {
	return s.Booting + s.Provisioning + s.Free + s.Granted + s.WindingDown + s.Replacing + s.Interrupted
}

// ManagerStatus is one manager's position after a pass.
type ManagerStatus struct {
	Target int
	Held   int
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

// refresh asks for every server of the pool launched before now to be
// replaced, make-before-break, within the Disruption budget. The pass that
// follows marks them (TagRefresh), so the roll survives a restart.
func (p *Pool) refresh(now time.Time) { p.refreshAt.Store(now.UnixNano()) }
