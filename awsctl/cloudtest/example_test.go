package cloudtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/cloudtest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// Run belongs in a test function of the package that implements the
// client; here the client is the simulator.
func ExampleRun() {
	testConformance := func(t *testing.T) {
		cloudtest.Run(t, func(t *testing.T) cloudtest.Harness {
			sim, err := ec2sim.New(ec2sim.Config{})
			if err != nil {
				t.Fatal(err)
			}
			return cloudtest.Harness{
				Client: sim,
				Spec:   awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
				Offerings: []awsctl.Offering{
					{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
					{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1},
				},
			}
		})
	}
	_ = testConformance // in a _test.go file: func TestConformance(t *testing.T) { ... }
}

// A harness's Spec and Offerings must launch; a quick check before running
// the suite makes a misconfigured harness obvious.
func ExampleHarness() {
	sim, _ := ec2sim.New(ec2sim.Config{})
	h := cloudtest.Harness{
		Client:    sim,
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "c5.large", Zone: "us-east-1c", Weight: 1}},
	}
	insts, err := h.Client.Launch(context.Background(), awsctl.LaunchRequest{
		Spec: h.Spec, Offerings: h.Offerings, Market: awsctl.MarketOnDemand, Capacity: 1,
		Tags: map[string]string{cloudtest.OwnerTag: "smoke"},
	})
	fmt.Println(len(insts), insts[0].Type, insts[0].Zone, err)
	// Output:
	// 1 c5.large us-east-1c <nil>
}
