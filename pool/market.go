package pool

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

type offeringKey struct {
	instanceType, zone string
	market             awsctl.Market
}

// rank asks the policy for the pool's offerings, each (type, zone) in
// each market allowed, cheapest per capacity unit first.
func (p *Pool) rank(ps *pass, allowSpot, allowOD bool) []spotprice.Choice {
	in := spotprice.Input{
		Now:           ps.now,
		Prices:        p.cfg.Prices,
		Offerings:     p.allOfferings(),
		AllowSpot:     allowSpot,
		AllowOnDemand: allowOD,
		Unavailable:   p.cfg.Unavailable,
	}
	if p.cfg.Policy.UseReservations {
		insts := make([]awsctl.Instance, 0, len(ps.servers))
		for _, s := range ps.servers {
			insts = append(insts, s.inst)
		}
		in.ReservedInUse = spotprice.ReservedInUse(p.cfg.Prices.Reservations(), insts, ps.now)
	}
	return p.cfg.Policy.Rank(in)
}

// launchPriced launches ln.units of capacity on the cheapest acceptable
// offerings within room, and returns the room used. Capacity goes one
// instance at a time to the cheapest choice; among equally cheap choices,
// to the zone with the least capacity; a spot (type, zone) already holding
// MaxSpotShare of the pool is skipped so that one capacity event cannot take
// most of the pool. Unused reservations are used first, up to what they
// cover.
func (p *Pool) launchPriced(ps *pass, ln launchNeed, room int) int {
	choices := p.rank(ps, ln.allowSpot, ln.allowOD)
	var acc []spotprice.Choice
	for _, c := range choices {
		if !c.Rejected && (ln.zone == "" || c.Offering.Zone == ln.zone) && c.Offering.Weight <= room {
			acc = append(acc, c)
		}
	}
	if len(acc) == 0 {
		reasons := make([]string, 0, 3)
		for _, c := range choices {
			r := fmt.Sprintf("%s %s/%s: %s", c.Market, c.Offering.InstanceType, c.Offering.Zone, c.Reason)
			if !slices.Contains(reasons, r) && len(reasons) < 3 {
				reasons = append(reasons, r)
			}
		}
		if len(reasons) == 0 {
			reasons = append(reasons, "no offering fits the room left under max")
		}
		p.event(ps.pl, Event{Kind: EventNoCapacity, Capacity: ln.units,
			Reason: fmt.Sprintf("nothing can launch for %s: %s", ln.class, strings.Join(reasons, "; "))})
		return 0
	}
	l := ps.l
	lz, lo := l.spread(ps.servers)
	perOffer, perZone := maps.Clone(lo), maps.Clone(lz)
	total := float64(l.live + ln.units)
	capOK := func(c spotprice.Choice) bool {
		if c.Market != awsctl.MarketSpot || p.cfg.MaxSpotShare == 0 {
			return true
		}
		k := offeringKey{c.Offering.InstanceType, c.Offering.Zone, c.Market}
		return float64(perOffer[k]+c.Offering.Weight) <= p.cfg.MaxSpotShare*total
	}
	// A capped offering gives way only to offerings within SpotShareMargin
	// of the cheapest: diversification is worth a little, not any price.
	limit := -1.0
	for _, c := range acc {
		if !c.Reserved {
			limit = c.CostPerUnit * (1 + p.cfg.SpotShareMargin)
			break
		}
	}
	alloc := make([]int, len(acc))
	used := 0
	for left := ln.units; left > 0; {
		best, capped := -1, false
		for i, c := range acc {
			if c.Reserved && !p.hasReservation(c.Offering.InstanceType, c.Offering.Zone) {
				continue
			}
			if used+c.Offering.Weight > room {
				continue
			}
			if capped && best < 0 && !c.Reserved && c.CostPerUnit > limit {
				break // every choice within the margin is capped: go over the cap below
			}
			if !capOK(c) {
				capped = true
				continue
			}
			if best >= 0 && c.CostPerUnit > acc[best].CostPerUnit {
				break // sorted by cost: nothing cheaper follows
			}
			if best < 0 || perZone[c.Offering.Zone] < perZone[acc[best].Offering.Zone] {
				best = i
			}
		}
		if best < 0 && capped {
			// Every choice is capped: more of the same beats no capacity.
			p.event(ps.pl, Event{Kind: EventNoCapacity, Capacity: left,
				Reason: fmt.Sprintf("every spot offering within %.0f%% of the cheapest holds its share cap %.2f; launching over the cap",
					100*p.cfg.SpotShareMargin, p.cfg.MaxSpotShare)})
			best = slices.IndexFunc(acc, func(c spotprice.Choice) bool {
				return !c.Reserved && used+c.Offering.Weight <= room
			})
		}
		if best < 0 {
			break // nothing fits without going over Max
		}
		c := acc[best]
		if c.Reserved {
			p.takeReservation(c.Offering.InstanceType, c.Offering.Zone)
		}
		alloc[best]++
		perOffer[offeringKey{c.Offering.InstanceType, c.Offering.Zone, c.Market}] += c.Offering.Weight
		perZone[c.Offering.Zone] += c.Offering.Weight
		left -= c.Offering.Weight
		used += c.Offering.Weight
	}
	// used so far is the exact fill of the chosen offerings; fallbacks may
	// only add what room still allows.
	spent, pending := 0, used
	for i, c := range acc {
		if alloc[i] == 0 {
			continue
		}
		capacity := alloc[i] * c.Offering.Weight
		perBatch := max(1, p.cfg.LaunchBatch/c.Offering.Weight) * c.Offering.Weight
		for capacity > 0 {
			batch := min(capacity, perBatch)
			capacity -= batch
			pending -= batch
			// Fallbacks: the other acceptable offerings of the same market,
			// so one call can still be filled if this offering runs dry;
			// only as heavy as the room left allows.
			offers := []awsctl.Offering{c.Offering}
			for _, o := range acc {
				if o.Market == c.Market && !slices.Contains(offers, o.Offering) {
					offers = append(offers, o.Offering)
				}
			}
			fit, worst := fitOffers(offers, batch, room-spent-pending)
			if !slices.Contains(fit, c.Offering) {
				fit, worst = []awsctl.Offering{c.Offering}, batch
			}
			// Keep the chosen offering first: EC2 tries the list in order.
			fit = slices.DeleteFunc(fit, func(o awsctl.Offering) bool { return o == c.Offering })
			fit = slices.Insert(fit, 0, c.Offering)
			spent += worst
			p.addLaunch(ps, c.Market, batch, fit, worst, nil, c.Reason)
		}
	}
	return spent
}

// markReserved marks the on-demand servers that reservations cover, the way
// EC2 applies them: zonal reservations of the server's zone first, then
// regional ones, oldest servers first.
func (p *Pool) markReserved(now time.Time, servers []*server) {
	p.resLeft = nil
	if p.cfg.Prices == nil || !p.cfg.Policy.UseReservations {
		return
	}
	left := map[spotprice.ReservationKey]int{}
	for _, r := range p.cfg.Prices.Reservations() {
		if r.End.IsZero() || now.Before(r.End) {
			left[spotprice.ReservationKey{InstanceType: r.InstanceType, Zone: r.Zone}] += r.Count
		}
	}
	if len(left) == 0 {
		return
	}
	var ondemand []*server
	for _, s := range servers {
		if s.inst.Market == awsctl.MarketOnDemand && (s.inst.State == awsctl.StateRunning || s.inst.State == awsctl.StatePending) {
			ondemand = append(ondemand, s)
		}
	}
	slices.SortFunc(ondemand, oldestFirst)
	for _, s := range ondemand {
		for _, k := range []spotprice.ReservationKey{{InstanceType: s.inst.Type, Zone: s.inst.Zone}, {InstanceType: s.inst.Type}} {
			if left[k] > 0 {
				left[k]--
				s.reserved = true
				break
			}
		}
	}
	p.resLeft = left
}

func (p *Pool) hasReservation(t, z string) bool {
	return p.resLeft[spotprice.ReservationKey{InstanceType: t, Zone: z}] > 0 ||
		p.resLeft[spotprice.ReservationKey{InstanceType: t}] > 0
}

// takeReservation uses one unused reservation covering an instance of
// type t in zone z, zonal first; it reports false when none is left.
func (p *Pool) takeReservation(t, z string) bool {
	for _, k := range []spotprice.ReservationKey{{InstanceType: t, Zone: z}, {InstanceType: t}} {
		if p.resLeft[k] > 0 {
			p.resLeft[k]--
			return true
		}
	}
	return false
}

// hourly is what s costs per hour now, as best the pool knows.
func (p *Pool) hourly(now time.Time, s *server) float64 {
	if s.reserved {
		return 0 // the reservation is paid whether or not the server runs
	}
	if p.cfg.Price != nil {
		return p.cfg.Price(s.inst)
	}
	if pr := p.cfg.Prices; pr != nil {
		if s.inst.Market == awsctl.MarketSpot {
			if price, st := pr.SpotStatus(s.inst.Type, s.inst.Zone, now); st == spotprice.PriceOK {
				return pr.Effective(s.inst.Type, awsctl.MarketSpot, price)
			}
		}
		if od, ok := pr.OnDemand(s.inst.Type); ok {
			return pr.Effective(s.inst.Type, awsctl.MarketOnDemand, od)
		}
	}
	// No price known: on-demand is the dearer market.
	if s.inst.Market == awsctl.MarketSpot {
		return 1
	}
	return 2
}

// interruptions acts on spot interruption notices: the manager is told, the
// server's wind-down starts with the notice's deadline (TagInterrupted
// records it), and the offering is marked unavailable. The server counts
// toward Max until EC2 takes it, but no longer as capacity, so what it
// held is granted or launched again in the same pass. Rebalance
// recommendations are passed on to the manager, which may ask for more.
func (p *Pool) interruptions(ps *pass) {
	for _, s := range ps.servers {
		if s.rebalance && !s.m.rebalanced && s.notice.IsZero() {
			s.m.rebalanced = true
			p.event(ps.pl, Event{Kind: EventRebalance, Instance: s.inst.ID, Manager: s.mgr})
			if w := p.wantOf(ps, s.mgr); w != nil && s.state == granted {
				ps.pl.notify(s, w, manager.Notice{Kind: manager.Rebalance, Reason: "EC2 rebalance recommendation"})
				ps.pl.change(s, nil, nil, 0)
			}
		}
		if s.state != interrupted || s.m.noticed {
			continue
		}
		s.m.noticed = true
		p.cfg.Unavailable.Mark(ps.now, s.inst.Type, s.inst.Zone, awsctl.MarketSpot)
		p.event(ps.pl, Event{Kind: EventInterrupted, Instance: s.inst.ID, Manager: s.mgr, Market: s.inst.Market,
			Inputs: []slog.Attr{slog.Time("deadline", s.notice)}})
		if s.tags.winding {
			// Already leaving: record the interruption all the same.
			ps.pl.change(s, map[string]string{TagInterrupted: formatTime(s.notice)}, nil, 0)
			s.decided = true
			continue
		}
		var w *want
		if s.tags.manager != "" {
			w = p.wantOf(ps, s.mgr) // granted, so it has work to wind down
		}
		p.windDown(ps, s, w, s.notice, "spot interruption", manager.Interrupted,
			map[string]string{TagInterrupted: formatTime(s.notice)})
	}
}

// swapReplacements completes make-before-break replacements: a replacement
// that is ready is granted to the manager of the server it replaces, and
// that server is wound down in the same pass (with hourly billing, only
// once the replaced server's paid hour is nearly over). A replacement whose
// target is gone becomes ordinary capacity.
func (p *Pool) swapReplacements(ps *pass) {
	for _, s := range ps.servers {
		x := s.replaces
		if x == nil {
			if s.tags.replaces != "" && (s.state == free || s.state == granted || s.state == provisioning && s.inst.State == awsctl.StateRunning) {
				ps.pl.change(s, nil, []string{TagReplaces}, 0)
			}
			continue
		}
		if s.state == granted {
			// A swap that a crash cut in half: the replacement is already
			// granted. Finish it: the replaced server winds down.
			p.unlink(ps, s)
			ps.pl.change(s, nil, []string{TagReplaces}, 0)
			if x.state == granted && !x.decided && x.mgr == s.mgr {
				p.endSwap(ps, x, p.wantOf(ps, x.mgr), ps.now.Add(p.cfg.WindDownTimeout),
					fmt.Sprintf("replaced by %s %s", s.inst.Market, s.inst.ID))
			}
			continue
		}
		if s.state != free || !s.idle() || x.decided || !x.idle() {
			continue // on its way: earmarked
		}
		deadline, ok := p.removable(ps.now, x)
		if p.cfg.Billing == Hourly && !ok {
			continue // the replaced server's hour is paid: swap near its end
		}
		if !ok {
			deadline = ps.now.Add(p.cfg.WindDownTimeout)
		}
		w := p.wantOf(ps, x.mgr)
		if w == nil {
			p.unlink(ps, s)
			continue
		}
		p.unlink(ps, s)
		ps.pl.change(s, nil, []string{TagReplaces}, 0)
		p.grantTo(ps, s, w, "replaces "+x.inst.ID)
		p.endSwap(ps, x, w, deadline, fmt.Sprintf("replaced by %s %s", s.inst.Market, s.inst.ID))
	}
}

// unlink ends the pairing of replacement s with the server it replaces,
// keeping the ledger in step.
func (p *Pool) unlink(ps *pass, s *server) {
	x := s.replaces
	ps.l.add(s, -1)
	ps.l.add(x, -1)
	s.replaces, x.replacedBy = nil, nil
	ps.l.add(s, 1)
	ps.l.add(x, 1)
}

// replaceOnDemand starts make-before-break replacements of on-demand
// servers by spot, for managers that accept spot, when the saving over the
// server's expected remaining life exceeds the cost of running both during
// the swap (for how long, see swapOverlap). With hourly billing a
// replacement starts only when it can be ready as the server's paid hour
// ends.
func (p *Pool) replaceOnDemand(ps *pass) {
	if p.cfg.Prices == nil || p.cfg.Market == OnDemand || p.cfg.Replace.Disabled || p.draining ||
		ps.now.Before(p.holdUntil) || ps.now.Before(p.replaceHoldUntil) {
		return
	}
	now := ps.now
	var cands []*server
	for _, s := range ps.servers {
		if s.state != granted || s.decided || !s.idle() || s.replacedBy != nil || s.replaces != nil || s.reserved ||
			s.inst.Market != awsctl.MarketOnDemand {
			continue
		}
		w := p.wantOf(ps, s.mgr)
		if w == nil || w.req.Market != manager.AnyMarket || now.Sub(s.inst.LaunchTime) < MinimumCharge || ps.held(w) > w.target {
			continue // a manager holding more than it wants may give this one up: not worth a swap
		}
		if w.odKeep > 0 && w.heldOD-s.weight < w.odKeep {
			continue // its work costs less on demand than on spot (workMarkets)
		}
		if p.cfg.Billing == Hourly {
			// Launched ahead by the overlap, the replacement is ready as the
			// hour's last WindDownTimeout, when the swap may happen, starts.
			// The replacement's offering is chosen below; a spot server of
			// this one's type and zone stands in for it here.
			left := time.Hour - now.Sub(s.inst.LaunchTime)%time.Hour
			ahead, _ := p.swapOverlap(offeringKey{s.inst.Type, s.inst.Zone, awsctl.MarketSpot})
			if left > p.cfg.WindDownTimeout+HourlyMargin+ahead {
				continue
			}
		}
		cands = append(cands, s)
	}
	if len(cands) == 0 {
		return
	}
	p.sortVictims(now, cands, nil)
	// The managers of the candidates accept on-demand (they hold it): spot
	// is judged against it, so that a swap never buys spot the policy
	// would refuse at launch.
	choices := p.rank(ps, true, true)
	started := 0
	life := p.cfg.Replace.ExpectedLife.Hours()
	for _, s := range cands {
		if started >= p.cfg.Replace.MaxPerPass || p.budgetLeft(ps) == 0 {
			return
		}
		var offers []awsctl.Offering
		var best spotprice.Choice
		// A server that holds its manager's zone minimum is replaced in its
		// zone: a swap elsewhere would be undone to meet the minimum.
		sameZone := p.wantOf(ps, s.mgr).req.ZoneMinimums[s.inst.Zone] > 0
		for _, c := range choices {
			if sameZone && c.Offering.Zone != s.inst.Zone {
				continue
			}
			if !c.Rejected && c.Market == awsctl.MarketSpot && c.Offering.Weight == s.weight && !slices.Contains(offers, c.Offering) {
				if len(offers) == 0 {
					best = c
				}
				offers = append(offers, c.Offering)
			}
		}
		if len(offers) == 0 {
			return // no acceptable spot offering right now
		}
		if ps.l.live+s.weight > p.cfg.Max {
			return
		}
		odPrice := p.hourly(now, s)
		saving := (odPrice - best.PricePerHour) * life
		overlapD, learned := p.swapOverlap(offeringKey{best.Offering.InstanceType, best.Offering.Zone, awsctl.MarketSpot})
		overlap := overlapD.Hours()
		swap := best.PricePerHour*max(overlap, MinimumCharge.Hours()) + odPrice*overlap
		inputs := []slog.Attr{slog.Duration("overlap", overlapD), slog.Bool("overlap_learned", learned)}
		if saving <= swap {
			if !s.m.swapSkipped {
				s.m.swapSkipped = true
				p.event(ps.pl, Event{Kind: EventReplaceSkipped, Instance: s.inst.ID, Manager: s.mgr, Inputs: inputs,
					Reason: fmt.Sprintf("saving $%.4f over %v does not pay for the swap ($%.4f)", saving, p.cfg.Replace.ExpectedLife, swap)})
			}
			continue
		}
		p.addLaunch(ps, awsctl.MarketSpot, s.weight, offers, s.weight, map[string]string{TagReplaces: s.inst.ID},
			fmt.Sprintf("replaces on-demand %s: %s", s.inst.ID, best.Reason))
		p.event(ps.pl, Event{Kind: EventReplace, Instance: s.inst.ID, Manager: s.mgr, Market: awsctl.MarketSpot, Inputs: inputs,
			Reason: fmt.Sprintf("spot saves $%.4f over %v, swap costs $%.4f", saving, p.cfg.Replace.ExpectedLife, swap)})
		started++
		ps.spendBudget()
		if w := p.wantOf(ps, s.mgr); w.odKeep > 0 {
			w.heldOD -= s.weight // on its way to spot
		}
	}
}

// minimumSpot returns the extra spot capacity MinimumSpot asks for now. The
// hysteresis reads the cloud, not memory: between AddBelow and KeepBelow
// the manager keeps what it holds beyond its own target, so a restarted
// scaler decides as a running one.
func (p *Pool) minimumSpot(ps *pass, w *want) int {
	ms := p.cfg.MinimumSpot
	if ms == nil || p.draining {
		return 0
	}
	ratio := -1.0
	for _, c := range p.rank(ps, true, false) {
		if c.Rejected || c.Market != awsctl.MarketSpot {
			continue
		}
		if od, ok := p.cfg.Prices.OnDemand(c.Offering.InstanceType); ok && od > 0 {
			ratio = c.PricePerHour / p.cfg.Prices.Effective(c.Offering.InstanceType, awsctl.MarketOnDemand, od)
		}
		break
	}
	switch {
	case ratio < 0 || ratio > ms.KeepBelow:
		return 0
	case ratio <= ms.AddBelow:
		return ms.Capacity
	}
	// What exists beyond the manager's own target: held, or spot on its
	// way that only the extra can explain.
	return min(ms.Capacity, max(0, ps.l.held[w.index]+ps.l.supply[1]-w.req.Target))
}
