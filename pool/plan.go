package pool

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// Plan is one pass's decisions for a pool: plain data the scaler executes,
// a dry run reports and tests inspect.
type Plan struct {
	Pool string
	Now  time.Time
	// Launches to make. Tags hold the pool and role tags; the scaler adds
	// its owner tag and an idempotency token.
	Launches []awsctl.LaunchRequest
	// Changes to instances: tag changes, then a hook to start.
	Changes []Change
	// Terminate lists instances to terminate.
	Terminate []string
	Events    []Event

	launchWhy []string            // per launch, why that offering and market
	notices   map[string][]notice // by instance, delivered once its change lands
	termNotes map[string][]notice // by instance, delivered once terminated
}

// Change is a tag change on one instance and the hook to start once the tags
// are written. Writing the tags first means a crash between the two leaves
// a state a restarted scaler understands and completes.
type Change struct {
	Instance awsctl.Instance
	Set      map[string]string
	Remove   []string
	Hook     HookKind // 0 for none
}

type notice struct {
	m manager.Manager
	n manager.Notice
}

type phase int

const (
	phaseBooting phase = iota
	phaseProvisioning
	phaseFree
	phaseGranted
	phaseWinding
	phaseFailed
)

// server is an instance as one pass sees it.
type server struct {
	inst     awsctl.Instance
	weight   int
	mgr      string
	phase    phase
	start    time.Time
	deadline time.Time
	m        *memo
	taken    bool // already has a decision this pass
	hook     bool // a hook is running
	// restoring: a Restore hook is running; the server counts as held by
	// its manager (or as pool supply) so nothing is launched in its place.
	restoring bool
	// interrupted: EC2 reclaims this spot server at that time; it no
	// longer counts as capacity.
	interrupted time.Time
	rebalance   bool
	// replaces: this server was launched to replace that one.
	replaces string
	// earmarked: a replacement on its way, not capacity for new demand.
	earmarked bool
	// prevMgr: the server was just handed back to the pool by this
	// manager; its grant tag goes unless another grant replaces it.
	prevMgr *want
	// staleGrant: the grant tag names a manager the pool does not have.
	staleGrant bool
	// reserved: an on-demand server a reservation covers, so it costs
	// nothing extra to keep.
	reserved bool
}

// counts reports whether s is capacity the pool can plan with.
func (s *server) counts() bool { return s.interrupted.IsZero() && !s.earmarked }

func (s *server) managerServer() manager.Server {
	return manager.Server{
		ID:          s.inst.ID,
		Type:        s.inst.Type,
		Zone:        s.inst.Zone,
		Market:      s.inst.Market,
		PrivateIP:   s.inst.PrivateIP,
		Weight:      s.weight,
		LaunchTime:  s.inst.LaunchTime,
		WindingDown: s.phase == phaseWinding,
		Deadline:    s.deadline,
	}
}

// want is one manager's demand this pass.
type want struct {
	m        manager.Manager
	name     string
	req      manager.Request
	target   int
	held     int
	zoneHeld map[string]int
	idle     map[string]bool
	// extraSpot is capacity added to target by MinimumSpot, to be spot.
	extraSpot int
}

func (w *want) need() int { return max(0, w.target-w.held) }

func (w *want) accepts(mk awsctl.Market) bool {
	switch w.req.Market {
	case manager.OnDemandOnly:
		return mk == awsctl.MarketOnDemand
	case manager.SpotOnly:
		return mk == awsctl.MarketSpot
	}
	return true
}

// Snapshot is what one pass knows of the world.
type Snapshot struct {
	Now time.Time
	// Instances the listing shows with this pool's tag.
	Instances []awsctl.Instance
	// Interrupted maps spot instances EC2 will reclaim to the time it will.
	Interrupted map[string]time.Time
	// Rebalance holds spot instances EC2 recommends moving off, with the
	// time of the recommendation.
	Rebalance map[string]time.Time
}

// Plan looks at the pool's instances, asks the managers what they want and
// decides this pass's actions. It calls the managers' Demand but changes
// nothing else outside the pool; the scaler carries the plan out and reports
// back through Commit.
func (p *Pool) Plan(ctx context.Context, snap Snapshot) *Plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := snap.Now
	pl := &Plan{Pool: p.cfg.Name, Now: now, notices: map[string][]notice{}, termNotes: map[string][]notice{}}
	p.readHooks(pl, now)
	servers := p.classify(pl, snap)
	wants := p.askManagers(ctx, pl, now, servers)
	p.decide(pl, now, servers, wants)
	return pl
}

func (p *Pool) readHooks(pl *Plan, now time.Time) {
	for id, r := range p.hooks.collect(now) {
		m := p.memoOf(id)
		if r.err != nil {
			kind := EventHookFailed
			if r.kind == HookProvision {
				kind = EventProvisionFailed
				m.failed = r.err
			}
			if r.kind == HookTeardown {
				m.tornDown = true // teardown is best effort: terminate anyway
			}
			p.event(pl, Event{Kind: kind, Instance: id, Reason: r.kind.String(), Err: r.err})
			continue
		}
		switch r.kind {
		case HookProvision:
			m.provisioned = true
			p.event(pl, Event{Kind: EventProvisioned, Instance: id})
		case HookWindDown:
			m.windDownSent = true
		case HookCheck:
			if r.status.WoundDown {
				m.woundDown = true
			}
		case HookRestore:
			m.restored = true
		case HookTeardown:
			m.tornDown = true
		}
	}
}

func (p *Pool) memoOf(id string) *memo {
	m, ok := p.mem[id]
	if !ok {
		m = &memo{}
		p.mem[id] = m
	}
	return m
}

// classify turns the listing into servers, applying what the pool knows
// that the listing may not show yet.
func (p *Pool) classify(pl *Plan, snap Snapshot) []*server {
	now, instances := snap.Now, snap.Instances
	p.pass++
	// One allocation for every server of the pass; the listing is the
	// bulk of a pass's work, so it must not allocate per instance.
	backing := make([]server, 0, len(instances)+len(p.inflight))
	servers := make([]*server, 0, len(instances)+len(p.inflight))
	running := p.hooks.snapshot()
	for _, inst := range instances {
		m := p.memoOf(inst.ID)
		m.seen = p.pass
		if !inst.State.Live() {
			continue
		}
		if len(p.terminating) > 0 {
			if _, ok := p.terminating[inst.ID]; ok {
				continue // termination requested; the listing lags
			}
		}
		inst = p.applyOverlay(now, inst)
		backing = append(backing, server{inst: inst, weight: p.weight(inst.Type), m: m, replaces: inst.Tags[TagReplaces]})
		s := &backing[len(backing)-1]
		if len(snap.Interrupted) > 0 {
			s.interrupted = snap.Interrupted[inst.ID]
		}
		if at, ok := inst.Tags[TagInterrupted]; ok && s.interrupted.IsZero() {
			if t, ok := parseTime(at); ok {
				s.interrupted = t
				s.m.interrupted = true // acted on before; the tag is its record
			}
		}
		if len(snap.Rebalance) > 0 {
			_, s.rebalance = snap.Rebalance[inst.ID]
		}
		var kind HookKind
		var busy bool
		if len(running) > 0 {
			kind, busy = running[inst.ID]
		}
		s.hook = busy
		s.restoring = busy && kind == HookRestore
		if name, ok := inst.Tags[TagManager]; ok {
			if _, known := p.managers[name]; known {
				s.mgr = name
			} else {
				p.event(pl, Event{Kind: EventBadTag, Instance: inst.ID, Manager: name,
					Reason: "grant tag names an unknown manager; the server returns to the pool"})
				s.staleGrant = true // removed below unless granted again this pass
			}
		}
		if startTag, ok := inst.Tags[TagWindDownStart]; ok {
			s.phase = phaseWinding
			s.start, ok = parseTime(startTag)
			if !ok {
				s.start = now
			}
			s.deadline, ok = parseTime(inst.Tags[TagWindDownDeadline])
			if !ok {
				// Rewrite a deadline that does not parse rather than guess.
				s.deadline = now.Add(p.cfg.WindDownTimeout)
				p.event(pl, Event{Kind: EventBadTag, Instance: inst.ID,
					Reason: fmt.Sprintf("wind-down deadline %q does not parse; reset", inst.Tags[TagWindDownDeadline])})
				pl.Changes = append(pl.Changes, Change{Instance: inst, Set: map[string]string{
					TagWindDownStart: formatTime(s.start), TagWindDownDeadline: formatTime(s.deadline)}})
			}
		} else {
			s.m.windDownSent, s.m.woundDown, s.m.tornDown, s.m.restored = false, false, false, false
			switch {
			case s.mgr != "":
				s.phase = phaseGranted
				s.m.provisioned = true // a grant is only written after provisioning
			case s.m.failed != nil:
				s.phase = phaseFailed
			case inst.State == awsctl.StatePending:
				s.phase = phaseBooting
			case !s.m.provisioned:
				s.phase = phaseProvisioning
			default:
				s.phase = phaseFree
			}
		}
		servers = append(servers, s)
	}
	for id, f := range p.inflight {
		if p.seen(id) || now.Sub(f.at) > p.cfg.LaunchGrace {
			delete(p.inflight, id)
			continue
		}
		servers = append(servers, &server{inst: f.inst, weight: p.weight(f.inst.Type), phase: phaseBooting, m: p.memoOf(id), taken: true})
	}
	for id, at := range p.terminating {
		if !p.seen(id) || now.Sub(at) > p.cfg.LaunchGrace {
			delete(p.terminating, id)
		}
	}
	for id, m := range p.mem {
		if m.seen != p.pass {
			if _, ok := p.inflight[id]; !ok && !p.hooks.busy(id) {
				delete(p.mem, id)
			}
		}
	}
	// Deterministic order: oldest first. Listings usually come sorted
	// already, and checking is much cheaper than sorting.
	oldestFirst := func(a, b *server) int {
		return cmp.Or(a.inst.LaunchTime.Compare(b.inst.LaunchTime), cmp.Compare(a.inst.ID, b.inst.ID))
	}
	if !slices.IsSortedFunc(servers, oldestFirst) {
		slices.SortFunc(servers, oldestFirst)
	}
	return servers
}

// seen reports whether the current pass's listing showed id.
func (p *Pool) seen(id string) bool {
	m, ok := p.mem[id]
	return ok && m.seen == p.pass
}

func (p *Pool) applyOverlay(now time.Time, inst awsctl.Instance) awsctl.Instance {
	if len(p.overlay) == 0 {
		return inst
	}
	ov, ok := p.overlay[inst.ID]
	if !ok {
		return inst
	}
	if now.Sub(ov.at) > p.cfg.LaunchGrace {
		delete(p.overlay, inst.ID)
		return inst
	}
	var tags map[string]string
	for k, v := range ov.tags {
		cur, has := inst.Tags[k]
		if (v == nil && !has) || (v != nil && has && cur == *v) {
			delete(ov.tags, k) // the listing caught up
			continue
		}
		if tags == nil {
			tags = cloneMap(inst.Tags)
		}
		if v == nil {
			delete(tags, k)
		} else {
			tags[k] = *v
		}
	}
	if len(ov.tags) == 0 {
		delete(p.overlay, inst.ID)
	}
	if tags != nil {
		inst.Tags = tags
	}
	return inst
}

func (p *Pool) askManagers(ctx context.Context, pl *Plan, now time.Time, servers []*server) []*want {
	counts := make(map[string]int, len(p.cfg.Managers))
	for _, s := range servers {
		if s.mgr != "" {
			counts[s.mgr]++
		}
	}
	byMgr := make(map[string][]manager.Server, len(counts))
	for name, n := range counts {
		byMgr[name] = make([]manager.Server, 0, n)
	}
	for _, s := range servers {
		if s.mgr != "" {
			byMgr[s.mgr] = append(byMgr[s.mgr], s.managerServer())
		}
	}
	wants := make([]*want, 0, len(p.cfg.Managers))
	for _, m := range p.cfg.Managers {
		w := &want{m: m, name: m.Name(), zoneHeld: map[string]int{}}
		state := manager.State{Now: now, Servers: byMgr[w.name], Max: p.cfg.Max}
		req, err := demand(ctx, m, state)
		if err != nil {
			prev, ok := p.lastTarget[w.name]
			if !ok {
				prev = state.Ready()
			}
			p.event(pl, Event{Kind: EventManagerError, Manager: w.name, Err: err, Capacity: prev,
				Reason: "demand failed; keeping the previous target"})
			req = manager.Request{Target: prev}
		}
		switch {
		case req.Target < 0:
			p.event(pl, Event{Kind: EventDemandClamped, Manager: w.name, Capacity: 0,
				Reason: fmt.Sprintf("negative target %d clamped to 0", req.Target)})
			req.Target = 0
		case req.Target > p.cfg.Max:
			p.event(pl, Event{Kind: EventDemandClamped, Manager: w.name, Capacity: p.cfg.Max,
				Reason: fmt.Sprintf("target %d above pool max clamped to %d", req.Target, p.cfg.Max)})
			req.Target = p.cfg.Max
		}
		if p.draining {
			req = manager.Request{}
		}
		if req.Market < manager.AnyMarket || req.Market > manager.SpotOnly {
			req.Market = manager.AnyMarket
		}
		w.req = req
		w.target = req.Target
		if ms := p.cfg.MinimumSpot; ms != nil && ms.Manager == w.name && req.Market != manager.OnDemandOnly {
			w.extraSpot = p.minimumSpot(now, servers)
			w.target = min(w.target+w.extraSpot, p.cfg.Max)
		}
		p.lastTarget[w.name] = req.Target
		if len(req.Idle) > 0 {
			w.idle = make(map[string]bool, len(req.Idle))
			for _, id := range req.Idle {
				w.idle[id] = true
			}
		}
		wants = append(wants, w)
	}
	p.fairShare(pl, wants)
	return wants
}

// demand calls a manager, turning a panic into an error: host code must not
// take the scaler down.
func demand(ctx context.Context, m manager.Manager, s manager.State) (req manager.Request, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("manager %q panicked: %v", m.Name(), r)
		}
	}()
	return m.Demand(ctx, s)
}

// fairShare scales targets down when together they exceed Max: every
// manager gets an equal share, and what a small manager leaves goes to the
// others (water-filling).
func (p *Pool) fairShare(pl *Plan, wants []*want) {
	total := 0
	for _, w := range wants {
		total += w.target
	}
	if total <= p.cfg.Max {
		return
	}
	order := slices.Clone(wants)
	slices.SortStableFunc(order, func(a, b *want) int { return cmp.Compare(a.target, b.target) })
	left := p.cfg.Max
	for i, w := range order {
		share := left / (len(order) - i)
		if w.target > share {
			p.event(pl, Event{Kind: EventDemandClamped, Manager: w.name, Capacity: share,
				Reason: fmt.Sprintf("managers want %d together, above pool max %d: fair share %d", total, p.cfg.Max, share)})
			w.target = share
		}
		left -= w.target
	}
}

func (p *Pool) decide(pl *Plan, now time.Time, servers []*server, wants []*want) {
	p.markReserved(now, servers)
	byName := make(map[string]*want, len(wants))
	sumTarget := 0
	for _, w := range wants {
		byName[w.name] = w
		sumTarget += w.target
	}
	p.interruptions(pl, now, servers, byName)
	p.swapReplacements(pl, now, servers, byName)

	// What each manager holds, counting restores in progress as held.
	for _, s := range servers {
		w := byName[s.mgr]
		if w == nil || !s.counts() {
			continue
		}
		if s.phase == phaseGranted || (s.restoring && !s.m.restoreFree) {
			w.held += s.weight
			w.zoneHeld[s.inst.Zone] += s.weight
		}
	}

	// Finish restores whose hook succeeded: untag, and give the server back
	// to its manager if it still wants it, else to the pool.
	for _, s := range servers {
		if s.phase != phaseWinding || !s.m.restored || s.taken {
			continue
		}
		pl.Changes = append(pl.Changes, Change{Instance: s.inst, Remove: []string{TagWindDownStart, TagWindDownDeadline}})
		w := byName[s.mgr]
		if w != nil && (!s.m.restoreFree || w.need() > 0) {
			s.taken = true
			s.phase = phaseGranted
			w.held += s.weight
			w.zoneHeld[s.inst.Zone] += s.weight
			pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{w.m, manager.Notice{Kind: manager.Restored, Server: s.managerServer()}})
			continue
		}
		// Back to the pool: free for any manager this very pass.
		s.prevMgr = w
		s.mgr = ""
		s.phase = phaseFree
		if !s.m.provisioned {
			s.phase = phaseProvisioning
		}
	}

	// 1. Demand came back: cancel the manager's own wind-downs first.
	for _, w := range wants {
		if w.need() == 0 {
			continue
		}
		cands := filter(servers, func(s *server) bool {
			return s.phase == phaseWinding && s.mgr == w.name && !s.taken && !s.hook && !s.m.tornDown && !s.m.restored && s.counts()
		})
		slices.SortStableFunc(cands, func(a, b *server) int { return b.deadline.Compare(a.deadline) })
		for _, s := range cands {
			if w.need() == 0 {
				break
			}
			p.restore(pl, s, false, "demand returned")
			w.held += s.weight
			w.zoneHeld[s.inst.Zone] += s.weight
		}
	}

	// 2. Take back what managers hold beyond their targets.
	for _, w := range wants {
		excess := w.held - w.target
		if excess <= 0 {
			continue
		}
		cands := filter(servers, func(s *server) bool {
			return s.phase == phaseGranted && s.mgr == w.name && !s.taken && !s.hook && s.counts()
		})
		p.sortVictims(now, cands, w.idle)
		for _, s := range cands {
			if excess < s.weight {
				continue
			}
			deadline, ok := p.removable(now, s)
			if !ok {
				continue
			}
			p.windDown(pl, now, s, w, deadline, fmt.Sprintf("manager holds %d, wants %d", w.held, w.target))
			excess -= s.weight
			w.held -= s.weight
			w.zoneHeld[s.inst.Zone] -= s.weight
		}
	}

	// 3. Grant ready servers to managers that need them.
	p.grant(pl, servers, wants)

	// 4. Launch or restore what is missing; 5. remove what is spare.
	p.balance(pl, now, servers, wants, sumTarget)

	// Servers handed back to the pool and not granted again lose their
	// old grant.
	for _, s := range servers {
		if s.prevMgr == nil && !s.staleGrant {
			continue
		}
		pl.Changes = append(pl.Changes, Change{Instance: s.inst, Remove: []string{TagManager}})
		if s.prevMgr != nil {
			pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{s.prevMgr.m, manager.Notice{Kind: manager.Revoked, Server: s.managerServer(), Reason: "handed back to the pool"}})
		}
		s.prevMgr, s.staleGrant = nil, false
		s.taken = true
	}

	// 6. Move wind-downs, provisioning and failures along.
	for _, s := range servers {
		if s.taken || s.hook {
			continue
		}
		switch s.phase {
		case phaseProvisioning:
			if s.inst.State == awsctl.StateRunning {
				pl.Changes = append(pl.Changes, Change{Instance: s.inst, Hook: HookProvision})
			}
		case phaseFailed:
			p.windDown(pl, now, s, nil, now.Add(p.cfg.WindDownTimeout), "provisioning failed")
		case phaseWinding:
			p.advanceWindDown(pl, now, s, byName[s.mgr])
		}
	}
	// 7. Replace on-demand servers by spot where it pays.
	p.replaceOnDemand(pl, now, servers, wants)
	p.recordStatus(now, servers, wants, sumTarget)
}

func filter(servers []*server, keep func(*server) bool) []*server {
	var out []*server
	for _, s := range servers {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// sortVictims orders servers to wind down: those the manager marked idle,
// then those EC2 recommends moving off, then the most expensive per capacity
// unit, then the newest.
func (p *Pool) sortVictims(now time.Time, cands []*server, idle map[string]bool) {
	price := make(map[*server]float64, len(cands))
	for _, s := range cands {
		price[s] = p.hourly(now, s) / float64(s.weight)
	}
	first := func(a, b bool) int {
		if a == b {
			return 0
		}
		if a {
			return -1
		}
		return 1
	}
	slices.SortStableFunc(cands, func(a, b *server) int {
		return cmp.Or(
			first(idle[a.inst.ID], idle[b.inst.ID]),
			first(a.rebalance, b.rebalance),
			cmp.Compare(price[b], price[a]),
			b.inst.LaunchTime.Compare(a.inst.LaunchTime))
	})
}

// removable says whether winding s down now saves money, and by when the
// wind-down must end. A server inside its minimum charge is kept: it is paid
// for anyway and demand may return. An hourly server is only wound down near
// the end of its paid hour.
func (p *Pool) removable(now time.Time, s *server) (time.Time, bool) {
	age := now.Sub(s.inst.LaunchTime)
	if p.cfg.Billing == Hourly {
		left := time.Hour - age%time.Hour
		if left <= HourlyMargin || left > p.cfg.WindDownTimeout+HourlyMargin {
			return time.Time{}, false
		}
		return now.Add(left - HourlyMargin), true
	}
	if age < MinimumCharge {
		return time.Time{}, false
	}
	return now.Add(p.cfg.WindDownTimeout), true
}

func (p *Pool) windDown(pl *Plan, now time.Time, s *server, w *want, deadline time.Time, reason string) {
	p.windDownAs(pl, now, s, w, deadline, reason, manager.WindDown)
}

func (p *Pool) windDownAs(pl *Plan, now time.Time, s *server, w *want, deadline time.Time, reason string, kind manager.NoticeKind) {
	s.taken = true
	s.phase = phaseWinding
	s.deadline = deadline
	ch := Change{Instance: s.inst, Set: map[string]string{
		TagWindDownStart:    formatTime(now),
		TagWindDownDeadline: formatTime(deadline),
	}}
	ev := Event{Kind: EventWindDown, Instance: s.inst.ID, Reason: reason,
		Inputs: []slog.Attr{slog.Time("deadline", deadline), slog.Duration("age", now.Sub(s.inst.LaunchTime))}}
	if w != nil {
		ch.Hook = HookWindDown
		ev.Manager = w.name
		pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{w.m, manager.Notice{
			Kind: kind, Server: s.managerServer(), Deadline: deadline, Reason: reason}})
	}
	pl.Changes = append(pl.Changes, ch)
	p.event(pl, ev)
}

// restore cancels a wind-down. The wind-down tags are removed once the
// role's Restore succeeds, in a later pass.
func (p *Pool) restore(pl *Plan, s *server, toPool bool, reason string) {
	s.taken = true
	s.m.restoreFree = toPool
	pl.Changes = append(pl.Changes, Change{Instance: s.inst, Hook: HookRestore})
	p.event(pl, Event{Kind: EventRestore, Instance: s.inst.ID, Manager: s.mgr, Reason: reason})
}

// grant hands free servers to managers with unmet demand, one server per
// manager in turn so that several managers wanting the same servers share
// them fairly; zone minimums and market preferences pick which server.
func (p *Pool) grant(pl *Plan, servers []*server, wants []*want) {
	free := filter(servers, func(s *server) bool { return s.phase == phaseFree && !s.taken && !s.hook })
	if len(free) == 0 {
		return
	}
	n := len(wants)
	start := p.rr % max(n, 1)
	p.rr++
	for progress := true; progress && len(free) > 0; {
		progress = false
		for i := range n {
			w := wants[(start+i)%n]
			if w.need() == 0 {
				continue
			}
			best := -1
			bestScore := -1
			for j, s := range free {
				if !w.accepts(s.inst.Market) {
					continue
				}
				score := 0
				if w.req.ZoneMinimums[s.inst.Zone] > w.zoneHeld[s.inst.Zone] {
					score = 1
				}
				if score > bestScore {
					best, bestScore = j, score
				}
			}
			if best < 0 {
				continue
			}
			s := free[best]
			free = slices.Delete(free, best, best+1)
			s.taken = true
			s.phase = phaseGranted
			s.mgr = w.name
			w.held += s.weight
			w.zoneHeld[s.inst.Zone] += s.weight
			pl.Changes = append(pl.Changes, Change{Instance: s.inst, Set: map[string]string{TagManager: w.name}})
			if s.prevMgr != nil && s.prevMgr != w {
				pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{s.prevMgr.m, manager.Notice{Kind: manager.Revoked, Server: s.managerServer(), Reason: "handed to " + w.name}})
			}
			s.prevMgr, s.staleGrant = nil, false
			pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{w.m, manager.Notice{Kind: manager.Granted, Server: s.managerServer()}})
			p.event(pl, Event{Kind: EventGrant, Instance: s.inst.ID, Manager: w.name,
				Inputs: []slog.Attr{slog.Int("held", w.held), slog.Int("target", w.target)}})
			progress = true
		}
	}
}

func (p *Pool) advanceWindDown(pl *Plan, now time.Time, s *server, w *want) {
	if s.m.restored {
		return // the untag is pending
	}
	noWork := w == nil // a spare or failed server has nothing to finish
	if !s.m.woundDown && !noWork && now.After(s.deadline) {
		if (p.cfg.Billing == Hourly || p.cfg.OnWindDownTimeout == Restore) && s.interrupted.IsZero() {
			p.restore(pl, s, false, "wind-down passed its deadline")
			return
		}
		p.event(pl, Event{Kind: EventWindDown, Instance: s.inst.ID, Manager: s.mgr,
			Reason: "wind-down passed its deadline; terminating anyway"})
		s.m.woundDown = true
	}
	switch {
	case !noWork && !s.m.windDownSent:
		pl.Changes = append(pl.Changes, Change{Instance: s.inst, Hook: HookWindDown})
	case !noWork && !s.m.woundDown:
		pl.Changes = append(pl.Changes, Change{Instance: s.inst, Hook: HookCheck})
	case !s.m.tornDown:
		pl.Changes = append(pl.Changes, Change{Instance: s.inst, Hook: HookTeardown})
	default:
		pl.Terminate = append(pl.Terminate, s.inst.ID)
		ev := Event{Kind: EventTerminate, Instance: s.inst.ID, Manager: s.mgr, Market: s.inst.Market,
			Inputs: []slog.Attr{slog.Duration("age", now.Sub(s.inst.LaunchTime))}}
		if w != nil {
			pl.termNotes[s.inst.ID] = append(pl.termNotes[s.inst.ID], notice{w.m, manager.Notice{Kind: manager.Revoked, Server: s.managerServer(), Reason: "terminated"}})
		}
		p.event(pl, ev)
	}
}

func (p *Pool) recordStatus(now time.Time, servers []*server, wants []*want, sumTarget int) {
	st := Status{Time: now, Target: max(sumTarget, p.cfg.Min), Managers: make(map[string]ManagerStatus, len(wants))}
	for _, s := range servers {
		if p.cfg.Prices != nil || p.cfg.Price != nil {
			st.HourlySpend += p.hourly(now, s)
		}
		if s.earmarked {
			st.Replacing += s.weight
			continue
		}
		switch s.phase {
		case phaseBooting:
			st.Booting += s.weight
		case phaseProvisioning, phaseFailed:
			st.Provisioning += s.weight
		case phaseFree:
			st.Free += s.weight
		case phaseGranted:
			st.Granted += s.weight
		case phaseWinding:
			st.WindingDown += s.weight
		}
	}
	for _, w := range wants {
		st.Managers[w.name] = ManagerStatus{Target: w.target, Held: w.held}
	}
	for _, t := range p.cfg.Types {
		if p.cfg.Prices == nil {
			break
		}
		if od, ok := p.cfg.Prices.OnDemand(t.Name); ok {
			st.UnitPrice = max(st.UnitPrice, p.cfg.Prices.Effective(t.Name, awsctl.MarketOnDemand, od)/float64(t.Weight))
		}
	}
	p.status = st
}
