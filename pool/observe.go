package pool

import (
	"cmp"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// server is an instance as one pass sees it.
type server struct {
	inst   awsctl.Instance
	weight int
	state  state
	tags   ownTagValues
	// mgr is the manager the grant tag names (also while winding down or
	// restoring); "" for none or an unknown one.
	mgr    string
	mgrIdx int
	// start and deadline of a wind-down in progress.
	start, deadline time.Time
	// notice is when EC2 reclaims this spot server; zero for none.
	notice    time.Time
	rebalance bool
	hook      HookKind // the role hook running, 0 for none
	m         *memo
	// replaces is, for a replacement on its way, the server it stands in
	// for; replacedBy is the converse.
	replaces, replacedBy *server
	// decided: the server already has a decision this pass.
	decided bool
	// claimed: a winding-down server kept as capacity this pass (to be
	// restored now or handed over once wound down).
	claimed bool
	// handover: a winding-down server the pool needs once it is wound
	// down (for Min or another manager): it is restored to the pool then
	// instead of terminated.
	handover bool
	// staleGrant: the grant tag names a manager the pool does not have.
	staleGrant bool
	// prevMgr: the server was just handed back to the pool by this
	// manager; its grant tag goes unless another grant replaces it.
	prevMgr    *want
	launchNano int64 // for ordering without time.Time compares
	// reserved: an on-demand server a reservation covers.
	reserved bool
}

// memo is what this process learnt about an instance that the cloud does
// not show. It is a cache: a restarted scaler that loses it makes the same
// decisions, at worst running an idempotent hook once more.
type memo struct {
	windDownSent bool
	woundDown    bool
	tornDown     bool
	restored     bool
	restoreFree  bool      // the restore hands the server back to the pool
	provFailed   error     // the Provision hook failed; TagRetire follows
	noticed      bool      // the interruption was acted on
	rebalanced   bool      // the manager was told of the rebalance recommendation
	swapSkipped  bool      // a replacement was judged not worth it (reported once)
	handOver     bool      // kept for a hand-over (reported once)
	hookFailing  bool      // the latest WindDown or Check hook failed
	badHealth    int       // Check readings of Unhealthy in a row
	lastHealth   time.Time // when the latest health Check of a granted server started
	overdue      bool      // past its wind-down deadline, still busy (reported once)
	grantedTo    *want     // the manager that held it at the end of the last pass
	// Day-two: TagSpec and TagRefresh as read once (see readDayTwoTags),
	// when an impaired check was first seen (EC2 did not say since when),
	// and a replacement that waits reported once.
	dayTwoRead    bool
	spec, refresh string
	impairedSeen  time.Time
	dueSaid       bool
	seen          uint64
}

func (s *server) managerServer() manager.Server {
	return manager.Server{
		ID:          s.inst.ID,
		Type:        s.inst.Type,
		Zone:        s.inst.Zone,
		Market:      s.inst.Market,
		PrivateIP:   s.inst.PrivateIP,
		Weight:      s.weight,
		LaunchTime:  s.inst.LaunchTime,
		WindingDown: s.state != granted,
		Deadline:    s.deadline,
		Replaced:    s.replacedBy != nil && s.replacedBy.state == granted,
	}
}

// idle reports whether no role hook runs on s.
func (s *server) idle() bool { return s.hook == 0 }

// readHooks records what the hooks finished since the last pass.
func (p *Pool) readHooks(pl *Plan, now time.Time) {
	for id, r := range p.hooks.collect(now) {
		m := p.memoOf(id)
		if r.err != nil {
			kind := EventHookFailed
			switch r.kind {
			case HookProvision:
				kind = EventProvisionFailed
				m.provFailed = r.err
			case HookTeardown:
				m.tornDown = true // teardown is best effort: terminate anyway
			case HookWindDown, HookCheck:
				m.hookFailing = true
			}
			p.event(pl, Event{Kind: kind, Instance: id, Reason: r.kind.String(), Err: r.err})
			continue
		}
		switch r.kind {
		case HookProvision:
			pl.markReady(id)
			p.event(pl, Event{Kind: EventProvisioned, Instance: id})
		case HookWindDown:
			m.windDownSent, m.hookFailing = true, false
		case HookCheck:
			m.woundDown = m.woundDown || r.status.WoundDown
			m.hookFailing = false
			if r.status.Unhealthy {
				m.badHealth++
			} else {
				m.badHealth = 0
			}
		case HookRestore:
			m.restored = true
		case HookTeardown:
			m.tornDown = true
		}
	}
}

// markReady records a successful Provision: the pass writes TagReady.
func (pl *Plan) markReady(id string) {
	if pl.ready == nil {
		pl.ready = map[string]bool{}
	}
	pl.ready[id] = true
}

// memoOf returns the pool's memo of an instance, creating it.
func (p *Pool) memoOf(id string) *memo {
	m, ok := p.mem[id]
	if !ok {
		m = &memo{}
		p.mem[id] = m
	}
	return m
}

// observe turns the listing and the launches in flight into servers, each
// in the state derive gives it, and returns them with the pass's ledger.
func (p *Pool) observe(pl *Plan, snap Snapshot) []*server {
	now, instances := snap.Now, snap.Instances
	p.pass++
	// The servers of a pass live in buffers kept from pass to pass: the
	// listing is the bulk of a pass's work, so it must not allocate per
	// instance when the pool is steady.
	n := len(instances) + len(p.inflight)
	if cap(p.backing) < n {
		p.backing = make([]server, 0, n+n/4)
		p.ptrs = make([]*server, 0, n+n/4)
	}
	backing, servers := p.backing[:0], p.ptrs[:0]
	running := p.hooks.snapshot()
	add := func(inst awsctl.Instance, listed bool) {
		m := p.memoOf(inst.ID)
		if listed {
			m.seen = p.pass
		}
		tags := readOwnTags(inst.Tags)
		backing = append(backing, server{inst: inst, weight: p.weight(inst.Type), m: m, tags: tags,
			launchNano: inst.LaunchTime.UnixNano()})
		s := &backing[len(backing)-1]
		if pl.ready[inst.ID] && tags.ready == "" {
			s.tags.ready = formatTime(now) // written this pass
		}
		if len(snap.Interrupted) > 0 {
			s.notice = snap.Interrupted[inst.ID]
		}
		if s.notice.IsZero() && tags.interrupted != "" {
			if t, ok := parseTime(tags.interrupted); ok {
				s.notice = t
				m.noticed = true // acted on before: the tag is its record
			}
		}
		if len(snap.Rebalance) > 0 {
			_, s.rebalance = snap.Rebalance[inst.ID]
		}
		if len(running) > 0 {
			s.hook = running[inst.ID]
		}
		known := false
		if name := tags.manager; name != "" {
			if i, ok := p.mgrIndex[name]; ok {
				s.mgr, s.mgrIdx, known = name, i, true
			} else {
				s.staleGrant = true // removed below unless granted again this pass
				p.event(pl, Event{Kind: EventBadTag, Instance: inst.ID, Manager: name,
					Reason: "grant tag names an unknown manager; the server returns to the pool"})
			}
		}
		if tags.winding {
			p.readWindDown(pl, now, s)
		} else if m.windDownSent || m.woundDown || m.tornDown || m.restored || m.handOver {
			// The wind-down ended (its tags are gone): forget its progress.
			m.windDownSent, m.woundDown, m.tornDown, m.restored, m.restoreFree = false, false, false, false, false
			m.handOver, m.hookFailing, m.overdue = false, false, false
		}
		s.state = derive(facts{ec2: inst.State, listed: listed, tags: s.tags, knownMgr: known, notice: s.notice,
			hook: s.hook, restored: m.restored, provFailed: m.provFailed != nil})
		servers = append(servers, s)
	}
	for _, inst := range instances {
		if !inst.State.Live() {
			continue
		}
		if _, ok := p.terminating[inst.ID]; ok {
			continue // termination requested; the listing lags
		}
		add(p.applyOverlay(now, inst), true)
	}
	for id, f := range p.inflight {
		if p.seen(id) || now.Sub(f.at) > p.cfg.LaunchGrace {
			delete(p.inflight, id)
			continue
		}
		add(f.inst, false)
	}
	for id, at := range p.terminating {
		if !p.seen(id) || now.Sub(at) > p.cfg.LaunchGrace {
			delete(p.terminating, id)
		}
	}
	p.backing, p.ptrs = backing[:0], servers[:0] // keep what append grew
	p.linkReplacements(servers)
	return servers
}

// readWindDown reads a wind-down's tags, repairing a deadline that does not
// parse rather than guessing.
func (p *Pool) readWindDown(pl *Plan, now time.Time, s *server) {
	var ok bool
	s.start, ok = parseTime(s.tags.windStart)
	if !ok {
		s.start = now
	}
	s.deadline, ok = parseTime(s.tags.windDeadline)
	if !ok {
		s.deadline = now.Add(p.cfg.WindDownTimeout)
		p.event(pl, Event{Kind: EventBadTag, Instance: s.inst.ID,
			Reason: fmt.Sprintf("wind-down deadline %q does not parse; reset", s.tags.windDeadline)})
		pl.change(s, map[string]string{TagWindDownStart: formatTime(s.start), TagWindDownDeadline: formatTime(s.deadline)}, nil, 0)
	}
}

// linkReplacements pairs each replacement on its way with the server it
// stands in for. A replacement whose target is gone, or no longer a
// granted server, is ordinary capacity; its tag is removed once it runs.
func (p *Pool) linkReplacements(servers []*server) {
	var byID map[string]*server
	for _, s := range servers {
		if s.tags.replaces == "" {
			continue
		}
		if byID == nil {
			byID = make(map[string]*server, len(servers))
			for _, x := range servers {
				byID[x.inst.ID] = x
			}
		}
		switch s.state {
		case launching, booting, provisioning, free, granted:
		default:
			continue // leaving anyway
		}
		x := byID[s.tags.replaces]
		if x == nil || x.replacedBy != nil || (x.state != granted && !(s.state == granted && x.state == windingDown)) {
			continue
		}
		s.replaces, x.replacedBy = x, s
	}
}

// oldestFirst orders servers by launch time, then id.
func oldestFirst(a, b *server) int {
	return cmp.Or(cmp.Compare(a.launchNano, b.launchNano), cmp.Compare(a.inst.ID, b.inst.ID))
}

// seen reports whether the current pass's listing showed id.
func (p *Pool) seen(id string) bool {
	m, ok := p.mem[id]
	return ok && m.seen == p.pass
}

// applyOverlay shows inst with the tag changes the pool made that the
// listing does not show yet (EC2 tags are eventually consistent).
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

// ownTagValues are the scaler's tags of one instance.
type ownTagValues struct {
	manager, replaces, interrupted string
	ready, retire                  string
	windStart, windDeadline        string
	winding                        bool
}

// readOwnTags reads the scaler's tags of an instance. The tags a pass
// writes only together with a wind-down (interrupted, retire) are read only
// when one is in progress, and TagReady only for a server no manager holds:
// a steady pass reads three tags per server.
func readOwnTags(tags map[string]string) ownTagValues {
	v := ownTagValues{
		manager:  tags[TagManager],
		replaces: tags[TagReplaces],
	}
	v.windStart, v.winding = tags[TagWindDownStart]
	if v.winding {
		v.windDeadline = tags[TagWindDownDeadline]
		v.interrupted = tags[TagInterrupted]
		v.retire = tags[TagRetire]
	}
	if v.manager == "" {
		v.ready = tags[TagReady]
	}
	return v
}
