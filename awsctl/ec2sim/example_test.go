package ec2sim_test

import (
	"context"
	"errors"
	"fmt"
	"log"
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
