package spotprice

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// DefaultSpotRatio is the default [Policy.SpotRatio]: spot must save at
// least 20% over on-demand to be worth its interruptions.
const DefaultSpotRatio = 0.8

// ErrInvalidConfig is wrapped by the errors of [NewBook] and
// [Policy.Validate].
var ErrInvalidConfig = errors.New("invalid configuration")

// Policy decides between spot, on-demand and reserved capacity.
type Policy struct {
	// SpotRatio: spot is chosen only when its price is at most SpotRatio
	// times the on-demand price of the same offering. It must be in
	// (0, 1]; 0 means DefaultSpotRatio.
	SpotRatio float64
	// MaxSpotPrice caps the spot price per instance-hour in US dollars; 0
	// means no cap. Whatever the cap, spot is never chosen above the
	// on-demand list price: there is no bidding, and a spot launch's max
	// price is the on-demand price unless this cap is lower.
	MaxSpotPrice float64
	// UseReservations lists unused reserved instances as choices of their
	// own, ranked first since they cost nothing extra.
	UseReservations bool
}

// Validate reports a policy field out of range.
func (p Policy) Validate() error {
	if math.IsNaN(p.SpotRatio) || p.SpotRatio < 0 || p.SpotRatio > 1 {
		return fmt.Errorf("spotprice: %w: Policy.SpotRatio = %v: must be in (0, 1] (0 means %v)", ErrInvalidConfig, p.SpotRatio, DefaultSpotRatio)
	}
	if math.IsNaN(p.MaxSpotPrice) || math.IsInf(p.MaxSpotPrice, 0) || p.MaxSpotPrice < 0 {
		return fmt.Errorf("spotprice: %w: Policy.MaxSpotPrice = %v: must be a price >= 0 (0 means no cap)", ErrInvalidConfig, p.MaxSpotPrice)
	}
	return nil
}

func (p Policy) spotRatio() float64 {
	if p.SpotRatio == 0 {
		return DefaultSpotRatio
	}
	return p.SpotRatio
}

// Prices is what [Policy.Rank] reads prices from. [*Book] implements it;
// simulations and tests may supply their own.
type Prices interface {
	// OnDemand returns the on-demand list price of an instance type.
	OnDemand(instanceType string) (float64, bool)
	// SpotStatus returns the latest spot price of an offering and whether
	// it can be used at now.
	SpotStatus(instanceType, zone string, now time.Time) (float64, PriceStatus)
	// Effective turns a list price into what the account pays.
	Effective(instanceType string, market awsctl.Market, listPrice float64) float64
	// Reservations returns the account's reservations.
	Reservations() []awsctl.Reservation
	// Risk estimates the monthly interruption probability of a spot
	// instance of an instance type.
	Risk(instanceType string) (float64, bool)
}

// ReservationKey identifies the scope of reservations: an instance type in
// one zone, or in every zone of the region when Zone is empty.
type ReservationKey struct {
	InstanceType string
	Zone         string
}

// Input is everything [Policy.Rank] decides from.
type Input struct {
	// Now is the pass's time; spot price staleness, unavailability and
	// reservation ends are judged against it.
	Now time.Time
	// Prices to rank by, usually a [*Book]. Nil rejects every choice.
	Prices Prices
	// Offerings the pool may launch, most preferred first.
	Offerings []awsctl.Offering
	// AllowSpot and AllowOnDemand say which markets the managers accept.
	AllowSpot, AllowOnDemand bool
	// Unavailable offerings are rejected until their entry expires. Nil
	// means none.
	Unavailable *Unavailable
	// ReservedInUse counts reserved instances already covering running
	// on-demand instances, per reservation scope; see [ReservedInUse].
	ReservedInUse map[ReservationKey]int
}

// Choice is one way to launch: an offering in a market, with its cost and
// the reason it was accepted or rejected.
type Choice struct {
	Offering awsctl.Offering
	Market   awsctl.Market
	// Reserved marks on-demand capacity covered by unused reservations.
	Reserved bool
	// ReservedLeft is, for a reserved choice, how many instances unused
	// reservations in scope still cover; beyond that the plain on-demand
	// choice applies. A regional reservation counts for every zone's
	// offering of its type, so rank again after launching.
	ReservedLeft int
	// PricePerHour is the effective cost of one more instance, in US
	// dollars per hour: 0 for a reserved choice.
	PricePerHour float64
	// CostPerUnit is PricePerHour per capacity unit (divided by the
	// offering's weight).
	CostPerUnit float64
	Rejected    bool
	// Reason says why the choice was accepted or rejected.
	Reason string
}

// Rank returns every (offering, market) choice of in, plus a reserved
// choice for each offering that unused reservations cover when
// p.UseReservations is set. Accepted choices come first, cheapest per
// capacity unit first; rejected ones follow in input order.
//
// The rules:
//   - An offering without a usable on-demand price is rejected in every
//     market: nothing is launched at an unknown price.
//   - Unused reservations in scope (zonal: that zone; regional: every zone)
//     make on-demand cost nothing extra.
//   - Spot is accepted when allowed, its price is usable (known, positive,
//     fresh), it is at most the on-demand list price and MaxSpotPrice, and
//     it is at most SpotRatio times the on-demand price. When on-demand is
//     not allowed the ratio does not apply: spot is the only way to get
//     capacity.
//   - On-demand is accepted when allowed.
//   - Offerings marked in in.Unavailable are rejected in that market.
//
// Ties in cost per unit go to reserved choices first, then to the lower
// interruption risk (on-demand has none; a spot type without an Advisor
// bucket counts as the riskiest), then to the order of in.Offerings. Risk
// never outweighs a price difference: the Advisor buckets are coarse and
// dated. Rank with an invalid policy rejects every spot choice.
func (p Policy) Rank(in Input) []Choice {
	policyErr := p.Validate()
	var left map[ReservationKey]int
	if p.UseReservations && in.Prices != nil {
		left = reservationsLeft(in.Prices.Reservations(), in.ReservedInUse, in.Now)
	}
	type ranked struct {
		Choice
		risk  float64
		order int
	}
	var all []ranked
	for i, off := range in.Offerings {
		for j, c := range p.offeringChoices(in, off, left, policyErr) {
			r := ranked{Choice: c, order: 3*i + j}
			if c.Market == awsctl.MarketSpot && !c.Rejected {
				r.risk = monthlyRisk(in.Prices, off.InstanceType)
			}
			all = append(all, r)
		}
	}
	slices.SortStableFunc(all, func(a, b ranked) int {
		if a.Rejected != b.Rejected {
			if a.Rejected {
				return 1
			}
			return -1
		}
		if a.Rejected {
			return cmp.Compare(a.order, b.order)
		}
		if c := cmp.Compare(a.CostPerUnit, b.CostPerUnit); c != 0 {
			return c
		}
		if a.Reserved != b.Reserved {
			if a.Reserved {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(a.risk, b.risk); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	out := make([]Choice, len(all))
	for i, r := range all {
		out[i] = r.Choice
	}
	return out
}

// offeringChoices returns the choices of one offering in market order:
// reserved (when reservations cover it), on-demand, spot.
func (p Policy) offeringChoices(in Input, off awsctl.Offering, left map[ReservationKey]int, policyErr error) []Choice {
	reservedLeft := 0
	if left != nil {
		reservedLeft = left[ReservationKey{off.InstanceType, ""}]
		if off.Zone != "" {
			reservedLeft += left[ReservationKey{off.InstanceType, off.Zone}]
		}
	}
	var choices []Choice
	if reservedLeft > 0 {
		choices = append(choices, Choice{Offering: off, Market: awsctl.MarketOnDemand, Reserved: true, ReservedLeft: reservedLeft})
	}
	choices = append(choices,
		Choice{Offering: off, Market: awsctl.MarketOnDemand},
		Choice{Offering: off, Market: awsctl.MarketSpot})

	reject := func(reason string) []Choice {
		for i := range choices {
			choices[i].Rejected, choices[i].Reason = true, reason
		}
		return choices
	}
	if in.Prices == nil {
		return reject("no price book")
	}
	if off.Weight < 1 {
		return reject(fmt.Sprintf("weight %d: must be at least 1", off.Weight))
	}
	od, ok := in.Prices.OnDemand(off.InstanceType)
	if !ok || !validPrice(od) {
		return reject("unknown instance type: no on-demand price")
	}
	odEff := in.Prices.Effective(off.InstanceType, awsctl.MarketOnDemand, od)
	if !validPrice(odEff) {
		return reject(fmt.Sprintf("effective on-demand price %v is not a positive price", odEff))
	}

	for i := range choices {
		c := &choices[i]
		switch {
		case c.Reserved:
			p.judgeOnDemand(in, c, 0, fmt.Sprintf("reserved: %d unused in scope, no extra cost", reservedLeft))
		case c.Market == awsctl.MarketOnDemand:
			reason := "on-demand " + formatPrice(od)
			if odEff != od {
				reason = fmt.Sprintf("on-demand %s (list %s)", formatPrice(odEff), formatPrice(od))
			}
			p.judgeOnDemand(in, c, odEff, reason)
		default:
			p.judgeSpot(in, c, od, odEff, policyErr)
		}
		if c.PricePerHour > 0 {
			c.CostPerUnit = c.PricePerHour / float64(off.Weight)
		}
	}
	return choices
}

func (p Policy) judgeOnDemand(in Input, c *Choice, price float64, reason string) {
	c.PricePerHour = price
	if !in.AllowOnDemand {
		c.Rejected, c.Reason = true, "on-demand not allowed by manager"
		return
	}
	if until, ok := in.Unavailable.IsUnavailable(in.Now, c.Offering.InstanceType, c.Offering.Zone, awsctl.MarketOnDemand); ok {
		c.Rejected, c.Reason = true, unavailableReason(until)
		return
	}
	c.Reason = reason
}

func (p Policy) judgeSpot(in Input, c *Choice, od, odEff float64, policyErr error) {
	off := c.Offering
	if !in.AllowSpot {
		c.Rejected, c.Reason = true, "spot not allowed by manager"
		return
	}
	if until, ok := in.Unavailable.IsUnavailable(in.Now, off.InstanceType, off.Zone, awsctl.MarketSpot); ok {
		c.Rejected, c.Reason = true, unavailableReason(until)
		return
	}
	if policyErr != nil {
		c.Rejected, c.Reason = true, "invalid policy: "+policyErr.Error()
		return
	}
	spot, status := in.Prices.SpotStatus(off.InstanceType, off.Zone, in.Now)
	switch status {
	case PriceOK:
	case PriceMissing:
		c.Rejected, c.Reason = true, "no spot price"
		return
	case PriceStale:
		c.Rejected, c.Reason = true, "spot price stale"
		return
	default:
		c.Rejected, c.Reason = true, fmt.Sprintf("spot price %v is not a positive price", spot)
		return
	}
	// Guard against a Prices implementation that reports PriceOK for an
	// unusable number.
	if !validPrice(spot) {
		c.Rejected, c.Reason = true, fmt.Sprintf("spot price %v is not a positive price", spot)
		return
	}
	spotEff := in.Prices.Effective(off.InstanceType, awsctl.MarketSpot, spot)
	if !validPrice(spotEff) {
		c.Rejected, c.Reason = true, fmt.Sprintf("effective spot price %v is not a positive price", spotEff)
		return
	}
	c.PricePerHour = spotEff
	switch {
	case !atMost(spot, od):
		c.Rejected, c.Reason = true, fmt.Sprintf("spot %s > on-demand %s: no bidding above on-demand", formatPrice(spot), formatPrice(od))
	case p.MaxSpotPrice > 0 && !atMost(spot, p.MaxSpotPrice):
		c.Rejected, c.Reason = true, fmt.Sprintf("spot %s > max spot price %s", formatPrice(spot), formatPrice(p.MaxSpotPrice))
	case !in.AllowOnDemand:
		c.Reason = fmt.Sprintf("spot %s <= on-demand %s (on-demand not allowed by manager)", formatPrice(spotEff), formatPrice(odEff))
	default:
		ratio := p.spotRatio()
		cmpText := "<="
		if !atMost(spotEff, ratio*odEff) {
			c.Rejected, cmpText = true, ">"
		}
		c.Reason = fmt.Sprintf("spot %s %s %s x on-demand %s", formatPrice(spotEff), cmpText, strconv.FormatFloat(ratio, 'f', -1, 64), formatPrice(odEff))
	}
}

func unavailableReason(until time.Time) string {
	return "offering unavailable until " + until.Format("15:04:05")
}

// atMost reports a <= b with a relative tolerance, so that a price equal to
// a limit as written (0.0768 against 0.8 x 0.096) counts as equal despite
// floating-point rounding.
func atMost(a, b float64) bool { return a <= b*(1+1e-9) }

// formatPrice prints a price rounded to a millionth of a dollar, without
// trailing zeros.
func formatPrice(p float64) string {
	return strconv.FormatFloat(math.Round(p*1e6)/1e6, 'f', -1, 64)
}

func activeReservation(r awsctl.Reservation, now time.Time) bool {
	return r.Count > 0 && (r.End.IsZero() || now.Before(r.End))
}

// reservationsLeft returns, per scope, the reserved instances not yet
// covering a running instance.
func reservationsLeft(reservations []awsctl.Reservation, inUse map[ReservationKey]int, now time.Time) map[ReservationKey]int {
	left := make(map[ReservationKey]int)
	for _, r := range reservations {
		if activeReservation(r, now) {
			left[ReservationKey{r.InstanceType, r.Zone}] += r.Count
		}
	}
	for k, n := range inUse {
		if _, ok := left[k]; ok {
			left[k] = max(0, left[k]-n)
		}
	}
	return left
}

// ReservedInUse attributes running on-demand instances to the active
// reservations that cover them, the way EC2 applies the discount: zonal
// reservations of the instance's zone first, then regional ones. Pass every
// on-demand instance of the account that reservations may cover, not only a
// pool's, since EC2 does not reserve a discount for one pool. Instances in
// other markets or not pending or running are ignored.
func ReservedInUse(reservations []awsctl.Reservation, instances []awsctl.Instance, now time.Time) map[ReservationKey]int {
	capacity := reservationsLeft(reservations, nil, now)
	used := make(map[ReservationKey]int)
	for _, inst := range instances {
		if inst.Market != awsctl.MarketOnDemand || (inst.State != awsctl.StateRunning && inst.State != awsctl.StatePending) {
			continue
		}
		for _, k := range []ReservationKey{{inst.Type, inst.Zone}, {inst.Type, ""}} {
			if used[k] < capacity[k] {
				used[k]++
				break
			}
		}
	}
	return used
}
