package ec2client_test

import (
	"context"
	"fmt"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// The client runs here against the in-repo EC2 endpoint, backed by a
// simulated EC2, so the example needs no AWS account. Against AWS, the
// config comes from config.LoadDefaultConfig instead.
func Example() {
	sim, err := ec2sim.New(ec2sim.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	subnet := awsctl.Subnet{ID: "subnet-0aaaaaaaaaaaaaaaa", Zone: "us-east-1a"}
	srv, err := ec2test.New(sim, ec2test.Options{Subnets: []awsctl.Subnet{subnet}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	client, err := ec2client.New(srv.AWSConfig(), ec2client.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	owner := map[string]string{ec2client.OwnerTagKey: "example"}
	launched, err := client.Launch(ctx, awsctl.LaunchRequest{
		Spec: awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0", Subnets: []awsctl.Subnet{subnet}},
		Offerings: []awsctl.Offering{
			{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
			{InstanceType: "m5.xlarge", Zone: "us-east-1a", Weight: 2},
		},
		Market:   awsctl.MarketSpot,
		Capacity: 2,
		Tags:     owner,
		Token:    "example-launch-1",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("launched", len(launched), "spot instances")

	listed, err := client.ListInstances(ctx, awsctl.ListFilter{Tags: owner})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, in := range listed {
		fmt.Println(in.Type, in.Zone, in.Market, in.State, in.Tags[ec2client.OwnerTagKey])
	}
	// Output:
	// launched 2 spot instances
	// m5.large us-east-1a spot pending example
	// m5.large us-east-1a spot pending example
}
