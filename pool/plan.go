package pool

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// Plan is one pass's decisions for a pool: plain data the scaler executes
// and a dry run reports.
type Plan struct {
	Pool string
	Now  time.Time
	// Launches to make. Tags hold the pool and role tags; the scaler adds
	// its owner tag and an idempotency token.
	Launches []awsctl.LaunchRequest
	// Changes to instances, at most one per instance: tag changes, then a
	// hook to start.
	Changes []Change
	// Terminate lists instances to terminate.
	Terminate []string
	Events    []Event

	launchWhy []string            // per launch, why that offering and market
	notices   map[string][]notice // by instance, delivered once its change lands
	termNotes map[string][]notice // by instance, delivered once terminated
	lost      []notice            // servers gone outside the scaler: delivered at commit
	ready     map[string]bool     // Provision succeeded: TagReady is written
	changeAt  map[string]int      // index in Changes by instance
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

// change merges a tag change and a hook into the one Change of s's
// instance in the plan.
func (pl *Plan) change(s *server, set map[string]string, remove []string, hook HookKind) {
	i, ok := pl.changeAt[s.inst.ID]
	if !ok {
		if pl.changeAt == nil {
			pl.changeAt = map[string]int{}
		}
		i = len(pl.Changes)
		pl.changeAt[s.inst.ID] = i
		pl.Changes = append(pl.Changes, Change{Instance: s.inst})
	}
	ch := &pl.Changes[i]
	for k, v := range set {
		if ch.Set == nil {
			ch.Set = map[string]string{}
		}
		ch.Set[k] = v
		ch.Remove = slices.DeleteFunc(ch.Remove, func(x string) bool { return x == k })
	}
	for _, k := range remove {
		delete(ch.Set, k)
		if !slices.Contains(ch.Remove, k) {
			ch.Remove = append(ch.Remove, k)
		}
	}
	if hook != 0 {
		ch.Hook = hook
	}
}

func (pl *Plan) notify(s *server, w *want, n manager.Notice) {
	if w == nil {
		return
	}
	n.Server = s.managerServer()
	pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{w.m, n})
}

// want is one manager's demand this pass.
type want struct {
	m      manager.Manager
	name   string
	index  int
	req    manager.Request
	target int
	idle   map[string]bool
	// extraSpot is capacity added to target by MinimumSpot, to be spot.
	extraSpot int
	release   map[string]bool
	// odWork is the capacity the manager's Work puts on on-demand this
	// pass, and heldOD the on-demand capacity it holds working (both 0
	// unless it describes its work; see workMarkets).
	odWork, heldOD int
	// odKeep is the on-demand capacity kept for the manager's work: at
	// least odWork, and what its work wanted within the last WorkKeep
	// (see keepWorkOD). Its on-demand servers up to odKeep are neither
	// swapped for spot nor wound down; only odWork launches or grants.
	odKeep int
	// clamp is what clamped the target this pass, if anything.
	clamp    clampKey
	clampWhy string
}

func (w *want) accepts(mk awsctl.Market) bool {
	switch w.req.Market {
	case manager.OnDemandOnly:
		return mk == awsctl.MarketOnDemand
	case manager.SpotOnly:
		return mk == awsctl.MarketSpot
	}
	return true
}

// pass is the state of one pass: the servers, the ledger and the wants.
type pass struct {
	now     time.Time
	pl      *Plan
	servers []*server
	l       *ledger
	wants   []*want
	// minimum is the pool's Min this pass (0 while draining).
	minimum int
	// spec is the digest of the role's launch spec this pass (TagSpec).
	spec string
	// health is what EC2 reports of servers that need attention.
	health map[string]awsctl.InstanceHealth
	// budget is the Disruption budget left this pass, once computed; due
	// the capacity due for replacement that waits.
	budget *int
	due    int
	// spotShort: the pool cannot buy spot this pass (nil until asked);
	// spotHeld: a spot server was kept over target for it.
	spotShort *bool
	spotHeld  bool
}

func (ps *pass) held(w *want) int { return ps.l.held[w.index] }

// need is what w still misses: its target, or its zone minimums if they ask
// for more.
func (ps *pass) need(w *want) int {
	n := w.target - ps.held(w)
	return max(n, ps.zoneDeficit(w, ""), 0)
}

// zoneDeficit is what w misses of its zone minimums, in zone z or, for "",
// in all zones.
func (ps *pass) zoneDeficit(w *want, z string) int {
	d := 0
	for zone, minimum := range w.req.ZoneMinimums {
		if z == "" || zone == z {
			d += max(0, min(minimum, w.target)-ps.l.zoneHeld[mgrZone{w.index, zone}])
		}
	}
	return d
}

// Snapshot is what one pass knows of the world.
type Snapshot struct {
	Now time.Time
	// Instances the listing shows with this pool's tag.
	Instances []awsctl.Instance
	// Same, if not nil, says for each of Instances whether the previous
	// pass's Instances held it alike: the same fields, the same Tags map.
	// The pool then need not compare it with what it kept.
	Same []bool
	// Interrupted maps spot instances EC2 will reclaim to the time it will.
	Interrupted map[string]time.Time
	// Rebalance holds spot instances EC2 recommends moving off, with the
	// time of the recommendation.
	Rebalance map[string]time.Time
	// Health holds what EC2 reports of instances that need attention:
	// scheduled events and status checks (awsctl.HealthReader), as last
	// read. Instances not in it are taken as healthy.
	Health map[string]awsctl.InstanceHealth
}

// plan looks at the pool's instances, asks the managers what they want and
// decides this pass's actions. It changes nothing outside the pool; the
// scaler carries the plan out and reports back through commit.
func (p *Pool) plan(ctx context.Context, snap Snapshot) *Plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := snap.Now
	pl := &Plan{Pool: p.cfg.Name, Now: now, notices: map[string][]notice{}, termNotes: map[string][]notice{}}
	p.bugs = p.bugs[:0]
	p.readHooks(pl, now)
	servers := p.observe(pl, snap)
	if p.pass == 1 {
		p.holdAfterStart(now, snap.Instances)
	}
	ps := &pass{now: now, pl: pl, servers: servers, l: p.newLedger(servers), minimum: p.cfg.Min,
		spec: specDigest(p.cfg.Role.LaunchSpec()), health: snap.Health}
	if p.draining {
		ps.minimum = 0
	}
	ps.wants = p.askManagers(ctx, ps)
	for _, w := range ps.wants {
		if len(w.req.ZoneMinimums) > 0 {
			ps.l.trackZones(servers)
			break
		}
	}
	p.decide(ps)
	for _, b := range p.bugs {
		p.event(pl, Event{Kind: EventCloudError, Reason: "lifecycle transition outside the table: " + b})
	}
	return pl
}

// decide is the pass's decisions, in an order where each step only reads
// the ledger and moves servers through move.
func (p *Pool) decide(ps *pass) {
	if p.pass == 1 {
		p.announceAdopted(ps)
	}
	p.markReserved(ps.now, ps.servers)
	// What the world did: servers lost, stopped or interrupted.
	p.dropGone(ps)
	p.retireStopped(ps)
	p.interruptions(ps)
	// What the hooks finished: provisioning, restores.
	p.finishProvisioning(ps)
	p.finishRestores(ps)
	// Swaps that are ready, and servers managers release. The disruption
	// budget is counted before the swaps: a swap frees its share only once
	// its tags are written, which a crash in this pass could prevent.
	p.budgetLeft(ps)
	p.swapReplacements(ps)
	p.releases(ps)
	p.replaceUnhealthy(ps)
	p.replaceImpaired(ps)
	p.markRefresh(ps)
	p.workMarkets(ps)
	// Demand: managers' own wind-downs back, excess taken, free servers
	// granted, then launches or spare capacity wound down.
	p.restoreOwn(ps)
	p.takeExcess(ps)
	p.grant(ps)
	p.balance(ps)
	p.dropStaleGrants(ps)
	// Lifecycles that move on their own.
	p.advance(ps)
	p.replaceDue(ps)
	p.replaceOnDemand(ps)
	p.recordGrants(ps)
	p.recordStatus(ps)
	p.recordServers(ps)
}

// replaceUnhealthy retires granted servers the role has read unhealthy
// UnhealthyAfter times in a row, past their grace period: they stop
// counting, so the pass grants or launches another in their place.
//
// A free server whose latest readings, taken while it worked, were as bad
// is retired too, rather than granted again. So is a winding-down one, which
// the readings already keep from being restored: TagRetire keeps it so
// across a restart, since the readings are memory and a new process would
// need as many again, with the server back at work meanwhile.
func (p *Pool) replaceUnhealthy(ps *pass) {
	if p.few.sick == 0 {
		return
	}
	for _, s := range ps.servers {
		if s.state != granted && s.state != free && s.state != windingDown || s.decided || s.m.badHealth < p.cfg.UnhealthyAfter {
			continue
		}
		ready := s.inst.LaunchTime
		if t, ok := parseTime(s.tags.ready); ok {
			ready = t
		}
		if ps.now.Sub(ready) < p.cfg.HealthGrace {
			continue
		}
		if s.state == windingDown {
			// Its wind-down goes on as it was: same deadline, its manager
			// already told, no hook run again.
			p.move(ps.l, s, retiring, nil)
			ps.pl.change(s, map[string]string{TagRetire: RetireUnhealthy}, nil, 0)
			s.tags.retire = RetireUnhealthy
			p.event(ps.pl, Event{Kind: EventWindDown, Instance: s.inst.ID, Manager: s.mgr,
				Reason: fmt.Sprintf("unhealthy in %d readings in a row while winding down; retired", s.m.badHealth)})
			continue
		}
		w, mgr := p.wantOf(ps, s.mgr), s.mgr
		if s.state != granted {
			w, mgr = nil, ""
		}
		p.event(ps.pl, Event{Kind: EventRevoke, Instance: s.inst.ID, Manager: mgr,
			Reason: fmt.Sprintf("unhealthy in %d readings in a row; replaced", s.m.badHealth)})
		p.retire(ps, s, RetireUnhealthy, w, "unhealthy")
	}
}

// holdAfterStart holds launches for ListingLag when the first listing shows
// a launch within LaunchGrace: the process before this one was launching,
// and what it launched last may not be listed yet. Replacements wait
// ListingLag after every start: a predecessor's replacement, launched with
// no other launch of the pool recent enough to be seen, would otherwise
// go unseen and the same server be replaced twice. They are voluntary, so
// a minute's wait costs nothing but the minute.
func (p *Pool) holdAfterStart(now time.Time, insts []awsctl.Instance) {
	p.replaceHoldUntil = now.Add(p.cfg.ListingLag)
	for _, inst := range insts {
		if now.Sub(inst.LaunchTime) < p.cfg.LaunchGrace {
			p.holdUntil = now.Add(p.cfg.ListingLag)
			return
		}
	}
}

// holding reports whether launches wait this pass, saying so once.
func (p *Pool) holding(ps *pass) bool {
	if !ps.now.Before(p.holdUntil) {
		return false
	}
	if !p.holdSaid {
		p.holdSaid = true
		p.event(ps.pl, Event{Kind: EventAtMax, Reason: fmt.Sprintf(
			"started while the pool was launching: launches wait until %s, when the listing shows what the previous process launched",
			p.holdUntil.Format(time.RFC3339))})
	}
	return true
}

// announceAdopted tells each manager, in the scaler's first pass, which
// servers it already holds: a restarted host learns them here.
func (p *Pool) announceAdopted(ps *pass) {
	for _, s := range ps.servers {
		w := p.wantOf(ps, s.mgr)
		if w == nil {
			continue
		}
		switch s.state {
		case granted, restoring:
			ps.pl.notify(s, w, manager.Notice{Kind: manager.Granted, Adopted: true, Reason: "adopted"})
		case windingDown, retiring:
			if s.tags.retire != RetireStopped { // a stopped one was revoked
				ps.pl.notify(s, w, manager.Notice{Kind: manager.WindDown, Adopted: true, Deadline: s.deadline, Reason: "adopted"})
			}
		case interrupted:
			ps.pl.notify(s, w, manager.Notice{Kind: manager.Interrupted, Adopted: true, Deadline: s.notice, Reason: "adopted"})
		}
	}
}

// finishProvisioning writes TagReady on servers whose Provision hook
// succeeded since the last pass, and retires those whose hook failed.
func (p *Pool) finishProvisioning(ps *pass) {
	if len(ps.pl.ready) == 0 && p.few.provFailed == 0 {
		return
	}
	for _, s := range ps.servers {
		if len(ps.pl.ready) > 0 && ps.pl.ready[s.inst.ID] && s.state != stopped && s.state != interrupted {
			ps.pl.change(s, map[string]string{TagReady: s.tags.ready}, nil, 0)
		}
		if s.m.provFailed != nil && s.tags.retire == "" && s.state == retiring {
			p.retire(ps, s, RetireProvisionFailed, nil, "provisioning failed")
		}
	}
}

// finishRestores completes restores whose hook succeeded: the wind-down
// tags go, and the server works for its manager again if it still wants
// it, else for the pool.
func (p *Pool) finishRestores(ps *pass) {
	if p.few.restored == 0 {
		return
	}
	for _, s := range ps.servers {
		if s.state != restoring || !s.m.restored || s.decided {
			continue
		}
		w := p.wantOf(ps, s.mgr)
		remove := []string{TagWindDownStart, TagWindDownDeadline}
		if w != nil && !s.m.restoreFree {
			p.move(ps.l, s, granted, w)
			ps.pl.change(s, nil, remove, 0)
			ps.pl.notify(s, w, manager.Notice{Kind: manager.Restored})
			continue
		}
		// Back to the pool, free for any manager this very pass.
		s.prevMgr = w
		p.move(ps.l, s, free, nil)
		s.mgr = ""
		s.decided = false
		ps.pl.change(s, nil, remove, 0)
	}
}

// dropStaleGrants removes the grant tag of servers handed back to the pool
// and not granted again this pass.
func (p *Pool) dropStaleGrants(ps *pass) {
	for _, s := range ps.servers {
		if s.prevMgr == nil && !s.staleGrant {
			continue
		}
		// Not granted again this pass (grantTo clears both marks): whatever
		// else the pass decided for it, the grant tag goes with the notice.
		ps.pl.change(s, nil, []string{TagManager}, 0)
		if s.prevMgr != nil {
			ps.pl.notify(s, s.prevMgr, manager.Notice{Kind: manager.Revoked, Reason: "handed back to the pool"})
		}
		s.prevMgr, s.staleGrant = nil, false
	}
}

// wantOf returns the want of the named manager, or nil.
func (p *Pool) wantOf(ps *pass, name string) *want {
	if i, ok := p.managerIndex(name); ok && i < len(ps.wants) {
		return ps.wants[i]
	}
	return nil
}

// grant hands free servers to managers with unmet demand, one server per
// manager in turn, the least served manager first, so that managers wanting
// the same servers share them fairly; zone minimums and market preferences
// pick which server. The order depends only on what the pass sees, so a
// restarted scaler grants as a running one would.
func (p *Pool) grant(ps *pass) {
	if ps.l.byState[free] == 0 {
		return // the ledger counts every free server that is no replacement
	}
	var freeServers []*server
	for _, s := range ps.servers {
		if s.state == free && !s.decided && s.idle() && s.replaces == nil {
			freeServers = append(freeServers, s)
		}
	}
	if len(freeServers) == 0 {
		return
	}
	slices.SortFunc(freeServers, oldestFirst)
	order := slices.Clone(ps.wants)
	for progress := true; progress && len(freeServers) > 0; {
		progress = false
		slices.SortStableFunc(order, func(a, b *want) int {
			// Least served first: held/target compared without division.
			return cmp.Compare(ps.held(a)*max(b.target, 1), ps.held(b)*max(a.target, 1))
		})
		for _, w := range order {
			shortOD := w.heldOD < w.odWork // see workMarkets
			if ps.need(w) == 0 && !shortOD {
				continue
			}
			best, bestScore := -1, -1
			for j, s := range freeServers {
				if !w.accepts(s.inst.Market) {
					continue
				}
				score := 0
				if ps.zoneDeficit(w, s.inst.Zone) > 0 {
					score = 2
				} else if ps.held(w) < w.target || shortOD && s.inst.Market == awsctl.MarketOnDemand {
					score = 1
				}
				if score > bestScore {
					best, bestScore = j, score
				}
			}
			if best < 0 || bestScore == 0 {
				continue
			}
			s := freeServers[best]
			freeServers = slices.Delete(freeServers, best, best+1)
			if shortOD && s.inst.Market == awsctl.MarketOnDemand {
				w.heldOD += s.weight
			}
			p.grantTo(ps, s, w, "")
			progress = true
			break // re-sort: the least served manager goes next
		}
	}
}

// grantTo grants s to w.
func (p *Pool) grantTo(ps *pass, s *server, w *want, reason string) {
	p.move(ps.l, s, granted, w)
	set := map[string]string{TagManager: w.name}
	ps.pl.change(s, set, nil, 0)
	if s.prevMgr != nil && s.prevMgr != w {
		ps.pl.notify(s, s.prevMgr, manager.Notice{Kind: manager.Revoked, Reason: "handed to " + w.name})
	}
	s.prevMgr, s.staleGrant = nil, false
	ps.pl.notify(s, w, manager.Notice{Kind: manager.Granted, Reason: reason})
	p.event(ps.pl, Event{Kind: EventGrant, Instance: s.inst.ID, Manager: w.name, Reason: reason,
		Inputs: []slog.Attr{slog.Int("held", ps.held(w)), slog.Int("target", w.target)}})
}

// recordGrants remembers which manager holds each server at the end of the
// pass, so that a server lost outside the scaler is reported to it.
func (p *Pool) recordGrants(ps *pass) {
	for _, s := range ps.servers {
		switch {
		case s.state == granted, s.state == windingDown, s.state == restoring, s.state == interrupted,
			s.state == retiring && s.tags.retire != RetireStopped:
			// Every server the manager was told it holds until it hears
			// otherwise; a stopped one was revoked when it was seen stopped.
			if w := p.wantFor(ps, s); s.m.grantedTo != w {
				s.m.grantedTo = w // written only when it changes: most passes change nothing
			}
		default:
			if s.m.grantedTo != nil {
				s.m.grantedTo = nil
			}
		}
	}
}

// dropGone handles the servers the listing no longer shows: those a
// manager held are reported to it as lost (terminated outside the scaler),
// and their memory is dropped, unless a launch not listed yet or a hook
// running still needs it. One walk over the memory, which only instances
// the listing showed or launches in flight add to.
func (p *Pool) dropGone(ps *pass) {
	if p.seenCount == len(p.mem) {
		return // the listing showed every server the pool remembers
	}
	for id, m := range p.mem {
		if m.seen == p.pass {
			continue
		}
		if _, ok := p.inflight[id]; ok {
			continue
		}
		if w := m.grantedTo; w != nil {
			m.grantedTo = nil
			ps.pl.lost = append(ps.pl.lost, notice{w.m, manager.Notice{Kind: manager.Revoked,
				Server: manager.Server{ID: id}, Reason: "lost: terminated outside the scaler"}})
			p.event(ps.pl, Event{Kind: EventRevoke, Instance: id, Manager: w.name, Reason: "terminated outside the scaler"})
		}
		if !p.hooks.busy(id) {
			delete(p.mem, id)
		}
	}
}

func (p *Pool) recordStatus(ps *pass) {
	now := ps.now
	sumTarget := 0
	for _, w := range ps.wants {
		sumTarget += w.target
	}
	l := ps.l
	st := Status{Observed: true, Time: now, Target: max(sumTarget, ps.minimum), Managers: make(map[string]ManagerStatus, len(ps.wants)),
		MaxUsed: l.live, Max: p.cfg.Max}
	// Capacity comes from the ledger the decisions used; only spend needs
	// the servers, and only when prices are known.
	by := l.byState
	st.Booting, st.Provisioning = by[launching]+by[booting], by[provisioning]
	st.Free, st.Granted, st.Interrupted = by[free], by[granted], by[interrupted]
	st.WindingDown = by[windingDown] + by[restoring] + by[retiring] + by[stopped]
	st.Replacing = l.replacing
	st.Due = ps.due
	if p.cfg.Prices != nil || p.cfg.Price != nil {
		st.HourlySpend = p.spend(ps)
	}
	for _, w := range ps.wants {
		st.Managers[w.name] = ManagerStatus{Target: w.target, Held: ps.held(w)}
	}
	if d, ok := p.boot.poolWide(); ok {
		st.BootTime = d
	}
	st.BootTimes = p.boot.status()
	for _, t := range p.cfg.Types {
		if p.cfg.Prices == nil {
			break
		}
		if od, ok := p.cfg.Prices.OnDemand(t.Name); ok {
			st.UnitPrice = max(st.UnitPrice, p.cfg.Prices.Effective(t.Name, awsctl.MarketOnDemand, od)/float64(t.Weight))
		}
	}
	p.publish(st)
	if p.draining {
		ids := make([]string, 0, len(ps.servers))
		for _, s := range ps.servers {
			ids = append(ids, s.inst.ID+" ("+s.state.String()+")")
		}
		p.left.Store(&ids)
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}
