package pool

import (
	"math"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// ledger is a pool's capacity in one pass, in capacity units, counted once
// from the servers and kept up to date by every decision through move. Every
// decision that needs a count reads it here, and so does Status, so that no
// two parts of the pass can disagree on what exists.
type ledger struct {
	// live is what counts toward Max: every server that runs or may run,
	// plus the worst case of this pass's launches.
	live int
	// byState is capacity per lifecycle state, replacements on their way
	// left out (they are in replacing).
	byState [numStates]int
	// replacing is capacity launched to replace a server and not swapped
	// in yet: it counts toward Max but is no capacity for new demand.
	replacing int
	// supply is capacity for new demand not granted yet (on its way or
	// free), by market: index 0 on-demand, 1 spot.
	supply [2]int
	// held is, per manager (by index), what it holds: granted servers and
	// those being restored to it.
	held []int
	// zoneSupply and zoneHeld are supply by zone (and market, as supply)
	// and holdings by manager and zone, kept only in passes where a
	// manager has zone minimums (zoned): a steady pass without them
	// touches no map per server.
	zoned      bool
	zoneSupply map[string][2]int
	zoneHeld   map[mgrZone]int
	// perZone and perOffer are live capacity by zone and by offering, for
	// spreading launches; counted only when a pass launches (see spread).
	perZone  map[string]int
	perOffer map[offeringKey]int
	// offers are the pool's offerings, which server.offer indexes.
	offers []offeringKey
}

// mgrZone is a manager (by index) in a zone.
type mgrZone struct {
	mgr  int
	zone string
}

func marketIndex(m awsctl.Market) int {
	if m == awsctl.MarketSpot {
		return 1
	}
	return 0
}

func (p *Pool) newLedger(servers []*server) *ledger {
	if l := p.observed; l != nil {
		p.observed = nil
		if selfCheck {
			p.checkLedger(servers, l)
		}
		return l // counted by observe
	}
	l := &ledger{held: make([]int, len(p.cfg.Managers)), offers: p.offers}
	for _, s := range servers {
		l.add(s, 1)
	}
	return l
}

// heldBy returns the index of the manager s counts as held by, or -1.
func heldBy(s *server) int {
	if s.mgr == "" {
		return -1
	}
	switch s.state {
	case granted:
		if s.replaces != nil {
			return -1 // a swap a crash cut in half: counted once, as the server it replaces
		}
		return s.mgrIdx
	case restoring:
		if !s.m.restoreFree {
			return s.mgrIdx
		}
	}
	return -1
}

// add counts s into the ledger (sign 1) or out of it (sign -1).
func (l *ledger) add(s *server, sign int) {
	w := s.weight * sign
	// Every server the pass sees counts toward Max until EC2 shows it
	// shutting down: interrupted ones until EC2 takes them, stopped ones
	// until the pass has terminated them. Max is what EC2 holds.
	l.live += w
	if s.replaces != nil && s.state != granted {
		l.replacing += w // earmarked: counted apart from the states
	} else {
		l.byState[s.state] += w
	}
	if s.supply() {
		l.supply[marketIndex(s.inst.Market)] += w
		if l.zoned {
			zs := l.zoneSupply[s.inst.Zone]
			zs[marketIndex(s.inst.Market)] += w
			l.zoneSupply[s.inst.Zone] = zs
		}
	}
	if i := heldBy(s); i >= 0 {
		l.held[i] += w
		if l.zoned {
			l.zoneHeld[mgrZone{i, s.inst.Zone}] += w
		}
	}
}

// move changes s's state (and, for a grant, its manager) and keeps the
// ledger in step. Every decision changes a server's state through here.
func (p *Pool) move(l *ledger, s *server, to state, mgr *want) {
	l.add(s, -1)
	if !allowed(s.state, to) {
		// A decision outside the lifecycle's table is a bug; the state
		// still changes so the ledger stays right, and the event says so.
		p.bugs = append(p.bugs, s.inst.ID+": "+s.state.String()+" -> "+to.String())
	}
	s.state = to
	if mgr != nil {
		s.mgr, s.mgrIdx = mgr.name, mgr.index
	}
	s.decided = true
	l.add(s, 1)
}

// trackZones starts counting supply and holdings by zone, for a pass
// where a manager has zone minimums.
func (l *ledger) trackZones(servers []*server) {
	l.zoned = true
	l.zoneSupply, l.zoneHeld = map[string][2]int{}, map[mgrZone]int{}
	for _, s := range servers {
		if s.supply() {
			zs := l.zoneSupply[s.inst.Zone]
			zs[marketIndex(s.inst.Market)] += s.weight
			l.zoneSupply[s.inst.Zone] = zs
		}
		if i := heldBy(s); i >= 0 {
			l.zoneHeld[mgrZone{i, s.inst.Zone}] += s.weight
		}
	}
}

// spread returns live capacity by zone and by offering, counting it the
// first time a pass needs it. State moves do not change it (every server
// the pass sees counts toward Max); launches add to it as they are planned.
func (l *ledger) spread(servers []*server) (map[string]int, map[offeringKey]int) {
	if l.perZone == nil {
		// Counted by offering index, then turned into the maps: a map
		// update per offering, not per server.
		counts := make([]int, len(l.offers))
		for _, s := range servers {
			counts[s.offer] += s.weight
		}
		l.perZone, l.perOffer = map[string]int{}, map[offeringKey]int{}
		for i, n := range counts {
			if n == 0 {
				continue
			}
			k := l.offers[i]
			l.perZone[k.zone] += n
			l.perOffer[k] += n
		}
	}
	return l.perZone, l.perOffer
}

// spend is what the pass's servers cost per hour: each offering priced
// once, added up server by server in the pass's order.
func (p *Pool) spend(ps *pass) float64 {
	if p.cfg.Price != nil {
		total := 0.0
		for _, s := range ps.servers {
			total += p.hourly(ps.now, s)
		}
		return total
	}
	// price[2*offer] is the offering's hourly price, price[2*offer+1] that
	// of a reserved server of it; NaN until needed.
	price := make([]float64, 2*len(p.offers))
	for i := range price {
		price[i] = math.NaN()
	}
	total := 0.0
	for _, s := range ps.servers {
		i := 2 * int(s.offer)
		if s.reserved {
			i++
		}
		if math.IsNaN(price[i]) {
			price[i] = p.hourly(ps.now, s)
		}
		total += price[i]
	}
	return total
}
