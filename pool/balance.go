package pool

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// need is capacity still missing, by the market it must come from.
type need struct{ spot, od, any int }

func (n need) total() int { return n.spot + n.od + n.any }

// take removes u units from the bucket of market mk (or any), and reports
// how many it took.
func (n *need) take(mk awsctl.Market, u int) int {
	slot := &n.any
	if mk == awsctl.MarketSpot && n.spot > 0 {
		slot = &n.spot
	} else if mk == awsctl.MarketOnDemand && n.od > 0 {
		slot = &n.od
	}
	t := min(u, *slot)
	*slot -= t
	return t
}

// launchNeed is capacity to launch: how much, in which markets, and in one
// zone only ("" for any).
type launchNeed struct {
	units              int
	allowSpot, allowOD bool
	// anyMarket: the managers behind the need accept either market, so a
	// winding-down server of either can cover it, whatever market a launch
	// would use.
	anyMarket bool
	zone      string
	class     string
}

// balance compares the supply of the ledger with what the managers still
// need: when short it takes back winding-down servers, then launches within
// Max; when long it winds spare free servers down.
func (p *Pool) balance(ps *pass) {
	l := ps.l
	// Zone minimums first: what a manager misses in a zone can only come
	// from that zone, so it is launched there whatever the pool holds
	// elsewhere.
	var zoneNeeds []launchNeed
	var used [2]int  // supply the zone minimums take, by market (as l.supply)
	var zoneOD []int // by manager: on-demand work launched for a zone minimum
	for _, z := range p.cfg.Zones {
		zs := l.zoneSupply[z]
		d, od, mk := 0, 0, awsctl.Market("")
		for _, w := range ps.wants {
			zd := ps.zoneDeficit(w, z)
			if zd <= 0 {
				continue
			}
			d += zd
			switch w.req.Market {
			case manager.SpotOnly:
				mk = awsctl.MarketSpot
			case manager.OnDemandOnly:
				mk = awsctl.MarketOnDemand
			default:
				// On-demand capacity its work lacks, and no on-demand
				// supply elsewhere brings, goes where the minimum lacks
				// capacity: one server meets both.
				if zoneOD == nil {
					zoneOD = make([]int, len(ps.wants))
				}
				lack := w.odWork - w.heldOD - zoneOD[w.index] - max(0, l.supply[0]-used[0]-zs[0])
				if t := min(zd, lack); t > 0 {
					od += t
					zoneOD[w.index] += t
				}
			}
		}
		if d == 0 {
			continue
		}
		// The zone's on-demand supply meets the work's part; the rest of
		// the minimum takes the zone's spot supply first: on-demand supply
		// is what work and on-demand-only managers need.
		fromOD := min(od, zs[0])
		used[0] += fromOD
		zs[0] -= fromOD
		first := 1
		if mk == awsctl.MarketOnDemand {
			first = 0
		}
		rest := d - od
		a := min(rest, zs[first])
		b := min(rest-a, zs[1-first])
		used[first] += a
		used[1-first] += b
		if n := od - fromOD; n > 0 {
			zoneNeeds = append(zoneNeeds, launchNeed{units: n, allowOD: true, zone: z,
				class: "zone minimum in " + z + ", on demand for work"})
		}
		if n := rest - a - b; n > 0 {
			zoneNeeds = append(zoneNeeds, launchNeed{units: n,
				allowSpot: mk == awsctl.MarketSpot || mk == "" && p.cfg.Market == Spot,
				allowOD:   mk != awsctl.MarketSpot, anyMarket: mk == "", zone: z, class: "zone minimum in " + z})
		}
	}
	var n need
	sumTarget := 0
	for _, w := range ps.wants {
		sumTarget += w.target
		left := max(0, w.target-ps.held(w)-ps.zoneDeficit(w, ""))
		extra := min(left, w.extraSpot)
		n.spot += extra
		left -= extra
		switch w.req.Market {
		case manager.SpotOnly:
			n.spot += left
		case manager.OnDemandOnly:
			n.od += left
		default:
			// Work that spot would cost more than on-demand, counting what
			// interruptions lose: on-demand, beyond what the manager holds,
			// even above its target: takeExcess then gives back spare spot
			// servers instead (an exchange, for work the spot servers it
			// holds should not run).
			od := w.odWork - w.heldOD
			if zoneOD != nil {
				od -= zoneOD[w.index] // launched, or met, in a zone above
			}
			od = max(0, od)
			n.od += od
			n.any += left - min(left, od)
		}
	}
	n.any += max(0, ps.minimum-sumTarget)

	// left is each market's supply beyond what is needed of it, and
	// surplus what all of it leaves spare; taking winding-down servers back
	// adds to the supply.
	left := func() (spot, od int) {
		return max(0, l.supply[1]-used[1]) - n.spot, max(0, l.supply[0]-used[0]) - n.od
	}
	surplus := func() int {
		spot, od := left()
		return max(0, spot) + max(0, od) - n.any
	}
	leftSpot, leftOD := left()
	short := need{
		spot: max(0, -leftSpot),
		od:   max(0, -leftOD),
		any:  max(0, n.any-max(0, leftSpot)-max(0, leftOD)),
	}
	if short.total() > 0 || len(zoneNeeds) > 0 {
		for i := range zoneNeeds {
			zn := &zoneNeeds[i]
			p.claimInZone(ps, zn)
		}
		p.claimWindingDown(ps, &short)
		if short.total() == 0 && !slices.ContainsFunc(zoneNeeds, func(zn launchNeed) bool { return zn.units > 0 }) {
			// Covered by what was taken back. A server heavier than the
			// shortage leaves capacity spare: it goes this pass, as it would
			// the next, which may be too late for an hourly server at its
			// paid hour's end (it would stay a paid hour more).
			p.windDownSpare(ps, surplus())
		}
		p.launch(ps, short, zoneNeeds)
	} else {
		p.windDownSpare(ps, surplus())
	}
	p.trimToMax(ps)
	p.endSpotHold(ps)
}

// claimWindingDown covers a shortage with winding-down servers before any
// launch: a spare one (no work) or one already wound down is restored to
// the pool now; one still finishing a manager's work is handed over once it
// is wound down.
func (p *Pool) claimWindingDown(ps *pass, short *need) {
	var cands []*server
	for _, s := range ps.servers {
		if p.restorable(s) {
			cands = append(cands, s)
		}
	}
	slices.SortStableFunc(cands, func(a, b *server) int {
		ready := func(s *server) bool { return s.mgr == "" || s.m.woundDown }
		if ready(a) != ready(b) {
			if ready(a) {
				return -1
			}
			return 1
		}
		return cmp.Or(b.deadline.Compare(a.deadline), oldestFirst(a, b))
	})
	for _, s := range cands {
		if short.total() == 0 {
			return
		}
		// A server heavier than what is missing is taken all the same (a
		// launch would round up too), as long as its market is wanted.
		probe := *short
		if probe.take(s.inst.Market, s.weight) == 0 {
			continue
		}
		*short = probe
		p.claim(ps, s)
	}
}

// claimInZone covers a zone minimum's shortfall with winding-down servers
// of that zone, as claimWindingDown does for the rest.
func (p *Pool) claimInZone(ps *pass, zn *launchNeed) {
	for _, s := range ps.servers {
		if zn.units <= 0 {
			return
		}
		if !p.restorable(s) || s.inst.Zone != zn.zone ||
			(s.inst.Market == awsctl.MarketSpot && !zn.allowSpot && !zn.anyMarket) ||
			(s.inst.Market == awsctl.MarketOnDemand && !zn.allowOD && !zn.anyMarket) {
			continue
		}
		zn.units -= s.weight
		p.claim(ps, s)
	}
}

// claim keeps a winding-down server as capacity: restored to the pool now
// if it has no work to finish, else handed over once it is wound down.
func (p *Pool) claim(ps *pass, s *server) {
	if s.mgr == "" || s.m.woundDown {
		p.restore(ps, s, true, "capacity needed; cheaper than a launch")
		return
	}
	s.handover = true
	s.decided = true
	if s.m.handOver {
		return // reported when first kept
	}
	s.m.handOver = true
	p.event(ps.pl, Event{Kind: EventHandOver, Instance: s.inst.ID, Manager: s.mgr,
		Reason: "capacity needed: kept for the pool once wound down, instead of a launch"})
}

// launch launches within the room Max leaves: first what managers miss of
// their zone minimums, in those zones, then the shortage.
func (p *Pool) launch(ps *pass, short need, zoneNeeds []launchNeed) {
	if p.holding(ps) {
		return
	}
	room := p.cfg.Max - ps.l.live
	total := short.total()
	for _, zn := range zoneNeeds {
		total += zn.units
	}
	if total > room {
		p.event(ps.pl, Event{Kind: EventAtMax, Capacity: total,
			Reason: fmt.Sprintf("need %d more, pool holds %d of max %d", total, ps.l.live, p.cfg.Max)})
	}
	needs := zoneNeeds
	needs = append(needs,
		launchNeed{units: short.od, allowOD: true, class: "on-demand only"},
		launchNeed{units: short.spot, allowSpot: true, class: "spot only"},
		launchNeed{units: short.any, allowSpot: p.cfg.Market == Spot, allowOD: true, class: "any market"})
	for _, ln := range needs {
		if room <= 0 {
			return
		}
		if ln.units <= 0 {
			continue
		}
		ln.units = min(ln.units, room)
		if p.cfg.Prices == nil {
			mk := awsctl.MarketOnDemand
			if !ln.allowOD {
				mk = awsctl.MarketSpot
			}
			room -= p.launchSpread(ps, mk, ln, room)
			continue
		}
		room -= p.launchPriced(ps, ln, room)
	}
}

// windDownSpare winds spare free servers down, most expensive first, up to
// surplus units.
func (p *Pool) windDownSpare(ps *pass, surplus int) {
	if surplus <= 0 {
		return
	}
	var cands []*server
	for _, s := range ps.servers {
		if s.state == free && !s.decided && s.idle() && s.replaces == nil {
			cands = append(cands, s)
		}
	}
	p.sortVictims(ps.now, cands, nil)
	p.onDemandFirst(ps, cands)
	for _, s := range cands {
		if surplus < s.weight || p.holdsSpot(ps, s) {
			continue
		}
		deadline, ok := p.removable(ps.now, s)
		if !ok {
			continue
		}
		p.windDown(ps, s, nil, deadline, "spare capacity", manager.WindDown, nil)
		surplus -= s.weight
	}
}

// trimToMax winds servers down when the pool holds more than Max (a lowered
// Max, or a launch EC2 filled beyond what was asked): spare ones first, then
// granted ones, even if that leaves a manager short, since Max is a hard
// cap. Servers already leaving are counted as gone.
func (p *Pool) trimToMax(ps *pass) {
	l := ps.l
	leaving := l.byState[windingDown] + l.byState[retiring] + l.byState[interrupted] + l.byState[stopped]
	for _, s := range ps.servers {
		if s.handover && s.state == windingDown {
			leaving -= s.weight
		}
	}
	over := l.live - leaving - p.cfg.Max
	if over <= 0 {
		return
	}
	var cands []*server
	for _, s := range ps.servers {
		if (s.state == free || s.state == granted || s.state == provisioning) && !s.decided && s.idle() {
			cands = append(cands, s)
		}
	}
	p.sortVictims(ps.now, cands, nil)
	slices.SortStableFunc(cands, func(a, b *server) int {
		return cmp.Compare(rankForTrim(a), rankForTrim(b))
	})
	for _, s := range cands {
		if over <= 0 {
			return
		}
		w := p.wantOf(ps, s.mgr)
		if s.state != granted {
			w = nil
		}
		p.windDown(ps, s, w, ps.now.Add(p.cfg.WindDownTimeout),
			fmt.Sprintf("pool holds %d, above max %d", l.live-leaving, p.cfg.Max), manager.WindDown, nil)
		over -= s.weight
	}
}

func rankForTrim(s *server) int {
	if s.state == granted {
		return 1
	}
	return 0
}

// launchSpread asks for ln.units of capacity in market mk, spread over the
// pool's zones (least capacity first), in requests of at most LaunchBatch
// units. Each request lists the zone's offerings first and the other zones'
// after them, so a capacity shortage in one zone falls back to another;
// only types whose weight keeps the request's worst case within room are
// offered. It returns the room used.
func (p *Pool) launchSpread(ps *pass, mk awsctl.Market, ln launchNeed, room int) int {
	order := []string{ln.zone}
	if ln.zone == "" {
		order = slices.Clone(p.cfg.Zones)
		perZone, _ := ps.l.spread(ps.servers)
		slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(perZone[a], perZone[b]) })
	}
	share := make(map[string]int, len(order))
	for i, n := 0, ln.units; n > 0; i++ {
		share[order[i%len(order)]]++
		n--
	}
	// Each request may use the room the requests after it do not need:
	// that slack is what a heavier fallback type, or rounding up to a type's
	// weight, may fill beyond the request's capacity. Without slack, only
	// offerings that fill exactly are listed.
	used, toAsk := 0, ln.units
	for _, z := range order {
		for left := share[z]; left > 0; {
			batch := min(left, p.cfg.LaunchBatch, room-used)
			if batch <= 0 {
				return used
			}
			toAsk -= batch
			offers, worst := fitOffers(p.available(ps, mk, p.offerings(z, ln.zone != "")), batch, room-used-toAsk)
			if len(offers) == 0 {
				left -= batch
				continue
			}
			left -= batch
			used += worst
			p.addLaunch(ps, mk, batch, offers, worst, nil, fmt.Sprintf("%s in %s (%s)", mk, z, ln.class))
			perZone, _ := ps.l.spread(ps.servers)
			perZone[z] += batch
		}
	}
	return used
}

// worstFill is the most capacity EC2 may launch for a request of capacity
// units over offers: it launches instances until the capacity is met, so
// the last one may overshoot by its weight less one; with a single weight
// the overshoot is only the rounding up to that weight.
func worstFill(capacity int, offers []awsctl.Offering) int {
	if len(offers) == 0 {
		return 0
	}
	lo, hi := offers[0].Weight, offers[0].Weight
	for _, o := range offers {
		lo, hi = min(lo, o.Weight), max(hi, o.Weight)
	}
	if lo == hi {
		return (capacity + hi - 1) / hi * hi
	}
	return capacity + hi - 1
}

// fitOffers keeps the offers whose worst fill of capacity stays within
// room: every offer light enough if that fits, else the offers of the
// heaviest single weight that fits. EC2 fills a request with any offer it
// lists, so a heavier fallback must never be listed where it would take the
// pool above Max.
func fitOffers(offers []awsctl.Offering, capacity, room int) ([]awsctl.Offering, int) {
	if capacity <= 0 || room <= 0 {
		return nil, 0
	}
	var light []awsctl.Offering
	for _, o := range offers {
		if o.Weight <= room-capacity+1 {
			light = append(light, o)
		}
	}
	if w := worstFill(capacity, light); len(light) > 0 && w <= room {
		return light, w
	}
	weights := map[int]bool{}
	for _, o := range offers {
		weights[o.Weight] = true
	}
	best := 0
	for w := range weights {
		if (capacity+w-1)/w*w <= room && w > best {
			best = w
		}
	}
	if best == 0 {
		return nil, 0
	}
	var same []awsctl.Offering
	for _, o := range offers {
		if o.Weight == best {
			same = append(same, o)
		}
	}
	return same, worstFill(capacity, same)
}

func (p *Pool) addLaunch(ps *pass, mk awsctl.Market, capacity int, offers []awsctl.Offering, worst int, extraTags map[string]string, why string) {
	tags := map[string]string{TagPool: p.cfg.Name, TagRole: p.cfg.Role.Name(), TagSpec: ps.spec}
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
	ps.pl.Launches = append(ps.pl.Launches, req)
	ps.pl.launchWhy = append(ps.pl.launchWhy, why)
	ps.l.live += worst
}

// available drops the offerings that just failed for lack of capacity in
// market mk, unless that leaves none (then EC2 is asked anyway: the entry
// may be stale).
func (p *Pool) available(ps *pass, mk awsctl.Market, offers []awsctl.Offering) []awsctl.Offering {
	out := make([]awsctl.Offering, 0, len(offers))
	for _, o := range offers {
		if _, out := p.cfg.Unavailable.IsUnavailable(ps.now, o.InstanceType, o.Zone, mk); out {
			continue
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return offers
	}
	return out
}

// offerings lists the pool's offerings with zone first, then (unless only)
// the other zones'.
func (p *Pool) offerings(first string, only bool) []awsctl.Offering {
	out := make([]awsctl.Offering, 0, len(p.cfg.Types)*len(p.cfg.Zones))
	add := func(z string) {
		for _, t := range p.cfg.Types {
			out = append(out, awsctl.Offering{InstanceType: t.Name, Zone: z, Weight: t.Weight})
		}
	}
	add(first)
	if only {
		return out
	}
	for _, z := range p.cfg.Zones {
		if z != first {
			add(z)
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
