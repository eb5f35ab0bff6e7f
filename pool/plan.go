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
	launchNano int64 // launch time, for ordering without time.Time compares
	mgrIdx     int   // position of the listed grant's manager in Config.Managers
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
		slices.SortFunc(cands, func(a, b *server) int { return cmp.Or(b.deadline.Compare(a.deadline), oldestFirst(a, b)) })
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

// grant hands free servers to managers with unmet demand, one server per
// manager in turn so that several managers wanting the same servers share
// them fairly; zone minimums and market preferences pick which server.
func (p *Pool) grant(pl *Plan, servers []*server, wants []*want) {
	free := filter(servers, func(s *server) bool { return s.phase == phaseFree && !s.taken && !s.hook })
	if len(free) == 0 {
		return
	}
	slices.SortFunc(free, oldestFirst)
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

func (p *Pool) recordStatus(now time.Time, servers []*server, wants []*want, sumTarget int) {
	st := Status{Time: now, Target: max(sumTarget, p.cfg.Min), Managers: make(map[string]ManagerStatus, len(wants))}
	// Price each (type, zone, market) once, not each server: the price book
	// takes a lock per lookup.
	type priceKey struct {
		offeringKey
		reserved bool
	}
	var prices map[priceKey]float64
	if p.cfg.Prices != nil && p.cfg.Price == nil {
		prices = map[priceKey]float64{}
	}
	for _, s := range servers {
		switch {
		case prices != nil:
			k := priceKey{offeringKey{s.inst.Type, s.inst.Zone, s.inst.Market}, s.reserved}
			price, ok := prices[k]
			if !ok {
				price = p.hourly(now, s)
				prices[k] = price
			}
			st.HourlySpend += price
		case p.cfg.Price != nil:
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
