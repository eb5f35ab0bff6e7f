package ec2sim

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// seriesKey names one spot price series.
type seriesKey struct{ instanceType, zone string }

// pricePoint is one price change of a series.
type pricePoint struct {
	at    time.Time
	price float64
}

// spotMarket holds the replayed price history, per series in time order.
// It is built once by New and never changes, so lookups need no copying.
type spotMarket struct {
	enabled bool // Config.SpotPrices had records: spot needs a price
	series  map[seriesKey][]pricePoint
	types   []string // instance types with a series, sorted
}

func newSpotMarket(records []awsctl.SpotPrice, zones map[string]bool) spotMarket {
	m := spotMarket{enabled: len(records) > 0, series: map[seriesKey][]pricePoint{}}
	for _, p := range records {
		if !zones[p.Zone] {
			continue
		}
		k := seriesKey{p.InstanceType, p.Zone}
		if _, ok := m.series[k]; !ok && !slices.Contains(m.types, p.InstanceType) {
			m.types = append(m.types, p.InstanceType)
		}
		m.series[k] = append(m.series[k], pricePoint{at: p.Time, price: p.PricePerHour})
	}
	for k, pts := range m.series {
		// Stable, so that of two records at one time the later one is
		// last, and so in effect.
		slices.SortStableFunc(pts, func(a, b pricePoint) int { return a.at.Compare(b.at) })
		m.series[k] = pts
	}
	slices.Sort(m.types)
	return m
}

// at returns the index in pts of the price in effect at t, or -1 before
// the first record.
func indexAt(pts []pricePoint, t time.Time) int {
	return sort.Search(len(pts), func(i int) bool { return pts[i].at.After(t) }) - 1
}

// priceAt returns the spot price of (instanceType, zone) in effect at t.
func (m *spotMarket) priceAt(instanceType, zone string, t time.Time) (pricePoint, bool) {
	pts := m.series[seriesKey{instanceType, zone}]
	i := indexAt(pts, t)
	if i < 0 {
		return pricePoint{}, false
	}
	return pts[i], true
}

// integral returns the dollars that the spot price of (instanceType, zone)
// adds up to over [from, to), walking only the changes inside it. Time
// before the first record costs nothing; a launch never starts there.
func (m *spotMarket) integral(instanceType, zone string, from, to time.Time) float64 {
	pts := m.series[seriesKey{instanceType, zone}]
	i := indexAt(pts, from)
	if i < 0 {
		if len(pts) == 0 {
			return 0
		}
		i, from = 0, pts[0].at
	}
	total := 0.0
	for t := from; t.Before(to); i++ {
		next := to
		if i+1 < len(pts) && pts[i+1].at.Before(to) {
			next = pts[i+1].at
		}
		total += pts[i].price * next.Sub(t).Seconds() / 3600
		t = next
	}
	return total
}

// spotPriceError refuses a spot launch of off at now when the offering has
// no spot market then, or its price is above what req will pay.
func (s *Sim) spotPriceError(now time.Time, req awsctl.LaunchRequest, off awsctl.Offering) error {
	p, ok := s.market.priceAt(off.InstanceType, off.Zone, now)
	if !ok {
		return &awsctl.APIError{Op: OpLaunch, Code: "InsufficientInstanceCapacity", Kind: awsctl.ErrInsufficientCapacity,
			Message: fmt.Sprintf("no spot market for %s in %s", off.InstanceType, off.Zone)}
	}
	limit := req.MaxPrice
	if limit == 0 { // EC2's default maximum
		limit = s.onDemandPrice(off.InstanceType)
	}
	if p.price > limit {
		return &awsctl.APIError{Op: OpLaunch, Code: "SpotMaxPriceTooLow", Kind: awsctl.ErrInsufficientCapacity,
			Message: fmt.Sprintf("the spot price of %s in %s is %g, above the maximum price %g", off.InstanceType, off.Zone, p.price, limit)}
	}
	return nil
}

// SpotPrices returns the spot price in effect now of each of instanceTypes
// (every type with a price when empty) in each zone of the sim that has
// one, sorted by type, then zone. Time is the record's timestamp: when the
// price was set or last re-announced. Types and zones without a known price
// are left out, so without Config.SpotPrices the result is empty. It
// implements [awsctl.SpotPriceSource] and counts as an OpSpotPrices call.
func (s *Sim) SpotPrices(ctx context.Context, instanceTypes []string) ([]awsctl.SpotPrice, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: %s: %w", OpSpotPrices, err)
	}
	now := s.begin()
	defer s.mu.Unlock()
	s.calls[OpSpotPrices]++
	if f := s.fault(OpSpotPrices); f.err != nil {
		return nil, f.err
	}
	types := s.market.types
	if len(instanceTypes) > 0 {
		types = slices.Clone(instanceTypes)
		slices.Sort(types)
		types = slices.Compact(types)
	}
	var out []awsctl.SpotPrice
	for _, typ := range types {
		for _, zone := range s.cfg.Zones {
			if p, ok := s.market.priceAt(typ, zone, now); ok {
				out = append(out, awsctl.SpotPrice{InstanceType: typ, Zone: zone, PricePerHour: p.price, Time: p.at})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b awsctl.SpotPrice) int {
		return cmp.Or(cmp.Compare(a.InstanceType, b.InstanceType), cmp.Compare(a.Zone, b.Zone))
	})
	return out, nil
}

// FreeInterruptedHour is the running time within which a spot instance that
// EC2 interrupts costs nothing.
const FreeInterruptedHour = time.Hour

// spotCost is what spot instance r costs for running from r.runningAt to
// end, billed for seconds (at least the run, rounded up, and the minimum).
// The price is integrated across its changes; the rounding and the minimum
// beyond end are charged at the price in effect at end.
func (s *Sim) spotCost(r *instance, end time.Time, seconds float64) float64 {
	if r.interrupted && end.Sub(r.runningAt) < FreeInterruptedHour {
		return 0
	}
	if !s.market.enabled {
		return seconds * s.hourlyPrice(r) / 3600
	}
	ran := end.Sub(r.runningAt)
	total := s.market.integral(r.view.Type, r.view.Zone, r.runningAt, end)
	if extra := seconds - ran.Seconds(); extra > 0 {
		last, _ := s.market.priceAt(r.view.Type, r.view.Zone, end)
		total += extra * last.price / 3600
	}
	return total
}

// AddCapacityOutage makes launches of instanceType in zone in market fail
// with InsufficientInstanceCapacity from from until to (exclusive), as an
// *awsctl.LaunchError for that offering, so that the other offerings of a
// request still fill. Instances already running are not affected. Windows
// may overlap; an empty or inverted window has no effect.
func (s *Sim) AddCapacityOutage(market awsctl.Market, instanceType, zone string, from, to time.Time) {
	if !to.After(from) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := offeringKey{market: market, instanceType: instanceType, zone: zone}
	s.outages[key] = append(s.outages[key], window{from: from, to: to})
}

// window is a span of time [from, to).
type window struct{ from, to time.Time }

// inOutage reports whether key is inside one of its outage windows at now,
// dropping the windows that are over (the clock never goes back).
func (s *Sim) inOutage(key offeringKey, now time.Time) bool {
	ws, ok := s.outages[key]
	if !ok {
		return false
	}
	ws = slices.DeleteFunc(ws, func(w window) bool { return !now.Before(w.to) })
	if len(ws) == 0 {
		delete(s.outages, key)
		return false
	}
	s.outages[key] = ws
	return slices.ContainsFunc(ws, func(w window) bool { return !now.Before(w.from) })
}
