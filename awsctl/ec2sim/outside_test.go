package ec2sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

func TestStopKeepsTheInstanceListedTaggedAndUnbilled(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(40 * time.Second), ShutdownDelay: ec2sim.Fixed(20 * time.Second)})
	inst := launch(t, sim, 1)[0]
	require.NoError(t, sim.Advance(10*time.Minute))
	require.NoError(t, sim.Stop(inst.ID))
	assert.Equal(t, awsctl.StateStopping, state(t, sim, inst.ID))
	billed := sim.Bill().ByInstance[inst.ID]
	assert.InDelta(t, (10*time.Minute-40*time.Second).Hours()*0.096, billed, 1e-9, "billed until the stop")

	require.NoError(t, sim.Advance(20*time.Second))
	assert.Equal(t, awsctl.StateStopped, state(t, sim, inst.ID))
	listed, err := sim.ListInstances(bgCtx, awsctl.ListFilter{Tags: owner})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Equal(t, awsctl.StateStopped, listed[0].State)
	assert.Equal(t, inst.Tags, listed[0].Tags, "tags are kept")
	assert.True(t, listed[0].State.Live(), "a stopped instance still exists")

	require.NoError(t, sim.Advance(time.Hour))
	assert.Equal(t, billed, sim.Bill().ByInstance[inst.ID], "a stopped instance costs nothing more")
	require.NoError(t, sim.Stop(inst.ID), "stopping again is accepted")
	require.NoError(t, sim.Tag(bgCtx, []string{inst.ID}, map[string]string{"k": "v"}), "a stopped instance can be tagged")
}

func TestStopReleasesCapacityOnce(t *testing.T) {
	sim := newSim(t, ec2sim.Config{MaxInstances: 1})
	sim.SetCapacity(onDmd, "m5.large", "us-east-1a", 1)
	first := launch(t, sim, 1)[0]
	require.NoError(t, sim.Advance(time.Minute))
	require.NoError(t, sim.Stop(first.ID))
	second := launch(t, sim, 1)[0] // the stop released the offering and the account slot

	// Terminating the stopped instance must not release them a second
	// time.
	_, err := sim.Terminate(bgCtx, []string{first.ID})
	require.NoError(t, err)
	_, err = sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 1, Tags: owner})
	assert.Error(t, err, "the second instance still holds the only slot")
	require.NoError(t, sim.Advance(time.Minute))
	assert.Equal(t, awsctl.StateTerminated, state(t, sim, first.ID))
	assert.Equal(t, awsctl.StateRunning, state(t, sim, second.ID))
}

func TestStopRefusesWhatEC2Refuses(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	pending := launch(t, sim, 1)[0]
	assert.ErrorIs(t, sim.Stop(pending.ID), awsctl.ErrInvalidRequest, "pending")
	spot, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketSpot, Capacity: 1, Tags: owner})
	require.NoError(t, err)
	require.NoError(t, sim.Advance(time.Minute))
	var apiErr *awsctl.APIError
	if assert.ErrorAs(t, sim.Stop(spot[0].ID), &apiErr, "spot") {
		assert.Equal(t, "UnsupportedOperation", apiErr.Code)
	}
	_, err = sim.Terminate(bgCtx, []string{pending.ID})
	require.NoError(t, err)
	assert.ErrorIs(t, sim.Stop(pending.ID), awsctl.ErrInvalidRequest, "shutting down")
	assert.ErrorIs(t, sim.Stop("i-0000000000000000"), awsctl.ErrNotFound)
}
