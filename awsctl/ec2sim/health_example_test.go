package ec2sim_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// EC2 schedules the retirement of one instance and the other fails its
// instance status check; InstanceHealth reports both, and at the
// retirement's NotBefore EC2 stops the instance.
func ExampleSim_InstanceHealth() {
	ctx := context.Background()
	sim, err := ec2sim.New(ec2sim.Config{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	insts, err := sim.Launch(ctx, awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}},
		Market:    awsctl.MarketOnDemand,
		Capacity:  2,
	})
	if err != nil {
		log.Fatal(err)
	}
	ids := []string{insts[0].ID, insts[1].ID}
	_ = sim.Advance(5 * time.Minute) // booted, status checks passed
	report, _ := sim.InstanceHealth(ctx, ids)
	fmt.Println("healthy fleet:", len(report), "reported")

	if _, err := sim.ScheduleEvent(insts[0].ID, awsctl.EventInstanceRetirement, sim.Now().Add(24*time.Hour)); err != nil {
		log.Fatal(err)
	}
	if err := sim.Impair(insts[1].ID, false); err != nil {
		log.Fatal(err)
	}
	report, _ = sim.InstanceHealth(ctx, ids)
	for _, h := range report {
		fmt.Println(h.System, h.Instance, len(h.Events), h.Impaired())
	}

	_ = sim.Advance(24 * time.Hour)
	retired, _ := sim.Instance(insts[0].ID)
	fmt.Println("at NotBefore:", retired.State)
	// Output:
	// healthy fleet: 0 reported
	// ok ok 1 false
	// ok impaired 0 true
	// at NotBefore: stopping
}
