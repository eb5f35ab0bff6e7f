package ec2limits

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

func newLimited(t *testing.T) (*ec2sim.Sim, *Client) {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{Seed: 1})
	require.NoError(t, err)
	c, err := New(sim, sim.Now, Default())
	require.NoError(t, err)
	return sim, c
}

func launch(offerings ...awsctl.Offering) awsctl.LaunchRequest {
	return awsctl.LaunchRequest{Spec: awsctl.LaunchSpec{ImageID: "ami-12345678"}, Market: awsctl.MarketOnDemand,
		Capacity: 1, Offerings: offerings}
}

func TestRunInstancesBurstThenRefill(t *testing.T) {
	sim, c := newLimited(t)
	ctx := context.Background()
	one := awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1}
	for i := range 5 {
		_, err := c.Launch(ctx, launch(one))
		require.NoError(t, err, "request %d of the burst", i+1)
	}
	_, err := c.Launch(ctx, launch(one))
	require.ErrorIs(t, err, awsctl.ErrThrottled, "the sixth request at once")
	var api *awsctl.APIError
	require.True(t, errors.As(err, &api))
	assert.Equal(t, "RequestLimitExceeded", api.Code)
	assert.Len(t, sim.Instances(), 5, "a refused request does not reach the cloud")

	require.NoError(t, sim.Advance(500*time.Millisecond)) // one token at 2 a second
	_, err = c.Launch(ctx, launch(one))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{RunInstances: 7}, c.Calls())
	assert.Equal(t, map[string]int{RunInstances: 1}, c.Throttled())
}

func TestLaunchWithFallbacksIsCreateFleet(t *testing.T) {
	_, c := newLimited(t)
	a := awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1}
	b := awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1b", Weight: 1}
	for range 50 {
		_, err := c.Launch(context.Background(), launch(a, b))
		require.NoError(t, err)
	}
	_, err := c.Launch(context.Background(), launch(a, b))
	assert.ErrorIs(t, err, awsctl.ErrThrottled, "the mutating bucket holds 50")
	assert.Equal(t, 51, c.Calls()[CreateFleet])
}

func TestInstanceBucketCountsInstancesNotRequests(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Config{Seed: 1})
	require.NoError(t, err)
	limits := Default()
	limits.RunInstancesInstances = ratelimit.Limit{Burst: 10, PerSecond: 1}
	c, err := New(sim, sim.Now, limits)
	require.NoError(t, err)
	req := launch(awsctl.Offering{InstanceType: "c5.xlarge", Zone: "us-east-1a", Weight: 2})
	req.Capacity = 16 // 8 instances of weight 2
	_, err = c.Launch(context.Background(), req)
	require.NoError(t, err)
	req.Capacity = 6
	_, err = c.Launch(context.Background(), req)
	assert.ErrorIs(t, err, awsctl.ErrThrottled, "3 more instances with 2 tokens left")
}

func TestListingCostsAPagePerThousand(t *testing.T) {
	sim, c := newLimited(t)
	ctx := context.Background()
	req := launch(awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1})
	req.Capacity = 2500
	req.Tags = map[string]string{"owner": "me"}
	_, err := sim.Launch(ctx, req)
	require.NoError(t, err)
	insts, err := c.ListInstances(ctx, awsctl.ListFilter{Tags: map[string]string{"owner": "me"}})
	require.NoError(t, err)
	assert.Len(t, insts, 2500)
	assert.Equal(t, 3, c.Calls()[DescribeInstances])
}

func TestAppendInstancesIsListInstancesIntoABuffer(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Config{Seed: 1})
	require.NoError(t, err)
	limits := Default()
	limits.Describe = ratelimit.Limit{Burst: 6, PerSecond: 1}
	c, err := New(sim, sim.Now, limits)
	require.NoError(t, err)
	ctx := context.Background()
	req := launch(awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1})
	req.Capacity = 2500
	req.Tags = map[string]string{"owner": "me"}
	_, err = sim.Launch(ctx, req)
	require.NoError(t, err)
	filter := awsctl.ListFilter{Tags: map[string]string{"owner": "me"}}

	want, err := c.ListInstances(ctx, filter)
	require.NoError(t, err)
	first := awsctl.Instance{ID: "i-kept"}
	buf := make([]awsctl.Instance, 1, 3000)
	buf[0] = first
	got, err := c.AppendInstances(ctx, buf, filter)
	require.NoError(t, err)
	assert.Equal(t, append([]awsctl.Instance{first}, want...), got)
	assert.Same(t, &buf[0], &got[0], "listed into the caller's buffer")
	assert.Equal(t, 6, c.Calls()[DescribeInstances], "three pages each")

	got, err = c.AppendInstances(ctx, buf, filter)
	assert.ErrorIs(t, err, awsctl.ErrThrottled, "the bucket is empty")
	assert.Equal(t, buf, got, "a throttled listing returns the buffer as it was")
	assert.Equal(t, map[string]int{DescribeInstances: 1}, c.Throttled())
}

func TestNewValidates(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Config{})
	require.NoError(t, err)
	_, err = New(sim, nil, Default())
	assert.Error(t, err)
	bad := Default()
	bad.Tags = ratelimit.Limit{}
	_, err = New(sim, sim.Now, bad)
	assert.ErrorContains(t, err, "Limits.Tags")
}

// EC2 evaluates each API on its own: emptying the DescribeInstances bucket
// leaves DescribeSpotPriceHistory's full, and CreateTags' leaves
// DeleteTags'.
func TestEachAPIHasABucketOfItsOwn(t *testing.T) {
	sim, c := newLimited(t)
	ctx := context.Background()
	lim := Default()
	for range lim.Describe.Burst {
		_, err := c.ListInstances(ctx, awsctl.ListFilter{})
		require.NoError(t, err)
	}
	_, err := c.ListInstances(ctx, awsctl.ListFilter{})
	require.ErrorIs(t, err, awsctl.ErrThrottled, "DescribeInstances past its burst")
	_, err = c.SpotPrices(ctx, []string{"c5.large"})
	require.NoError(t, err, "DescribeSpotPriceHistory draws on a bucket of its own")

	insts, err := sim.Launch(ctx, launch(awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1a", Weight: 1}))
	require.NoError(t, err)
	ids := []string{insts[0].ID}
	for range lim.Tags.Burst {
		require.NoError(t, c.Tag(ctx, ids, map[string]string{"k": "v"}))
	}
	require.ErrorIs(t, c.Tag(ctx, ids, map[string]string{"k": "v"}), awsctl.ErrThrottled, "CreateTags past its burst")
	require.NoError(t, c.Untag(ctx, ids, []string{"k"}), "DeleteTags draws on a bucket of its own")
	assert.Equal(t, map[string]int{DescribeInstances: 1, CreateTags: 1}, c.Throttled())
}
