package pool

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// sortVictims orders servers to wind down: those the manager marked idle,
// then those EC2 recommends moving off, then (hourly billing) those with the
// least of their paid hour left, then the most expensive per capacity unit,
// then the newest.
//
// Each server's keys are read once, not per comparison. The order is total
// (ids are unique), so sorting without stability gives the one order a
// stable sort would.
func (p *Pool) sortVictims(now time.Time, cands []*server, idle map[string]bool) {
	if len(cands) < 2 {
		return
	}
	keys := p.victimKeys[:0]
	for _, s := range cands {
		k := victimKey{s: s, idle: idle[s.inst.ID], rebalance: s.rebalance, price: p.hourly(now, s) / float64(s.weight)}
		if p.cfg.Billing == Hourly {
			k.hourLeft = time.Hour - now.Sub(s.inst.LaunchTime)%time.Hour
		}
		keys = append(keys, k)
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
	slices.SortFunc(keys, func(a, b victimKey) int {
		return cmp.Or(
			first(a.idle, b.idle),
			first(a.rebalance, b.rebalance),
			cmp.Compare(a.hourLeft, b.hourLeft),
			cmp.Compare(b.price, a.price),
			oldestFirst(b.s, a.s))
	})
	for i := range keys {
		cands[i] = keys[i].s
	}
	clear(keys) // hold no server past the pass
	p.victimKeys = keys[:0]
}

// victimKey is what sortVictims orders a server by.
type victimKey struct {
	s               *server
	idle, rebalance bool
	hourLeft        time.Duration
	price           float64
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

// windDown starts a wind-down: the tags first (start and deadline), then,
// for a server with work, the role's WindDown hook and the manager's notice.
func (p *Pool) windDown(ps *pass, s *server, w *want, deadline time.Time, reason string, kind manager.NoticeKind, extra map[string]string) {
	to := windingDown
	if extra[TagRetire] != "" {
		to = retiring
	}
	if s.state != interrupted {
		p.move(ps.l, s, to, nil)
	}
	s.decided = true
	s.deadline, s.start = deadline, ps.now
	s.m.windDownSent, s.m.woundDown, s.m.tornDown, s.m.restored = false, false, false, false
	set := map[string]string{
		TagWindDownStart:    formatTime(ps.now),
		TagWindDownDeadline: formatTime(deadline),
	}
	for k, v := range extra {
		set[k] = v
	}
	ev := Event{Kind: EventWindDown, Instance: s.inst.ID, Reason: reason,
		Inputs: []slog.Attr{slog.Time("deadline", deadline), slog.Duration("age", ps.now.Sub(s.inst.LaunchTime))}}
	hook := HookKind(0)
	if w != nil {
		hook = HookWindDown
		ev.Manager = w.name
		ps.pl.notify(s, w, manager.Notice{Kind: kind, Deadline: deadline, Reason: reason})
	}
	if !s.idle() {
		hook = 0 // one hook at a time: the next pass sends it
	}
	ps.pl.change(s, set, nil, hook)
	p.event(ps.pl, ev)
}

// retire winds s down for good: it is never put back to work.
func (p *Pool) retire(ps *pass, s *server, why string, w *want, reason string) {
	deadline := ps.now.Add(p.cfg.WindDownTimeout)
	if s.tags.winding {
		deadline = s.deadline
	}
	p.windDown(ps, s, w, deadline, reason, manager.WindDown, map[string]string{TagRetire: why})
	s.tags.retire = why
}

// restore cancels a wind-down: the Restore hook runs now, or, if another
// hook still runs, next pass (the server is counted as restored meanwhile so
// nothing is launched in its place). The wind-down tags are removed once the
// hook succeeds.
func (p *Pool) restore(ps *pass, s *server, toPool bool, reason string) {
	s.m.restoreFree = toPool
	s.claimed = true
	p.move(ps.l, s, restoring, nil)
	if s.idle() {
		ps.pl.change(s, nil, nil, HookRestore)
	}
	p.event(ps.pl, Event{Kind: EventRestore, Instance: s.inst.ID, Manager: s.mgr, Reason: reason})
}

// restorable reports whether a winding-down server may be put back to work:
// not one being torn down, nor one whose latest health readings were bad.
func (p *Pool) restorable(s *server) bool {
	return s.state == windingDown && !s.claimed && !s.handover && !s.m.tornDown && s.hook != HookTeardown &&
		s.m.badHealth < p.cfg.UnhealthyAfter
}

// restoreOwn cancels wind-downs of managers whose demand came back: a
// restored server works at once and costs no boot, even while a wind-down
// hook is still running on it.
func (p *Pool) restoreOwn(ps *pass) {
	for _, w := range ps.wants {
		if ps.need(w) == 0 {
			continue
		}
		var cands []*server
		for _, s := range ps.servers {
			if p.restorable(s) && s.mgr == w.name {
				cands = append(cands, s)
			}
		}
		slices.SortFunc(cands, func(a, b *server) int { return cmp.Or(b.deadline.Compare(a.deadline), oldestFirst(a, b)) })
		for _, s := range cands {
			// A server heavier than the need is restored all the same: a
			// launch would round up to a weight too, and cost a boot.
			if ps.held(w) >= w.target && ps.zoneDeficit(w, s.inst.Zone) == 0 {
				continue // only a zone minimum elsewhere is missing
			}
			p.restore(ps, s, false, "demand returned")
			if s.inst.Market == awsctl.MarketOnDemand {
				w.heldOD += s.weight // see workMarkets: no launch for its work
			}
		}
	}
}

// takeExcess winds down what managers hold beyond their targets, keeping
// their zone minimums. A server that is not worth removing yet (inside its
// minimum charge, or mid-way through a paid hour) is still taken when another
// manager, or Min, needs the capacity: it is handed over, not removed.
func (p *Pool) takeExcess(ps *pass) {
	wanted := max(0, ps.minimum-ps.l.byState[free])
	for _, w := range ps.wants {
		wanted += max(0, ps.need(w))
	}
	for _, w := range ps.wants {
		excess := ps.held(w) - w.target
		if excess <= 0 {
			continue
		}
		var cands []*server
		for _, s := range ps.servers {
			if s.state == granted && s.mgr == w.name && !s.decided && s.idle() && s.replacedBy == nil {
				cands = append(cands, s)
			}
		}
		p.sortVictims(ps.now, cands, w.idle)
		p.onDemandFirst(ps, cands)
		for _, s := range cands {
			if excess < s.weight || p.holdsSpot(ps, s) {
				continue
			}
			if m := w.req.ZoneMinimums[s.inst.Zone]; m > 0 && ps.l.zoneHeld[mgrZone{w.index, s.inst.Zone}]-s.weight < min(m, w.target) {
				continue
			}
			od := s.inst.Market == awsctl.MarketOnDemand && w.odKeep > 0
			if od && w.heldOD-s.weight < w.odKeep {
				continue // runs work that costs less on demand (workMarkets)
			}
			deadline, ok := p.removable(ps.now, s)
			if !ok {
				if wanted < s.weight {
					continue
				}
				deadline = ps.now.Add(p.cfg.WindDownTimeout)
				wanted -= s.weight
			}
			reason := fmt.Sprintf("manager holds %d, wants %d", ps.held(w), w.target)
			p.windDown(ps, s, w, deadline, reason, manager.WindDown, nil)
			excess -= s.weight
			if od {
				w.heldOD -= s.weight
			}
		}
	}
}

// releases winds down, for good, the servers managers asked to release.
func (p *Pool) releases(ps *pass) {
	for _, w := range ps.wants {
		if len(w.release) == 0 {
			continue
		}
		for _, s := range ps.servers {
			if !w.release[s.inst.ID] || s.mgr != w.name || s.decided {
				continue
			}
			switch s.state {
			case granted, windingDown, restoring:
				p.retire(ps, s, RetireReleased, w, "released by its manager")
			}
		}
	}
}

// retireStopped retires servers someone stopped: they are no capacity, are
// replaced like any missing server, and are terminated (a stopped instance
// cannot finish work, and only its volumes would still cost).
func (p *Pool) retireStopped(ps *pass) {
	for _, s := range ps.servers {
		if s.state != stopped || s.decided {
			continue
		}
		w := p.wantOf(ps, s.mgr)
		if s.tags.retire == "" {
			p.event(ps.pl, Event{Kind: EventRevoke, Instance: s.inst.ID, Manager: s.mgr,
				Reason: fmt.Sprintf("instance %s outside the scaler; replaced and terminated", s.inst.State)})
			deadline := ps.now
			p.move(ps.l, s, retiring, nil)
			ps.pl.change(s, map[string]string{TagRetire: RetireStopped, TagWindDownStart: formatTime(ps.now),
				TagWindDownDeadline: formatTime(deadline)}, nil, 0)
			if w != nil {
				ps.pl.notify(s, w, manager.Notice{Kind: manager.Revoked, Reason: "stopped outside the scaler"})
			}
			s.m.grantedTo = nil
			continue
		}
		p.move(ps.l, s, retiring, nil)
	}
}

// advance moves wind-downs along: deliver the request, check on the
// server, tear it down, terminate it; or, past its deadline, restore it or
// stop waiting, per configuration. A wound-down server the pool still
// needs is handed back to the pool instead of terminated. It also starts
// the Provision hook of servers that are up.
func (p *Pool) advance(ps *pass) {
	for _, s := range ps.servers {
		if s.decided && s.state != windingDown && s.state != retiring {
			continue
		}
		if !s.idle() {
			continue
		}
		switch s.state {
		case provisioning:
			if s.inst.State == awsctl.StateRunning {
				ps.pl.change(s, nil, nil, HookProvision)
			}
		case granted:
			// Health: ask the role about a granted server every
			// HealthInterval (its Check reports Unhealthy).
			if p.health && !s.decided && ps.now.Sub(s.m.lastHealth) >= p.cfg.HealthInterval {
				s.m.lastHealth = ps.now
				ps.pl.change(s, nil, nil, HookCheck)
			}
		case windingDown, retiring, interrupted:
			if s.claimed {
				continue
			}
			p.advanceWindDown(ps, s)
		}
	}
}

func (p *Pool) advanceWindDown(ps *pass, s *server) {
	w := p.wantOf(ps, s.mgr)
	if !s.tags.winding {
		// The wind-down tags are written this pass. A role with nothing to
		// wind down has its server terminated now, not passes later.
		if p.immediate && !s.handover && (s.state == windingDown || s.state == retiring) {
			p.terminate(ps, s, w)
		}
		return
	}
	noWork := w == nil || s.state == stopped || s.tags.retire == RetireStopped || s.inst.State != awsctl.StateRunning
	if !s.m.woundDown && !noWork && ps.now.After(s.deadline) {
		switch {
		case (p.cfg.Billing == Hourly || p.cfg.OnWindDownTimeout == Restore) && s.state == windingDown &&
			s.m.badHealth < p.cfg.UnhealthyAfter: // a sick server is not put back to work
			p.restore(ps, s, false, "wind-down passed its deadline")
			return
		case p.cfg.OnWindDownTimeout == Wait && !s.m.hookFailing && s.state != interrupted:
			// The role says the server is still busy: its jobs are not cut
			// short. Said once.
			if !s.m.overdue {
				s.m.overdue = true
				p.event(ps.pl, Event{Kind: EventWindDown, Instance: s.inst.ID, Manager: s.mgr,
					Reason: "wind-down passed its deadline; the server is still busy, waiting for it"})
			}
		default:
			p.event(ps.pl, Event{Kind: EventWindDownTimedOut, Instance: s.inst.ID, Manager: s.mgr,
				Reason: "wind-down passed its deadline; terminating anyway"})
			s.m.woundDown = true
		}
	}
	if s.handover && (noWork || s.m.woundDown) {
		// Wound down, and the pool still needs it: back to the pool
		// instead of a launch elsewhere.
		p.restore(ps, s, true, "wound down; handed back to the pool")
		return
	}
	switch {
	case !noWork && !s.m.woundDown && !s.m.windDownSent:
		ps.pl.change(s, nil, nil, HookWindDown)
	case !noWork && !s.m.woundDown:
		ps.pl.change(s, nil, nil, HookCheck)
	case !s.m.tornDown && s.inst.State == awsctl.StateRunning && p.earlyInPaidHour(ps, s):
		// Wound down for capacity another manager needed, which the pass
		// then found elsewhere: terminating it now would throw away the
		// rest of its paid hour. It goes back to the pool, and leaves as
		// spare capacity near the hour's end if nobody needs it.
		p.restore(ps, s, true, "wound down early in its paid hour; kept until the hour's end")
	case !s.m.tornDown && s.inst.State == awsctl.StateRunning:
		ps.pl.change(s, nil, nil, HookTeardown)
	default:
		p.terminate(ps, s, w)
	}
}

// earlyInPaidHour reports whether an hourly server that wound down for
// less demand is too early in its paid hour to be terminated without
// waste: more than the wind-down timeout and the margin of the hour left.
func (p *Pool) earlyInPaidHour(ps *pass, s *server) bool {
	if p.cfg.Billing != Hourly || s.state != windingDown || p.draining {
		return false
	}
	left := time.Hour - ps.now.Sub(s.inst.LaunchTime)%time.Hour
	return left > p.cfg.WindDownTimeout+HourlyMargin
}

// terminate plans the termination of s, whose manager (if any) is w.
func (p *Pool) terminate(ps *pass, s *server, w *want) {
	ps.pl.Terminate = append(ps.pl.Terminate, s.inst.ID)
	ev := Event{Kind: EventTerminate, Instance: s.inst.ID, Manager: s.mgr, Market: s.inst.Market,
		Inputs: []slog.Attr{slog.Duration("age", ps.now.Sub(s.inst.LaunchTime))}}
	if w != nil && s.state != stopped && s.tags.retire != RetireStopped {
		ps.pl.termNotes[s.inst.ID] = append(ps.pl.termNotes[s.inst.ID], notice{w.m, manager.Notice{
			Kind: manager.Revoked, Server: s.managerServer(), Reason: "terminated"}})
	}
	p.event(ps.pl, ev)
}
