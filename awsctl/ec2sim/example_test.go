package ec2sim_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// Launch, let the instances boot, list them, run them for an hour and read
// the bill.
func Example() {
	ctx := context.Background()
	sim, err := ec2sim.New(ec2sim.Config{Seed: 1}) // boots take 40 s
	if err != nil {
		log.Fatal(err)
	}
	insts, err := sim.Launch(ctx, awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}},
		Market:    awsctl.MarketOnDemand,
		Capacity:  2,
		Tags:      map[string]string{"owner": "example"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("launched", len(insts), insts[0].State)

	_ = sim.Advance(40 * time.Second)
	listed, _ := sim.ListInstances(ctx, awsctl.ListFilter{Tags: map[string]string{"owner": "example"}})
	for _, inst := range listed {
		fmt.Println(inst.ID, inst.Type, inst.Zone, inst.State, inst.PrivateIP)
	}

	_ = sim.Advance(time.Hour)
	_, _ = sim.Terminate(ctx, []string{listed[0].ID, listed[1].ID})
	fmt.Printf("bill: $%.3f for two m5.large hours\n", sim.Bill().Total)
	fmt.Println(sim.Calls())
	// Output:
	// launched 2 pending
	// i-1c7a9e0ef5863c113 m5.large us-east-1a running 10.0.0.4
	// i-1d8f8c0fcc81a7007 m5.large us-east-1a running 10.0.0.5
	// bill: $0.192 for two m5.large hours
	// map[Launch:1 ListInstances:1 Tag:0 Terminate:1 Untag:0]
}

// A launch whose response is lost still happened; retrying with the same
// token returns it instead of launching twice.
func ExampleSim_FailNextAfterEffect() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{})
	req := awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "c5.large", Zone: "us-east-1b", Weight: 1}},
		Market:    awsctl.MarketSpot,
		Capacity:  3,
		Token:     "launch-42",
	}
	sim.FailNextAfterEffect(ec2sim.OpLaunch, ec2sim.ServerError(ec2sim.OpLaunch))
	_, err := sim.Launch(ctx, req)
	fmt.Println("first call:", err, "- retryable:", errors.Is(err, awsctl.ErrUnavailable))

	insts, err := sim.Launch(ctx, req)
	fmt.Println("retry:", len(insts), "instances,", err)
	fmt.Println("instances in the sim:", len(sim.Instances()))
	// Output:
	// first call: Launch: InternalError: An internal error has occurred. - retryable: true
	// retry: 3 instances, <nil>
	// instances in the sim: 3
}

// With offerings out of capacity, Launch returns what it could launch and
// one *awsctl.LaunchError per offering that fell short.
func ExampleSim_SetCapacity() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{})
	sim.SetCapacity(awsctl.MarketSpot, "m5.large", "us-east-1a", 1)
	sim.SetCapacity(awsctl.MarketSpot, "m5.xlarge", "us-east-1a", 1)
	insts, err := sim.Launch(ctx, awsctl.LaunchRequest{
		Spec: awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{
			{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
			{InstanceType: "m5.xlarge", Zone: "us-east-1a", Weight: 2},
		},
		Market:   awsctl.MarketSpot,
		Capacity: 5,
	})
	for _, inst := range insts {
		fmt.Println("launched", inst.Type)
	}
	fmt.Println("no capacity:", errors.Is(err, awsctl.ErrInsufficientCapacity))
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *awsctl.LaunchError
		if errors.As(e, &le) {
			fmt.Println("short:", le.Offering.InstanceType, le.Offering.Zone)
		}
	}
	// Output:
	// launched m5.large
	// launched m5.xlarge
	// no capacity: true
	// short: m5.large us-east-1a
	// short: m5.xlarge us-east-1a
}

// Replay a real spot price history and compare the bill with on-demand.
func ExampleReadSpotCSV() {
	ctx := context.Background()
	f, err := os.Open("testdata/spot_us-east-1_2021-03-02_2021-03-08.csv")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	prices, err := ec2sim.ReadSpotCSV(f)
	if err != nil {
		log.Fatal(err)
	}
	sim, err := ec2sim.New(ec2sim.Config{Start: time.Date(2021, 3, 3, 0, 0, 0, 0, time.UTC), SpotPrices: prices})
	if err != nil {
		log.Fatal(err)
	}

	now, _ := sim.SpotPrices(ctx, []string{"c5.large"})
	for _, p := range now {
		fmt.Printf("%s %s $%.4f/h since %s\n", p.InstanceType, p.Zone, p.PricePerHour, p.Time.Format(time.DateTime))
	}
	_, err = sim.Launch(ctx, awsctl.LaunchRequest{
		Spec: awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{
			{InstanceType: "c5.large", Zone: "us-east-1b", Weight: 1}, // the cheapest first
			{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1},
		},
		Market:   awsctl.MarketSpot,
		Capacity: 4,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = sim.Advance(72 * time.Hour)
	onDemand, _ := ec2sim.BuiltinOnDemandPrice("c5.large")
	fmt.Printf("4 c5.large for 3 days: $%.2f spot, $%.2f on-demand\n", sim.Bill().ByMarket[awsctl.MarketSpot], 4*72*onDemand)
	// Output:
	// c5.large us-east-1a $0.0346/h since 2021-03-02 21:38:53
	// c5.large us-east-1b $0.0325/h since 2021-03-02 03:19:33
	// c5.large us-east-1c $0.0370/h since 2021-03-02 21:15:53
	// 4 c5.large for 3 days: $9.34 spot, $24.48 on-demand
}

// An interruption notice gives two minutes; an instance EC2 reclaims within
// its first hour costs nothing.
func ExampleSim_Interrupt() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{BootDelay: ec2sim.Fixed(0)})
	insts, _ := sim.Launch(ctx, awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}},
		Market:    awsctl.MarketSpot,
		Capacity:  1,
	})
	id, start := insts[0].ID, sim.Now()

	_ = sim.Advance(20 * time.Minute)
	_ = sim.Interrupt(id)
	notices, _ := sim.SpotNotices(ctx)
	for _, n := range notices {
		fmt.Printf("%s notice at +%v: EC2 will %s the instance at +%v\n", n.Kind, n.Time.Sub(start), n.Action, n.Deadline.Sub(start))
	}
	_ = sim.Advance(2 * time.Minute)
	inst, _ := sim.Instance(id)
	fmt.Println(inst.State)
	fmt.Printf("bill: $%.2f\n", sim.Bill().Total)
	// Output:
	// interruption notice at +20m0s: EC2 will terminate the instance at +22m0s
	// shutting-down
	// bill: $0.00
}

// Interruptions drawn from the Spot Instance Advisor's buckets arrive as
// notices, rebalance recommendations first for some, for a scaler to poll.
func ExampleConfig_interruptionRates() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{
		Seed:              1,
		InterruptionRates: map[string]float64{"m5.large": 0.20}, // the "15-20%" bucket
	})
	_, _ = sim.Launch(ctx, awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}},
		Market:    awsctl.MarketSpot,
		Capacity:  100,
	})
	_ = sim.Advance(30 * 24 * time.Hour)
	notices, _ := sim.SpotNotices(ctx)
	kinds := map[awsctl.SpotNoticeKind]int{}
	for _, n := range notices {
		kinds[n.Kind]++
	}
	fmt.Println(sim.Interruptions(), "of 100 interrupted in a month;", kinds[awsctl.Rebalance], "recommendations came first")
	// Output:
	// 16 of 100 interrupted in a month; 9 recommendations came first
}

// Reserved instances make matching on-demand instances free, and cost
// their fee whether used or not.
func ExampleConfig_reservations() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{
		BootDelay:    ec2sim.Fixed(0),
		Reservations: []awsctl.Reservation{{InstanceType: "m5.large", Count: 1}}, // regional: any zone
	})
	_, _ = sim.Launch(ctx, awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1}},
		Market:    awsctl.MarketOnDemand,
		Capacity:  2,
	})
	_ = sim.Advance(10 * time.Hour)
	bill := sim.Bill()
	fmt.Printf("on-demand $%.3f, reserved $%.3f, total $%.3f\n", bill.ByMarket[awsctl.MarketOnDemand], bill.Reserved, bill.Total)
	// Output:
	// on-demand $0.960, reserved $0.576, total $1.536
}
