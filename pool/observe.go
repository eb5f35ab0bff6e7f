package pool

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
	"unsafe"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// server is an instance as one pass sees it. Each instance's server lives
// in its memo and is kept from pass to pass, so that a pass costs little
// per server that did not change: observe rebuilds serverPass, everything a
// pass derives or decides, from scratch every pass (nothing a pass decides
// carries over to the next but through the memo and the tags), and the rest
// only when the listing shows the instance changed.
//
// The fields the walks over every server read come first: with the memo's
// own first fields, they fill two adjacent cache lines, so that a walk over
// the pool's servers costs one memory fetch per server at most.
type server struct {
	m *memo
	serverPass
	// Set from the listing's view of the instance when it changes;
	// decisions only read them.
	weight     int
	launchNano int64 // for ordering without time.Time compares
	offer      int32 // index of the instance's offering in Pool.offers
	// What observe kept of the previous pass, next to what it rebuilds
	// (fewer cache lines to fetch): how it saw the server, and what it
	// read from its tags.
	seenAs seenAs
	read   readCache
	inst   awsctl.Instance
}

// serverPass is the part of a server each pass rebuilds. Every field a
// pass derives or decides belongs here, those most walks read first.
type serverPass struct {
	state state
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
	rebalance  bool
	// reserved: an on-demand server a reservation covers.
	reserved bool
	hook     HookKind // the role hook running, 0 for none
	mgrIdx   int
	// replaces is, for a replacement on its way, the server it stands in
	// for; replacedBy is the converse.
	replaces, replacedBy *server
	// mgr is the manager the grant tag names (also while winding down or
	// restoring); "" for none or an unknown one.
	mgr  string
	tags ownTagValues
	// prevMgr: the server was just handed back to the pool by this
	// manager; its grant tag goes unless another grant replaces it.
	prevMgr *want
	// start and deadline of a wind-down in progress.
	start, deadline time.Time
	// notice is when EC2 reclaims this spot server; zero for none.
	notice time.Time
}

// memo is what this process learnt about an instance that the cloud does
// not show. It is a cache: a restarted scaler that loses it makes the same
// decisions, at worst running an idempotent hook once more. It also holds
// the instance's server (srv) and what observe read from the listing
// (read).
type memo struct {
	// The fields passes read of every server come first, the server right
	// after them.
	seen         uint64 // the latest pass whose listing showed the instance
	grantedTo    *want  // the manager that held it at the end of the last pass
	provFailed   error  // the Provision hook failed; TagRetire follows
	badHealth    int    // Check readings of Unhealthy in a row
	windDownSent bool
	woundDown    bool
	tornDown     bool
	restored     bool
	restoreFree  bool // the restore hands the server back to the pool
	noticed      bool // the interruption was acted on
	rebalanced   bool // the manager was told of the rebalance recommendation
	swapSkipped  bool // a replacement was judged not worth it (reported once)
	handOver     bool // kept for a hand-over (reported once)
	hookFailing  bool // the latest WindDown or Check hook failed
	overdue      bool // past its wind-down deadline, still busy (reported once)
	instListed   bool // srv.inst is what the latest listing that showed the instance showed
	// overlay: Pool.overlay may hold a tag change of the instance (set
	// when one is expected and on a new memo, cleared once none is), so
	// that a listing looks up only those.
	overlay bool
	// Day-two: TagSpec and TagRefresh as read once (see readDayTwoTags),
	// when an impaired check was first seen (EC2 did not say since when),
	// and a replacement that waits reported once.
	dayTwoRead bool
	dueSaid    bool
	typeKnown  bool // the instance's type is one of the pool's (as srv.inst shows it)

	srv server

	lastHealth    time.Time // when the latest health Check of a granted server started
	spec, refresh string
	impairedSeen  time.Time
}

// readCache is what observe read from one instance's tags: the scaler's
// tags, the manager they name, the times they hold and the state they give
// a server without notices, hooks or failures. It is valid while the listing
// shows the same Tags map: a CloudClient never modifies a map it returned
// (see awsctl.Instance), so the same map means the same tags. What a steady
// pass reads comes first.
type readCache struct {
	ok bool
	// derived is the state derive gave the server in the EC2 state ec2,
	// listed or not, with no notice, hook, restore or failed provisioning;
	// derivedOK says it is known.
	derivedOK bool
	listed    bool
	derived   state
	// noticeOK, startOK and deadlineOK: notice, start and deadline parsed.
	noticeOK, startOK, deadlineOK bool
	tags                          map[string]string // the map the values below were read from
	// mgrIdx is the index of the manager own.manager names, -1 for none or
	// an unknown one.
	mgrIdx int
	ec2    awsctl.State
	own    ownTagValues
	// interrupted, windStart and windDeadline are the tags as written;
	// notice, start and deadline are them parsed.
	interrupted, windStart, windDeadline string
	// ready is TagReady as written, whoever holds the server (own.ready
	// is read only for a server no manager holds).
	ready                   string
	notice, start, deadline time.Time
}

// sameMap reports whether a and b are the same map, not merely equal ones.
// A map value is a pointer to the map's header.
func sameMap(a, b map[string]string) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}

// sameInstance reports whether the listing shows inst as a does: same
// fields, same Tags map.
func sameInstance(a, inst *awsctl.Instance) bool {
	return a.ID == inst.ID && a.State == inst.State && sameMap(a.Tags, inst.Tags) && a.Type == inst.Type &&
		a.Zone == inst.Zone && a.Market == inst.Market && a.PrivateIP == inst.PrivateIP && a.LaunchTime == inst.LaunchTime
}

// readTags fills c from tags, the map the listing shows now.
func (p *Pool) readTags(c *readCache, tags map[string]string) {
	*c = readCache{ok: true, tags: tags, mgrIdx: -1}
	c.own = readOwnTags(tags, c)
	c.ready = c.own.ready
	if c.own.manager != "" {
		c.ready = tags[TagReady]
	}
	if name := c.own.manager; name != "" {
		if i, ok := p.mgrIndex[name]; ok {
			c.mgrIdx = i
		}
	}
	if c.interrupted != "" {
		c.notice, c.noticeOK = parseTime(c.interrupted)
	}
	if c.own.winding {
		c.start, c.startOK = parseTime(c.windStart)
		c.deadline, c.deadlineOK = parseTime(c.windDeadline)
	}
}

// readInstance sets what s derives from inst, the listing's view of its
// instance, which changed since the previous pass.
func (p *Pool) readInstance(s *server, inst *awsctl.Instance) {
	s.inst = *inst
	s.launchNano = inst.LaunchTime.UnixNano()
	var known bool
	s.weight, known = p.types[inst.Type]
	s.m.typeKnown = known
	if !known {
		s.weight = 1 // a type removed from the config still counts
	}
	k := offeringKey{inst.Type, inst.Zone, inst.Market}
	i, ok := p.offerIndex[k]
	if !ok {
		if p.offerIndex == nil {
			p.offerIndex = map[offeringKey]int32{}
		}
		i = int32(len(p.offers))
		p.offers = append(p.offers, k)
		p.offerIndex[k] = i
	}
	s.offer = i
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
		Replaced:    s.replaced(),
	}
}

// replaced reports whether s's replacement already works in its place.
func (s *server) replaced() bool { return s.replacedBy != nil && s.replacedBy.state == granted }

// heldServers returns what each manager holds (by index), as the manager
// sees it in manager.State.Servers: servers granted to it, winding down,
// being restored or retiring, in the listing's order. A manager whose
// servers are as they were in the previous pass (observe marks the others
// in heldDirty) gets the previous pass's slice again; one whose changed gets
// a new slice. A slice handed to a manager is never written to again, so a
// manager may keep it.
func (p *Pool) heldServers(servers []*server) [][]manager.Server {
	n := len(p.cfg.Managers)
	if len(p.held) != n {
		p.held = make([][]manager.Server, n)
	}
	prev := p.held
	out := make([][]manager.Server, n)
	var rebuild []bool
	for i := range out {
		if !p.relinked && !p.heldDirty[i] && p.heldCount[i] == len(prev[i]) {
			out[i] = prev[i]
			continue
		}
		if rebuild == nil {
			rebuild = make([]bool, n)
		}
		rebuild[i] = true
		out[i] = make([]manager.Server, 0, p.heldCount[i])
	}
	if rebuild != nil {
		for _, s := range servers {
			if holdsFor(s) && rebuild[s.mgrIdx] {
				out[s.mgrIdx] = append(out[s.mgrIdx], s.managerServer())
			}
		}
	}
	p.held = out
	if selfCheck {
		p.checkHeld(servers, out)
	}
	return out
}

// holdsFor reports whether s is in its manager's manager.State.Servers.
func holdsFor(s *server) bool {
	switch s.state {
	case granted, windingDown, restoring, retiring:
		return s.mgr != ""
	}
	return false
}

// wantFor returns the want of the manager s works for, as wantOf(ps,
// s.mgr) does, without a lookup by name when s.mgrIdx already says which.
func (p *Pool) wantFor(ps *pass, s *server) *want {
	if s.mgr == "" {
		return nil
	}
	if i := s.mgrIdx; i >= 0 && i < len(ps.wants) && p.mgrNames[i] == s.mgr {
		return ps.wants[i]
	}
	return p.wantOf(ps, s.mgr)
}

// managerIndex returns the index of the manager named name, as mgrIndex
// does. With a few managers, comparing names costs less than hashing one,
// and the very strings observe gives servers (mgrNames') compare fastest.
func (p *Pool) managerIndex(name string) (int, bool) {
	if len(p.mgrNames) > 8 {
		i, ok := p.mgrIndex[name]
		return i, ok
	}
	for i, n := range p.mgrNames {
		if unsafe.StringData(n) == unsafe.StringData(name) && len(n) == len(name) {
			return i, true
		}
	}
	for i, n := range p.mgrNames {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// healthOf returns what EC2 reports of s's instance, if anything, without
// reading its id when EC2 reports nothing (a healthy fleet).
func healthOf(ps *pass, s *server) (awsctl.InstanceHealth, bool) {
	if len(ps.health) == 0 {
		return awsctl.InstanceHealth{}, false
	}
	h, ok := ps.health[s.inst.ID]
	return h, ok
}

// idle reports whether no role hook runs on s.
func (s *server) idle() bool { return s.hook == 0 }

// readHooks records what the hooks finished since the last pass, in the
// order of their instances' ids, so that their events come in an order a
// host's logs and tests can repeat.
func (p *Pool) readHooks(pl *Plan, now time.Time) {
	done := p.hooks.collect(now)
	for _, id := range slices.Sorted(maps.Keys(done)) {
		r := done[id]
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
		m = &memo{overlay: true}
		p.mem[id] = m
	}
	return m
}

// listedLookahead is how far past the expected position observe looks for
// an instance of the previous listing before it looks the instance up by id.
const listedLookahead = 4

// listedMemo is an instance of a listing and its memo.
type listedMemo struct {
	id string
	m  *memo
}

// memoAt returns the memo of id, the next instance of the listing. The
// listing usually comes in the same order as the previous pass's (prev, where
// *next is the position expected), with instances gone or added here and
// there: a match near the expected position costs a comparison, not a map
// lookup.
//
// inOrder reports a memo found that way: the previous pass observed it, in
// the same order relative to the other memos found so (those it skipped
// are taken as gone; found later, they are not in order).
func (p *Pool) memoAt(id string, prev []listedMemo, next *int) (m *memo, inOrder bool) {
	for i := *next; i < len(prev) && i < *next+listedLookahead; i++ {
		if prev[i].id == id {
			*next = i + 1
			return prev[i].m, true
		}
	}
	return p.memoOf(id), false
}

// observe turns the listing and the launches in flight into servers, each
// in the state derive gives it, and returns them with the pass's ledger.
//
// A steady pass costs little per instance: the memo is found where the
// previous listing had it, and the tags are read again only when the
// listing shows a different Tags map (see readCache).
func (p *Pool) observe(pl *Plan, snap Snapshot) []*server {
	now, instances := snap.Now, snap.Instances
	p.pass++
	// The servers of a pass live in buffers kept from pass to pass: the
	// listing is the bulk of a pass's work, so it must not allocate per
	// instance when the pool is steady.
	n := len(instances) + len(p.inflight)
	if cap(p.ptrs) < n {
		p.ptrs = make([]*server, 0, n+n/4)
	}
	if cap(p.listedNext) < len(instances) {
		p.listedNext = make([]listedMemo, 0, len(instances)+len(instances)/4)
	}
	servers := p.ptrs[:0]
	prev, listed, next := p.listed, p.listedNext[:0], 0
	p.seenCount = 0
	p.sweepOverlay(now)
	running := p.hooks.snapshot()
	// What each manager holds is counted as it is seen, and marked changed
	// when a server joins, leaves or changes in its manager's eyes (see
	// heldServers); capacity is counted into a ledger at the same time,
	// used unless replacements need linking first (see newLedger).
	nm := len(p.cfg.Managers)
	p.heldCount, p.heldDirty = resize(p.heldCount, nm), resize(p.heldDirty, nm)
	p.few = fewServers{}
	l := &ledger{held: make([]int, nm)}
	replacements := 0
	add := func(inst *awsctl.Instance, m *memo, listed, inOrder, listedSame, overlaid bool) {
		if listed {
			p.seenCount++
			m.seen = p.pass
		}
		c := &m.srv.read
		if !c.ok || !sameMap(c.tags, inst.Tags) {
			was := c.ready
			p.readTags(c, inst.Tags)
			if c.ready != "" && c.ready != was {
				// The server is ready: its time from launch is a sample
				// (learn ignores one it already has).
				p.boot.learn(inst.ID, offeringKey{inst.Type, inst.Zone, inst.Market}, inst.LaunchTime, c.ready)
			}
		}
		s := &m.srv
		// The instance is as the previous pass saw it if the scaler says
		// the listing shows it alike and the previous pass kept the
		// listing's view of it; else it is compared.
		same := s.m == m && (listedSame && m.instListed || sameInstance(&s.inst, inst))
		if !same {
			s.m = m
			p.readInstance(s, inst)
		}
		m.instListed = listed && !overlaid
		s.serverPass = serverPass{tags: c.own, mgrIdx: c.mgrIdx}
		plain := true // no notice, hook, restore or failure: the state is the tags'
		if len(pl.ready) > 0 && pl.ready[inst.ID] && c.own.ready == "" {
			s.tags.ready = formatTime(now) // written this pass
			plain = false
		}
		if len(snap.Interrupted) > 0 {
			s.notice = snap.Interrupted[inst.ID]
		}
		if s.notice.IsZero() && c.noticeOK {
			s.notice = c.notice
			m.noticed = true // acted on before: the tag is its record
		}
		if len(snap.Rebalance) > 0 {
			_, s.rebalance = snap.Rebalance[inst.ID]
		}
		if len(running) > 0 {
			s.hook = running[inst.ID]
		}
		known := false
		if name := c.own.manager; name != "" {
			if c.mgrIdx >= 0 {
				s.mgr, known = p.mgrNames[c.mgrIdx], true
			} else {
				s.mgrIdx = 0
				s.staleGrant = true // removed below unless granted again this pass
				p.event(pl, Event{Kind: EventBadTag, Instance: inst.ID, Manager: name,
					Reason: "grant tag names an unknown manager; the server returns to the pool"})
			}
		} else {
			s.mgrIdx = 0
		}
		if c.own.winding {
			p.readWindDown(pl, now, s)
		} else if m.windDownSent || m.woundDown || m.tornDown || m.restored || m.handOver {
			// The wind-down ended (its tags are gone): forget its progress.
			m.windDownSent, m.woundDown, m.tornDown, m.restored, m.restoreFree = false, false, false, false, false
			m.handOver, m.hookFailing, m.overdue = false, false, false
		}
		plain = plain && s.notice.IsZero() && s.hook == 0 && !m.restored && m.provFailed == nil
		switch {
		case plain && c.derivedOK && c.listed == listed && c.ec2 == inst.State:
			s.state = c.derived
		default:
			s.state = derive(facts{ec2: inst.State, listed: listed, tags: &s.tags, knownMgr: known, notice: s.notice,
				hook: s.hook, restored: m.restored, provFailed: m.provFailed != nil})
			if plain {
				c.derived, c.derivedOK, c.listed, c.ec2 = s.state, true, listed, inst.State
			}
		}
		heldBy := int32(0) // manager index + 1, 0 for none
		if holdsFor(s) {
			heldBy = int32(s.mgrIdx) + 1
			p.heldCount[s.mgrIdx]++
		}
		if o := &m.srv.seenAs; !inOrder || !same || o.state != s.state || o.heldBy != heldBy || o.deadline != s.deadline {
			if heldBy > 0 {
				p.heldDirty[heldBy-1] = true
			}
			if o.heldBy > 0 && int(o.heldBy) <= nm {
				p.heldDirty[o.heldBy-1] = true
			}
			*o = seenAs{state: s.state, heldBy: heldBy, deadline: s.deadline}
		}
		if s.tags.replaces != "" {
			replacements++
		}
		if m.provFailed != nil {
			p.few.provFailed++
		}
		if m.badHealth >= p.cfg.UnhealthyAfter {
			p.few.sick++
		}
		if s.state == restoring && m.restored {
			p.few.restored++
		}
		l.add(s, 1)
		servers = append(servers, s)
	}
	for i := range instances {
		inst := &instances[i] // not copied: an Instance is 128 bytes
		if !inst.State.Live() {
			continue
		}
		if len(p.terminating) > 0 {
			if _, ok := p.terminating[inst.ID]; ok {
				continue // termination requested; the listing lags
			}
		}
		m, inOrder := p.memoAt(inst.ID, prev, &next)
		if m.seen == p.pass {
			continue // listed twice: one server
		}
		listed = append(listed, listedMemo{inst.ID, m})
		overlaid := false
		if len(p.overlay) > 0 && m.overlay {
			var ov awsctl.Instance
			ov, overlaid, m.overlay = p.applyOverlay(now, inst)
			if overlaid {
				inst = &ov
			}
		}
		add(inst, m, true, inOrder, inOrder && i < len(snap.Same) && snap.Same[i], overlaid)
	}
	for id, f := range p.inflight {
		if p.seen(id) || now.Sub(f.at) > p.cfg.LaunchGrace {
			delete(p.inflight, id)
			continue
		}
		add(&f.inst, p.memoOf(id), false, false, false, false)
	}
	for id, at := range p.terminating {
		if !p.seen(id) || now.Sub(at) > p.cfg.LaunchGrace {
			delete(p.terminating, id)
		}
	}
	p.ptrs = servers[:0] // keep what append grew
	p.listed, p.listedNext = listed, prev[:0]
	if selfCheck {
		p.checkObserved(pl, snap, servers)
	}
	// Replacements, once linked, count apart (see ledger.add) and show as
	// Replaced to their managers: the counts above do not hold for them.
	p.observed = nil
	if replacements == 0 {
		l.offers = p.offers
		p.observed = l
	}
	p.relinked = replacements > 0 || p.linked
	p.linked = replacements > 0
	if p.linked {
		p.linkReplacements(servers)
	}
	return servers
}

// fewServers counts, as observe sees them, the servers that only a few
// passes have any of, so that a pass without any skips the walk that looks
// for them.
type fewServers struct {
	provFailed int // whose Provision hook failed
	sick       int // read unhealthy UnhealthyAfter times in a row
	restored   int // restoring, the Restore hook done
}

// seenAs is how observe saw a server in the latest pass it observed it, as
// far as what its manager is handed depends on it (see heldServers).
type seenAs struct {
	state    state
	heldBy   int32 // index of the manager holding it + 1, 0 for none
	deadline time.Time
}

// resize returns s with n zero elements, reusing its array.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// readWindDown reads a wind-down's tags, repairing a deadline that does not
// parse rather than guessing.
func (p *Pool) readWindDown(pl *Plan, now time.Time, s *server) {
	c := &s.read
	s.start, s.deadline = c.start, c.deadline
	if !c.startOK {
		s.start = now
	}
	if !c.deadlineOK {
		s.deadline = now.Add(p.cfg.WindDownTimeout)
		p.event(pl, Event{Kind: EventBadTag, Instance: s.inst.ID,
			Reason: fmt.Sprintf("wind-down deadline %q does not parse; reset", c.windDeadline)})
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

// sweepOverlay drops the overlays past LaunchGrace, which applyOverlay
// would drop unused. It finds most of them first, but not those of instances
// the listing no longer shows live (a server retired and terminated in one
// pass): without a sweep those would pile up for as long as the pool runs,
// and slow every lookup. A sweep runs once the overlays have doubled since
// the latest, so its cost per overlay is constant.
func (p *Pool) sweepOverlay(now time.Time) {
	if len(p.overlay) < 2*p.overlayKept+64 {
		return
	}
	for id, ov := range p.overlay {
		if now.Sub(ov.at) > p.cfg.LaunchGrace {
			delete(p.overlay, id)
		}
	}
	p.overlayKept = len(p.overlay)
}

// applyOverlay shows inst with the tag changes the pool made that the
// listing does not show yet (EC2 tags are eventually consistent), and
// reports whether there were any and whether any are still expected.
func (p *Pool) applyOverlay(now time.Time, inst *awsctl.Instance) (awsctl.Instance, bool, bool) {
	ov, ok := p.overlay[inst.ID]
	if !ok {
		return awsctl.Instance{}, false, false
	}
	if now.Sub(ov.at) > p.cfg.LaunchGrace {
		delete(p.overlay, inst.ID)
		return awsctl.Instance{}, false, false
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
	kept := len(ov.tags) > 0
	if !kept {
		delete(p.overlay, inst.ID)
	}
	if tags == nil {
		return awsctl.Instance{}, false, kept
	}
	out := *inst
	out.Tags = tags
	return out, true, kept
}

// ownTagValues are the scaler's tags of one instance that decisions read.
type ownTagValues struct {
	manager, replaces, ready, retire string
	winding                          bool
}

// readOwnTags reads the scaler's tags of an instance, and into c those only
// observe reads. The tags a pass writes only together with a wind-down
// (interrupted, retire) are read only when one is in progress, and TagReady
// only for a server no manager holds.
func readOwnTags(tags map[string]string, c *readCache) ownTagValues {
	v := ownTagValues{
		manager:  tags[TagManager],
		replaces: tags[TagReplaces],
	}
	c.windStart, v.winding = tags[TagWindDownStart]
	if v.winding {
		c.windDeadline = tags[TagWindDownDeadline]
		c.interrupted = tags[TagInterrupted]
		v.retire = tags[TagRetire]
	}
	if v.manager == "" {
		v.ready = tags[TagReady]
	}
	return v
}
