package ec2sim_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

func TestCallsCountPagesOfListings(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	insts := launch(t, sim, 2500)
	require.NoError(t, sim.Tag(bgCtx, []string{insts[0].ID}, map[string]string{"k": "v"}))
	require.NoError(t, sim.Untag(bgCtx, []string{insts[0].ID}, []string{"k"}))
	_, err := sim.Terminate(bgCtx, []string{insts[0].ID})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{ec2sim.OpLaunch: 1, ec2sim.OpTag: 1, ec2sim.OpUntag: 1, ec2sim.OpTerminate: 1, ec2sim.OpListInstances: 0}, sim.Calls())

	sim.ResetCalls()
	assert.Len(t, listIDs(t, sim, awsctl.ListFilter{Tags: owner}), 2500)
	assert.Equal(t, 3, sim.Calls()[ec2sim.OpListInstances], "2,500 instances are 3 pages")
	assert.Empty(t, listIDs(t, sim, awsctl.ListFilter{Tags: map[string]string{"owner": "nobody"}}))
	assert.Equal(t, 4, sim.Calls()[ec2sim.OpListInstances], "an empty listing is one call")
	listIDs(t, sim, awsctl.ListFilter{Tags: map[string]string{"owner": "me"}})
	assert.Equal(t, 7, sim.Calls()[ec2sim.OpListInstances])

	sim.ResetCalls()
	require.Len(t, listIDs(t, sim, awsctl.ListFilter{}), 2500-1+1, "no filter lists everything, shutting-down included")
	assert.Equal(t, map[string]int{ec2sim.OpLaunch: 0, ec2sim.OpTag: 0, ec2sim.OpUntag: 0, ec2sim.OpTerminate: 0, ec2sim.OpListInstances: 3}, sim.Calls())
}

func TestSetErrorRateIsDeterministic(t *testing.T) {
	pattern := func(seed int64) []bool {
		sim := newSim(t, ec2sim.Config{Seed: seed})
		id := launch(t, sim, 1)[0].ID
		sim.SetErrorRate(ec2sim.OpTag, 0.3, ec2sim.Throttled(ec2sim.OpTag))
		var failed []bool
		for i := range 200 {
			err := sim.Tag(bgCtx, []string{id}, map[string]string{"n": fmt.Sprint(i)})
			inst, _ := sim.Instance(id)
			if err != nil {
				assert.ErrorIs(t, err, awsctl.ErrThrottled)
				assert.NotEqual(t, fmt.Sprint(i), inst.Tags["n"], "a failed call has no effect")
			} else {
				assert.Equal(t, fmt.Sprint(i), inst.Tags["n"])
			}
			failed = append(failed, err != nil)
		}
		assert.Equal(t, 200, sim.Calls()[ec2sim.OpTag], "failed calls are counted")

		sim.SetErrorRate(ec2sim.OpTag, 0, nil)
		for range 50 {
			require.NoError(t, sim.Tag(bgCtx, []string{id}, map[string]string{"k": "v"}), "rate 0 turns faults off")
		}
		return failed
	}
	a := pattern(11)
	assert.Equal(t, a, pattern(11), "same seed, same failures")
	assert.NotEqual(t, a, pattern(12))
	n := 0
	for _, f := range a {
		if f {
			n++
		}
	}
	assert.InDelta(t, 60, n, 25, "about 30%% of 200 calls fail")
}

func TestSetErrorRateOnlyAffectsItsOperation(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	sim.SetErrorRate(ec2sim.OpListInstances, 1, nil)
	sim.SetErrorRate("DescribeEverything", 1, nil) // unknown op: ignored
	_, err := sim.ListInstances(bgCtx, awsctl.ListFilter{})
	assert.ErrorIs(t, err, awsctl.ErrUnavailable, "a nil error means ServerError")
	launch(t, sim, 1)
}

func TestFailNextHasNoEffect(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	sim.FailNext(ec2sim.OpLaunch, ec2sim.ServerError(ec2sim.OpLaunch))
	sim.FailNext(ec2sim.OpLaunch, ec2sim.InsufficientCapacity(ec2sim.OpLaunch))
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 1, Tags: owner}

	insts, err := sim.Launch(bgCtx, req)
	assert.Empty(t, insts)
	assert.ErrorIs(t, err, awsctl.ErrUnavailable)
	insts, err = sim.Launch(bgCtx, req)
	assert.Empty(t, insts)
	assert.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	assert.Empty(t, sim.Instances())

	id := launch(t, sim, 1)[0].ID
	sim.FailNext(ec2sim.OpTerminate, nil)
	_, err = sim.Terminate(bgCtx, []string{id})
	assert.ErrorIs(t, err, awsctl.ErrUnavailable)
	assert.Equal(t, awsctl.StatePending, state(t, sim, id))
	assert.Equal(t, 3, sim.Calls()[ec2sim.OpLaunch])
}

func TestFailNextAfterEffect(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 2, Tags: owner, Token: "t1"}

	sim.FailNextAfterEffect(ec2sim.OpLaunch, ec2sim.ServerError(ec2sim.OpLaunch))
	insts, err := sim.Launch(bgCtx, req)
	assert.ErrorIs(t, err, awsctl.ErrUnavailable)
	assert.Empty(t, insts, "the response was lost")
	launched := sim.Instances()
	require.Len(t, launched, 2, "but the launch happened")

	// The retry with the same token finds the lost launch.
	insts, err = sim.Launch(bgCtx, req)
	require.NoError(t, err)
	assert.Equal(t, ids(launched), ids(insts))
	assert.Len(t, sim.Instances(), 2)

	sim.FailNextAfterEffect(ec2sim.OpTag, nil)
	assert.Error(t, sim.Tag(bgCtx, []string{insts[0].ID}, map[string]string{"k": "v"}))
	tagged, _ := sim.Instance(insts[0].ID)
	assert.Equal(t, "v", tagged.Tags["k"])

	sim.FailNextAfterEffect(ec2sim.OpUntag, nil)
	assert.Error(t, sim.Untag(bgCtx, []string{insts[0].ID}, []string{"k"}))
	tagged, _ = sim.Instance(insts[0].ID)
	assert.NotContains(t, tagged.Tags, "k")

	sim.FailNextAfterEffect(ec2sim.OpTerminate, nil)
	accepted, err := sim.Terminate(bgCtx, []string{insts[0].ID})
	assert.Error(t, err)
	assert.Empty(t, accepted)
	assert.Equal(t, awsctl.StateShuttingDown, state(t, sim, insts[0].ID))
}
