package ec2limits_test

import (
	"context"
	"fmt"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim/ec2limits"
)

func ExampleNew() {
	sim, _ := ec2sim.New(ec2sim.Config{Seed: 1})
	cloud, _ := ec2limits.New(sim, sim.Now, ec2limits.Default())
	ids := make([]string, 0, 120)
	for range 120 {
		insts, _ := sim.Launch(context.Background(), awsctl.LaunchRequest{
			Spec: awsctl.LaunchSpec{ImageID: "ami-12345678"}, Market: awsctl.MarketOnDemand, Capacity: 1,
			Offerings: []awsctl.Offering{{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1}},
		})
		ids = append(ids, insts[0].ID)
	}
	// 120 single-instance tag calls at once: the tag bucket holds 100.
	refused := 0
	for _, id := range ids {
		if err := cloud.Tag(context.Background(), []string{id}, map[string]string{"team": "a"}); err != nil {
			refused++
		}
	}
	fmt.Println("refused", refused, "throttled", cloud.Throttled())
	// Output: refused 20 throttled map[CreateTags:20]
}
