package autoscale

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/internal/poolctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// The pool operations that drive a pass, which package pool keeps from
// embedders.
var (
	planPool      = poolctl.Ops.Plan.(func(*pool.Pool, context.Context, pool.Snapshot) *pool.Plan)
	commitPool    = poolctl.Ops.Commit.(func(*pool.Pool, context.Context, *pool.Plan, pool.Outcome) []pool.Event)
	drainPool     = poolctl.Ops.SetDraining.(func(*pool.Pool, bool))
	onHookDone    = poolctl.Ops.OnHookDone.(func(*pool.Pool, func()))
	waitHooks     = poolctl.Ops.WaitHooks.(func(*pool.Pool, context.Context) error)
	closePool     = poolctl.Ops.Close.(func(*pool.Pool, context.Context) error)
	windingDownIn = poolctl.Ops.WindingDown.(func(*pool.Pool) []string)
	resetPool     = poolctl.Ops.Reset.(func(*pool.Pool))
	refreshPool   = poolctl.Ops.Refresh.(func(*pool.Pool, time.Time))
)

// Scaler keeps every pool at the size its managers want. Create it with New,
// then call Run (or Step from your own loop) and Shutdown when done.
//
// Every method is safe for concurrent use; passes are serialised (a Step
// called while another runs waits for it, or for its context). Pool(name)
// and its Status, Alarms, Pause and Resume never wait for a pass, so
// managers' Notify and Demand may call them; they must not call Step, Run or Shutdown, which
// would wait for the very pass that calls them.
type Scaler struct {
	cloud awsctl.CloudClient
	opts  Options
	pools []*pool.Pool
	byTag map[string]*pool.Pool

	// hookCtx outlives passes: role hooks run under it until Shutdown, or
	// until the replica loses the lease (a term ends). Guarded by mu.
	hookCtx     context.Context
	cancelHooks context.CancelFunc
	// leading: this replica held the lease at its latest pass; terms counts
	// the times it gained it.
	leading bool
	terms   int
	term    uint64 // the Leader's Term at the start of this term, if it has one
	// lease is the Lease's context of this term (nil without a Lease):
	// mutating calls and role hooks end with it. actFrom is when this
	// term's first mutation may go out, once a previous leader's lease and
	// calls are over.
	lease   context.Context
	actFrom time.Time

	stepMu   chan struct{} // one pass at a time; a channel so waits honour a context
	mu       sync.Mutex
	closed   bool
	stop     chan struct{}
	stopOnce sync.Once
	wake     chan struct{}   // a role hook finished: Run may pass early
	strays   map[string]bool // owned instances of unknown pools, reported once

	rails      *rails
	passEvents []Event           // events of the pass in progress, for the rails
	instBuf    []awsctl.Instance // the listing grouped by pool, kept between passes
	sameBuf    []bool            // per listed instance, then grouped: listed alike by the previous pass
	poolOf     []int             // pool index of each listed instance, kept between passes
	// listed is what the latest pass read of each listed instance, in the
	// listing's order; listedNext is its spare buffer.
	listed, listedNext []listed
	// listBufs are the latest two listings, handed back in turn to a cloud
	// that lists into a buffer (listFlip is the latest's); prevInsts is the
	// latest listing; ownerFilter is the listing's filter.
	listBufs    [2][]awsctl.Instance
	listFlip    int
	prevInsts   []awsctl.Instance
	ownerFilter awsctl.ListFilter
	poolIndex   map[string]int

	// health is EC2's latest report of owned instances that need
	// attention (scheduled events, impaired checks), read every
	// EC2HealthInterval; healthAt is when.
	health    map[string]awsctl.InstanceHealth
	healthAt  time.Time
	healthIDs []string // the ids of the latest read, kept as a buffer

	noticeMu    sync.Mutex
	interrupted map[string]time.Time
	rebalance   map[string]time.Time

	// tokens counts, per launch request and token window, the definitive
	// answers EC2 gave: a request sent again after an ambiguous failure
	// keeps its token, one sent after a definitive answer gets a new one.
	tokens map[tokenKey]*tokenState
}

// New validates the cloud, the pools and the options and returns a Scaler.
// Errors name the offending field and wrap pool.ErrInvalidConfig or
// ErrInvalidOptions.
func New(cloud awsctl.CloudClient, pools []pool.Config, opts Options) (*Scaler, error) {
	if cloud == nil {
		return nil, fmt.Errorf("%w: cloud client must not be nil", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(pools) == 0 {
		return nil, fmt.Errorf("%w: at least one pool is required", pool.ErrInvalidConfig)
	}
	s := &Scaler{cloud: cloud, opts: o, byTag: map[string]*pool.Pool{}, stop: make(chan struct{}), strays: map[string]bool{},
		interrupted: map[string]time.Time{}, rebalance: map[string]time.Time{}, poolIndex: map[string]int{},
		stepMu: make(chan struct{}, 1), tokens: map[tokenKey]*tokenState{}}
	inPool := map[manager.Manager]string{}
	for i, cfg := range pools {
		if cfg.Name != "" && s.byTag[cfg.Name] != nil {
			return nil, fmt.Errorf("%w: pools[%d]: duplicate pool name %q", pool.ErrInvalidConfig, i, cfg.Name)
		}
		for j, m := range cfg.Managers {
			// One manager in two pools would be asked for its target by
			// each and get it twice over: a host wanting capacity in two
			// pools gives each pool a manager of its own.
			if m == nil || !reflect.TypeOf(m).Comparable() {
				continue
			}
			if other, ok := inPool[m]; ok && other != cfg.Name {
				return nil, fmt.Errorf("%w: pools[%d].Managers[%d]: manager %q is already a manager of pool %q; give each pool its own",
					pool.ErrInvalidConfig, i, j, m.Name(), other)
			}
			inPool[m] = cfg.Name
		}
		p, err := pool.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("pools[%d]: %w", i, err)
		}
		s.poolIndex[p.Name()] = len(s.pools)
		s.pools = append(s.pools, p)
		s.byTag[p.Name()] = p
	}
	s.rails = newRails(o.Rails)
	s.wake = make(chan struct{}, 1)
	wake := func() {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	for _, p := range s.pools {
		onHookDone(p, wake)
		for _, m := range p.Managers() {
			if w, ok := m.(manager.Waker); ok {
				w.SetWake(wake) // a rise of demand is acted on at once
			}
		}
	}
	s.hookCtx, s.cancelHooks = context.WithCancel(context.Background())
	return s, nil
}

// Pool returns the pool named name, or nil.
func (s *Scaler) Pool(name string) *pool.Pool { return s.byTag[name] }

// Pools returns the scaler's pools in configuration order.
func (s *Scaler) Pools() []*pool.Pool { return slices.Clone(s.pools) }

// Step runs one reconcile pass: one listing of every owned instance, a
// decision per pool, then the decisions carried out in batches. Cloud
// failures of single actions are reported as events and retried next pass;
// Step returns them joined. It returns early only if the listing fails.
func (s *Scaler) Step(ctx context.Context) error {
	if err := s.lockStep(ctx); err != nil {
		return err
	}
	defer s.unlockStep()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	short, err := s.pass(ctx)
	if short {
		// A launch found no capacity in any offering it named. Those
		// offerings are now marked unavailable: one more pass at once tries
		// the next zone, type or market instead of waiting an interval.
		_, err2 := s.pass(ctx)
		err = errors.Join(err, err2)
	}
	return err
}

// pass is one reconcile pass. short reports that a launch got no capacity
// at all, which Step answers with a second pass.
func (s *Scaler) pass(ctx context.Context) (short bool, err error) {
	s.passEvents = s.passEvents[:0]
	now := s.opts.Clock()
	if s.opts.Leader != nil && !s.opts.Leader.IsLeader(ctx) {
		s.loseTerm()
		return false, ErrNotLeader
	}
	s.gainTerm(now)
	if !s.mayAct(ctx) {
		return false, ErrNotLeader
	}
	if until, wait := s.fenceWait(now); wait && !s.opts.DryRun {
		return false, fmt.Errorf("%w: new term: no change before %s, when a previous leader's lease and calls are over",
			ErrNotLeader, until.Format(time.RFC3339))
	}
	s.pollNotices(ctx, now)
	s.refreshPrices(ctx, now)
	insts, err := s.list(ctx)
	if err != nil {
		s.emit(ctx, Event{Time: now, Kind: pool.EventCloudError, Err: err, Reason: "listing instances failed; nothing decided"})
		return false, fmt.Errorf("list instances: %w", err)
	}
	byPool, same := s.groupByPool(ctx, now, insts)
	s.readHealth(ctx, now, byPool)
	interrupted, rebalance := s.notices(insts)
	plans := make([]*pool.Plan, len(s.pools))
	for i, p := range s.pools {
		plans[i] = planPool(p, ctx, pool.Snapshot{Now: now, Instances: byPool[i], Same: same[i], Interrupted: interrupted, Rebalance: rebalance,
			Health: s.health})
		for _, e := range plans[i].Events {
			e.DryRun = s.opts.DryRun
			s.emit(ctx, e)
		}
	}
	if s.opts.DryRun {
		// The rails apply as they would live, and the launches they let
		// through count against the launch rate, so that a dry run reports
		// what the live scaler would launch.
		s.limitLaunches(ctx, now, plans, true)
		for _, pl := range plans {
			for _, req := range pl.Launches {
				if req.Capacity <= 0 {
					continue
				}
				s.rails.launched(now, req.Capacity)
				s.emit(ctx, Event{Time: now, Kind: pool.EventLaunch, Pool: pl.Pool, Capacity: req.Capacity,
					Market: req.Market, DryRun: true, Reason: "would launch"})
			}
		}
		return false, nil
	}
	s.keepOwned(ctx, now, plans, insts)
	s.limitLaunches(ctx, now, plans, false)
	outcomes, errs := s.execute(ctx, now, plans, byPool)
	statuses := make(map[string]pool.Status, len(s.pools))
	for i, p := range s.pools {
		for _, e := range commitPool(p, s.termCtx(), plans[i], outcomes[i]) {
			s.emit(ctx, e)
		}
		statuses[p.Name()] = p.Status()
	}
	for _, e := range s.rails.observe(now, s.passEvents, statuses) {
		s.emit(ctx, e)
	}
	s.passEvents = s.passEvents[:0]
	if s.opts.HookWait > 0 {
		wctx, cancel := context.WithTimeout(ctx, s.opts.HookWait)
		for _, p := range s.pools {
			_ = waitHooks(p, wctx)
		}
		cancel()
	}
	for _, out := range outcomes {
		for j, err := range out.LaunchErr {
			if len(out.Launched[j]) == 0 && errors.Is(err, awsctl.ErrInsufficientCapacity) {
				short = true
			}
		}
	}
	return short, errors.Join(errs...)
}

// list lists every instance carrying the scaler's owner tag. A cloud that
// can list into a buffer (awsctl.InstanceAppender) is handed the previous
// pass's, which nothing keeps past its pass: a steady pass then allocates
// nothing per instance.
func (s *Scaler) list(ctx context.Context) ([]awsctl.Instance, error) {
	if s.ownerFilter.Tags == nil {
		s.ownerFilter = awsctl.ListFilter{Tags: map[string]string{pool.TagOwner: s.opts.Identity}}
	}
	a, ok := s.cloud.(awsctl.InstanceAppender)
	if !ok {
		return s.cloud.ListInstances(ctx, s.ownerFilter)
	}
	// Two buffers in turn: the previous pass's listing stays as it was, for
	// groupByPool to compare with.
	s.listFlip ^= 1
	insts, err := a.AppendInstances(ctx, s.listBufs[s.listFlip][:0], s.ownerFilter)
	if err != nil {
		s.listFlip ^= 1 // the previous listing stays the latest: its buffer is not the next to fill
		return nil, err
	}
	clear(insts[len(insts):cap(insts)]) // let what an older listing had beyond this one go
	s.listBufs[s.listFlip] = insts
	return insts, nil
}

// groupByPool splits the listing by pool (in the scaler's pool order), in
// one backing array kept between passes: a pass must not allocate per
// instance. Owned instances of pools the scaler does not have are reported
// once and left alone. It also says, per instance, whether the previous
// pass listed it alike (field for field, the same Tags map).
//
// Which pool an instance belongs to is read from its tags once: while the
// listing shows the same Tags map (a CloudClient never modifies a map it
// returned), the previous pass's answer stands, found where the previous
// listing had the instance.
func (s *Scaler) groupByPool(ctx context.Context, now time.Time, insts []awsctl.Instance) ([][]awsctl.Instance, [][]bool) {
	if cap(s.instBuf) < len(insts) {
		s.instBuf = make([]awsctl.Instance, 0, len(insts)+len(insts)/4)
		s.sameBuf = make([]bool, 0, 2*cap(s.instBuf)) // in listing order, then grouped
		s.poolOf = make([]int, 0, cap(s.instBuf))
	}
	if cap(s.listedNext) < len(insts) {
		s.listedNext = make([]listed, 0, len(insts)+len(insts)/4)
	}
	idx, same := s.poolOf[:len(insts)], s.sameBuf[:len(insts)]
	if selfCheck && len(insts) > 0 && len(s.prevInsts) > 0 && &insts[0] == &s.prevInsts[0] {
		panic("autoscale: the listing was written over the previous one it is compared with")
	}
	counts := make([]int, len(s.pools))
	prev, prevInsts, cur, next := s.listed, s.prevInsts, s.listedNext[:0], 0
	for i := range insts {
		inst := &insts[i]
		k, known := 0, false
		same[i] = false
		for j := next; j < len(prev) && j < next+listedLookahead; j++ {
			if prev[j].id == inst.ID {
				next = j + 1
				k, known = prev[j].pool, sameMap(prev[j].tags, inst.Tags)
				same[i] = known && j < len(prevInsts) && sameInstance(&prevInsts[j], inst)
				if selfCheck && j < len(prevInsts) && prevInsts[j].ID != prev[j].id {
					panic(fmt.Sprintf("autoscale: listing entry %d is %s, kept as %s", j, prevInsts[j].ID, prev[j].id))
				}
				break
			}
		}
		if !known {
			k = s.poolOfTags(ctx, now, inst)
		} else if selfCheck && k != s.poolIndexOf(inst) {
			panic(fmt.Sprintf("autoscale: %s kept in pool %d, its tags say %d", inst.ID, k, s.poolIndexOf(inst)))
		}
		cur = append(cur, listed{id: inst.ID, tags: inst.Tags, pool: k})
		if k >= 0 {
			counts[k]++
		}
		idx[i] = k
	}
	s.listed, s.listedNext, s.prevInsts = cur, prev[:0], insts
	byPool, samePool := make([][]awsctl.Instance, len(s.pools)), make([][]bool, len(s.pools))
	for k, n := range counts {
		if n == len(insts) && n > 0 {
			// One pool holds the whole listing (the usual case): it is
			// its own group, in its order, with nothing to copy.
			for j := range byPool {
				byPool[j], samePool[j] = insts[:0:0], same[:0:0]
			}
			byPool[k], samePool[k] = insts, same
			return byPool, samePool
		}
	}
	backing, sameBacking := s.instBuf[:0], s.sameBuf[len(insts):len(insts)]
	for k, n := range counts {
		byPool[k] = backing[len(backing) : len(backing) : len(backing)+n]
		backing = backing[:len(backing)+n]
		samePool[k] = sameBacking[len(sameBacking) : len(sameBacking) : len(sameBacking)+n]
		sameBacking = sameBacking[:len(sameBacking)+n]
	}
	for i := range insts {
		if k := idx[i]; k >= 0 {
			byPool[k] = append(byPool[k], insts[i])
			samePool[k] = append(samePool[k], same[i])
		}
	}
	return byPool, samePool
}

// sameInstance reports whether b shows the instance as a does: the same
// fields, the same Tags map.
func sameInstance(a, b *awsctl.Instance) bool {
	return a.ID == b.ID && a.State == b.State && sameMap(a.Tags, b.Tags) && a.Type == b.Type &&
		a.Zone == b.Zone && a.Market == b.Market && a.PrivateIP == b.PrivateIP && a.LaunchTime == b.LaunchTime
}

// listedLookahead is how far past the expected position groupByPool looks
// for an instance of the previous listing.
const listedLookahead = 4

// listed is what groupByPool read from one instance of a listing.
type listed struct {
	id   string
	tags map[string]string // the map pool was read from
	pool int               // index in s.pools, -1 for none
}

// poolOfTags returns the index of inst's pool, or -1 if the scaler has no
// such pool or inst is not its own. An owned instance of an unknown pool is
// reported once.
func (s *Scaler) poolOfTags(ctx context.Context, now time.Time, inst *awsctl.Instance) int {
	k := s.poolIndexOf(inst)
	if k < 0 && inst.Tags[pool.TagOwner] == s.opts.Identity && inst.State.Live() && !s.strays[inst.ID] {
		s.strays[inst.ID] = true
		s.emit(ctx, Event{Time: now, Kind: pool.EventUnknownPool, Instance: inst.ID,
			Reason: fmt.Sprintf("owned instance of unknown pool %q left alone", inst.Tags[pool.TagPool])})
	}
	return k
}

// poolIndexOf returns the index of inst's pool, or -1 if the scaler has no
// such pool or inst is not its own.
func (s *Scaler) poolIndexOf(inst *awsctl.Instance) int {
	if inst.Tags[pool.TagOwner] != s.opts.Identity {
		// A cloud whose filter matched more than the exact owner (a
		// wildcard taken as such): never ours.
		return -1
	}
	if k, ok := s.poolIndex[inst.Tags[pool.TagPool]]; ok {
		return k
	}
	return -1
}

// sameMap reports whether a and b are the same map, not merely equal ones.
// A map value is a pointer to the map's header.
func sameMap(a, b map[string]string) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}

// keepOwned drops any action on an instance the listing did not show with
// this scaler's owner tag. Pools only plan on what they were given, so this
// never fires; it is the last line that keeps the scaler off instances that
// are not its own, whatever a bug upstream might do.
func (s *Scaler) keepOwned(ctx context.Context, now time.Time, plans []*pool.Plan, insts []awsctl.Instance) {
	actions := 0
	for _, pl := range plans {
		actions += len(pl.Changes) + len(pl.Terminate)
	}
	if actions == 0 {
		return // the usual steady pass: nothing to check
	}
	// Only the instances acted on are looked up: a map of those, usually
	// a few, not of the whole listing.
	owned := make(map[string]bool, actions)
	for _, pl := range plans {
		for _, ch := range pl.Changes {
			owned[ch.Instance.ID] = false
		}
		for _, id := range pl.Terminate {
			owned[id] = false
		}
	}
	for i := range insts {
		inst := &insts[i]
		if _, acted := owned[inst.ID]; acted {
			owned[inst.ID] = inst.Tags[pool.TagOwner] == s.opts.Identity
		}
	}
	for _, pl := range plans {
		pl.Changes = slices.DeleteFunc(pl.Changes, func(ch pool.Change) bool {
			if owned[ch.Instance.ID] {
				return false
			}
			s.emit(ctx, Event{Time: now, Kind: pool.EventCloudError, Pool: pl.Pool, Instance: ch.Instance.ID,
				Reason: "refused: change to an instance not owned by this scaler"})
			return true
		})
		pl.Terminate = slices.DeleteFunc(pl.Terminate, func(id string) bool {
			if owned[id] {
				return false
			}
			s.emit(ctx, Event{Time: now, Kind: pool.EventCloudError, Pool: pl.Pool, Instance: id,
				Reason: "refused: termination of an instance not owned by this scaler"})
			return true
		})
	}
}

// execute carries out the plans: launches, then tag changes grouped into as
// few calls as possible, then one termination batch for all pools.
func (s *Scaler) execute(ctx context.Context, now time.Time, plans []*pool.Plan, byPool [][]awsctl.Instance) ([]pool.Outcome, []error) {
	var errs []error
	outcomes := make([]pool.Outcome, len(plans))
	for i, pl := range plans {
		out := &outcomes[i]
		out.ChangeErr = map[string]error{}
		out.Launched = make([][]awsctl.Instance, len(pl.Launches))
		out.LaunchErr = make([]error, len(pl.Launches))
		for j, req := range pl.Launches {
			if req.Capacity <= 0 {
				continue
			}
			if !s.mayAct(ctx) {
				out.LaunchErr[j] = ErrNotLeader
				errs = append(errs, ErrNotLeader)
				continue
			}
			req.Tags = maps.Clone(req.Tags)
			req.Tags[pool.TagOwner] = s.opts.Identity
			insts, err := s.launch(ctx, now, pl.Pool, req, byPool[i])
			out.Launched[j], out.LaunchErr[j] = insts, err
			s.rails.launched(now, req.Capacity)
			if err != nil {
				errs = append(errs, fmt.Errorf("pool %q: launch: %w", pl.Pool, err))
			}
		}
	}
	// Tag changes: one call per distinct tag set across all pools.
	type group struct {
		ids  []string
		tags map[string]string
		keys []string
		refs []int // plan index per id
	}
	sets := map[string]*group{}
	removes := map[string]*group{}
	var setOrder, removeOrder []string
	for i, pl := range plans {
		for _, ch := range pl.Changes {
			if len(ch.Set) > 0 {
				k := tagKey(ch.Set)
				g := sets[k]
				if g == nil {
					g = &group{tags: ch.Set}
					sets[k] = g
					setOrder = append(setOrder, k)
				}
				g.ids, g.refs = append(g.ids, ch.Instance.ID), append(g.refs, i)
			}
			if len(ch.Remove) > 0 {
				k := strings.Join(ch.Remove, "\x00")
				g := removes[k]
				if g == nil {
					g = &group{keys: ch.Remove}
					removes[k] = g
					removeOrder = append(removeOrder, k)
				}
				g.ids, g.refs = append(g.ids, ch.Instance.ID), append(g.refs, i)
			}
		}
	}
	fail := func(g *group, err error) {
		errs = append(errs, err)
		for j, id := range g.ids {
			outcomes[g.refs[j]].ChangeErr[id] = err
		}
	}
	for _, k := range setOrder {
		g := sets[k]
		if !s.mayAct(ctx) {
			fail(g, ErrNotLeader)
			continue
		}
		for id, err := range s.splitOnNotFound(g.ids, func(ids []string) error {
			cctx, cancel := s.fenced(ctx)
			defer cancel()
			return leaseErr(cctx, s.cloud.Tag(cctx, ids, g.tags))
		}) {
			fail(&group{ids: []string{id}, refs: []int{g.refs[slices.Index(g.ids, id)]}}, fmt.Errorf("tag %s: %w", id, err))
		}
	}
	for _, k := range removeOrder {
		g := removes[k]
		if !s.mayAct(ctx) {
			fail(g, ErrNotLeader)
			continue
		}
		for id, err := range s.splitOnNotFound(g.ids, func(ids []string) error {
			cctx, cancel := s.fenced(ctx)
			defer cancel()
			return leaseErr(cctx, s.cloud.Untag(cctx, ids, g.keys))
		}) {
			fail(&group{ids: []string{id}, refs: []int{g.refs[slices.Index(g.ids, id)]}}, fmt.Errorf("untag %s: %w", id, err))
		}
	}
	var ids []string
	owner := map[string]int{}
	if _, noTerm := s.Paused(); noTerm {
		for _, pl := range plans {
			for _, id := range pl.Terminate {
				s.emit(ctx, Event{Time: now, Kind: pool.EventCloudError, Pool: pl.Pool, Instance: id, Reason: "terminations paused"})
			}
			pl.Terminate = nil
		}
	}
	for i, pl := range plans {
		for _, id := range pl.Terminate {
			ids = append(ids, id)
			owner[id] = i
		}
	}
	if len(ids) > 0 && !s.mayAct(ctx) {
		errs = append(errs, ErrNotLeader)
		for i := range outcomes {
			outcomes[i].TerminateErr = ErrNotLeader
		}
	} else if len(ids) > 0 {
		cctx, cancel := s.fenced(ctx)
		done, err := s.cloud.Terminate(cctx, ids)
		err = leaseErr(cctx, err)
		cancel()
		for _, id := range done {
			if i, ok := owner[id]; ok {
				outcomes[i].Terminated = append(outcomes[i].Terminated, id)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("terminate %d instances: %w", len(ids), err))
			for i := range outcomes {
				outcomes[i].TerminateErr = err
			}
		}
	}
	return outcomes, errs
}

// splitOnNotFound calls fn on ids and returns the error of each id that
// failed. EC2 tags all or nothing, so one instance that vanished would fail
// its whole group pass after pass; on ErrNotFound the group is split in
// halves until the missing ids are isolated, which costs a few calls only
// when something is missing.
func (s *Scaler) splitOnNotFound(ids []string, fn func([]string) error) map[string]error {
	err := fn(ids)
	if err == nil {
		return nil
	}
	if len(ids) == 1 || !errors.Is(err, awsctl.ErrNotFound) {
		out := make(map[string]error, len(ids))
		for _, id := range ids {
			out[id] = err
		}
		return out
	}
	half := len(ids) / 2
	out := s.splitOnNotFound(ids[:half], fn)
	for id, err := range s.splitOnNotFound(ids[half:], fn) {
		if out == nil {
			out = map[string]error{}
		}
		out[id] = err
	}
	return out
}

func tagKey(tags map[string]string) string {
	keys := slices.Sorted(maps.Keys(tags))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(tags[k])
		b.WriteByte(0)
	}
	return b.String()
}

// maxTokenReplays bounds how many tokens one launch tries when EC2 answers
// with an earlier launch's instances (after a restart, the first tokens of a
// window name launches the previous process made).
const maxTokenReplays = 20

// launch makes one launch under an idempotency token. The token is derived
// from the whole request (spec, market, capacity, offerings, tags, price
// cap), the TokenWindow and the number of definitive answers this scaler
// had for the same request in that window, so that:
//   - a request repeated after an ambiguous failure (a timeout, a 5xx, a
//     throttle: EC2 may or may not have acted) sends the same token, and EC2
//     returns the first call's instances instead of launching again;
//   - a scaler restarted within the window sends the token its predecessor
//     sent first for the same request, so a launch the listing does not
//     show yet is returned, not made twice;
//   - a request sent after a definitive answer (instances, or a failure EC2
//     did act on: AWS consumes the token of a failed launch too) gets a new
//     token; so does one answered with IdempotentParameterMismatch, or with
//     instances the scaler already knows (an old launch replayed).
func (s *Scaler) launch(ctx context.Context, now time.Time, poolName string, req awsctl.LaunchRequest, listed []awsctl.Instance) ([]awsctl.Instance, error) {
	key := tokenKey{pool: poolName, digest: requestDigest(req)}
	var known map[string]bool
	for attempt := 0; ; attempt++ {
		st := s.tokenState(key, now)
		req.Token = st.token(s.opts.Identity, key)
		cctx, cancel := s.fenced(ctx)
		insts, err := s.cloud.Launch(cctx, req)
		err = leaseErr(cctx, err)
		cancel()
		if err != nil && len(insts) == 0 && ambiguous(err) {
			st.pinned = req.Token // the same request must send it again
			return nil, err
		}
		st.pinned = ""
		st.n++
		if attempt >= maxTokenReplays {
			return insts, err
		}
		if errors.Is(err, awsctl.ErrTokenMismatch) {
			continue
		}
		if len(insts) == 0 {
			return insts, err
		}
		if known == nil {
			known = make(map[string]bool, len(listed))
			for _, inst := range listed {
				known[inst.ID] = true
			}
		}
		fresh := false
		for _, inst := range insts {
			if !known[inst.ID] && inst.State.Live() {
				fresh = true
				break
			}
		}
		if fresh {
			return insts, err
		}
		// Every instance of the answer is already listed or gone: the token
		// named an earlier launch. Ask again under the next one.
	}
}

// ambiguous reports whether a failed launch may or may not have happened,
// so that the same token must be sent again.
func ambiguous(err error) bool {
	switch {
	case errors.Is(err, awsctl.ErrInsufficientCapacity), errors.Is(err, awsctl.ErrInvalidRequest),
		errors.Is(err, awsctl.ErrLimitExceeded), errors.Is(err, awsctl.ErrQuotaExceeded),
		errors.Is(err, awsctl.ErrTokenMismatch), errors.Is(err, awsctl.ErrNotFound),
		errors.Is(err, ErrNotLeader):
		return false
	}
	return true // unavailable, throttled, timed out, or unknown
}

// tokenKey names one launch request of one pool.
type tokenKey struct {
	pool   string
	digest [32]byte
}

// tokenState is what the scaler remembers of a request's tokens.
type tokenState struct {
	window int64  // TokenWindow index the count belongs to
	n      int    // definitive answers in that window
	pinned string // token of an ambiguous failure, to send again
}

func (st *tokenState) token(identity string, key tokenKey) string {
	if st.pinned != "" {
		return st.pinned
	}
	h := sha256.New()
	h.Write([]byte(identity))
	h.Write([]byte{0})
	h.Write([]byte(key.pool))
	h.Write([]byte{0})
	h.Write(key.digest[:])
	h.Write([]byte(strconv.FormatInt(st.window, 10) + "/" + strconv.Itoa(st.n)))
	return "ea-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// tokenState returns the token state of key at now, starting a new count
// when the window changed (unless a token is pinned), and forgets states of
// windows long past.
func (s *Scaler) tokenState(key tokenKey, now time.Time) *tokenState {
	w := now.UnixNano() / int64(TokenWindow)
	st := s.tokens[key]
	if st == nil || (st.window != w && st.pinned == "") {
		st = &tokenState{window: w}
		s.tokens[key] = st
	}
	if len(s.tokens) > 64 {
		for k, old := range s.tokens {
			if old.window < w-1 && old.pinned == "" {
				delete(s.tokens, k)
			}
		}
	}
	return st
}

// requestDigest hashes everything a launch request asks for, so that two
// requests share a token only if EC2 would see them as the same.
func requestDigest(req awsctl.LaunchRequest) [32]byte {
	h := sha256.New()
	write := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
	}
	sp := req.Spec
	write(sp.ImageID, sp.InstanceProfile, sp.KeyName, sp.UserData, strings.Join(sp.SecurityGroupIDs, ","))
	if t := sp.LaunchTemplate; t != nil {
		write("template", t.ID, t.Name, t.Version)
	}
	for _, sn := range sp.Subnets {
		write(sn.ID, sn.Zone)
	}
	write(tagKey(sp.Tags))
	write(string(req.Market), strconv.Itoa(req.Capacity), strconv.FormatFloat(req.MaxPrice, 'g', -1, 64))
	for _, o := range req.Offerings {
		write(o.InstanceType, o.Zone, strconv.Itoa(o.Weight))
	}
	write(tagKey(req.Tags))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// emit reports an event to the rails, the observer and the logger. An
// error that is only ctx ending (Run's context cancelled, say) is a clean
// stop, not an outcome: it is logged at debug level and nothing else.
func (s *Scaler) emit(ctx context.Context, e Event) {
	if e.Err != nil && ctx.Err() != nil && errors.Is(e.Err, ctx.Err()) {
		s.log(ctx, slog.LevelDebug, e, "autoscale pass stopped")
		return
	}
	s.passEvents = append(s.passEvents, e)
	if s.opts.Observer != nil {
		s.opts.Observer.Observe(e)
	}
	level := slog.LevelInfo
	switch e.Kind {
	case pool.EventGrant, pool.EventProvisioned:
		level = slog.LevelDebug
	case pool.EventLaunchFailed, pool.EventProvisionFailed, pool.EventHookFailed, pool.EventManagerError,
		pool.EventCloudError, pool.EventBadTag, pool.EventUnknownPool, pool.EventAtMax, pool.EventDemandClamped,
		pool.EventNoCapacity, pool.EventAlarm:
		level = slog.LevelWarn
	}
	s.log(ctx, level, e, "autoscale")
}

// log writes e as a record stamped with the event's time, on the scaler's
// clock: slog would stamp wall time, which on a simulated clock says
// nothing about when the decision was made.
func (s *Scaler) log(ctx context.Context, level slog.Level, e Event, msg string) {
	s.logAt(ctx, level, e.Time, msg, e.Attrs()...)
}

// logAt writes a record stamped at (the scaler's clock when zero).
func (s *Scaler) logAt(ctx context.Context, level slog.Level, at time.Time, msg string, attrs ...slog.Attr) {
	h := s.opts.Logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	if at.IsZero() {
		at = s.opts.Clock()
	}
	var pcs [1]uintptr
	runtime.Callers(4, pcs[:]) // the caller of emit or Run, as slog would record it
	r := slog.NewRecord(at, level, msg, pcs[0])
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

// Run calls Step now and then every Interval until ctx ends or Shutdown is
// called. While capacity is on its way (instances booting or provisioning,
// servers winding down), passes come every BusyInterval instead, and a role
// hook that finishes wakes an early pass (at most one per MinPassGap), so a
// server is granted as soon as it is ready rather than a whole interval
// later. Errors of single passes are reported as events and logged; Run
// itself returns nil when stopped, or ErrClosed if the scaler was already
// shut down.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		if ctx.Err() != nil {
			return nil // cancelled: a clean stop, not a failed pass
		}
		last := time.Now()
		if err := s.Step(ctx); errors.Is(err, ErrClosed) {
			return err
		} else if err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotLeader) {
			s.logAt(ctx, slog.LevelWarn, time.Time{}, "autoscale pass incomplete", slog.String("error", err.Error()))
		}
		t.Reset(s.nextPass())
		for woken := false; !woken; {
			select {
			case <-ctx.Done():
				return nil
			case <-s.stop:
				return nil
			case <-t.C:
				woken = true
			case <-s.wake:
				// A hook finished: pass again soon, but not in a burst.
				if !t.Stop() {
					<-t.C
				}
				t.Reset(max(0, s.opts.MinPassGap-time.Since(last)))
			}
		}
	}
}

// nextPass is the wait before the next pass of Run.
func (s *Scaler) nextPass() time.Duration {
	for _, p := range s.pools {
		st := p.Status()
		if st.Booting+st.Provisioning+st.WindingDown+st.Replacing > 0 {
			return s.opts.BusyInterval
		}
	}
	return s.opts.Interval
}

// ShutdownOptions say how Shutdown stops.
type ShutdownOptions struct {
	// WindDown winds every server down and terminates it before stopping,
	// as if every manager wanted zero servers, pass after pass until no
	// instance is left or ctx ends.
	WindDown bool
}

// Shutdown stops Run, optionally winds everything down first, then stops the
// role hooks still running and waits for them to return, bounded by ctx
// (also while a pass is stuck in a cloud call). Once the hooks are stopped
// none begins; out of time, the error counts the hooks still in host code,
// not those that have returned. It is idempotent. Without WindDown the
// instances are left as they are: a new scaler with the same identity
// adopts them.
func (s *Scaler) Shutdown(ctx context.Context, opts ShutdownOptions) error {
	s.stopOnce.Do(func() { close(s.stop) })
	var errs []error
	if opts.WindDown {
		if err := s.drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	locked := s.lockStep(ctx) == nil
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if locked {
		s.unlockStep()
	} else {
		errs = append(errs, fmt.Errorf("a pass is still running: %w", ctx.Err()))
	}
	s.mu.Lock()
	s.cancelHooks()
	s.mu.Unlock()
	for _, p := range s.pools {
		if err := closePool(p, ctx); err != nil {
			errs = append(errs, fmt.Errorf("pool %q: hooks still running: %w", p.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// gainTerm starts a term when this replica (re)gains the lease. A term
// after the first is a restart: what the pools remember of the last term
// (hook results, launches in flight, tag changes) may be stale, since
// another replica acted in between, so it is dropped and re-learnt from the
// cloud, as a new process would.
//
// With a Lease, every term, the first included, starts with a wait: see
// Lease.
func (s *Scaler) gainTerm(now time.Time) {
	if t, ok := s.opts.Leader.(Terms); ok {
		if term := t.Term(); s.leading && term != s.term {
			s.loseTerm() // lost and won again between two passes
		}
	}
	if s.leading {
		return
	}
	if t, ok := s.opts.Leader.(Terms); ok {
		s.term = t.Term()
	}
	s.leading = true
	s.terms++
	if s.terms > 1 {
		s.mu.Lock()
		s.hookCtx, s.cancelHooks = context.WithCancel(context.Background())
		s.mu.Unlock()
		for _, p := range s.pools {
			resetPool(p)
		}
		s.tokens = map[tokenKey]*tokenState{}
	}
	if l, ok := s.opts.Leader.(Lease); ok {
		s.lease = l.LeaseContext()
		s.actFrom = now.Add(l.TTL() + s.opts.CallTimeout)
		s.mu.Lock()
		context.AfterFunc(s.lease, s.cancelHooks) // hooks end with the term's lease
		s.mu.Unlock()
	}
}

// loseTerm ends a term: the role hooks this replica started stop, so a
// deposed leader's hook cannot act after the new leader has.
func (s *Scaler) loseTerm() {
	if !s.leading || s.opts.Leader == nil {
		return
	}
	s.leading = false
	s.mu.Lock()
	s.cancelHooks()
	s.mu.Unlock()
}

// termCtx is the context role hooks of this term run under.
func (s *Scaler) termCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hookCtx
}

// lockStep takes the right to run a pass, or fails when ctx ends first.
func (s *Scaler) lockStep(ctx context.Context) error {
	select {
	case s.stepMu <- struct{}{}:
		return nil // free: taken even if ctx has ended
	default:
	}
	select {
	case s.stepMu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Scaler) unlockStep() { <-s.stepMu }

func (s *Scaler) drain(ctx context.Context) error {
	for _, p := range s.pools {
		drainPool(p, true)
	}
	for {
		if err := s.Step(ctx); err == nil && s.live() == 0 {
			return nil
		}
		if err := s.opts.Wait(ctx, s.nextPass()); err != nil {
			return fmt.Errorf("wind down before shutdown: %w%s", err, s.stillWindingDown())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wind down before shutdown: %w%s", ctx.Err(), s.stillWindingDown())
		}
	}
}

// stillWindingDown names, for an error, the servers of every pool that
// are still there.
func (s *Scaler) stillWindingDown() string {
	var b strings.Builder
	for _, p := range s.pools {
		if n := p.Status().Live(); n > 0 {
			fmt.Fprintf(&b, "; pool %q still holds %d units", p.Name(), n)
			if ids := windingDownIn(p); len(ids) > 0 {
				slices.Sort(ids)
				fmt.Fprintf(&b, ": %s", strings.Join(ids, ", "))
			}
		}
	}
	return b.String()
}

// live is the capacity of every instance the pools saw in the latest pass.
func (s *Scaler) live() int {
	n := 0
	for _, p := range s.pools {
		n += p.Status().Live()
	}
	return n
}

// readHealth reads, every EC2HealthInterval, what EC2 reports of the owned
// instances: one batched call per hundred instances, answered only for
// those that need attention. A failed read keeps the last report and is
// tried again next interval.
func (s *Scaler) readHealth(ctx context.Context, now time.Time, byPool [][]awsctl.Instance) {
	hr, ok := s.cloud.(awsctl.HealthReader)
	if !ok || s.opts.EC2HealthInterval < 0 || !s.healthAt.IsZero() && now.Sub(s.healthAt) < s.opts.EC2HealthInterval {
		return
	}
	s.healthAt = now
	n := 0
	for _, insts := range byPool {
		n += len(insts)
	}
	if cap(s.healthIDs) < n {
		s.healthIDs = make([]string, 0, n+n/4)
	}
	ids := s.healthIDs[:0] // kept between reads: a read must not allocate per instance
	for _, insts := range byPool {
		for i := range insts {
			if insts[i].State.Live() {
				ids = append(ids, insts[i].ID)
			}
		}
	}
	s.healthIDs = ids
	if len(ids) == 0 {
		s.health = nil
		return
	}
	report, err := hr.InstanceHealth(ctx, ids)
	if err != nil {
		s.emit(ctx, Event{Time: now, Kind: pool.EventCloudError, Err: err, Reason: "reading EC2 status checks and scheduled events failed; the last report stands"})
		return
	}
	health := make(map[string]awsctl.InstanceHealth, len(report))
	for _, h := range report {
		health[h.ID] = h
	}
	s.health = health
}

// Refresh asks the named pool to replace every server launched before now,
// make-before-break and within its Disruption budget: a new server is
// launched, provisioned and granted to the same manager, then the old one
// winds down. The next pass marks the servers to replace in their tags, so
// a restarted scaler carries the roll on. The pool's Status shows the
// progress (Replacing, Due). Refresh does not wait for a pass.
func (s *Scaler) Refresh(poolName string) error {
	p := s.byTag[poolName]
	if p == nil {
		return fmt.Errorf("refresh: %w: %q", ErrUnknownPool, poolName)
	}
	refreshPool(p, s.opts.Clock())
	return nil
}
