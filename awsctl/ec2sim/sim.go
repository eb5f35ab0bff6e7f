package ec2sim

import (
	"cmp"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Operation names, the keys of [Sim.Calls] and the op arguments of the
// fault injection methods.
const (
	OpListInstances = "ListInstances"
	OpLaunch        = "Launch"
	OpTerminate     = "Terminate"
	OpTag           = "Tag"
	OpUntag         = "Untag"
	// OpSpotPrices and OpReservations are the calls of
	// awsctl.SpotPriceSource and awsctl.ReservationSource.
	OpSpotPrices   = "SpotPrices"
	OpReservations = "Reservations"
	// OpInstanceHealth is the call of awsctl.HealthReader, counted once
	// per HealthBatchSize ids as DescribeInstanceStatus calls are.
	OpInstanceHealth = "InstanceHealth"
)

var ops = [...]string{OpListInstances, OpLaunch, OpTerminate, OpTag, OpUntag}

// optionalOps are counted and accept faults like ops, but Calls reports
// them only once they have been called: a client that uses only the
// CloudClient operations sees only those.
var optionalOps = [...]string{OpSpotPrices, OpReservations, OpInstanceHealth}

// ListPageSize is the number of instances per page of a ListInstances call,
// as DescribeInstances returns them; each page counts as one call.
const ListPageSize = 1000

// Sim is a simulated EC2 region. It implements [awsctl.CloudClient] and is
// safe for concurrent use.
//
// Instance states are derived from times on demand (launch time plus a
// sampled boot delay, termination request plus a sampled shutdown delay), so
// nothing runs in the background: moving the clock is enough.
type Sim struct {
	mu  sync.Mutex
	cfg Config
	log *slog.Logger
	now time.Time // the manual clock; unused when cfg.Clock is set
	// origin is the clock at New: reservations are active and accrue fees
	// from then.
	origin time.Time

	// Independent random streams, so that changing one distribution (say
	// the list delay) leaves the others' samples unchanged.
	bootRand, shutdownRand, listRand, faultRand, interruptRand, statusRand *rand.Rand
	readyRand, poolRand, reclaimRand                                       *rand.Rand
	ids                                                                    idSource

	zones    map[string]bool
	history  []*instance // every instance launched, in launch order
	byID     map[string]*instance
	all      posting              // instances not yet forgotten, in launch order
	byTag    map[tagPair]*posting // instances not yet forgotten, per tag
	forget   forgetQueue          // terminating instances by the time they are forgotten
	live     int                  // pending and running instances
	liveBy   map[offeringKey]int  // live instances per offering
	capacity map[offeringKey]int  // limits set by SetCapacity
	tokens   map[string]*launchRecord

	calls  map[string]int
	faults map[string]*opFaults

	market        spotMarket
	spotEvents    spotQueue           // spot instances by their next interruption event
	notices       []awsctl.SpotNotice // issued and not yet returned by SpotNotices
	interruptions int
	outages       map[offeringKey][]window // set by AddCapacityOutage
	pools         spotPools                // spot instances per pool, pool interruption events (pools.go)

	maintenance maintenanceQueue // scheduled events not yet carried out, by due time
	eventSeq    uint64           // scheduled events ever made, for their ids
	healthGen   uint64           // InstanceHealth calls, to spot an id asked twice in one
	healthAsked []*instance      // InstanceHealth's buffer of the instances asked about
}

// instance is the sim's record of one instance. Features that need more
// per-instance data (spot interruptions, reservations) add fields here.
type instance struct {
	// view holds the fields a caller sees; State is filled in when it is
	// read. view.Tags is replaced, never modified, so it can be handed out
	// without copying.
	view awsctl.Instance
	seq  uint64

	runningAt time.Time // end of the boot delay (pending)
	readyAt   time.Time // end of the ready delay, after runningAt
	visibleAt time.Time // end of the list delay

	terminating  bool
	terminateAt  time.Time  // when termination was requested
	terminatedAt time.Time  // end of the shutdown delay
	forgotten    bool       // past TerminatedVisibleFor: unknown to the API
	inPostings   []*posting // tag postings holding this instance, stale ones included

	interruption *interruptionPlan // nil unless EC2 will interrupt this spot instance
	interrupted  bool              // terminated by EC2, not by its owner

	stopping  bool      // stopped from outside (see Stop) or by a scheduled event
	stopAt    time.Time // when the stop was requested
	stoppedAt time.Time // end of the stop's shutdown

	checksOKAt time.Time       // end of the status checks' initialization (see Config.StatusInitDelay)
	impaired   [2]time.Time    // since when the system, instance check fails; zero when it passes
	events     []*pendingEvent // scheduled events not yet carried out, in the order scheduled

	healthAsked uint64 // the latest InstanceHealth call (Sim.healthGen) that asked for it
}

// state is the instance's lifecycle state at now.
func (r *instance) state(now time.Time) awsctl.State {
	switch {
	case r.terminating && !now.Before(r.terminatedAt):
		return awsctl.StateTerminated
	case r.terminating:
		return awsctl.StateShuttingDown
	case r.stopping && !now.Before(r.stoppedAt):
		return awsctl.StateStopped
	case r.stopping:
		return awsctl.StateStopping
	case now.Before(r.runningAt):
		return awsctl.StatePending
	default:
		return awsctl.StateRunning
	}
}

// snapshot returns the caller's copy of r at now. The Tags map is shared.
func (r *instance) snapshot(now time.Time) awsctl.Instance {
	v := r.view
	v.State = r.state(now)
	return v
}

type offeringKey struct {
	market       awsctl.Market
	instanceType string
	zone         string
}

// Stream numbers for the random sources; fixed so that a seed means the
// same thing in every version.
const (
	streamBoot = iota + 1
	streamShutdown
	streamList
	streamFault
	streamIDs
	streamInterrupt
	streamStatus
	streamReady
	streamPools
	streamReclaim
)

// New returns a sim configured by cfg, or an error wrapping
// ErrInvalidConfig that names the bad field.
func New(cfg Config) (*Sim, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	seed := uint64(cfg.Seed)
	stream := func(n uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, n)) }
	s := &Sim{
		cfg:           cfg,
		log:           cfg.Logger,
		now:           cfg.Start,
		bootRand:      stream(streamBoot),
		shutdownRand:  stream(streamShutdown),
		listRand:      stream(streamList),
		faultRand:     stream(streamFault),
		interruptRand: stream(streamInterrupt),
		statusRand:    stream(streamStatus),
		readyRand:     stream(streamReady),
		poolRand:      stream(streamPools),
		reclaimRand:   stream(streamReclaim),
		ids:           newIDSource(stream(streamIDs)),
		zones:         make(map[string]bool, len(cfg.Zones)),
		byID:          map[string]*instance{},
		all:           posting{all: true},
		byTag:         map[tagPair]*posting{},
		liveBy:        map[offeringKey]int{},
		capacity:      map[offeringKey]int{},
		tokens:        map[string]*launchRecord{},
		calls:         map[string]int{},
		faults:        map[string]*opFaults{},
		outages:       map[offeringKey][]window{},
	}
	for _, z := range cfg.Zones {
		s.zones[z] = true
	}
	s.market = newSpotMarket(cfg.SpotPrices, s.zones)
	s.origin = s.clock()
	return s, nil
}

// Region returns the simulated region.
func (s *Sim) Region() string { return s.cfg.Region }

// Zones returns the region's availability zones.
func (s *Sim) Zones() []string { return slices.Clone(s.cfg.Zones) }

// Now returns the sim's current time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock()
}

// clock reads the time; the caller holds s.mu.
func (s *Sim) clock() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock()
	}
	return s.now
}

// Advance moves the manual clock forward by d. It fails with
// ErrExternalClock when Config.Clock is set, and for a negative d.
func (s *Sim) Advance(d time.Duration) error {
	if s.cfg.Clock != nil {
		return ErrExternalClock
	}
	if d < 0 {
		return fmt.Errorf("ec2sim: Advance(%v): the clock cannot go back", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
	return nil
}

// begin locks the sim, reads the clock, issues the spot notices and
// interruptions and carries out the scheduled events due by now, in time
// order, and forgets instances terminated longer ago than
// TerminatedVisibleFor. Every API call starts with it; the caller unlocks.
func (s *Sim) begin() time.Time {
	s.mu.Lock()
	now := s.clock()
	s.maintainUntil(now)
	s.interruptUntil(now)
	s.forgetUntil(now)
	return now
}

// Instance returns the true state of instance id: unlike ListInstances it
// ignores the list delay, and it reports instances EC2 has already
// forgotten. The second result is false for an id never launched.
func (s *Sim) Instance(id string) (awsctl.Instance, bool) {
	now := s.begin()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	if !ok {
		return awsctl.Instance{}, false
	}
	return r.snapshot(now), true
}

// Instances returns every instance ever launched in its true state, sorted
// by launch time, then id.
func (s *Sim) Instances() []awsctl.Instance {
	now := s.begin()
	defer s.mu.Unlock()
	out := make([]awsctl.Instance, len(s.history))
	for i, r := range s.history {
		out[i] = r.snapshot(now)
	}
	slices.SortStableFunc(out, func(a, b awsctl.Instance) int {
		return cmp.Or(a.LaunchTime.Compare(b.LaunchTime), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Calls returns the number of calls per operation since New or ResetCalls,
// with a key for every awsctl.CloudClient operation, and for OpSpotPrices,
// OpReservations and OpInstanceHealth once they have been called.
// ListInstances counts one call per page of ListPageSize instances
// returned, and at least one; InstanceHealth one per HealthBatchSize ids.
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(ops)+len(optionalOps))
	for _, op := range ops {
		out[op] = s.calls[op]
	}
	for _, op := range optionalOps {
		if n, ok := s.calls[op]; ok {
			out[op] = n
		}
	}
	return out
}

// ResetCalls sets every call count to zero.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for op := range s.calls {
		s.calls[op] = 0
	}
}

// Compile-time checks that the sim is a complete cloud with a spot market
// and health reports.
var (
	_ awsctl.CloudClient       = (*Sim)(nil)
	_ awsctl.SpotPriceSource   = (*Sim)(nil)
	_ awsctl.ReservationSource = (*Sim)(nil)
	_ awsctl.SpotNoticeSource  = (*Sim)(nil)
	_ awsctl.HealthReader      = (*Sim)(nil)
)
