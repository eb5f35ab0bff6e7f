package spotprice_test

import (
	"math"
	"testing"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

type fuzzPrices struct{ od, spot, eff float64 }

func (f fuzzPrices) OnDemand(string) (float64, bool) { return f.od, !math.IsNaN(f.od) }
func (f fuzzPrices) SpotStatus(string, string, time.Time) (float64, spotprice.PriceStatus) {
	if !(f.spot > 0) || math.IsInf(f.spot, 0) {
		return f.spot, spotprice.PriceInvalid
	}
	return f.spot, spotprice.PriceOK
}
func (f fuzzPrices) Effective(_ string, m awsctl.Market, p float64) float64 {
	if m == awsctl.MarketOnDemand && f.eff != 0 {
		return p * f.eff
	}
	return p
}
func (f fuzzPrices) Reservations() []awsctl.Reservation { return nil }
func (f fuzzPrices) Risk(string) (float64, bool)        { return 0.1, true }

// FuzzRank: whatever the prices, nothing is accepted at an unknown or
// invalid price, spot is never accepted above on-demand or the ratio, and
// the accepted choices come cheapest first.
func FuzzRank(f *testing.F) {
	f.Add(0.096, 0.03, 0.8, 1.0, 0.0, true, true, 2)
	f.Add(0.096, 0.09, 0.8, 0.5, 0.05, true, false, 1)
	f.Add(math.NaN(), 0.01, 1.0, 0.0, 0.0, true, true, 3)
	f.Add(-1.0, -1.0, 0.0, 0.0, -1.0, false, true, 0)
	f.Fuzz(func(t *testing.T, od, spot, ratio, eff, maxSpot float64, allowSpot, allowOD bool, weight int) {
		p := spotprice.Policy{SpotRatio: ratio, MaxSpotPrice: maxSpot}
		valid := p.Validate() == nil
		offers := []awsctl.Offering{
			{InstanceType: "a", Zone: "z1", Weight: weight},
			{InstanceType: "b", Zone: "z2", Weight: 1},
		}
		choices := p.Rank(spotprice.Input{Now: time.Unix(0, 0), Prices: fuzzPrices{od, spot, eff},
			Offerings: offers, AllowSpot: allowSpot, AllowOnDemand: allowOD})
		last := -1.0
		for _, c := range choices {
			if c.Rejected {
				continue
			}
			if c.Reason == "" {
				t.Fatalf("choice without a reason: %+v", c)
			}
			if !(od > 0) || math.IsInf(od, 0) {
				t.Fatalf("accepted with on-demand price %v: %+v", od, c)
			}
			if !(c.PricePerHour > 0) || math.IsInf(c.PricePerHour, 0) {
				t.Fatalf("accepted at price %v: %+v", c.PricePerHour, c)
			}
			if c.CostPerUnit < last {
				t.Fatalf("not cheapest first: %v after %v", c.CostPerUnit, last)
			}
			last = c.CostPerUnit
			switch c.Market {
			case awsctl.MarketSpot:
				if !allowSpot || !valid {
					t.Fatalf("spot accepted although not allowed or policy invalid: %+v", c)
				}
				if spot > od*(1+1e-9) {
					t.Fatalf("spot %v accepted above on-demand %v", spot, od)
				}
				if maxSpot > 0 && spot > maxSpot*(1+1e-9) {
					t.Fatalf("spot %v accepted above the cap %v", spot, maxSpot)
				}
			case awsctl.MarketOnDemand:
				if !allowOD {
					t.Fatalf("on-demand accepted although not allowed: %+v", c)
				}
			}
		}
	})
}
