package spotprice_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

func ExampleOnDemandPrice() {
	p, ok := spotprice.OnDemandPrice("us-east-1", "m5.large")
	fmt.Println(p, ok)
	_, ok = spotprice.OnDemandPrice("us-east-1", "x9.huge")
	fmt.Println(ok)
	// Output:
	// 0.096 true
	// false
}

func ExampleInterruptionBucket() {
	b, _ := spotprice.InterruptionBucket("us-east-1", "c5.large")
	fmt.Println(b, b.MonthlyInterruptionProbability())
	b, _ = spotprice.InterruptionBucket("us-east-1", "p3.2xlarge")
	fmt.Println(b, b.MonthlyInterruptionProbability())
	// Output:
	// <5% 0.025
	// >20% 0.25
}

// Spot prices of us-east-1a on 2021-05-31, from DescribeSpotPriceHistory.
func ExamplePolicy_Rank() {
	now := time.Date(2021, 5, 31, 0, 0, 0, 0, time.UTC)
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	book.SetSpot([]awsctl.SpotPrice{
		{InstanceType: "c5.large", Zone: "us-east-1a", PricePerHour: 0.0358, Time: now.Add(-5 * time.Minute)},
		{InstanceType: "m5.large", Zone: "us-east-1a", PricePerHour: 0.0418, Time: now.Add(-6 * time.Hour)},
		{InstanceType: "m5.xlarge", Zone: "us-east-1a", PricePerHour: 0.0709, Time: now.Add(-time.Hour)},
	})
	unavailable := spotprice.NewUnavailable(spotprice.DefaultUnavailableTTL)
	// EC2 just reported InsufficientInstanceCapacity for c5.large spot.
	unavailable.Mark(now, "c5.large", "us-east-1a", awsctl.MarketSpot)

	policy := spotprice.Policy{SpotRatio: spotprice.DefaultSpotRatio}
	choices := policy.Rank(spotprice.Input{
		Now:    now,
		Prices: book,
		Offerings: []awsctl.Offering{
			{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1},
			{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
			{InstanceType: "m5.xlarge", Zone: "us-east-1a", Weight: 2},
			{InstanceType: "m5.large", Zone: "us-east-1f", Weight: 1},
		},
		AllowSpot:     true,
		AllowOnDemand: true,
		Unavailable:   unavailable,
	})
	for _, c := range choices {
		status := "launch"
		if c.Rejected {
			status = "skip  "
		}
		fmt.Printf("%s %-9s %s %-9s %.4f/unit  %s\n", status, c.Offering.InstanceType, c.Offering.Zone, c.Market, c.CostPerUnit, c.Reason)
	}
	// Output:
	// launch m5.xlarge us-east-1a spot      0.0355/unit  spot 0.0709 <= 0.8 x on-demand 0.192
	// launch m5.large  us-east-1a spot      0.0418/unit  spot 0.0418 <= 0.8 x on-demand 0.096
	// launch c5.large  us-east-1a on-demand 0.0850/unit  on-demand 0.085
	// launch m5.large  us-east-1a on-demand 0.0960/unit  on-demand 0.096
	// launch m5.xlarge us-east-1a on-demand 0.0960/unit  on-demand 0.192
	// launch m5.large  us-east-1f on-demand 0.0960/unit  on-demand 0.096
	// skip   c5.large  us-east-1a spot      0.0000/unit  offering unavailable until 00:03:00
	// skip   m5.large  us-east-1f spot      0.0000/unit  no spot price
}

// Reservations are listed first, for as many instances as they still cover.
func ExamplePolicy_Rank_reservations() {
	now := time.Date(2021, 5, 31, 0, 0, 0, 0, time.UTC)
	reserved := []awsctl.Reservation{{InstanceType: "m5.large", Count: 3}}
	book, err := spotprice.NewBook(spotprice.BookConfig{
		Region:       "us-east-1",
		Reservations: staticReservations(reserved),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := book.Refresh(context.Background(), now, nil); err != nil {
		fmt.Println(err)
		return
	}
	running := []awsctl.Instance{
		{Type: "m5.large", Zone: "us-east-1a", Market: awsctl.MarketOnDemand, State: awsctl.StateRunning},
	}
	choices := spotprice.Policy{UseReservations: true}.Rank(spotprice.Input{
		Now:           now,
		Prices:        book,
		Offerings:     []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1}},
		AllowOnDemand: true,
		ReservedInUse: spotprice.ReservedInUse(book.Reservations(), running, now),
	})
	for _, c := range choices {
		fmt.Printf("reserved=%v left=%d $%.3f/h rejected=%v: %s\n", c.Reserved, c.ReservedLeft, c.PricePerHour, c.Rejected, c.Reason)
	}
	// Output:
	// reserved=true left=2 $0.000/h rejected=false: reserved: 2 unused in scope, no extra cost
	// reserved=false left=0 $0.096/h rejected=false: on-demand 0.096
	// reserved=false left=0 $0.000/h rejected=true: spot not allowed by manager
}

type staticReservations []awsctl.Reservation

func (s staticReservations) Reservations(context.Context) ([]awsctl.Reservation, error) {
	return s, nil
}

// countingSpot stands in for an EC2 client's spot price history.
type countingSpot struct{ calls int }

func (c *countingSpot) SpotPrices(_ context.Context, types []string) ([]awsctl.SpotPrice, error) {
	c.calls++
	return []awsctl.SpotPrice{{
		InstanceType: "m5.large", Zone: "us-east-1a", PricePerHour: 0.0418,
		Time: time.Date(2021, 5, 30, 17, 31, 42, 0, time.UTC),
	}}, nil
}

// Refresh asks the source at most once per SpotTTL.
func ExampleBook_Refresh() {
	src := &countingSpot{}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: src})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	now := time.Date(2021, 5, 31, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, time.Minute, 4 * time.Minute, 5 * time.Minute} {
		if err := book.Refresh(ctx, now.Add(at), []string{"m5.large"}); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("after %v: %d calls\n", at, src.calls)
	}
	p, ok := book.Spot("m5.large", "us-east-1a", now)
	fmt.Println(p, ok)
	// More than MaxSpotAge after AWS published it, the price is stale.
	_, ok = book.Spot("m5.large", "us-east-1a", now.Add(48*time.Hour))
	fmt.Println(ok)
	// Output:
	// after 0s: 1 calls
	// after 1m0s: 1 calls
	// after 4m0s: 1 calls
	// after 5m0s: 2 calls
	// 0.0418 true
	// false
}

func ExampleUnavailable() {
	now := time.Date(2021, 5, 31, 12, 0, 0, 0, time.UTC)
	u := spotprice.NewUnavailable(3 * time.Minute)
	u.Mark(now, "m5.large", "us-east-1a", awsctl.MarketSpot)

	until, ok := u.IsUnavailable(now.Add(time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot)
	fmt.Println(ok, until.Format("15:04"))
	_, ok = u.IsUnavailable(now.Add(3*time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot)
	fmt.Println(ok)
	// Output:
	// true 12:03
	// false
}
