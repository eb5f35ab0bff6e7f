package spotprice_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

var t0 = time.Date(2021, 3, 2, 12, 0, 0, 0, time.UTC)

func spotAt(instanceType, zone string, price float64, at time.Time) awsctl.SpotPrice {
	return awsctl.SpotPrice{InstanceType: instanceType, Zone: zone, PricePerHour: price, Time: at}
}

func offering(instanceType, zone string, weight int) awsctl.Offering {
	return awsctl.Offering{InstanceType: instanceType, Zone: zone, Weight: weight}
}

type fakeReservations struct {
	res   []awsctl.Reservation
	err   error
	calls int
}

func (f *fakeReservations) Reservations(context.Context) ([]awsctl.Reservation, error) {
	f.calls++
	return f.res, f.err
}

// summary prints a choice compactly: status, offering, market, cost per
// unit and reason.
func summary(c spotprice.Choice) string {
	status := "ok"
	if c.Rejected {
		status = "no"
	}
	market := string(c.Market)
	if c.Reserved {
		market = fmt.Sprintf("reserved(%d)", c.ReservedLeft)
	}
	cost := strconv.FormatFloat(math.Round(c.CostPerUnit*1e6)/1e6, 'f', -1, 64)
	return fmt.Sprintf("%s %s/%s %s %s: %s", status, c.Offering.InstanceType, c.Offering.Zone, market, cost, c.Reason)
}

func summaries(choices []spotprice.Choice) []string {
	out := make([]string, len(choices))
	for i, c := range choices {
		out[i] = summary(c)
	}
	return out
}

func TestRank(t *testing.T) {
	m5a := offering("m5.large", "us-east-1a", 1)
	m5b := offering("m5.large", "us-east-1b", 1)
	unavailable := spotprice.NewUnavailable(3 * time.Minute)
	unavailable.Mark(t0.Add(-time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot)
	unavailable.Mark(t0.Add(-time.Minute), "m5.large", "us-east-1b", awsctl.MarketOnDemand)
	unavailable.Mark(t0.Add(-10*time.Minute), "m5.large", "us-east-1b", awsctl.MarketSpot) // expired

	tests := []struct {
		name         string
		policy       spotprice.Policy
		book         spotprice.BookConfig
		spot         []awsctl.SpotPrice
		reservations []awsctl.Reservation
		input        func(in *spotprice.Input)
		want         []string
	}{{
		name: "spot well below ratio goes first",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0.Add(-time.Hour))},
		want: []string{
			"ok m5.large/us-east-1a spot 0.031: spot 0.031 <= 0.8 x on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
		},
	}, {
		name: "spot exactly at the ratio is accepted",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.0768, t0)},
		want: []string{
			"ok m5.large/us-east-1a spot 0.0768: spot 0.0768 <= 0.8 x on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
		},
	}, {
		// 0.7 x 0.526 computes to 0.36819999999999997 in floating point.
		name:   "spot exactly at the ratio despite rounding",
		policy: spotprice.Policy{SpotRatio: 0.7},
		spot:   []awsctl.SpotPrice{spotAt("g4dn.xlarge", "us-east-1a", 0.3682, t0)},
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{offering("g4dn.xlarge", "us-east-1a", 1)}
		},
		want: []string{
			"ok g4dn.xlarge/us-east-1a spot 0.3682: spot 0.3682 <= 0.7 x on-demand 0.526",
			"ok g4dn.xlarge/us-east-1a on-demand 0.526: on-demand 0.526",
		},
	}, {
		name: "spot just above the ratio is rejected",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.0769, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0.0769: spot 0.0769 > 0.8 x on-demand 0.096",
		},
	}, {
		name:   "custom ratio",
		policy: spotprice.Policy{SpotRatio: 0.5},
		spot:   []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.05, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0.05: spot 0.05 > 0.5 x on-demand 0.096",
		},
	}, {
		name:   "cap below spot price rejects spot",
		policy: spotprice.Policy{MaxSpotPrice: 0.03},
		spot:   []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0.031: spot 0.031 > max spot price 0.03",
		},
	}, {
		name:   "cap equal to spot price accepts spot",
		policy: spotprice.Policy{MaxSpotPrice: 0.031},
		spot:   []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0)},
		want: []string{
			"ok m5.large/us-east-1a spot 0.031: spot 0.031 <= 0.8 x on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
		},
	}, {
		name:  "missing spot price",
		input: func(in *spotprice.Input) {},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: no spot price",
		},
	}, {
		name: "stale spot price",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0.Add(-49*time.Hour))},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot price stale",
		},
	}, {
		name: "zero spot price",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot price 0 is not a positive price",
		},
	}, {
		name: "negative spot price",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", -0.01, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot price -0.01 is not a positive price",
		},
	}, {
		name: "unknown instance type is rejected in every market",
		spot: []awsctl.SpotPrice{spotAt("x9.huge", "us-east-1a", 0.01, t0)},
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{offering("x9.huge", "us-east-1a", 1), m5a}
		},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no x9.huge/us-east-1a on-demand 0: unknown instance type: no on-demand price",
			"no x9.huge/us-east-1a spot 0: unknown instance type: no on-demand price",
			"no m5.large/us-east-1a spot 0: no spot price",
		},
	}, {
		name: "configured on-demand price makes a type known",
		book: spotprice.BookConfig{OnDemand: map[string]float64{"x9.huge": 1.5}},
		spot: []awsctl.SpotPrice{spotAt("x9.huge", "us-east-1a", 0.5, t0)},
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{offering("x9.huge", "us-east-1a", 1)}
		},
		want: []string{
			"ok x9.huge/us-east-1a spot 0.5: spot 0.5 <= 0.8 x on-demand 1.5",
			"ok x9.huge/us-east-1a on-demand 1.5: on-demand 1.5",
		},
	}, {
		name: "weight below one is rejected",
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{offering("m5.large", "us-east-1a", 0)}
		},
		want: []string{
			"no m5.large/us-east-1a on-demand 0: weight 0: must be at least 1",
			"no m5.large/us-east-1a spot 0: weight 0: must be at least 1",
		},
	}, {
		name: "unavailable offerings are rejected in their market until expiry",
		spot: []awsctl.SpotPrice{
			spotAt("m5.large", "us-east-1a", 0.031, t0),
			spotAt("m5.large", "us-east-1b", 0.032, t0),
		},
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{m5a, m5b}
			in.Unavailable = unavailable
		},
		want: []string{
			"ok m5.large/us-east-1b spot 0.032: spot 0.032 <= 0.8 x on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: offering unavailable until 12:02:00",
			"no m5.large/us-east-1b on-demand 0.096: offering unavailable until 12:02:00",
		},
	}, {
		name: "unavailable entries expire",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0)},
		input: func(in *spotprice.Input) {
			in.Now = t0.Add(2 * time.Minute)
			in.Unavailable = unavailable
		},
		want: []string{
			"ok m5.large/us-east-1a spot 0.031: spot 0.031 <= 0.8 x on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
		},
	}, {
		name: "manager disallows spot",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0)},
		input: func(in *spotprice.Input) {
			in.AllowSpot = false
		},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot not allowed by manager",
		},
	}, {
		name: "manager disallows on-demand: spot up to on-demand price",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.09, t0)},
		input: func(in *spotprice.Input) {
			in.AllowOnDemand = false
		},
		want: []string{
			"ok m5.large/us-east-1a spot 0.09: spot 0.09 <= on-demand 0.096 (on-demand not allowed by manager)",
			"no m5.large/us-east-1a on-demand 0.096: on-demand not allowed by manager",
		},
	}, {
		name: "spot above on-demand is never chosen",
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.1, t0)},
		input: func(in *spotprice.Input) {
			in.AllowOnDemand = false
		},
		want: []string{
			"no m5.large/us-east-1a on-demand 0.096: on-demand not allowed by manager",
			"no m5.large/us-east-1a spot 0.1: spot 0.1 > on-demand 0.096: no bidding above on-demand",
		},
	}, {
		name: "weights rank by cost per unit",
		spot: []awsctl.SpotPrice{
			spotAt("m5.large", "us-east-1a", 0.035, t0),
			spotAt("m5.xlarge", "us-east-1a", 0.06, t0),
		},
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{m5a, offering("m5.xlarge", "us-east-1a", 2)}
		},
		want: []string{
			"ok m5.xlarge/us-east-1a spot 0.03: spot 0.06 <= 0.8 x on-demand 0.192",
			"ok m5.large/us-east-1a spot 0.035: spot 0.035 <= 0.8 x on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"ok m5.xlarge/us-east-1a on-demand 0.096: on-demand 0.192",
		},
	}, {
		name: "effective-price hook discounts on-demand below spot's ratio",
		book: spotprice.BookConfig{Effective: func(_ string, m awsctl.Market, list float64) float64 {
			if m == awsctl.MarketOnDemand {
				return list * 0.7 // a Savings Plan
			}
			return list
		}},
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.06, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.0672: on-demand 0.0672 (list 0.096)",
			"no m5.large/us-east-1a spot 0.06: spot 0.06 > 0.8 x on-demand 0.0672",
		},
	}, {
		name: "effective-price hook returning zero makes the offering unusable",
		book: spotprice.BookConfig{Effective: func(string, awsctl.Market, float64) float64 { return 0 }},
		spot: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.06, t0)},
		want: []string{
			"no m5.large/us-east-1a on-demand 0: effective on-demand price 0 is not a positive price",
			"no m5.large/us-east-1a spot 0: effective on-demand price 0 is not a positive price",
		},
	}, {
		name:   "regional reservation covers every zone",
		policy: spotprice.Policy{UseReservations: true},
		reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Count: 2},
		},
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{m5a, m5b}
		},
		want: []string{
			"ok m5.large/us-east-1a reserved(2) 0: reserved: 2 unused in scope, no extra cost",
			"ok m5.large/us-east-1b reserved(2) 0: reserved: 2 unused in scope, no extra cost",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"ok m5.large/us-east-1b on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: no spot price",
			"no m5.large/us-east-1b spot 0: no spot price",
		},
	}, {
		name:   "zonal reservation covers its zone only, and ranks before cheaper-looking spot",
		policy: spotprice.Policy{UseReservations: true},
		spot:   []awsctl.SpotPrice{spotAt("m5.large", "us-east-1b", 0.031, t0)},
		reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Zone: "us-east-1a", Count: 1},
			{InstanceType: "c5.large", Count: 5},
		},
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{m5b, m5a}
		},
		want: []string{
			"ok m5.large/us-east-1a reserved(1) 0: reserved: 1 unused in scope, no extra cost",
			"ok m5.large/us-east-1b spot 0.031: spot 0.031 <= 0.8 x on-demand 0.096",
			"ok m5.large/us-east-1b on-demand 0.096: on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: no spot price",
		},
	}, {
		name:   "zonal and regional reservations add up",
		policy: spotprice.Policy{UseReservations: true},
		reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Zone: "us-east-1a", Count: 1},
			{InstanceType: "m5.large", Count: 2},
			{InstanceType: "m5.large", Count: 1},
		},
		input: func(in *spotprice.Input) {
			in.AllowSpot = false
		},
		want: []string{
			"ok m5.large/us-east-1a reserved(4) 0: reserved: 4 unused in scope, no extra cost",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot not allowed by manager",
		},
	}, {
		name:   "reservations in use are not offered again",
		policy: spotprice.Policy{UseReservations: true},
		reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Zone: "us-east-1a", Count: 1},
			{InstanceType: "m5.large", Count: 3},
		},
		input: func(in *spotprice.Input) {
			in.AllowSpot = false
			in.ReservedInUse = map[spotprice.ReservationKey]int{
				{InstanceType: "m5.large", Zone: "us-east-1a"}: 1,
				{InstanceType: "m5.large"}:                     2,
			}
		},
		want: []string{
			"ok m5.large/us-east-1a reserved(1) 0: reserved: 1 unused in scope, no extra cost",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot not allowed by manager",
		},
	}, {
		name:   "exhausted reservations give no reserved choice",
		policy: spotprice.Policy{UseReservations: true},
		reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Count: 2},
		},
		input: func(in *spotprice.Input) {
			in.AllowSpot = false
			in.ReservedInUse = map[spotprice.ReservationKey]int{{InstanceType: "m5.large"}: 3}
		},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot not allowed by manager",
		},
	}, {
		name:   "ended reservations do not count",
		policy: spotprice.Policy{UseReservations: true},
		reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Count: 2, End: t0},
		},
		input: func(in *spotprice.Input) {
			in.AllowSpot = false
		},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot not allowed by manager",
		},
	}, {
		name:         "reservations ignored unless the policy uses them",
		reservations: []awsctl.Reservation{{InstanceType: "m5.large", Count: 2}},
		input: func(in *spotprice.Input) {
			in.AllowSpot = false
		},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: spot not allowed by manager",
		},
	}, {
		name:         "a reservation needs on-demand allowed",
		policy:       spotprice.Policy{UseReservations: true},
		reservations: []awsctl.Reservation{{InstanceType: "m5.large", Count: 2}},
		input: func(in *spotprice.Input) {
			in.AllowOnDemand = false
		},
		want: []string{
			"no m5.large/us-east-1a reserved(2) 0: on-demand not allowed by manager",
			"no m5.large/us-east-1a on-demand 0.096: on-demand not allowed by manager",
			"no m5.large/us-east-1a spot 0: no spot price",
		},
	}, {
		name: "equal cost: lower interruption risk first, whatever the order",
		spot: []awsctl.SpotPrice{
			// us-east-1 Advisor: m5.large ">15-20%", c5.large "<5%".
			spotAt("m5.large", "us-east-1a", 0.04, t0),
			spotAt("c5.large", "us-east-1a", 0.04, t0),
		},
		input: func(in *spotprice.Input) {
			in.AllowOnDemand = false
			in.Offerings = []awsctl.Offering{m5a, offering("c5.large", "us-east-1a", 1)}
		},
		want: []string{
			"ok c5.large/us-east-1a spot 0.04: spot 0.04 <= on-demand 0.085 (on-demand not allowed by manager)",
			"ok m5.large/us-east-1a spot 0.04: spot 0.04 <= on-demand 0.096 (on-demand not allowed by manager)",
			"no m5.large/us-east-1a on-demand 0.096: on-demand not allowed by manager",
			"no c5.large/us-east-1a on-demand 0.085: on-demand not allowed by manager",
		},
	}, {
		name:   "equal cost: on-demand before spot",
		policy: spotprice.Policy{SpotRatio: 1},
		spot:   []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.096, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"ok m5.large/us-east-1a spot 0.096: spot 0.096 <= 1 x on-demand 0.096",
		},
	}, {
		name: "equal cost, equal risk: offering order",
		input: func(in *spotprice.Input) {
			in.Offerings = []awsctl.Offering{m5b, m5a}
			in.AllowSpot = false
		},
		want: []string{
			"ok m5.large/us-east-1b on-demand 0.096: on-demand 0.096",
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1b spot 0: spot not allowed by manager",
			"no m5.large/us-east-1a spot 0: spot not allowed by manager",
		},
	}, {
		name:   "invalid policy never chooses spot",
		policy: spotprice.Policy{SpotRatio: 1.5},
		spot:   []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0)},
		want: []string{
			"ok m5.large/us-east-1a on-demand 0.096: on-demand 0.096",
			"no m5.large/us-east-1a spot 0: invalid policy: spotprice: invalid configuration: Policy.SpotRatio = 1.5: must be in (0, 1] (0 means 0.8)",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.book
			cfg.Region = "us-east-1"
			res := &fakeReservations{res: tt.reservations}
			cfg.Reservations = res
			book, err := spotprice.NewBook(cfg)
			require.NoError(t, err)
			require.NoError(t, book.Refresh(t.Context(), t0, nil))
			book.SetSpot(tt.spot)
			in := spotprice.Input{
				Now:           t0,
				Prices:        book,
				Offerings:     []awsctl.Offering{m5a},
				AllowSpot:     true,
				AllowOnDemand: true,
			}
			if tt.input != nil {
				tt.input(&in)
			}
			assert.Equal(t, tt.want, summaries(tt.policy.Rank(in)))
		})
	}
}

func TestRankWithoutPrices(t *testing.T) {
	got := spotprice.Policy{}.Rank(spotprice.Input{
		Now:           t0,
		Offerings:     []awsctl.Offering{offering("m5.large", "us-east-1a", 1)},
		AllowSpot:     true,
		AllowOnDemand: true,
	})
	assert.Equal(t, []string{
		"no m5.large/us-east-1a on-demand 0: no price book",
		"no m5.large/us-east-1a spot 0: no price book",
	}, summaries(got))
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy spotprice.Policy
		field  string // empty: valid
	}{
		{"zero value uses defaults", spotprice.Policy{}, ""},
		{"ratio one", spotprice.Policy{SpotRatio: 1}, ""},
		{"small ratio", spotprice.Policy{SpotRatio: 0.01}, ""},
		{"cap", spotprice.Policy{MaxSpotPrice: 0.5}, ""},
		{"ratio above one", spotprice.Policy{SpotRatio: 1.01}, "Policy.SpotRatio"},
		{"negative ratio", spotprice.Policy{SpotRatio: -0.5}, "Policy.SpotRatio"},
		{"NaN ratio", spotprice.Policy{SpotRatio: math.NaN()}, "Policy.SpotRatio"},
		{"negative cap", spotprice.Policy{MaxSpotPrice: -1}, "Policy.MaxSpotPrice"},
		{"infinite cap", spotprice.Policy{MaxSpotPrice: math.Inf(1)}, "Policy.MaxSpotPrice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, spotprice.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestReservedInUse(t *testing.T) {
	reservations := []awsctl.Reservation{
		{InstanceType: "m5.large", Zone: "us-east-1a", Count: 1},
		{InstanceType: "m5.large", Count: 2},
		{InstanceType: "c5.large", Count: 4, End: t0}, // ended
	}
	od := func(typ, zone string, state awsctl.State) awsctl.Instance {
		return awsctl.Instance{Type: typ, Zone: zone, Market: awsctl.MarketOnDemand, State: state}
	}
	instances := []awsctl.Instance{
		// Zone b first: it must not take the zonal reservation of zone a.
		od("m5.large", "us-east-1b", awsctl.StateRunning),
		od("m5.large", "us-east-1a", awsctl.StateRunning),
		od("m5.large", "us-east-1a", awsctl.StatePending),
		od("m5.large", "us-east-1a", awsctl.StateRunning), // beyond every reservation
		od("m5.large", "us-east-1a", awsctl.StateStopped),
		{Type: "m5.large", Zone: "us-east-1a", Market: awsctl.MarketSpot, State: awsctl.StateRunning},
		od("c5.large", "us-east-1a", awsctl.StateRunning),
	}
	got := spotprice.ReservedInUse(reservations, instances, t0)
	assert.Equal(t, map[spotprice.ReservationKey]int{
		{InstanceType: "m5.large", Zone: "us-east-1a"}: 1,
		{InstanceType: "m5.large"}:                     2,
	}, got)

	// Fed back into Rank, nothing is left to reserve.
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Reservations: &fakeReservations{res: reservations}})
	require.NoError(t, err)
	require.NoError(t, book.Refresh(t.Context(), t0, nil))
	choices := spotprice.Policy{UseReservations: true}.Rank(spotprice.Input{
		Now: t0, Prices: book, AllowOnDemand: true, ReservedInUse: got,
		Offerings: []awsctl.Offering{offering("m5.large", "us-east-1a", 1)},
	})
	for _, c := range choices {
		assert.False(t, c.Reserved, summary(c))
	}
}

// oddPrices claims its spot price is usable whatever the number.
type oddPrices struct{ spot float64 }

func (o oddPrices) OnDemand(string) (float64, bool) { return 0.1, true }
func (o oddPrices) SpotStatus(string, string, time.Time) (float64, spotprice.PriceStatus) {
	return o.spot, spotprice.PriceOK
}
func (o oddPrices) Effective(_ string, _ awsctl.Market, p float64) float64 { return p }
func (o oddPrices) Reservations() []awsctl.Reservation                     { return nil }
func (o oddPrices) Risk(string) (float64, bool)                            { return 0, false }

func TestRankRejectsUnusableSpotFromAnyPrices(t *testing.T) {
	for _, p := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		choices := spotprice.Policy{}.Rank(spotprice.Input{
			Now: t0, Prices: oddPrices{p}, AllowSpot: true,
			Offerings: []awsctl.Offering{offering("m5.large", "us-east-1a", 1)},
		})
		for _, c := range choices {
			assert.True(t, c.Rejected, summary(c))
		}
	}
}
