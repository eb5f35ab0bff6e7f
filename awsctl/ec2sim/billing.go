package ec2sim

import (
	"math"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// MinimumCharge is the least an instance that reached running is billed
// for, as with EC2's per-second billing of Linux instances.
const MinimumCharge = 60 * time.Second

// Bill is what the instances launched so far have cost, in US dollars.
type Bill struct {
	Total      float64
	ByMarket   map[awsctl.Market]float64
	ByInstance map[string]float64 // by instance id; every instance launched, zero included
}

// Bill returns the cost of every instance launched, as of Now.
//
// An instance is billed per second (started seconds round up) from the
// moment it is running until its termination is requested, at least
// MinimumCharge once it is running; an instance terminated while still
// pending costs nothing. An instance still running is billed up to now,
// and at least the minimum. Prices are hourly on-demand prices (see
// Config.OnDemandPrices); spot instances are billed at the on-demand price
// too, the most a spot instance can cost.
func (s *Sim) Bill() Bill {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	b := Bill{ByMarket: map[awsctl.Market]float64{}, ByInstance: make(map[string]float64, len(s.history))}
	for _, r := range s.history {
		c := s.cost(r, now)
		b.Total += c
		b.ByMarket[r.view.Market] += c
		b.ByInstance[r.view.ID] = c
	}
	return b
}

// cost is what r has cost by now.
func (s *Sim) cost(r *instance, now time.Time) float64 {
	end := now
	if r.terminating && r.terminateAt.Before(end) {
		end = r.terminateAt
	}
	if end.Before(r.runningAt) {
		return 0
	}
	seconds := max(math.Ceil(end.Sub(r.runningAt).Seconds()), MinimumCharge.Seconds())
	return seconds * s.hourlyPrice(r) / 3600
}

// hourlyPrice is the rate r is billed at. It is the one place prices are
// looked up, so other markets and discounts belong here.
func (s *Sim) hourlyPrice(r *instance) float64 {
	if p, ok := s.cfg.OnDemandPrices[r.view.Type]; ok {
		return p
	}
	if p, ok := BuiltinOnDemandPrice(r.view.Type); ok {
		return p
	}
	return DefaultOnDemandPrice
}
