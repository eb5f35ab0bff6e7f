package ec2client_test

// InstanceHealth through the real SDK against the ec2test server, whose
// statuses and events come from the simulated EC2 behind it.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
)

func TestInstanceHealthReportsEventsAndChecksThatNeedAttention(t *testing.T) {
	e := newEnv(t, setup{})
	insts := e.launchInSim(t, 5, awsctl.MarketOnDemand, owned)
	require.NoError(t, e.sim.Advance(5*time.Minute)) // running, checks past initializing
	now := e.sim.Now()

	retire, err := e.sim.ScheduleEvent(insts[0].ID, awsctl.EventInstanceRetirement, now.Add(48*time.Hour))
	require.NoError(t, err)
	reboot := awsctl.ScheduledEvent{ID: "instance-event-0d59937288b749b32", Code: awsctl.EventSystemReboot,
		Description: "The instance is scheduled for a reboot", NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(26 * time.Hour)}
	e.srv.AddScheduledEvent(insts[0].ID, reboot)
	require.NoError(t, e.sim.Impair(insts[1].ID, true))
	e.srv.SetStatusChecks(insts[2].ID, awsctl.CheckOK, awsctl.CheckInsufficientData)
	// Over: EC2 still describes them, the client leaves them out.
	e.srv.AddScheduledEvent(insts[3].ID, awsctl.ScheduledEvent{Code: awsctl.EventSystemReboot, Description: "[Completed] Scheduled reboot", NotBefore: now.Add(-time.Hour)})
	e.srv.AddScheduledEvent(insts[3].ID, awsctl.ScheduledEvent{Code: awsctl.EventInstanceStop, Description: "[Canceled] The instance is running on degraded hardware", NotBefore: now.Add(time.Hour)})
	// insts[4] is healthy.

	got, err := e.client.InstanceHealth(t.Context(), append(ids(insts), "i-0fffffffffffffff0", insts[1].ID))
	require.NoError(t, err)
	assert.ElementsMatch(t, []awsctl.InstanceHealth{
		{ID: insts[0].ID, System: awsctl.CheckOK, Instance: awsctl.CheckOK, Events: []awsctl.ScheduledEvent{reboot, retire}},
		{ID: insts[1].ID, System: awsctl.CheckImpaired, Instance: awsctl.CheckOK, ImpairedSince: now},
		{ID: insts[2].ID, System: awsctl.CheckOK, Instance: awsctl.CheckInsufficientData},
	}, got)
	for _, h := range got {
		assert.Equal(t, h.ID == insts[1].ID, h.Impaired(), h.ID)
	}

	reqs := e.srv.Requests("DescribeInstanceStatus")
	require.Len(t, reqs, 1, "one call for up to 100 ids")
	p := reqs[0].Params
	assert.Equal(t, "true", p.Get("IncludeAllInstances"))
	assert.Empty(t, p.Get("InstanceId.1"), "ids go in a filter: an unknown id must not fail the call")
	assert.Equal(t, "instance-id", p.Get("Filter.1.Name"))
	assert.Equal(t, "i-0fffffffffffffff0", p.Get("Filter.1.Value.6"))
	assert.Empty(t, p.Get("Filter.1.Value.7"), "duplicates are asked once")
}

func TestInstanceHealthLeavesOutWhatIsNotRunningUnlessItHasEvents(t *testing.T) {
	e := newEnv(t, setup{})
	early := e.launchInSim(t, 3, awsctl.MarketOnDemand, owned)
	require.NoError(t, e.sim.Advance(time.Minute)) // running 20 s: checks initializing
	pending := e.launchInSim(t, 1, awsctl.MarketOnDemand, owned)
	_, err := e.sim.Terminate(context.Background(), []string{early[1].ID})
	require.NoError(t, err)
	e.srv.AddScheduledEvent(early[1].ID, awsctl.ScheduledEvent{Code: awsctl.EventInstanceStop, NotBefore: e.sim.Now().Add(time.Hour)})

	got, err := e.client.InstanceHealth(t.Context(), append(ids(early), pending[0].ID))
	require.NoError(t, err)
	assert.Equal(t, []awsctl.InstanceHealth{
		{ID: early[0].ID, System: awsctl.CheckInitializing, Instance: awsctl.CheckInitializing},
		{ID: early[2].ID, System: awsctl.CheckInitializing, Instance: awsctl.CheckInitializing},
	}, got, "initializing counts as not ok; pending and shutting-down instances are left out")

	require.NoError(t, e.sim.Advance(5*time.Minute))
	got, err = e.client.InstanceHealth(t.Context(), append(ids(early), pending[0].ID))
	require.NoError(t, err)
	assert.Empty(t, got, "a healthy fleet gets an empty answer")

	// A stopped instance has no checks, but its events are reported.
	require.NoError(t, e.sim.Stop(early[2].ID))
	require.NoError(t, e.sim.Advance(time.Minute))
	ev := awsctl.ScheduledEvent{ID: "instance-event-00000000000000abc", Code: awsctl.EventSystemMaintenance, NotBefore: e.sim.Now().Add(time.Hour)}
	e.srv.AddScheduledEvent(early[2].ID, ev)
	got, err = e.client.InstanceHealth(t.Context(), []string{early[2].ID})
	require.NoError(t, err)
	assert.Equal(t, []awsctl.InstanceHealth{{ID: early[2].ID, System: awsctl.CheckNotApplicable, Instance: awsctl.CheckNotApplicable,
		Events: []awsctl.ScheduledEvent{ev}}}, got)
}

func TestInstanceHealthCarriesSimulatedEventsOutOnTheClock(t *testing.T) {
	e := newEnv(t, setup{})
	insts := e.launchInSim(t, 2, awsctl.MarketOnDemand, owned)
	require.NoError(t, e.sim.Advance(5*time.Minute))
	stop, err := e.sim.ScheduleEvent(insts[0].ID, awsctl.EventInstanceStop, e.sim.Now().Add(time.Hour))
	require.NoError(t, err)
	reboot, err := e.sim.ScheduleEvent(insts[1].ID, awsctl.EventInstanceReboot, e.sim.Now().Add(time.Hour))
	require.NoError(t, err)

	got, err := e.client.InstanceHealth(t.Context(), ids(insts))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []awsctl.ScheduledEvent{stop}, got[0].Events)
	assert.Equal(t, []awsctl.ScheduledEvent{reboot}, got[1].Events)

	require.NoError(t, e.sim.Advance(time.Hour))
	got, err = e.client.InstanceHealth(t.Context(), ids(insts))
	require.NoError(t, err)
	assert.Empty(t, got, "done: the stopped instance has no checks, the rebooted one is fine")
	listed, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned})
	require.NoError(t, err)
	states := map[string]awsctl.State{}
	for _, in := range listed {
		states[in.ID] = in.State
	}
	assert.Equal(t, map[string]awsctl.State{insts[0].ID: awsctl.StateStopping, insts[1].ID: awsctl.StateRunning}, states)
}

func TestInstanceHealthBatchesAHundredIDsAndPaginates(t *testing.T) {
	e := newEnv(t, setup{srv: ec2test.Options{PageSize: 40}})
	insts := e.launchInSim(t, 150, awsctl.MarketOnDemand, owned)
	require.NoError(t, e.sim.Advance(5*time.Minute))
	for _, i := range []int{0, 99, 100, 149} {
		require.NoError(t, e.sim.Impair(insts[i].ID, false))
	}

	got, err := e.client.InstanceHealth(t.Context(), ids(insts))
	require.NoError(t, err)
	var impaired []string
	for _, h := range got {
		assert.Equal(t, awsctl.CheckImpaired, h.Instance)
		impaired = append(impaired, h.ID)
	}
	assert.ElementsMatch(t, []string{insts[0].ID, insts[99].ID, insts[100].ID, insts[149].ID}, impaired)

	reqs := e.srv.Requests("DescribeInstanceStatus")
	require.Len(t, reqs, 5, "100 ids in pages of 40 (3 calls), then 50 (2 calls)")
	count := func(i int) int {
		n := 0
		for reqs[i].Params.Has(fmt.Sprintf("Filter.1.Value.%d", n+1)) {
			n++
		}
		return n
	}
	assert.Equal(t, 100, count(0))
	assert.Equal(t, 50, count(3))
	assert.NotEmpty(t, reqs[1].Params.Get("NextToken"))
	assert.Empty(t, reqs[3].Params.Get("NextToken"))
}

func TestInstanceHealthRejectsEmptyIDsAndMatchesIDsLiterally(t *testing.T) {
	e := newEnv(t, setup{})
	insts := e.launchInSim(t, 2, awsctl.MarketOnDemand, owned)
	require.NoError(t, e.sim.Impair(insts[0].ID, false))

	_, err := e.client.InstanceHealth(t.Context(), []string{insts[0].ID, ""})
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	got, err := e.client.InstanceHealth(t.Context(), nil)
	assert.NoError(t, err)
	assert.Empty(t, got)
	assert.Empty(t, e.srv.Requests("DescribeInstanceStatus"), "nothing to ask: no call")

	require.NoError(t, e.sim.Advance(5*time.Minute))
	got, err = e.client.InstanceHealth(t.Context(), []string{"i-*"})
	require.NoError(t, err)
	assert.Empty(t, got, "a wildcard in an id matches nothing")
	assert.Equal(t, `i-\*`, e.srv.Requests("DescribeInstanceStatus")[0].Params.Get("Filter.1.Value.1"))
}

func TestInstanceHealthErrorsHaveKinds(t *testing.T) {
	e := newEnv(t, setup{})
	insts := e.launchInSim(t, 1, awsctl.MarketOnDemand, owned)
	e.srv.FailNext("DescribeInstanceStatus",
		ec2test.Fault{Code: "RequestLimitExceeded", Message: "Request limit exceeded."},
		ec2test.Fault{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."})
	_, err := e.client.InstanceHealth(t.Context(), ids(insts))
	assert.ErrorIs(t, err, awsctl.ErrThrottled)
	_, err = e.client.InstanceHealth(t.Context(), ids(insts))
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "DescribeInstanceStatus", apiErr.Op)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = e.client.InstanceHealth(ctx, ids(insts))
	assert.ErrorIs(t, err, context.Canceled)
}
