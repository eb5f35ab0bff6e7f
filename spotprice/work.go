package spotprice

import (
	"math"
	"time"
)

// Month is the month of a monthly interruption probability: 30 days, as
// the Spot Instance Advisor's "trailing month" and ec2sim's
// Config.InterruptionRates read it.
const Month = 30 * 24 * time.Hour

// HourlyRate turns a monthly interruption probability (see [Risk]) into the
// rate of a Poisson process per hour: the constant hazard under which an
// instance is interrupted within a [Month] with that probability. It
// returns 0 for a probability of 0 or less (or NaN) and +Inf for 1 or
// more.
func HourlyRate(monthly float64) float64 {
	switch {
	case !(monthly > 0):
		return 0
	case monthly >= 1:
		return math.Inf(1)
	}
	return -math.Log1p(-monthly) / Month.Hours()
}

// MonthlyProbability is the inverse of [HourlyRate].
func MonthlyProbability(ratePerHour float64) float64 {
	if !(ratePerHour > 0) {
		return 0
	}
	return -math.Expm1(-ratePerHour * Month.Hours())
}

// Work describes a piece of work run on one spot instance or more, for
// [SpotWorkCost].
type Work struct {
	// Run is how long the piece runs when nothing interrupts it. What
	// interruptions add grows faster than Run and Instances, so pieces of
	// varied length and width priced by a typical one cost more than it
	// says; their longest and widest bound the cost from above.
	Run time.Duration
	// Checkpoint is the interval at which the work saves its progress; an
	// interruption loses what was done since the last checkpoint. Zero
	// (or at least Run) means none: an interruption loses everything and
	// the work starts again from scratch.
	Checkpoint time.Duration
	// Instances is how many instances the piece runs on at once; an
	// interruption of any of them interrupts it. Zero means 1.
	Instances int
	// Wait is how long the work stands still after an interruption until
	// a replacement is working.
	Wait time.Duration
}

// WorkCost is the expected cost of a piece of [Work] on spot, per hour the
// work would run uninterrupted and per instance.
type WorkCost struct {
	// Rate is the piece's interruption rate per hour: the instance's rate
	// times Work.Instances.
	Rate float64
	// Interruptions is the expected number of interruptions before the
	// piece is done.
	Interruptions float64
	// Billed is the expected instance-hours billed per hour of work, 1
	// without interruptions: the work lost is run again.
	Billed float64
	// Waited is the expected hours the work stands still waiting for a
	// replacement, per hour of work.
	Waited float64
	// Spot is the expected cost per hour of work: the spot price times
	// Billed, plus the wait priced at the price given for it.
	Spot float64
	// Interruption is the part of Spot that interruptions add: Spot less
	// the spot price.
	Interruption float64
}

// SpotWorkCost returns the expected cost of w on spot instances that cost
// spotPrice an hour each and are interrupted at ratePerHour each (see
// [HourlyRate]), with the time spent waiting for a replacement priced at
// waitPrice an hour (what capacity that does not work costs the host; the
// on-demand price is a fair stand-in, as the price of capacity that would
// have kept working).
//
// The model: interruptions of each instance form a Poisson process at
// ratePerHour, independent across instances, so the piece is interrupted
// at Rate = Instances x ratePerHour. The work runs in segments between
// checkpoints (one segment of Run without checkpoints); an interruption
// loses the segment in progress, which runs again from its start after
// Wait. A segment of length s then takes, in expectation, (e^(Rate s) - 1)
// / Rate hours of running and suffers e^(Rate s) - 1 interruptions (the
// classic result for restarts under exponential failures). For short work
// at low rates this is about s + Rate s^2 / 2: the chance of an
// interruption, Rate s, times half the segment lost. The figures are
// exact under the model; see the package documentation for where the
// model fails.
func SpotWorkCost(w Work, spotPrice, waitPrice, ratePerHour float64) WorkCost {
	inst := max(1, w.Instances)
	rate := ratePerHour * float64(inst)
	run := w.Run.Hours()
	if !(run > 0) || !(rate > 0) {
		return WorkCost{Rate: max(rate, 0), Billed: 1, Spot: spotPrice}
	}
	seg := run
	if c := w.Checkpoint.Hours(); c > 0 && c < run {
		seg = c
	}
	// Per hour of work: run/seg segments, each e^(rate seg) - 1
	// interruptions.
	perSeg := math.Expm1(rate * seg)
	c := WorkCost{Rate: rate}
	c.Interruptions = perSeg * run / seg
	c.Billed = perSeg / (rate * seg)
	c.Waited = c.Interruptions * w.Wait.Hours() / run
	c.Spot = spotPrice*c.Billed + waitPrice*c.Waited
	c.Interruption = c.Spot - spotPrice
	return c
}

// InterruptionRater is implemented by a [Prices] that knows interruption
// rates better than the monthly Advisor buckets behind Prices.Risk: from
// the host's own record of interruptions per spot pool, say, or to model
// a pool under capacity pressure, whose hourly rate a monthly probability
// cannot express (any rate above about 0.05 an hour rounds to a monthly
// probability of 1).
type InterruptionRater interface {
	// InterruptionRate returns the rate per hour at which a spot instance
	// of instanceType in zone is interrupted, as of now.
	InterruptionRate(instanceType, zone string, now time.Time) (float64, bool)
}

// InterruptionRate returns the hourly interruption rate of a spot instance
// of instanceType in zone: from p's InterruptionRate if p implements
// [InterruptionRater] and knows it, else [HourlyRate] of p.Risk, else that
// of the riskiest bucket, as [Policy.Rank] counts a type without a bucket.
func InterruptionRate(p Prices, instanceType, zone string, now time.Time) float64 {
	if r, ok := p.(InterruptionRater); ok {
		if rate, ok := r.InterruptionRate(instanceType, zone, now); ok && rate >= 0 {
			return rate
		}
	}
	return HourlyRate(monthlyRisk(p, instanceType))
}

// monthlyRisk is the monthly interruption probability of instanceType as p
// knows it; a type without a bucket counts as the riskiest bucket.
func monthlyRisk(p Prices, instanceType string) float64 {
	if risk, ok := p.Risk(instanceType); ok {
		return risk
	}
	return BucketOver20.MonthlyInterruptionProbability()
}
