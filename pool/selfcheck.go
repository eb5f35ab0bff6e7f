package pool

import (
	"fmt"
	"slices"

	"github.com/ec2autoscale/ec2autoscale/awsctl"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// checkObserved checks what observe kept from earlier passes (the memo
// found by position, the tags read from an unchanged map, the state derived
// from them) against a reading of everything afresh, and panics if they
// differ: a cache that goes stale is a bug that makes decisions on a world
// that no longer exists. It runs only with selfCheck (race-detector builds).
func (p *Pool) checkObserved(pl *Plan, snap Snapshot, servers []*server) {
	for id := range p.overlay {
		if m, ok := p.mem[id]; ok && !m.overlay {
			panic(fmt.Sprintf("pool %s: a tag change of %s is expected but its memo says none", p.cfg.Name, id))
		}
	}
	var few fewServers
	for _, s := range servers {
		if s.m.provFailed != nil {
			few.provFailed++
		}
		if s.m.badHealth >= p.cfg.UnhealthyAfter {
			few.sick++
		}
		if s.state == restoring && s.m.restored {
			few.restored++
		}
	}
	if few != p.few {
		panic(fmt.Sprintf("pool %s: observe counted %+v, afresh %+v", p.cfg.Name, p.few, few))
	}
	listed := make(map[string]*awsctl.Instance, len(snap.Instances))
	for i := range snap.Instances {
		listed[snap.Instances[i].ID] = &snap.Instances[i]
	}
	for _, s := range servers {
		inst, ok := listed[s.inst.ID]
		if !ok || s.m.seen != p.pass {
			continue // in flight
		}
		a, b := s.inst, *inst
		if _, overlaid := p.overlay[a.ID]; overlaid {
			a.Tags, b.Tags = nil, nil
		}
		if !sameInstance(&a, &b) {
			panic(fmt.Sprintf("pool %s: server %s kept %+v, the listing shows %+v", p.cfg.Name, a.ID, s.inst, *inst))
		}
	}
	for _, s := range servers {
		if m := p.mem[s.inst.ID]; m != s.m {
			panic(fmt.Sprintf("pool %s: observe found %s's memo by position but it is not the pool's", p.cfg.Name, s.inst.ID))
		}
		var c readCache
		own := readOwnTags(s.inst.Tags, &c)
		if len(pl.ready) > 0 && pl.ready[s.inst.ID] && own.ready == "" {
			own.ready = s.tags.ready // written this pass
		}
		weight, known := p.types[s.inst.Type]
		if !known {
			weight = 1
		}
		mgr, mgrIdx, knownMgr := "", 0, false
		if i, ok := p.mgrIndex[own.manager]; ok && own.manager != "" {
			mgr, mgrIdx, knownMgr = own.manager, i, true
		}
		var diffs []string
		check := func(what string, got, want any) {
			if got != want {
				diffs = append(diffs, fmt.Sprintf("%s %v, afresh %v", what, got, want))
			}
		}
		check("tags", s.tags, own)
		check("weight", s.weight, weight)
		check("typeKnown", s.m.typeKnown, known)
		check("manager", s.mgr, mgr)
		check("manager index", s.mgrIdx, mgrIdx)
		check("stale grant", s.staleGrant, own.manager != "" && !knownMgr)
		check("launch time", s.launchNano, s.inst.LaunchTime.UnixNano())
		check("offering", p.offers[s.offer], offeringKey{s.inst.Type, s.inst.Zone, s.inst.Market})
		if own.winding {
			start, okStart := parseTime(c.windStart)
			deadline, okDeadline := parseTime(c.windDeadline)
			if okStart {
				check("wind-down start", s.start, start)
			}
			if okDeadline {
				check("wind-down deadline", s.deadline, deadline)
			}
		}
		if t, ok := parseTime(c.interrupted); ok && snap.Interrupted[s.inst.ID].IsZero() {
			check("interruption", s.notice, t) // a notice of this pass comes first
		}
		listed := s.m.seen == p.pass
		want := derive(facts{ec2: s.inst.State, listed: listed, tags: &own, knownMgr: knownMgr, notice: s.notice,
			hook: s.hook, restored: s.m.restored, provFailed: s.m.provFailed != nil})
		check("state", s.state, want)
		if len(diffs) > 0 {
			panic(fmt.Sprintf("pool %s: server %s as observed differs from a fresh reading: %v", p.cfg.Name, s.inst.ID, diffs))
		}
	}
}

// checkHeld checks heldServers' answer against the servers' as they are.
func (p *Pool) checkHeld(servers []*server, held [][]manager.Server) {
	want := make([][]manager.Server, len(p.cfg.Managers))
	for _, s := range servers {
		if holdsFor(s) {
			want[s.mgrIdx] = append(want[s.mgrIdx], s.managerServer())
		}
	}
	for i := range want {
		if !slices.Equal(held[i], want[i]) {
			panic(fmt.Sprintf("pool %s: manager %d is handed %v, holds %v", p.cfg.Name, i, held[i], want[i]))
		}
	}
}

// checkLedger checks the ledger observe counted against one counted afresh.
func (p *Pool) checkLedger(servers []*server, got *ledger) {
	want := &ledger{held: make([]int, len(p.cfg.Managers)), offers: p.offers}
	for _, s := range servers {
		want.add(s, 1)
	}
	if got.live != want.live || got.byState != want.byState || got.replacing != want.replacing ||
		got.supply != want.supply || !slices.Equal(got.held, want.held) {
		panic(fmt.Sprintf("pool %s: observe counted %+v, afresh %+v", p.cfg.Name, *got, *want))
	}
}
