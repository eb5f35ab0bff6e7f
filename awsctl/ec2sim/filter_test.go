package ec2sim_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// FilterInstances matches tag values the way EC2's describe filters do:
// "*" and "?" are wildcards and a backslash makes the next character
// literal. An owner named "team-*" therefore selects every team unless the
// value is escaped.
func TestFilterInstancesWildcardsAndEscapes(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	blue := launchTagged(t, sim, map[string]string{"owner": "team-blue"})
	star := launchTagged(t, sim, map[string]string{"owner": "team-*"})
	mark := launchTagged(t, sim, map[string]string{"owner": "team-?"})

	list := func(values ...string) []string {
		t.Helper()
		insts, err := sim.FilterInstances(bgCtx, []ec2sim.TagFilter{{Key: "owner", Values: values}}, false)
		require.NoError(t, err)
		return ids(insts)
	}
	assert.ElementsMatch(t, []string{blue, star, mark}, list("team-*"), "a bare * is a wildcard")
	assert.ElementsMatch(t, []string{star, mark}, list("team-?"), "? matches exactly one character")
	assert.Equal(t, []string{star}, list(`team-\*`), "an escaped * is literal")
	assert.Equal(t, []string{mark}, list(`team-\?`))
	assert.Equal(t, []string{blue}, list("team-blue"))
	assert.ElementsMatch(t, []string{blue, mark}, list("team-blue", `team-\?`), "values are joined with OR")
	assert.Empty(t, list("TEAM-*"), "values are case-sensitive")

	// Filters are joined with AND, on tags the instance must carry.
	insts, err := sim.FilterInstances(bgCtx, []ec2sim.TagFilter{
		{Key: "owner", Values: []string{"team-*"}}, {Key: "role", Values: []string{"*"}},
	}, false)
	require.NoError(t, err)
	assert.Empty(t, insts, "no instance has a role tag")

	// ListInstances keeps to exact values: awsctl.ListFilter has no
	// wildcards.
	assert.Equal(t, []string{star}, listIDs(t, sim, awsctl.ListFilter{Tags: map[string]string{"owner": "team-*"}}))
}

func launchTagged(t *testing.T, sim *ec2sim.Sim, tags map[string]string) string {
	t.Helper()
	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 1, Tags: tags})
	require.NoError(t, err)
	return insts[0].ID
}

// A vCPU quota covers one bucket of families in one market: once it is
// used up, that bucket's offerings fail with a quota error and the launch
// moves on to other buckets; the other market is not affected.
func TestVcpuQuotaPerBucketAndMarket(t *testing.T) {
	sim := newSim(t, ec2sim.Config{VcpuQuotas: []ec2sim.VcpuQuota{
		{Market: awsctl.MarketOnDemand, Bucket: "standard", VCPUs: 6},
		{Market: awsctl.MarketSpot, Bucket: "standard", VCPUs: 2},
	}})
	g4 := awsctl.Offering{InstanceType: "g4dn.xlarge", Zone: "us-east-1a", Weight: 1}
	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, c5b, g4}, Market: onDmd, Capacity: 5})
	require.NoError(t, err)
	var types []string
	for _, in := range insts {
		types = append(types, in.Type)
	}
	assert.Equal(t, []string{"m5.large", "m5.large", "m5.large", "g4dn.xlarge", "g4dn.xlarge"}, types,
		"three 2-vCPU standard instances fill the 6-vCPU quota; c5 is in the same bucket; g4dn is not")

	_, err = sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{c5b}, Market: onDmd, Capacity: 1})
	assert.ErrorIs(t, err, awsctl.ErrQuotaExceeded)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "VcpuLimitExceeded", apiErr.Code)
	var le *awsctl.LaunchError
	require.ErrorAs(t, err, &le, "reported per offering")
	assert.Equal(t, c5b, le.Offering)

	// Spot has a quota of its own.
	_, err = sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{c5b}, Market: awsctl.MarketSpot, Capacity: 1})
	require.NoError(t, err)
	_, err = sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{c5b}, Market: awsctl.MarketSpot, Capacity: 1})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "MaxSpotInstanceCountExceeded", apiErr.Code)
	assert.ErrorIs(t, err, awsctl.ErrQuotaExceeded)

	// Terminating frees the quota.
	_, err = sim.Terminate(bgCtx, []string{insts[0].ID})
	require.NoError(t, err)
	_, err = sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{c5b}, Market: onDmd, Capacity: 1})
	assert.NoError(t, err)
}

func TestQuotaBucket(t *testing.T) {
	for typ, want := range map[string]string{
		"m5.large": "standard", "c6i.2xlarge": "standard", "t3.micro": "standard", "im4gn.large": "standard",
		"g4dn.xlarge": "g", "vt1.3xlarge": "g", "p3.2xlarge": "p", "inf2.xlarge": "inf", "trn1.2xlarge": "trn",
		"x2gd.large": "x", "u-6tb1.metal": "high-memory", "f1.2xlarge": "f", "dl1.24xlarge": "dl",
	} {
		assert.Equal(t, want, ec2sim.QuotaBucket(typ), typ)
	}
	_, err := ec2sim.New(ec2sim.Config{VcpuQuotas: []ec2sim.VcpuQuota{{Market: "reserved", Bucket: "standard"}}})
	assert.ErrorIs(t, err, ec2sim.ErrInvalidConfig)
	_, err = ec2sim.New(ec2sim.Config{VCPUs: map[string]int{"m5.large": 0}})
	assert.ErrorIs(t, err, ec2sim.ErrInvalidConfig)
}
