package ec2sim_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

func health(t *testing.T, sim *ec2sim.Sim, ids ...string) []awsctl.InstanceHealth {
	t.Helper()
	got, err := sim.InstanceHealth(bgCtx, ids)
	require.NoError(t, err)
	return got
}

func TestStatusChecksInitializeThenPass(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(40 * time.Second)})
	insts := launch(t, sim, 2)
	a, b := insts[0].ID, insts[1].ID
	assert.Empty(t, health(t, sim, a, b), "pending: EC2 checks running instances only")

	require.NoError(t, sim.Advance(40*time.Second))
	initializing := awsctl.InstanceHealth{System: awsctl.CheckInitializing, Instance: awsctl.CheckInitializing}
	want := []awsctl.InstanceHealth{initializing, initializing}
	want[0].ID, want[1].ID = b, a
	assert.Equal(t, want, health(t, sim, b, a), "running: initializing, in the order asked")

	require.NoError(t, sim.Advance(ec2sim.DefaultStatusInitDelay-time.Second))
	assert.Len(t, health(t, sim, a, b), 2)
	require.NoError(t, sim.Advance(time.Second))
	assert.Empty(t, health(t, sim, a, b), "a healthy fleet gets an empty answer")
}

func TestStatusInitDelayIsConfigurable(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), StatusInitDelay: ec2sim.Fixed(0)})
	inst := launch(t, sim, 1)[0]
	assert.Empty(t, health(t, sim, inst.ID))
	_, err := ec2sim.New(ec2sim.Config{StatusInitDelay: ec2sim.Fixed(-time.Second)})
	assert.ErrorIs(t, err, ec2sim.ErrInvalidConfig)
	assert.ErrorContains(t, err, "StatusInitDelay")
}

func TestImpairAndRepair(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	pending := launch(t, sim, 1)[0]
	require.NoError(t, sim.Impair(pending.ID, false), "impaired from launch")
	require.NoError(t, sim.Advance(10*time.Minute))
	running := launch(t, sim, 1, m5b)[0]
	require.NoError(t, sim.Advance(10*time.Minute))
	impairedAt := sim.Now()
	require.NoError(t, sim.Impair(running.ID, true))
	require.NoError(t, sim.Advance(time.Minute))
	require.NoError(t, sim.Impair(running.ID, true), "again: keeps its time")

	got := health(t, sim, pending.ID, running.ID)
	assert.Equal(t, []awsctl.InstanceHealth{
		{ID: pending.ID, System: awsctl.CheckOK, Instance: awsctl.CheckImpaired, ImpairedSince: pending.LaunchTime},
		{ID: running.ID, System: awsctl.CheckImpaired, Instance: awsctl.CheckOK, ImpairedSince: impairedAt},
	}, got)
	assert.True(t, got[0].Impaired())

	require.NoError(t, sim.Impair(running.ID, false))
	got = health(t, sim, running.ID)
	assert.Equal(t, awsctl.CheckImpaired, got[0].Instance)
	assert.Equal(t, impairedAt, got[0].ImpairedSince, "the earliest failing check")

	require.NoError(t, sim.Repair(running.ID, true))
	require.NoError(t, sim.Repair(running.ID, false))
	require.NoError(t, sim.Repair(pending.ID, false))
	assert.Empty(t, health(t, sim, pending.ID, running.ID))

	require.NoError(t, sim.Stop(running.ID))
	assert.ErrorIs(t, sim.Impair(running.ID, true), awsctl.ErrInvalidRequest, "stopping")
	assert.ErrorIs(t, sim.Impair("i-0fffffffffffffff0", true), awsctl.ErrNotFound)
	assert.ErrorIs(t, sim.Impair("", true), awsctl.ErrInvalidRequest)
	assert.ErrorIs(t, sim.Repair("i-0fffffffffffffff0", true), awsctl.ErrNotFound)
}

func TestScheduleEventRejectsBadInput(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	inst := launch(t, sim, 1)[0]
	at := sim.Now().Add(time.Hour)
	for _, c := range []struct {
		id   string
		code awsctl.EventCode
		at   time.Time
		kind error
	}{
		{inst.ID, "instance-explode", at, awsctl.ErrInvalidRequest},
		{inst.ID, "", at, awsctl.ErrInvalidRequest},
		{inst.ID, awsctl.EventInstanceStop, time.Time{}, awsctl.ErrInvalidRequest},
		{"", awsctl.EventInstanceStop, at, awsctl.ErrInvalidRequest},
		{"i-0fffffffffffffff0", awsctl.EventInstanceStop, at, awsctl.ErrNotFound},
	} {
		_, err := sim.ScheduleEvent(c.id, c.code, c.at)
		assert.ErrorIs(t, err, c.kind, "%q %q", c.id, c.code)
	}
	_, err := sim.ScheduleEvent(inst.ID, "instance-explode", at)
	assert.ErrorContains(t, err, `unknown event code "instance-explode"`)

	_, err = sim.Terminate(bgCtx, []string{inst.ID})
	require.NoError(t, err)
	_, err = sim.ScheduleEvent(inst.ID, awsctl.EventInstanceStop, at)
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest, "shutting down")
}

func TestScheduledEventsAreReportedUntilCarriedOut(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	insts := launch(t, sim, 5)
	require.NoError(t, sim.Advance(10*time.Minute))
	start := sim.Now()
	schedule := func(i int, code awsctl.EventCode, in time.Duration) awsctl.ScheduledEvent {
		ev, err := sim.ScheduleEvent(insts[i].ID, code, start.Add(in))
		require.NoError(t, err)
		assert.Equal(t, code, ev.Code)
		assert.NotEmpty(t, ev.ID)
		assert.NotEmpty(t, ev.Description)
		return ev
	}
	stop := schedule(0, awsctl.EventInstanceStop, 2*time.Hour)
	retire := schedule(1, awsctl.EventInstanceRetirement, time.Hour)
	later := schedule(2, awsctl.EventSystemReboot, 3*time.Hour)
	sooner := schedule(2, awsctl.EventInstanceReboot, time.Hour)
	maint := schedule(3, awsctl.EventSystemMaintenance, time.Hour)
	assert.NotEqual(t, later.ID, sooner.ID)

	got := health(t, sim, ids(insts)...)
	byID := map[string]awsctl.InstanceHealth{}
	for _, h := range got {
		byID[h.ID] = h
	}
	require.Len(t, byID, 4, "the fifth is healthy")
	ok := func(id string, evs ...awsctl.ScheduledEvent) awsctl.InstanceHealth {
		return awsctl.InstanceHealth{ID: id, System: awsctl.CheckOK, Instance: awsctl.CheckOK, Events: evs}
	}
	assert.Equal(t, ok(insts[0].ID, stop), byID[insts[0].ID])
	assert.Equal(t, ok(insts[1].ID, retire), byID[insts[1].ID])
	assert.Equal(t, ok(insts[2].ID, sooner, later), byID[insts[2].ID], "by NotBefore")
	assert.Equal(t, ok(insts[3].ID, maint), byID[insts[3].ID])

	// At NotBefore, EC2 carries the events out.
	require.NoError(t, sim.Advance(time.Hour-time.Second))
	assert.Equal(t, awsctl.StateRunning, state(t, sim, insts[1].ID))
	require.NoError(t, sim.Advance(time.Second))
	assert.Equal(t, awsctl.StateStopping, state(t, sim, insts[1].ID), "retirement stops an EBS-backed instance")
	assert.Equal(t, awsctl.StateRunning, state(t, sim, insts[2].ID), "a reboot leaves it running")
	assert.Equal(t, awsctl.StateRunning, state(t, sim, insts[3].ID), "maintenance leaves it running")
	got = health(t, sim, ids(insts)...)
	assert.ElementsMatch(t, []awsctl.InstanceHealth{ok(insts[0].ID, stop), ok(insts[2].ID, later)}, got, "done events are gone")

	require.NoError(t, sim.Advance(time.Hour))
	assert.Equal(t, awsctl.StateStopped, state(t, sim, insts[1].ID))
	assert.Equal(t, awsctl.StateStopping, state(t, sim, insts[0].ID), "instance-stop stops it")
	require.NoError(t, sim.Advance(2*time.Hour))
	assert.Empty(t, health(t, sim, ids(insts)...))
	assert.Equal(t, awsctl.StateRunning, state(t, sim, insts[2].ID))

	// Stopped by its event, an instance is billed no more, as one stopped by hand.
	bill := sim.Bill().ByInstance[insts[0].ID]
	require.NoError(t, sim.Advance(time.Hour))
	assert.Equal(t, bill, sim.Bill().ByInstance[insts[0].ID])
}

func TestScheduledEventsOfSpotAndGoneInstances(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	spotInst, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketSpot, Capacity: 2, Tags: owner})
	require.NoError(t, err)
	od := launch(t, sim, 2)
	require.NoError(t, sim.Advance(10*time.Minute))
	at := sim.Now().Add(time.Hour)
	for _, id := range []string{spotInst[0].ID, spotInst[1].ID, od[0].ID, od[1].ID} {
		_, err := sim.ScheduleEvent(id, awsctl.EventInstanceRetirement, at)
		require.NoError(t, err)
	}
	require.NoError(t, sim.Interrupt(spotInst[1].ID)) // reclaimed in two minutes, before the event
	_, err = sim.Terminate(bgCtx, []string{od[0].ID})
	require.NoError(t, err)
	require.NoError(t, sim.Stop(od[1].ID))
	assert.Len(t, health(t, sim, spotInst[0].ID, spotInst[1].ID, od[0].ID, od[1].ID), 2,
		"the spot instance with its notice still runs; terminating and stopped ones drop their events")

	require.NoError(t, sim.Advance(time.Hour))
	assert.Equal(t, awsctl.StateShuttingDown, state(t, sim, spotInst[0].ID), "a one-time spot instance cannot be stopped: terminated")
	assert.Equal(t, 1, sim.Interruptions(), "a retirement is not an interruption")
	require.NoError(t, sim.Advance(time.Hour))
	assert.Empty(t, health(t, sim, spotInst[0].ID, spotInst[1].ID, od[0].ID, od[1].ID))
	assert.Equal(t, awsctl.StateStopped, state(t, sim, od[1].ID))
}

func TestScheduledEventDueBeforeAnInterruption(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketSpot, Capacity: 1, Tags: owner})
	require.NoError(t, err)
	require.NoError(t, sim.Advance(10*time.Minute))
	_, err = sim.ScheduleEvent(insts[0].ID, awsctl.EventInstanceStop, sim.Now().Add(time.Minute))
	require.NoError(t, err)
	require.NoError(t, sim.Interrupt(insts[0].ID)) // would reclaim it in two minutes
	require.NoError(t, sim.Advance(time.Hour))     // both due: the event comes first
	inst, _ := sim.Instance(insts[0].ID)
	assert.Equal(t, awsctl.StateTerminated, inst.State)
	assert.Empty(t, health(t, sim, insts[0].ID))
	notices, err := sim.SpotNotices(bgCtx)
	require.NoError(t, err)
	assert.Len(t, notices, 1, "the notice was issued, the reclaim never came")
}

func TestScheduledEventAlreadyDueIsCarriedOutByTheNextCall(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	inst := launch(t, sim, 1)[0]
	require.NoError(t, sim.Advance(10*time.Minute))
	_, err := sim.ScheduleEvent(inst.ID, awsctl.EventInstanceStop, sim.Now().Add(-time.Minute))
	require.NoError(t, err)
	assert.Empty(t, health(t, sim, inst.ID))
	assert.Equal(t, awsctl.StateStopping, state(t, sim, inst.ID))
}

func TestInstanceHealthCallsBatchesAndFaults(t *testing.T) {
	sim := newSim(t, ec2sim.Config{ListDelay: ec2sim.Fixed(5 * time.Second)})
	insts := launch(t, sim, 3)
	assert.NotContains(t, sim.Calls(), ec2sim.OpInstanceHealth, "not called yet")

	got, err := sim.InstanceHealth(bgCtx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = sim.InstanceHealth(bgCtx, []string{insts[0].ID, ""})
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.NotContains(t, sim.Calls(), ec2sim.OpInstanceHealth, "no call made")

	_, err = sim.ScheduleEvent(insts[0].ID, awsctl.EventSystemReboot, sim.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Empty(t, health(t, sim, insts[0].ID), "inside its list delay, as DescribeInstanceStatus is eventually consistent")
	require.NoError(t, sim.Advance(5*time.Second))
	assert.Len(t, health(t, sim, insts[0].ID), 1)

	many := make([]string, 0, 250)
	for i := range 247 {
		many = append(many, "i-0fffffffffff"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	many = append(many, ids(insts)...)
	many = append(many, insts[0].ID, many[0]) // each counted once
	sim.ResetCalls()
	assert.Len(t, health(t, sim, many...), 1, "unknown ids are left out")
	assert.Equal(t, 3, sim.Calls()[ec2sim.OpInstanceHealth], "250 distinct ids: 3 batches of up to 100")

	sim.FailNext(ec2sim.OpInstanceHealth, ec2sim.Throttled("DescribeInstanceStatus"))
	_, err = sim.InstanceHealth(bgCtx, ids(insts))
	assert.ErrorIs(t, err, awsctl.ErrThrottled)

	ctx, cancel := context.WithCancel(bgCtx)
	cancel()
	_, err = sim.InstanceHealth(ctx, ids(insts))
	assert.ErrorIs(t, err, context.Canceled)
}

// With an external clock in a synctest bubble, events are carried out as
// the bubble's time passes.
func TestScheduledEventOnTheBubblesClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(t, ec2sim.Config{Clock: time.Now})
		inst := launch(t, sim, 1)[0]
		_, err := sim.ScheduleEvent(inst.ID, awsctl.EventInstanceRetirement, time.Now().Add(time.Hour))
		require.NoError(t, err)
		time.Sleep(time.Hour)
		assert.Equal(t, awsctl.StateStopping, state(t, sim, inst.ID))
	})
}
