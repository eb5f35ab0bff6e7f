package pool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// ErrDemandTimeout is the error of a manager's Demand that did not return
// within Config.DemandTimeout. The pool keeps the manager's previous target
// and does not call it again until the stuck call returns.
var ErrDemandTimeout = errors.New("manager demand timed out")

// demandCall is a manager's Demand call still running after its timeout.
type demandCall struct {
	done chan demandResult
}

type demandResult struct {
	req manager.Request
	err error
}

// askManagers asks every manager what it wants, given what it holds, and
// turns errors, timeouts and absurd answers into a safe target, with an
// event.
func (p *Pool) askManagers(ctx context.Context, ps *pass) []*want {
	n := len(p.cfg.Managers)
	byMgr := p.heldServers(ps.servers)
	wants := make([]*want, 0, n)
	// Managers get the pool-wide estimate: it follows the offerings the
	// pool launched of late, which a new server most likely gets too.
	boot, ok := p.boot.poolWide()
	if !ok {
		boot = 0
	}
	for i, m := range p.cfg.Managers {
		w := &want{m: m, name: m.Name(), index: i}
		state := manager.State{Now: ps.now, Servers: byMgr[i], Max: p.cfg.Max, BootTime: boot}
		req, err := p.demand(ctx, i, m, state)
		if err != nil {
			prev, ok := p.lastTarget[w.name]
			if !ok {
				prev = state.Ready()
			}
			p.event(ps.pl, Event{Kind: EventManagerError, Manager: w.name, Err: err, Capacity: prev,
				Reason: "demand failed; keeping the previous target"})
			req = manager.Request{Target: prev}
		}
		switch {
		case req.Target < 0:
			w.clamp, w.clampWhy = clampKey{"negative", 0}, fmt.Sprintf("negative target %d clamped to 0", req.Target)
			req.Target = 0
		case req.Target > p.cfg.Max:
			w.clamp = clampKey{"pool max", p.cfg.Max}
			w.clampWhy = fmt.Sprintf("target %d above pool max clamped to %d", req.Target, p.cfg.Max)
			req.Target = p.cfg.Max
		case req.Unclamped > req.Target:
			w.clamp = clampKey{"manager max", req.Target}
			w.clampWhy = fmt.Sprintf("wants %d, above its own max %d", req.Unclamped, req.Target)
		}
		if err == nil {
			p.lastTarget[w.name] = req.Target
		}
		if p.draining {
			req = manager.Request{Release: req.Release}
		}
		if req.Market < manager.AnyMarket || req.Market > manager.SpotOnly {
			req.Market = manager.AnyMarket
		}
		w.req = req
		w.target = req.Target
		if ms := p.cfg.MinimumSpot; ms != nil && ms.Manager == w.name && req.Market != manager.OnDemandOnly {
			w.extraSpot = p.minimumSpot(ps, w)
			w.target = min(w.target+w.extraSpot, p.cfg.Max)
		}
		if len(req.Idle) > 0 {
			w.idle = make(map[string]bool, len(req.Idle))
			for _, id := range req.Idle {
				w.idle[id] = true
			}
		}
		if len(req.Release) > 0 {
			w.release = make(map[string]bool, len(req.Release))
			for _, id := range req.Release {
				w.release[id] = true
			}
		}
		wants = append(wants, w)
	}
	p.fairShare(ps.pl, wants)
	for _, w := range wants {
		w.req.Work = workWithin(w.req.Work, w.target)
	}
	p.reportClamps(ps.pl, wants)
	return wants
}

// workWithin is work cut to the first units of a target, in the manager's
// order. A target clamped to Max or to a fair share clamps its Work too:
// on-demand capacity for work beyond the target would be bought above it,
// out of the other managers' shares.
func workWithin(work []manager.Work, target int) []manager.Work {
	left := target
	for i, wk := range work {
		if wk.Units <= left {
			left -= max(0, wk.Units)
			continue
		}
		out := slices.Clone(work[:i+1]) // the manager's slice stays as it was
		out[i].Units = left
		return out
	}
	return work
}

// clampKey is what clamps a manager's target, and to what.
type clampKey struct {
	source   string
	capacity int
}

// reportClamps reports a clamp when it starts biting or changes, and once
// more when it stops: a manager held at Max for hours is one event, not one
// a pass.
func (p *Pool) reportClamps(pl *Plan, wants []*want) {
	for _, w := range wants {
		prev, was := p.clamped[w.name]
		switch {
		case w.clamp != (clampKey{}) && (!was || w.clamp != prev):
			p.clamped[w.name] = w.clamp
			p.event(pl, Event{Kind: EventDemandClamped, Manager: w.name, Capacity: w.target, Reason: w.clampWhy})
		case w.clamp == (clampKey{}) && was:
			delete(p.clamped, w.name)
			p.event(pl, Event{Kind: EventDemandClamped, Manager: w.name, Capacity: w.target, Reason: "no longer clamped"})
		}
	}
}

// demand calls manager i's Demand: directly if it is instant, else with
// Config.DemandTimeout. A call that
// does not return in time is left running: the pass goes on with the
// previous target, and the manager is not called again until that call
// returns, so a hung manager costs one goroutine, not one per pass.
func (p *Pool) demand(ctx context.Context, i int, m manager.Manager, s manager.State) (manager.Request, error) {
	if im, ok := m.(manager.Instant); ok && im.DemandIsInstant() {
		return callDemand(ctx, m, s)
	}
	if c := p.stuck[i]; c != nil {
		select {
		case r := <-c.done:
			p.stuck[i] = nil
			_ = r // an answer for a past pass: stale, ask again
		default:
			return manager.Request{}, fmt.Errorf("%w: manager %q: an earlier call has not returned", ErrDemandTimeout, m.Name())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DemandTimeout)
	defer cancel()
	done := make(chan demandResult, 1)
	go func() {
		req, err := callDemand(ctx, m, s)
		done <- demandResult{req, err}
	}()
	t := time.NewTimer(p.cfg.DemandTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.req, r.err
	case <-t.C:
	case <-ctx.Done():
	}
	select {
	case r := <-done: // it returned as the timer fired
		return r.req, r.err
	default:
	}
	p.stuck[i] = &demandCall{done: done}
	return manager.Request{}, fmt.Errorf("%w: manager %q after %v", ErrDemandTimeout, m.Name(), p.cfg.DemandTimeout)
}

// callDemand calls a manager, turning a panic into an error: host code must
// not take the scaler down.
func callDemand(ctx context.Context, m manager.Manager, s manager.State) (req manager.Request, err error) {
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
			w.clamp = clampKey{"fair share", share}
			w.clampWhy = fmt.Sprintf("managers want %d together, above pool max %d: fair share %d", total, p.cfg.Max, share)
			w.target = share
		}
		left -= w.target
	}
}
