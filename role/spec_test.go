package role_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// anImage is the least launch spec New accepts.
var anImage = awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}

func TestNewValidatesLaunchSpec(t *testing.T) {
	subnets := func(zones ...string) []awsctl.Subnet {
		out := make([]awsctl.Subnet, len(zones))
		for i, z := range zones {
			out[i] = awsctl.Subnet{ID: "subnet-" + z, Zone: z}
		}
		return out
	}
	for _, tc := range []struct {
		desc  string
		spec  awsctl.LaunchSpec
		field string // "" when valid
	}{
		{"empty", awsctl.LaunchSpec{}, "LaunchSpec.ImageID"},
		{"only subnets", awsctl.LaunchSpec{Subnets: subnets("us-east-1a")}, "LaunchSpec.ImageID"},
		{"template without id or name", awsctl.LaunchSpec{LaunchTemplate: &awsctl.LaunchTemplate{Version: "$Latest"}}, "LaunchSpec.LaunchTemplate"},
		{"template by id and name", awsctl.LaunchSpec{LaunchTemplate: &awsctl.LaunchTemplate{ID: "lt-1", Name: "web"}}, "LaunchSpec.LaunchTemplate"},
		{"subnet without id", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: []awsctl.Subnet{{Zone: "us-east-1a"}}}, "LaunchSpec.Subnets[0].ID"},
		{"subnet without zone", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: []awsctl.Subnet{{ID: "subnet-1"}}}, "LaunchSpec.Subnets[0].Zone"},
		{"region for a zone", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: subnets("us-east-1a", "us-east-1")}, "LaunchSpec.Subnets[1].Zone"},
		{"zone id for a zone", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: subnets("use1-az1")}, "LaunchSpec.Subnets[0].Zone"},
		{"upper case", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: subnets("US-EAST-1A")}, "LaunchSpec.Subnets[0].Zone"},
		{"two regions", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: subnets("us-east-1a", "eu-west-1b")}, "LaunchSpec.Subnets[1].Zone"},

		{"image", anImage, ""},
		{"template by name", awsctl.LaunchSpec{LaunchTemplate: &awsctl.LaunchTemplate{Name: "web"}}, ""},
		{"template by id with an image", awsctl.LaunchSpec{ImageID: "ami-1", LaunchTemplate: &awsctl.LaunchTemplate{ID: "lt-1"}}, ""},
		{"zones of one region", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: subnets("us-east-1a", "us-east-1f", "us-east-1-bos-1a")}, ""},
		// The role does not know the cloud's region: only the cloud can
		// reject this one.
		{"another region", awsctl.LaunchSpec{ImageID: "ami-1", Subnets: subnets("ap-southeast-2a")}, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, ferr := role.New("worker", tc.spec, role.Hooks{})
			_, herr := role.NewHTTP("worker", tc.spec, role.HTTPConfig{})
			for _, err := range []error{ferr, herr} {
				if tc.field == "" {
					assert.NoError(t, err)
					continue
				}
				require.ErrorIs(t, err, role.ErrInvalidConfig)
				var ce *role.ConfigError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tc.field, ce.Field, err.Error())
			}
		})
	}
}
