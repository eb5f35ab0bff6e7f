package pool

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// askManagers asks every manager what it wants, given what it holds, and
// turns errors and absurd answers into a safe target, with an event.
func (p *Pool) askManagers(ctx context.Context, pl *Plan, now time.Time, servers []*server) []*want {
	// What each manager holds, from the grants the listing shows (by the
	// index classify found, so no lookup per server).
	counts := make([]int, len(p.cfg.Managers))
	for _, s := range servers {
		if s.mgr != "" {
			counts[s.mgrIdx]++
		}
	}
	byMgr := make([][]manager.Server, len(p.cfg.Managers))
	for i, n := range counts {
		byMgr[i] = make([]manager.Server, 0, n)
	}
	for _, s := range servers {
		if s.mgr != "" {
			byMgr[s.mgrIdx] = append(byMgr[s.mgrIdx], s.managerServer())
		}
	}
	wants := make([]*want, 0, len(p.cfg.Managers))
	for i, m := range p.cfg.Managers {
		w := &want{m: m, name: m.Name(), zoneHeld: map[string]int{}}
		state := manager.State{Now: now, Servers: byMgr[i], Max: p.cfg.Max}
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
