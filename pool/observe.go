package pool

import (
	"cmp"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// readHooks records what the hooks finished since the last pass learnt.
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

// memoOf returns the pool's memo of an instance, creating it.
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
	// The servers of a pass live in buffers the pool keeps from pass to
	// pass: the listing is the bulk of a pass's work, so it must not
	// allocate per instance, nor per pass when the pool is steady. Nothing
	// outside the pass keeps a pointer into them.
	n := len(instances) + len(p.inflight)
	if cap(p.backing) < n {
		p.backing = make([]server, 0, n+n/4)
		p.ptrs = make([]*server, 0, n+n/4)
	}
	backing, servers := p.backing[:0], p.ptrs[:0]
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
		tags := readOwnTags(inst.Tags)
		backing = append(backing, server{inst: inst, weight: p.weight(inst.Type), m: m, replaces: tags.replaces,
			launchNano: inst.LaunchTime.UnixNano()})
		s := &backing[len(backing)-1]
		if len(snap.Interrupted) > 0 {
			s.interrupted = snap.Interrupted[inst.ID]
		}
		if tags.interrupted != "" && s.interrupted.IsZero() {
			if t, ok := parseTime(tags.interrupted); ok {
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
		if name := tags.manager; name != "" {
			if i, known := p.mgrIndex[name]; known {
				s.mgr, s.mgrIdx = name, i
			} else {
				p.event(pl, Event{Kind: EventBadTag, Instance: inst.ID, Manager: name,
					Reason: "grant tag names an unknown manager; the server returns to the pool"})
				s.staleGrant = true // removed below unless granted again this pass
			}
		}
		if tags.winding {
			var ok bool
			s.phase = phaseWinding
			s.start, ok = parseTime(tags.windStart)
			if !ok {
				s.start = now
			}
			s.deadline, ok = parseTime(tags.windDeadline)
			if !ok {
				// Rewrite a deadline that does not parse rather than guess.
				s.deadline = now.Add(p.cfg.WindDownTimeout)
				p.event(pl, Event{Kind: EventBadTag, Instance: inst.ID,
					Reason: fmt.Sprintf("wind-down deadline %q does not parse; reset", tags.windDeadline)})
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
	p.backing, p.ptrs = backing[:0], servers[:0] // keep what append grew
	// The listing's order is kept: the decisions that depend on order sort
	// the few servers they consider (oldestFirst), which costs far less
	// than sorting the whole pool every pass.
	return servers
}

// oldestFirst orders servers by launch time, then id: a deterministic
// order, whatever the listing's.
func oldestFirst(a, b *server) int {
	return cmp.Or(cmp.Compare(a.launchNano, b.launchNano), cmp.Compare(a.inst.ID, b.inst.ID))
}

// seen reports whether the current pass's listing showed id.
func (p *Pool) seen(id string) bool {
	m, ok := p.mem[id]
	return ok && m.seen == p.pass
}

// applyOverlay shows inst with the tag changes the pool made that the
// listing does not show yet.
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
	windStart, windDeadline        string
	winding                        bool
}

// readOwnTags reads the scaler's tags of an instance.
func readOwnTags(tags map[string]string) ownTagValues {
	v := ownTagValues{
		manager:     tags[TagManager],
		replaces:    tags[TagReplaces],
		interrupted: tags[TagInterrupted],
	}
	v.windStart, v.winding = tags[TagWindDownStart]
	if v.winding {
		v.windDeadline = tags[TagWindDownDeadline]
	}
	return v
}
