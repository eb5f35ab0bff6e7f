package pool

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

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
			oldestFirst(b, a))
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

// windDown starts a wind-down: the tags first (start and deadline), then,
// for a server with work, the role's WindDown hook and the manager's notice.
func (p *Pool) windDown(pl *Plan, now time.Time, s *server, w *want, deadline time.Time, reason string) {
	p.windDownAs(pl, now, s, w, deadline, reason, manager.WindDown)
}

// windDownAs is windDown with the kind of notice the manager receives.
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

// advanceWindDown moves a wind-down one step: deliver the request, check on
// the server, tear it down, terminate it; or, past its deadline, restore it
// or give up waiting, per configuration.
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
