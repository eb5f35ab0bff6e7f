package ec2sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/cloudtest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

func TestConformance(t *testing.T) {
	configs := []struct {
		name string
		cfg  ec2sim.Config
	}{
		{"defaults", ec2sim.Config{}},
		{"instant", ec2sim.Config{BootDelay: ec2sim.Fixed(0), ShutdownDelay: ec2sim.Fixed(0), Seed: 7}},
		{"slow", ec2sim.Config{BootDelay: ec2sim.LogNormal(time.Minute, 0.3), ShutdownDelay: ec2sim.Uniform(time.Second, time.Minute), Seed: 8}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			cloudtest.Run(t, func(t *testing.T) cloudtest.Harness {
				sim, err := ec2sim.New(c.cfg)
				require.NoError(t, err)
				return cloudtest.Harness{
					Client: sim,
					Spec:   awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0", Tags: map[string]string{"team": "infra"}},
					Offerings: []awsctl.Offering{
						{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
						{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1},
					},
				}
			})
		})
	}
}
