package pool

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// need is capacity still missing, by the market it must come from.
type need struct{ spot, od, any int }

func (n need) total() int { return n.spot + n.od + n.any }

// balance compares what is on its way with what is still needed: it cancels
// wind-downs or launches when short, and winds spare servers down when long.
func (p *Pool) balance(pl *Plan, now time.Time, servers []*server, wants []*want, sumTarget int) {
	minimum := p.cfg.Min
	if p.draining {
		minimum = 0
	}
	var n need
	for _, w := range wants {
		left := w.need()
		extra := min(left, w.extraSpot)
		n.spot += extra
		left -= extra
		switch w.req.Market {
		case manager.SpotOnly:
			n.spot += left
		case manager.OnDemandOnly:
			n.od += left
		default:
			n.any += left
		}
	}
	n.any += max(0, minimum-sumTarget)

	supply := map[awsctl.Market]int{}
	live := 0
	for _, s := range servers {
		if s.phase != phaseFailed && s.interrupted.IsZero() {
			live += s.weight // replacements on their way exist too
		}
		if !s.counts() {
			continue
		}
		switch s.phase {
		case phaseBooting, phaseProvisioning:
			supply[s.inst.Market] += s.weight
		case phaseFree:
			if !s.taken {
				supply[s.inst.Market] += s.weight
			}
		case phaseWinding:
			if s.restoring && (s.m.restoreFree || s.mgr == "") {
				supply[s.inst.Market] += s.weight
			}
		}
	}
	leftSpot := supply[awsctl.MarketSpot] - n.spot
	leftOD := supply[awsctl.MarketOnDemand] - n.od
	short := need{
		spot: max(0, -leftSpot),
		od:   max(0, -leftOD),
		any:  max(0, n.any-max(0, leftSpot)-max(0, leftOD)),
	}
	if short.total() > 0 {
		p.fillShortage(pl, now, servers, wants, short, live)
		return
	}
	// Long: wind spare free servers down, most expensive first.
	surplus := max(0, leftSpot) + max(0, leftOD) - n.any
	if surplus <= 0 {
		return
	}
	cands := filter(servers, func(s *server) bool { return s.phase == phaseFree && !s.taken && !s.hook && s.counts() })
	p.sortVictims(now, cands, nil)
	for _, s := range cands {
		if surplus < s.weight {
			continue
		}
		deadline, ok := p.removable(now, s)
		if !ok {
			continue
		}
		p.windDown(pl, now, s, nil, deadline, "spare capacity")
		surplus -= s.weight
	}
}

// fillShortage cancels wind-downs before launching: a restored server works
// at once and costs no boot. Wound-down servers are the cleanest to take.
func (p *Pool) fillShortage(pl *Plan, now time.Time, servers []*server, wants []*want, short need, live int) {
	cands := filter(servers, func(s *server) bool {
		return s.phase == phaseWinding && !s.taken && !s.hook && !s.m.tornDown && s.m.failed == nil && s.counts()
	})
	slices.SortStableFunc(cands, func(a, b *server) int {
		if a.m.woundDown != b.m.woundDown {
			if a.m.woundDown {
				return -1
			}
			return 1
		}
		return cmp.Or(b.deadline.Compare(a.deadline), oldestFirst(a, b))
	})
	for _, s := range cands {
		slot := &short.any
		if s.inst.Market == awsctl.MarketSpot && short.spot >= s.weight {
			slot = &short.spot
		} else if s.inst.Market == awsctl.MarketOnDemand && short.od >= s.weight {
			slot = &short.od
		}
		if *slot < s.weight {
			continue
		}
		p.restore(pl, s, true, "capacity needed; cheaper than a launch")
		*slot -= s.weight
	}
	room := p.cfg.Max - live
	if short.total() > room {
		p.event(pl, Event{Kind: EventAtMax, Capacity: short.total(),
			Reason: fmt.Sprintf("need %d more, pool holds %d of max %d", short.total(), live, p.cfg.Max)})
	}
	for _, c := range []struct {
		units              int
		allowSpot, allowOD bool
		class              string
	}{
		{short.od, false, true, "on-demand only"},
		{short.spot, true, false, "spot only"},
		{short.any, p.cfg.Market == Spot, true, "any market"},
	} {
		units := min(c.units, room)
		if units <= 0 {
			continue
		}
		room -= units
		if p.cfg.Prices == nil {
			mk := awsctl.MarketOnDemand
			if !c.allowOD {
				mk = awsctl.MarketSpot
			}
			p.launchSpread(pl, servers, wants, mk, units)
			continue
		}
		p.launchPriced(pl, now, servers, units, c.allowSpot, c.allowOD, c.class)
	}
}

// launchSpread asks for n capacity units in market mk, spread over the
// pool's zones (fewest servers first), in requests of at most LaunchBatch
// units. Each request lists the zone's offerings first and the other zones'
// after them, so a capacity shortage in one zone falls back to another.
func (p *Pool) launchSpread(pl *Plan, servers []*server, wants []*want, mk awsctl.Market, n int) {
	perZone := map[string]int{}
	for _, s := range servers {
		perZone[s.inst.Zone] += s.weight
	}
	order := slices.Clone(p.cfg.Zones)
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(perZone[a], perZone[b]) })
	// Zones where a manager's minimum is unmet come first.
	for _, w := range wants {
		for z, minimum := range w.req.ZoneMinimums {
			if minimum > w.zoneHeld[z] && slices.Contains(order, z) {
				order = slices.DeleteFunc(order, func(x string) bool { return x == z })
				order = slices.Insert(order, 0, z)
			}
		}
	}
	share := make(map[string]int, len(order))
	for i := 0; n > 0; i++ {
		share[order[i%len(order)]]++
		n--
	}
	for _, z := range order {
		offers := p.offerings(z)
		for left := share[z]; left > 0; {
			batch := min(left, p.cfg.LaunchBatch)
			left -= batch
			p.addLaunch(pl, mk, batch, offers, nil, fmt.Sprintf("%s in %s", mk, z))
		}
	}
}

func (p *Pool) addLaunch(pl *Plan, mk awsctl.Market, capacity int, offers []awsctl.Offering, extraTags map[string]string, why string) {
	tags := map[string]string{TagPool: p.cfg.Name, TagRole: p.cfg.Role.Name()}
	for k, v := range extraTags {
		tags[k] = v
	}
	req := awsctl.LaunchRequest{
		Spec:      p.cfg.Role.LaunchSpec(),
		Market:    mk,
		Capacity:  capacity,
		Tags:      tags,
		Offerings: offers,
	}
	if mk == awsctl.MarketSpot {
		req.MaxPrice = p.cfg.Policy.MaxSpotPrice
	}
	pl.Launches = append(pl.Launches, req)
	pl.launchWhy = append(pl.launchWhy, why)
}

func (p *Pool) offerings(first string) []awsctl.Offering {
	out := make([]awsctl.Offering, 0, len(p.cfg.Types)*len(p.cfg.Zones))
	for _, t := range p.cfg.Types {
		out = append(out, awsctl.Offering{InstanceType: t.Name, Zone: first, Weight: t.Weight})
	}
	for _, z := range p.cfg.Zones {
		if z == first {
			continue
		}
		for _, t := range p.cfg.Types {
			out = append(out, awsctl.Offering{InstanceType: t.Name, Zone: z, Weight: t.Weight})
		}
	}
	return out
}

// allOfferings is every (type, zone) of the pool, in configuration order.
func (p *Pool) allOfferings() []awsctl.Offering {
	out := make([]awsctl.Offering, 0, len(p.cfg.Types)*len(p.cfg.Zones))
	for _, z := range p.cfg.Zones {
		for _, t := range p.cfg.Types {
			out = append(out, awsctl.Offering{InstanceType: t.Name, Zone: z, Weight: t.Weight})
		}
	}
	return out
}
