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
	// Total is the usage of every instance plus Reserved.
	Total float64
	// ByMarket is the usage per market, reservation fees excluded.
	ByMarket map[awsctl.Market]float64
	// ByInstance is the usage per instance id; every instance launched,
	// zero included.
	ByInstance map[string]float64
	// Reserved is the fees of Config.Reservations so far, used or not.
	Reserved float64
}

// Bill returns the cost of every instance launched, as of Now.
//
// An instance is billed per second (started seconds round up) from the
// moment it is running until its termination is requested (by its owner,
// or by EC2 at an interruption's deadline) or its stop is (see Stop), at
// least MinimumCharge once it is running; an instance terminated while
// still pending costs nothing. An instance still running is billed up to
// now, and at least the minimum. Running starts at the end of the pending
// phase (Config.BootDelay), so the operating system's boot and start-up
// that follow (Config.ReadyDelay, see ReadyAt) are billed though the
// instance cannot work yet: "Amazon EC2 instance state changes" (EC2 user
// guide, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html,
// "Billing by instance state") lists pending as not billed and running as
// billed, "for each second, with a one-minute minimum" from the transition
// to running.
//
// On-demand instances cost their hourly on-demand price (see
// Config.OnDemandPrices), except for the time a reservation covers them
// (see Config.Reservations), which is taken off their billed time.
// Reservations cost ReservedPriceRatio times the on-demand price of their
// type per instance and per started hour of their active time, used or
// not.
//
// Spot instances cost the spot price in effect, integrated across its
// changes, with rounding and minimum charged at the last price; without
// Config.SpotPrices, the on-demand price, the most a spot instance can
// cost. As with EC2, a spot instance that EC2 interrupts (see
// Config.InterruptionRates and Interrupt) within FreeInterruptedHour of
// running costs nothing; one interrupted later, or terminated by its owner
// at any time, pays for every second it ran.
func (s *Sim) Bill() Bill {
	now := s.begin()
	defer s.mu.Unlock()
	covered := s.reservedCoverage(now)
	b := Bill{ByMarket: map[awsctl.Market]float64{}, ByInstance: make(map[string]float64, len(s.history))}
	for _, r := range s.history {
		c := s.cost(r, now, covered[r])
		b.Total += c
		b.ByMarket[r.view.Market] += c
		b.ByInstance[r.view.ID] = c
	}
	b.Reserved = s.reservationFees(now)
	b.Total += b.Reserved
	return b
}

// cost is what r has cost by now, reserved being the time a reservation
// covered it.
func (s *Sim) cost(r *instance, now time.Time, reserved time.Duration) float64 {
	end := r.billedUntil(now)
	if end.Before(r.runningAt) {
		return 0
	}
	seconds := max(math.Ceil(end.Sub(r.runningAt).Seconds()), MinimumCharge.Seconds())
	if r.view.Market == awsctl.MarketSpot {
		return s.spotCost(r, end, seconds)
	}
	seconds = max(seconds-reserved.Seconds(), 0)
	return seconds * s.hourlyPrice(r) / 3600
}

// hourlyPrice is the on-demand rate r is billed at.
func (s *Sim) hourlyPrice(r *instance) float64 {
	return s.onDemandPrice(r.view.Type)
}

// onDemandPrice is the hourly on-demand price of instanceType. It is the
// one place on-demand prices are looked up.
func (s *Sim) onDemandPrice(instanceType string) float64 {
	if p, ok := s.cfg.OnDemandPrices[instanceType]; ok {
		return p
	}
	if p, ok := BuiltinOnDemandPrice(instanceType); ok {
		return p
	}
	return DefaultOnDemandPrice
}
