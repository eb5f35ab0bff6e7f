package pool

import (
	"cmp"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// DefaultSpotHold is how long a pool keeps spot servers over target while
// it cannot buy spot (Config.SpotHold).
const DefaultSpotHold = 10 * time.Minute

// spotShort reports whether the pool cannot buy spot capacity now: it uses
// spot, and every spot offering is unavailable (a capacity error, a quota)
// or priced out by the policy. A spot server shed now would be bought back
// on-demand. Computed once per pass, when scale-down needs it.
func (p *Pool) spotShort(ps *pass) bool {
	if ps.spotShort != nil {
		return *ps.spotShort
	}
	short := false
	if p.cfg.Market != OnDemand && p.cfg.Prices != nil && !p.draining {
		short = !slices.ContainsFunc(p.rank(ps, true, false), func(c spotprice.Choice) bool {
			return !c.Rejected && c.Market == awsctl.MarketSpot
		})
	}
	ps.spotShort = &short
	return short
}

// holdsSpot reports whether a spot server that scale-down would take is
// kept instead: spot is short, and the hold (from the first server kept)
// is younger than SpotHold. It records that a server was kept this pass.
func (p *Pool) holdsSpot(ps *pass, s *server) bool {
	if s.inst.Market != awsctl.MarketSpot || p.cfg.SpotHold <= 0 || !p.spotShort(ps) {
		return false
	}
	if p.spotHoldSince.IsZero() {
		p.spotHoldSince = ps.now
	}
	if ps.now.Sub(p.spotHoldSince) >= p.cfg.SpotHold {
		return false
	}
	ps.spotHeld = true
	return true
}

// onDemandFirst orders scale-down candidates while spot is short: every
// on-demand server goes before any spot one, idle or not, since spot
// cannot be bought back.
func (p *Pool) onDemandFirst(ps *pass, cands []*server) {
	if len(cands) < 2 || !p.spotShort(ps) {
		return
	}
	slices.SortStableFunc(cands, func(a, b *server) int {
		return cmp.Compare(marketIndex(a.inst.Market), marketIndex(b.inst.Market))
	})
}

// endSpotHold forgets a hold when no spot server was kept this pass.
func (p *Pool) endSpotHold(ps *pass) {
	if !ps.spotHeld {
		p.spotHoldSince = time.Time{}
	}
}
