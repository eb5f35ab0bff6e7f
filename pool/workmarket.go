package pool

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// workMarkets chooses a market for each part of a manager's work
// (manager.Request.Work), for managers that accept either market in a pool
// that buys spot: a part goes on-demand when its expected cost on the best
// spot offering, counting the work interruptions lose and the wait for a
// replacement (spotprice.SpotWorkCost), is above the cheapest on-demand
// offering per capacity unit; otherwise it is bought as the rest of the
// target is. It sets each such manager's odWork (the units to hold on
// demand) and heldOD (the on-demand units it holds working).
//
// The choice reads only the request, the prices and the markets of the
// servers the manager holds, so a restarted scaler chooses alike: nothing
// of it is kept but the last choice reported, for events.
func (p *Pool) workMarkets(ps *pass) {
	if p.cfg.Prices == nil || p.cfg.Market == OnDemand {
		return
	}
	var choices []spotprice.Choice
	ranked := false
	held := heldOnDemand{ps: ps}
	for _, w := range ps.wants {
		w.odWork, w.odKeep, w.heldOD = 0, 0, 0
		if w.req.Market != manager.AnyMarket {
			delete(p.workKept, w.name)
			continue
		}
		if len(w.req.Work) == 0 {
			if _, ok := p.workKept[w.name]; ok {
				p.keepWorkOD(ps, w, &held) // the work ended: its servers wait for the next
			}
			continue
		}
		if !ranked {
			choices, ranked = p.rank(ps, true, true), true
		}
		od := math.Inf(1)
		for _, c := range choices {
			if !c.Rejected && !c.Reserved && c.Market == awsctl.MarketOnDemand {
				od = min(od, c.CostPerUnit)
			}
		}
		if math.IsInf(od, 1) {
			continue // no on-demand to choose
		}
		for _, wk := range w.req.Work {
			if wk.Units <= 0 || wk.Run <= 0 {
				continue
			}
			best, bestCost, bestRate, found := math.Inf(1), spotprice.WorkCost{}, 0.0, false
			var bestChoice spotprice.Choice
			for _, c := range choices {
				if c.Rejected || c.Market != awsctl.MarketSpot {
					continue
				}
				weight := c.Offering.Weight
				// A replacement is launched at the notice, which comes
				// awsctl.InterruptionNoticeLead before EC2 reclaims the
				// server: the work waits for the rest of its boot.
				boot, _ := p.swapOverlap(offeringKey{c.Offering.InstanceType, c.Offering.Zone, awsctl.MarketSpot})
				piece := spotprice.Work{Run: wk.Run, Checkpoint: wk.Checkpoint,
					Instances: (max(1, wk.Width) + weight - 1) / weight, Wait: max(0, boot-awsctl.InterruptionNoticeLead)}
				rate := spotprice.InterruptionRate(p.cfg.Prices, c.Offering.InstanceType, c.Offering.Zone, ps.now)
				wc := spotprice.SpotWorkCost(piece, c.PricePerHour, od*float64(weight), rate)
				if math.IsNaN(wc.Spot) {
					// Work that would practically never finish on spot
					// overflows its expected cost (infinite restarts
					// times no wait): infinite, above on-demand.
					wc.Spot, wc.Interruption = math.Inf(1), math.Inf(1)
				}
				if perUnit := wc.Spot / float64(weight); !found || perUnit < best {
					best, bestCost, bestRate, bestChoice, found = perUnit, wc, rate, c, true
				}
			}
			if !found {
				continue // no spot to choose: the pool buys on demand anyway
			}
			mk := awsctl.MarketSpot
			if best > od {
				mk = awsctl.MarketOnDemand
				w.odWork += wk.Units
			}
			p.reportWorkMarket(ps, w, wk, mk, bestChoice, bestCost, bestRate, od)
		}
		p.keepWorkOD(ps, w, &held)
	}
}

// heldOnDemand is the on-demand capacity each manager holds working (not
// being replaced; being restored to it counts), counted in one walk over
// the servers the first time a pass asks, for all managers at once.
type heldOnDemand struct {
	ps    *pass
	byMgr []int // by manager index; nil until counted
}

func (h *heldOnDemand) of(w *want) int {
	if h.byMgr == nil {
		h.byMgr = make([]int, len(h.ps.wants))
		for _, s := range h.ps.servers {
			mine := s.state == granted || s.state == restoring && !s.m.restoreFree
			if mine && s.inst.Market == awsctl.MarketOnDemand && !s.replaced() &&
				s.mgrIdx >= 0 && s.mgrIdx < len(h.byMgr) {
				h.byMgr[s.mgrIdx] += s.weight
			}
		}
	}
	return h.byMgr[w.index]
}

// keepWorkOD sets w.odKeep, the on-demand capacity kept for w's work: the
// most its work put on demand (w.odWork) over the last WorkKeep, so the
// on-demand servers that ran long work wait, neither swapped for spot nor
// wound down, for the next long job instead of being replaced and
// launched again. In the pool's first pass (a restarted scaler) the
// on-demand capacity w holds stands for what its work wanted before, for
// one WorkKeep, as the Queue's scale-down delay starts from what is held.
func (p *Pool) keepWorkOD(ps *pass, w *want, heldOD *heldOnDemand) {
	if p.cfg.WorkKeep < 0 {
		delete(p.workKept, w.name)
		if w.odWork > 0 {
			w.odKeep, w.heldOD = w.odWork, heldOD.of(w)
		}
		return
	}
	hist, seen := p.workKept[w.name]
	if !seen && w.odWork == 0 && p.pass != 1 {
		return // nothing on demand to keep
	}
	held := heldOD.of(w)
	if !seen && p.pass == 1 {
		hist = append(hist, odAt{ps.now, max(w.odWork, held)})
	}
	if n := len(hist); n == 0 || hist[n-1].units != w.odWork {
		hist = append(hist, odAt{ps.now, w.odWork})
	}
	// An entry holds from its time to the next one's: it is in effect
	// within the window until the next one is older than the window.
	from := ps.now.Add(-p.cfg.WorkKeep)
	drop := 0
	for drop+1 < len(hist) && !hist[drop+1].at.After(from) {
		drop++
	}
	hist = hist[drop:]
	keep := 0
	for _, e := range hist {
		keep = max(keep, e.units)
	}
	if keep == 0 {
		delete(p.workKept, w.name)
		return
	}
	if p.workKept == nil {
		p.workKept = map[string][]odAt{}
	}
	p.workKept[w.name] = hist
	w.odKeep, w.heldOD = keep, held
}

// odAt is the on-demand capacity a manager's work wanted from a time on.
type odAt struct {
	at    time.Time
	units int
}

// reportWorkMarket reports the market chosen for a class of w's work when
// it differs from the last one reported.
func (p *Pool) reportWorkMarket(ps *pass, w *want, wk manager.Work, mk awsctl.Market, c spotprice.Choice, wc spotprice.WorkCost, rate, od float64) {
	key := w.name + "\x00" + wk.Class
	if p.workMarket[key] == mk {
		return
	}
	if p.workMarket == nil {
		p.workMarket = map[string]awsctl.Market{}
	}
	p.workMarket[key] = mk
	weight := float64(c.Offering.Weight)
	spot, intr := c.PricePerHour/weight, wc.Interruption/weight
	ck := "no checkpoints"
	if wk.Checkpoint > 0 {
		ck = "checkpoints every " + wk.Checkpoint.String()
	}
	cmpText := "<="
	if mk == awsctl.MarketOnDemand {
		cmpText = ">"
	}
	p.event(ps.pl, Event{Kind: EventWorkMarket, Manager: w.name, Market: mk, Capacity: wk.Units,
		InstanceType: c.Offering.InstanceType, Zone: c.Offering.Zone,
		Reason: fmt.Sprintf("%s work (%v, %s): spot $%.4f + interruptions $%.4f %s on-demand $%.4f per unit-hour",
			wk.Class, wk.Run, ck, spot, intr, cmpText, od),
		Inputs: []slog.Attr{slog.String("class", wk.Class), slog.Duration("run", wk.Run),
			slog.Duration("checkpoint", wk.Checkpoint), slog.Int("width", max(1, wk.Width)),
			slog.Float64("spot", spot), slog.Float64("interruption", intr), slog.Float64("rate", rate),
			slog.Float64("on_demand", od)}})
}
