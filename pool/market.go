package pool

import (
	"fmt"
	"log/slog"
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
func (p *Pool) rank(now time.Time, servers []*server, allowSpot, allowOD bool) []spotprice.Choice {
	var insts []awsctl.Instance
	if p.cfg.Policy.UseReservations {
		insts = make([]awsctl.Instance, 0, len(servers))
		for _, s := range servers {
			insts = append(insts, s.inst)
		}
	}
	in := spotprice.Input{
		Now:           now,
		Prices:        p.cfg.Prices,
		Offerings:     p.allOfferings(),
		AllowSpot:     allowSpot,
		AllowOnDemand: allowOD,
		Unavailable:   p.cfg.Unavailable,
	}
	if insts != nil {
		in.ReservedInUse = spotprice.ReservedInUse(p.cfg.Prices.Reservations(), insts, now)
	}
	return p.cfg.Policy.Rank(in)
}

// launchPriced launches units of capacity on the cheapest acceptable
// offerings. Capacity goes one instance at a time to the cheapest choice;
// among equally cheap choices, to the zone with the fewest servers; a spot
// (type, zone) already holding MaxSpotShare of the pool is skipped so that
// one capacity event cannot take most of the pool. Unused reservations are
// used before anything else, up to what they cover.
func (p *Pool) launchPriced(pl *Plan, now time.Time, servers []*server, units int, allowSpot, allowOD bool, class string) {
	choices := p.rank(now, servers, allowSpot, allowOD)
	var acc []spotprice.Choice
	for _, c := range choices {
		if !c.Rejected {
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
		p.event(pl, Event{Kind: EventNoCapacity, Capacity: units,
			Reason: fmt.Sprintf("nothing can launch for %s: %s", class, strings.Join(reasons, "; "))})
		return
	}
	perOffer := map[offeringKey]int{}
	perZone := map[string]int{}
	live := 0
	for _, s := range servers {
		if s.phase == phaseFailed || !s.interrupted.IsZero() {
			continue
		}
		perOffer[offeringKey{s.inst.Type, s.inst.Zone, s.inst.Market}] += s.weight
		perZone[s.inst.Zone] += s.weight
		live += s.weight
	}
	for _, l := range pl.Launches {
		live += l.Capacity // launched earlier in this pass
	}
	// An instance heavier than what is left overshoots the request; that is
	// fine only as far as Max allows.
	overshoot := p.cfg.Max - live - units
	total := float64(live + units)
	capOK := func(c spotprice.Choice) bool {
		if c.Market != awsctl.MarketSpot || p.cfg.MaxSpotShare == 0 {
			return true
		}
		k := offeringKey{c.Offering.InstanceType, c.Offering.Zone, c.Market}
		return float64(perOffer[k]+c.Offering.Weight) <= p.cfg.MaxSpotShare*total
	}
	alloc := make([]int, len(acc))
	for left := units; left > 0; {
		best, capped := -1, false
		for i, c := range acc {
			if c.Reserved && !p.hasReservation(c.Offering.InstanceType, c.Offering.Zone) {
				continue
			}
			if c.Offering.Weight-left > overshoot {
				continue
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
		if best < 0 && !capped {
			break // nothing fits without going over Max
		}
		if best < 0 {
			// Every choice is capped: more of the same beats no capacity.
			p.event(pl, Event{Kind: EventNoCapacity, Capacity: left,
				Reason: fmt.Sprintf("every spot offering holds its share cap %.2f; launching over the cap", p.cfg.MaxSpotShare)})
			best = slices.IndexFunc(acc, func(c spotprice.Choice) bool {
				return !c.Reserved && c.Offering.Weight-left <= overshoot
			})
			if best < 0 {
				break
			}
		}
		c := acc[best]
		if c.Reserved {
			p.takeReservation(c.Offering.InstanceType, c.Offering.Zone)
		}
		alloc[best]++
		perOffer[offeringKey{c.Offering.InstanceType, c.Offering.Zone, c.Market}] += c.Offering.Weight
		perZone[c.Offering.Zone] += c.Offering.Weight
		left -= c.Offering.Weight
		overshoot -= max(0, -left)
		left = max(0, left)
	}
	for i, c := range acc {
		if alloc[i] == 0 {
			continue
		}
		// Fallbacks: the other acceptable offerings of the same market, so
		// one call can still be filled if this offering runs dry.
		offers := []awsctl.Offering{c.Offering}
		for _, o := range acc {
			if o.Market == c.Market && !slices.Contains(offers, o.Offering) {
				offers = append(offers, o.Offering)
			}
		}
		capacity := alloc[i] * c.Offering.Weight
		perBatch := max(1, p.cfg.LaunchBatch/c.Offering.Weight) * c.Offering.Weight
		for capacity > 0 {
			batch := min(capacity, perBatch)
			capacity -= batch
			p.addLaunch(pl, c.Market, batch, offers, nil, c.Reason)
		}
	}
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
	ondemand := filter(servers, func(s *server) bool {
		return s.inst.Market == awsctl.MarketOnDemand && s.inst.State.Live() && s.interrupted.IsZero()
	})
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
// server's wind-down starts with the notice's deadline, the offering is
// marked unavailable, and (since an interrupted server no longer counts as
// capacity) a replacement is launched in the same pass. Rebalance
// recommendations are passed on to the manager, which may ask for more.
func (p *Pool) interruptions(pl *Plan, now time.Time, servers []*server, byName map[string]*want) {
	for _, s := range servers {
		if s.rebalance && !s.m.rebalanced && s.interrupted.IsZero() {
			s.m.rebalanced = true
			p.event(pl, Event{Kind: EventRebalance, Instance: s.inst.ID, Manager: s.mgr})
			if w := byName[s.mgr]; w != nil {
				pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{w.m, manager.Notice{
					Kind: manager.Rebalance, Server: s.managerServer(), Reason: "EC2 rebalance recommendation"}})
				pl.Changes = append(pl.Changes, Change{Instance: s.inst})
			}
		}
		if s.interrupted.IsZero() || s.m.interrupted {
			continue
		}
		s.m.interrupted = true
		p.cfg.Unavailable.Mark(now, s.inst.Type, s.inst.Zone, awsctl.MarketSpot)
		p.event(pl, Event{Kind: EventInterrupted, Instance: s.inst.ID, Manager: s.mgr, Market: s.inst.Market,
			Inputs: []slog.Attr{slog.Time("deadline", s.interrupted)}})
		if s.phase == phaseWinding || s.taken {
			// Already leaving: record the interruption all the same.
			pl.Changes = append(pl.Changes, Change{Instance: s.inst, Set: map[string]string{TagInterrupted: formatTime(s.interrupted)}})
			continue
		}
		w := byName[s.mgr]
		if s.phase != phaseGranted {
			w = nil
		}
		p.windDownAs(pl, now, s, w, s.interrupted, "spot interruption", manager.Interrupted)
		pl.Changes[len(pl.Changes)-1].Set[TagInterrupted] = formatTime(s.interrupted)
	}
}

// swapReplacements completes make-before-break replacements: a replacement
// that is ready is granted to the manager of the server it replaces, and
// that server is wound down in the same pass. A replacement whose target is
// gone becomes ordinary capacity.
func (p *Pool) swapReplacements(pl *Plan, now time.Time, servers []*server, byName map[string]*want) {
	var byID map[string]*server
	for _, s := range servers {
		if s.replaces == "" || s.taken || s.phase == phaseWinding || s.phase == phaseFailed {
			continue
		}
		if byID == nil {
			byID = make(map[string]*server, len(servers))
			for _, x := range servers {
				byID[x.inst.ID] = x
			}
		}
		x := byID[s.replaces]
		if s.phase == phaseGranted {
			// A swap that a crash cut in half: the replacement is already
			// granted. Finish it: the replaced server winds down.
			s.taken = true
			pl.Changes = append(pl.Changes, Change{Instance: s.inst, Remove: []string{TagReplaces}})
			if x != nil && x.phase == phaseGranted && !x.taken && x.mgr == s.mgr && byName[x.mgr] != nil {
				p.windDown(pl, now, x, byName[x.mgr], now.Add(p.cfg.WindDownTimeout), fmt.Sprintf("replaced by %s %s", s.inst.Market, s.inst.ID))
			}
			s.replaces = ""
			continue
		}
		if x == nil || x.phase != phaseGranted || x.taken || !x.counts() || byName[x.mgr] == nil {
			if s.inst.State == awsctl.StateRunning || s.phase == phaseFree {
				pl.Changes = append(pl.Changes, Change{Instance: s.inst, Remove: []string{TagReplaces}})
				s.taken = s.phase != phaseFree
			}
			s.replaces = ""
			continue
		}
		if s.phase != phaseFree || s.hook {
			s.earmarked = true
			continue
		}
		w := byName[x.mgr]
		s.taken, s.phase, s.mgr = true, phaseGranted, w.name
		pl.Changes = append(pl.Changes, Change{Instance: s.inst, Set: map[string]string{TagManager: w.name}, Remove: []string{TagReplaces}})
		pl.notices[s.inst.ID] = append(pl.notices[s.inst.ID], notice{w.m, manager.Notice{Kind: manager.Granted, Server: s.managerServer(), Reason: "replaces " + x.inst.ID}})
		p.event(pl, Event{Kind: EventGrant, Instance: s.inst.ID, Manager: w.name, Reason: "replaces " + x.inst.ID})
		p.windDown(pl, now, x, w, now.Add(p.cfg.WindDownTimeout), fmt.Sprintf("replaced by %s %s", s.inst.Market, s.inst.ID))
	}
}

// replaceOnDemand starts make-before-break replacements of on-demand
// servers by spot, for managers that accept spot, when the saving over the
// server's expected remaining life exceeds the cost of running both during
// the swap.
func (p *Pool) replaceOnDemand(pl *Plan, now time.Time, servers []*server, wants []*want) {
	if p.cfg.Prices == nil || p.cfg.Market == OnDemand || p.cfg.Replace.Disabled || p.draining {
		return
	}
	byName := make(map[string]*want, len(wants))
	for _, w := range wants {
		byName[w.name] = w
	}
	replaced := map[string]bool{}
	live := 0
	for _, l := range pl.Launches {
		live += l.Capacity // launched this pass for demand
	}
	for _, s := range servers {
		if s.replaces != "" {
			replaced[s.replaces] = true
		}
		if s.phase != phaseFailed && s.interrupted.IsZero() {
			live += s.weight
		}
	}
	cands := filter(servers, func(s *server) bool {
		w := byName[s.mgr]
		return s.phase == phaseGranted && !s.taken && !s.hook && s.counts() && !replaced[s.inst.ID] && !s.reserved &&
			s.inst.Market == awsctl.MarketOnDemand && w != nil && w.req.Market == manager.AnyMarket &&
			now.Sub(s.inst.LaunchTime) >= MinimumCharge
	})
	if len(cands) == 0 {
		return
	}
	p.sortVictims(now, cands, nil)
	choices := p.rank(now, servers, true, false)
	started := 0
	life := p.cfg.Replace.ExpectedLife.Hours()
	overlap := p.cfg.Replace.Overlap.Hours()
	for _, s := range cands {
		if started >= p.cfg.Replace.MaxPerPass || live+s.weight > p.cfg.Max {
			break
		}
		idx := slices.IndexFunc(choices, func(c spotprice.Choice) bool {
			return !c.Rejected && c.Market == awsctl.MarketSpot && c.Offering.Weight == s.weight
		})
		if idx < 0 {
			return // no acceptable spot offering right now
		}
		best := choices[idx]
		odPrice := p.hourly(now, s)
		saving := (odPrice - best.PricePerHour) * life
		swap := best.PricePerHour*max(overlap, MinimumCharge.Hours()) + odPrice*overlap
		if saving <= swap {
			if !s.m.swapSkipped {
				s.m.swapSkipped = true
				p.event(pl, Event{Kind: EventReplaceSkipped, Instance: s.inst.ID, Manager: s.mgr,
					Reason: fmt.Sprintf("saving $%.4f over %v does not pay for the swap ($%.4f)", saving, p.cfg.Replace.ExpectedLife, swap)})
			}
			continue
		}
		offers := []awsctl.Offering{best.Offering}
		for _, c := range choices {
			if !c.Rejected && c.Market == awsctl.MarketSpot && c.Offering.Weight == s.weight && !slices.Contains(offers, c.Offering) {
				offers = append(offers, c.Offering)
			}
		}
		p.addLaunch(pl, awsctl.MarketSpot, s.weight, offers, map[string]string{TagReplaces: s.inst.ID},
			fmt.Sprintf("replaces on-demand %s: %s", s.inst.ID, best.Reason))
		p.event(pl, Event{Kind: EventReplace, Instance: s.inst.ID, Manager: s.mgr, Market: awsctl.MarketSpot,
			Reason: fmt.Sprintf("spot saves $%.4f over %v, swap costs $%.4f", saving, p.cfg.Replace.ExpectedLife, swap)})
		started++
		live += s.weight
	}
}

// minimumSpot returns the extra spot capacity MinimumSpot asks for now.
func (p *Pool) minimumSpot(now time.Time, servers []*server) int {
	ms := p.cfg.MinimumSpot
	if ms == nil || p.draining {
		return 0
	}
	ratio := -1.0
	for _, c := range p.rank(now, servers, true, false) {
		if c.Rejected || c.Market != awsctl.MarketSpot {
			continue
		}
		if od, ok := p.cfg.Prices.OnDemand(c.Offering.InstanceType); ok && od > 0 {
			ratio = c.PricePerHour / p.cfg.Prices.Effective(c.Offering.InstanceType, awsctl.MarketOnDemand, od)
		}
		break
	}
	switch {
	case ratio < 0:
		p.spotExtra = 0
	case ratio <= ms.AddBelow:
		p.spotExtra = ms.Capacity
	case ratio > ms.KeepBelow:
		p.spotExtra = 0
	}
	return p.spotExtra
}
