package ec2sim_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

var (
	spec  = awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}
	m5a   = awsctl.Offering{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}
	m5b   = awsctl.Offering{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1}
	c5b   = awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1b", Weight: 1}
	owner = map[string]string{"owner": "me"}
	bgCtx = context.Background()
	onDmd = awsctl.MarketOnDemand
)

func newSim(t testing.TB, cfg ec2sim.Config) *ec2sim.Sim {
	t.Helper()
	sim, err := ec2sim.New(cfg)
	require.NoError(t, err)
	return sim
}

func launch(t testing.TB, sim *ec2sim.Sim, n int, offs ...awsctl.Offering) []awsctl.Instance {
	t.Helper()
	if len(offs) == 0 {
		offs = []awsctl.Offering{m5a}
	}
	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: offs, Market: onDmd, Capacity: n, Tags: owner})
	require.NoError(t, err)
	require.Len(t, insts, n)
	return insts
}

func state(t *testing.T, sim *ec2sim.Sim, id string) awsctl.State {
	t.Helper()
	inst, ok := sim.Instance(id)
	require.True(t, ok, "instance %s unknown", id)
	return inst.State
}

func listIDs(t *testing.T, sim *ec2sim.Sim, filter awsctl.ListFilter) []string {
	t.Helper()
	insts, err := sim.ListInstances(bgCtx, filter)
	require.NoError(t, err)
	ids := make([]string, len(insts))
	for i, inst := range insts {
		ids[i] = inst.ID
	}
	slices.Sort(ids)
	return ids
}

func ids(insts []awsctl.Instance) []string {
	out := make([]string, len(insts))
	for i, inst := range insts {
		out[i] = inst.ID
	}
	slices.Sort(out)
	return out
}

func TestBootDelayMovesPendingToRunning(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(40 * time.Second)})
	inst := launch(t, sim, 1)[0]
	assert.Equal(t, awsctl.StatePending, inst.State)
	assert.Equal(t, ec2sim.DefaultStart, inst.LaunchTime)

	require.NoError(t, sim.Advance(39*time.Second))
	assert.Equal(t, awsctl.StatePending, state(t, sim, inst.ID))
	require.NoError(t, sim.Advance(time.Second))
	assert.Equal(t, awsctl.StateRunning, state(t, sim, inst.ID))
	listed, err := sim.ListInstances(bgCtx, awsctl.ListFilter{Tags: owner})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Equal(t, awsctl.StateRunning, listed[0].State)
	assert.Equal(t, ec2sim.DefaultStart.Add(40*time.Second), sim.Now())
}

func TestExternalClockInSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(t, ec2sim.Config{Clock: time.Now, BootDelay: ec2sim.Fixed(30 * time.Second), ShutdownDelay: ec2sim.Fixed(10 * time.Second)})
		start := time.Now()
		inst := launch(t, sim, 1)[0]
		assert.Equal(t, start, inst.LaunchTime)
		assert.ErrorIs(t, sim.Advance(time.Second), ec2sim.ErrExternalClock)

		time.Sleep(29 * time.Second)
		assert.Equal(t, awsctl.StatePending, state(t, sim, inst.ID))
		time.Sleep(time.Second)
		assert.Equal(t, awsctl.StateRunning, state(t, sim, inst.ID))

		_, err := sim.Terminate(t.Context(), []string{inst.ID})
		require.NoError(t, err)
		assert.Equal(t, awsctl.StateShuttingDown, state(t, sim, inst.ID))
		time.Sleep(10 * time.Second)
		assert.Equal(t, awsctl.StateTerminated, state(t, sim, inst.ID))
		assert.Equal(t, start.Add(40*time.Second), sim.Now())
	})
}

func TestShutdownAndTerminatedVisibility(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), ShutdownDelay: ec2sim.Fixed(20 * time.Second), TerminatedVisibleFor: 10 * time.Minute})
	insts := launch(t, sim, 2)
	gone, kept := insts[0].ID, insts[1].ID
	accepted, err := sim.Terminate(bgCtx, []string{gone})
	require.NoError(t, err)
	assert.Equal(t, []string{gone}, accepted)

	live := awsctl.ListFilter{Tags: owner}
	withTerminated := awsctl.ListFilter{Tags: owner, IncludeTerminated: true}
	assert.Equal(t, awsctl.StateShuttingDown, state(t, sim, gone))
	assert.ElementsMatch(t, []string{gone, kept}, listIDs(t, sim, live), "shutting-down instances are listed")

	require.NoError(t, sim.Advance(20*time.Second))
	assert.Equal(t, awsctl.StateTerminated, state(t, sim, gone))
	assert.Equal(t, []string{kept}, listIDs(t, sim, live))
	assert.ElementsMatch(t, []string{gone, kept}, listIDs(t, sim, withTerminated))

	require.NoError(t, sim.Advance(10*time.Minute-time.Nanosecond))
	assert.ElementsMatch(t, []string{gone, kept}, listIDs(t, sim, withTerminated), "still inside the visibility window")
	require.NoError(t, sim.Advance(time.Nanosecond))
	assert.Equal(t, []string{kept}, listIDs(t, sim, withTerminated), "forgotten after the window")

	// The API forgets the instance; the sim's own view keeps it.
	assert.Equal(t, awsctl.StateTerminated, state(t, sim, gone))
	assert.Len(t, sim.Instances(), 2)
	_, err = sim.Terminate(bgCtx, []string{gone})
	assert.ErrorIs(t, err, awsctl.ErrNotFound)
	assert.ErrorIs(t, sim.Tag(bgCtx, []string{gone}, map[string]string{"k": "v"}), awsctl.ErrNotFound)
}

func TestListDelayHidesNewInstances(t *testing.T) {
	sim := newSim(t, ec2sim.Config{ListDelay: ec2sim.Fixed(25 * time.Second)})
	id := launch(t, sim, 1)[0].ID
	assert.Empty(t, listIDs(t, sim, awsctl.ListFilter{Tags: owner}))
	assert.Empty(t, listIDs(t, sim, awsctl.ListFilter{}))
	_, ok := sim.Instance(id)
	assert.True(t, ok, "Instance ignores the list delay")
	require.NoError(t, sim.Tag(bgCtx, []string{id}, map[string]string{"k": "v"}), "an unlisted instance can be tagged")

	require.NoError(t, sim.Advance(25*time.Second-time.Nanosecond))
	assert.Empty(t, listIDs(t, sim, awsctl.ListFilter{Tags: owner}))
	require.NoError(t, sim.Advance(time.Nanosecond))
	assert.Equal(t, []string{id}, listIDs(t, sim, awsctl.ListFilter{Tags: map[string]string{"owner": "me", "k": "v"}}))
}

func TestTerminateDeduplicatesAndKeepsOrder(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	insts := launch(t, sim, 2)
	a, b := insts[0].ID, insts[1].ID
	accepted, err := sim.Terminate(bgCtx, []string{b, a, b})
	require.NoError(t, err)
	assert.Equal(t, []string{b, a}, accepted)

	accepted, err = sim.Terminate(bgCtx, []string{"i-00000000000000001", a, "i-00000000000000002"})
	assert.Equal(t, []string{a}, accepted)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "InvalidInstanceID.NotFound", apiErr.Code)
	assert.Contains(t, apiErr.Message, "i-00000000000000001, i-00000000000000002")
}

func TestTagsAreCopyOnWrite(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	reqTags := map[string]string{"owner": "me", "k": "1"}
	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 2, Tags: reqTags})
	require.NoError(t, err)
	reqTags["k"] = "changed by caller"

	before, err := sim.ListInstances(bgCtx, awsctl.ListFilter{Tags: owner})
	require.NoError(t, err)
	require.NoError(t, sim.Tag(bgCtx, []string{insts[0].ID}, map[string]string{"k": "2"}))
	require.NoError(t, sim.Untag(bgCtx, []string{insts[1].ID}, []string{"k"}))

	for _, inst := range append(before, insts...) {
		assert.Equal(t, "1", inst.Tags["k"], "a listing taken earlier keeps its tags")
	}
	now0, _ := sim.Instance(insts[0].ID)
	now1, _ := sim.Instance(insts[1].ID)
	assert.Equal(t, map[string]string{"owner": "me", "k": "2"}, now0.Tags)
	assert.Equal(t, map[string]string{"owner": "me"}, now1.Tags)
}

func TestTagIsAllOrNothing(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	insts := launch(t, sim, 2)
	// The second instance would exceed the limit; the first must not be tagged either.
	many := map[string]string{}
	for i := range ec2sim.MaxTags - 1 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	require.NoError(t, sim.Tag(bgCtx, []string{insts[1].ID}, many)) // owner + 49 = 50
	err := sim.Tag(bgCtx, []string{insts[0].ID, insts[1].ID}, map[string]string{"extra": "v"})
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "TagLimitExceeded", apiErr.Code)
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	first, _ := sim.Instance(insts[0].ID)
	assert.NotContains(t, first.Tags, "extra")

	// Tagging shutting-down instances is allowed.
	_, err = sim.Terminate(bgCtx, []string{insts[0].ID})
	require.NoError(t, err)
	require.NoError(t, sim.Tag(bgCtx, []string{insts[0].ID}, map[string]string{"late": "yes"}))
	first, _ = sim.Instance(insts[0].ID)
	assert.Equal(t, "yes", first.Tags["late"])
}

func TestLaunchValidation(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	valid := func() awsctl.LaunchRequest {
		return awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 1, Tags: owner}
	}
	cases := []struct {
		name, code, mention string
		edit                func(*awsctl.LaunchRequest)
	}{
		{"no image", "MissingParameter", "ImageID", func(r *awsctl.LaunchRequest) { r.Spec.ImageID = "" }},
		{"empty template", "MissingParameter", "template", func(r *awsctl.LaunchRequest) {
			r.Spec.ImageID = ""
			r.Spec.LaunchTemplate = &awsctl.LaunchTemplate{Version: "$Latest"}
		}},
		{"bad market", "InvalidParameterValue", "market", func(r *awsctl.LaunchRequest) { r.Market = "reserved" }},
		{"zero capacity", "InvalidParameterValue", "capacity", func(r *awsctl.LaunchRequest) { r.Capacity = 0 }},
		{"no offerings", "MissingParameter", "offerings", func(r *awsctl.LaunchRequest) { r.Offerings = nil }},
		{"unknown zone", "InvalidParameterValue", "us-east-1z", func(r *awsctl.LaunchRequest) {
			r.Offerings = []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1z", Weight: 1}}
		}},
		{"zero weight", "InvalidParameterValue", "weight", func(r *awsctl.LaunchRequest) { r.Offerings[0].Weight = 0 }},
		{"no type", "MissingParameter", "instance type", func(r *awsctl.LaunchRequest) { r.Offerings[0].InstanceType = "" }},
		{"misspelt type", "InvalidParameterValue", "Invalid value 'c5.lrage' for InstanceType", func(r *awsctl.LaunchRequest) {
			r.Offerings = append(r.Offerings, awsctl.Offering{InstanceType: "c5.lrage", Zone: "us-east-1a", Weight: 1})
		}},
		{"zone without subnet", "InvalidParameterValue", "subnets", func(r *awsctl.LaunchRequest) {
			r.Spec.Subnets = []awsctl.Subnet{{ID: "subnet-b", Zone: "us-east-1b"}}
		}},
		{"subnet in unknown zone", "InvalidParameterValue", "subnet-x", func(r *awsctl.LaunchRequest) {
			r.Spec.Subnets = []awsctl.Subnet{{ID: "subnet-x", Zone: "eu-west-1a"}}
		}},
		{"negative max price", "InvalidParameterValue", "price", func(r *awsctl.LaunchRequest) { r.MaxPrice = -1 }},
		{"template by id and name", "InvalidParameterCombination", "both", func(r *awsctl.LaunchRequest) {
			r.Spec.ImageID = ""
			r.Spec.LaunchTemplate = &awsctl.LaunchTemplate{ID: "lt-0123", Name: "workers"}
		}},
		{"long token", "InvalidParameterValue", "token", func(r *awsctl.LaunchRequest) { r.Token = strings.Repeat("t", 65) }},
		{"reserved tag", "InvalidParameterValue", "aws:", func(r *awsctl.LaunchRequest) { r.Spec.Tags = map[string]string{"aws:x": "1"} }},
		{"long value", "InvalidParameterValue", "256", func(r *awsctl.LaunchRequest) { r.Tags = map[string]string{"k": strings.Repeat("v", 257)} }},
		{"too many tags", "TagLimitExceeded", "50", func(r *awsctl.LaunchRequest) {
			r.Spec.Tags = map[string]string{}
			for i := range 50 {
				r.Spec.Tags[fmt.Sprint("k", i)] = "v"
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := valid()
			req.Offerings = slices.Clone(req.Offerings)
			c.edit(&req)
			insts, err := sim.Launch(bgCtx, req)
			assert.Empty(t, insts)
			var apiErr *awsctl.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
			assert.Equal(t, c.code, apiErr.Code)
			assert.Contains(t, strings.ToLower(apiErr.Message), strings.ToLower(c.mention))
		})
	}
	assert.Empty(t, sim.Instances(), "invalid launches launch nothing")

	// With subnets in the offerings' zones the same launch works, and a
	// launch template can replace the image.
	req := valid()
	req.Spec = awsctl.LaunchSpec{LaunchTemplate: &awsctl.LaunchTemplate{Name: "workers"}, Subnets: []awsctl.Subnet{{ID: "subnet-a", Zone: "us-east-1a"}}}
	insts, err := sim.Launch(bgCtx, req)
	require.NoError(t, err)
	assert.Len(t, insts, 1)
}

func TestLaunchKnowsTheTypesThatExist(t *testing.T) {
	// A type missing from the built-in table exists once the config prices
	// it; the built-in types stay.
	sim := newSim(t, ec2sim.Config{OnDemandPrices: map[string]float64{"x2iedn.xlarge": 0.834}})
	launch(t, sim, 1, awsctl.Offering{InstanceType: "x2iedn.xlarge", Zone: "us-east-1a", Weight: 1})
	launch(t, sim, 1, m5a)

	_, err := newSim(t, ec2sim.Config{}).Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Market: onDmd, Capacity: 1,
		Offerings: []awsctl.Offering{{InstanceType: "x2iedn.xlarge", Zone: "us-east-1a", Weight: 1}}})
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr, "x2iedn.xlarge is unknown to the default sim")
	assert.Equal(t, "InvalidParameterValue", apiErr.Code)
}

func TestLaunchTokenReplayAndMismatch(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 2, Tags: owner, Token: "tok"}
	first, err := sim.Launch(bgCtx, req)
	require.NoError(t, err)
	require.NoError(t, sim.Advance(time.Minute))
	again, err := sim.Launch(bgCtx, req)
	require.NoError(t, err)
	assert.Equal(t, ids(first), ids(again))
	for _, inst := range again {
		assert.Equal(t, awsctl.StateRunning, inst.State, "a replay reports the current state")
	}

	edits := map[string]func(*awsctl.LaunchRequest){
		"capacity":  func(r *awsctl.LaunchRequest) { r.Capacity = 3 },
		"market":    func(r *awsctl.LaunchRequest) { r.Market = awsctl.MarketSpot },
		"offerings": func(r *awsctl.LaunchRequest) { r.Offerings = []awsctl.Offering{m5b} },
		"tags":      func(r *awsctl.LaunchRequest) { r.Tags = map[string]string{"owner": "you"} },
		"image":     func(r *awsctl.LaunchRequest) { r.Spec.ImageID = "ami-other" },
	}
	for name, edit := range edits {
		r := req
		edit(&r)
		insts, err := sim.Launch(bgCtx, r)
		assert.Empty(t, insts, name)
		var apiErr *awsctl.APIError
		if assert.ErrorAs(t, err, &apiErr, name) {
			assert.Equal(t, "IdempotentParameterMismatch", apiErr.Code, name)
			assert.ErrorIs(t, err, awsctl.ErrTokenMismatch, name)
			assert.NotErrorIs(t, err, awsctl.ErrInvalidRequest, name)
		}
	}
	assert.Len(t, sim.Instances(), 2)
}

func TestFailedLaunchConsumesItsToken(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	sim.SetCapacity(onDmd, "m5.large", "us-east-1a", 0)
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 2, Tags: owner, Token: "tok"}
	insts, first := sim.Launch(bgCtx, req)
	require.ErrorIs(t, first, awsctl.ErrInsufficientCapacity)
	require.Empty(t, insts)

	// Capacity comes back, but the token was consumed by the failed
	// request: the retry gets the first answer and launches nothing.
	sim.SetCapacity(onDmd, "m5.large", "us-east-1a", -1)
	insts, err := sim.Launch(bgCtx, req)
	assert.Empty(t, insts)
	assert.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	assert.Equal(t, first.Error(), err.Error(), "the recorded answer")
	assert.Empty(t, sim.Instances())

	other := req
	other.Offerings = []awsctl.Offering{m5b}
	_, err = sim.Launch(bgCtx, other)
	assert.ErrorIs(t, err, awsctl.ErrTokenMismatch, "the token is taken, whatever the first request got")

	fresh := req
	fresh.Token = "tok-2"
	insts, err = sim.Launch(bgCtx, fresh)
	require.NoError(t, err)
	assert.Len(t, insts, 2, "a new token launches")
}

func TestPartialLaunchReplaysItsError(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	sim.SetCapacity(onDmd, "m5.large", "us-east-1a", 1)
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 3, Tags: owner, Token: "tok"}
	first, err := sim.Launch(bgCtx, req)
	require.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	require.Len(t, first, 1)
	sim.SetCapacity(onDmd, "m5.large", "us-east-1a", -1)
	again, err := sim.Launch(bgCtx, req)
	assert.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	assert.Equal(t, ids(first), ids(again))
	assert.Len(t, sim.Instances(), 1)
}

func TestInvalidOrFaultedLaunchLeavesItsTokenFree(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	bad := awsctl.LaunchRequest{Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 1, Tags: owner, Token: "tok"}
	_, err := sim.Launch(bgCtx, bad)
	require.ErrorIs(t, err, awsctl.ErrInvalidRequest, "no image")

	good := bad
	good.Spec = spec
	sim.FailNext(ec2sim.OpLaunch, ec2sim.Throttled(ec2sim.OpLaunch))
	_, err = sim.Launch(bgCtx, good)
	require.ErrorIs(t, err, awsctl.ErrThrottled)

	insts, err := sim.Launch(bgCtx, good)
	require.NoError(t, err, "neither the invalid request nor the throttled one took the token")
	assert.Len(t, insts, 1)
}

func TestSetCapacityGivesPartialSuccess(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	sim.SetCapacity(onDmd, "m5.large", "us-east-1a", 2)
	sim.SetCapacity(onDmd, "m5.large", "us-east-1b", 1)

	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, m5b}, Market: onDmd, Capacity: 5, Tags: owner})
	require.Len(t, insts, 3, "two in a, one in b")
	require.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	var failed []awsctl.Offering
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *awsctl.LaunchError
		require.ErrorAs(t, e, &le)
		assert.Equal(t, onDmd, le.Market)
		var apiErr *awsctl.APIError
		require.ErrorAs(t, e, &apiErr)
		assert.Equal(t, "InsufficientInstanceCapacity", apiErr.Code)
		failed = append(failed, le.Offering)
	}
	assert.Equal(t, []awsctl.Offering{m5a, m5b}, failed)

	// The limit is per market: spot is unaffected.
	spot, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketSpot, Capacity: 1, Tags: owner})
	require.NoError(t, err)
	assert.Len(t, spot, 1)

	// A full first offering does not fail a launch the next one completes.
	more, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, c5b}, Market: onDmd, Capacity: 2, Tags: owner})
	require.NoError(t, err)
	for _, inst := range more {
		assert.Equal(t, "c5.large", inst.Type)
	}

	// Terminating frees capacity; a negative limit removes it.
	_, err = sim.Terminate(bgCtx, []string{insts[0].ID})
	require.NoError(t, err)
	launch(t, sim, 1, m5a)
	sim.SetCapacity(onDmd, "m5.large", "us-east-1a", -1)
	launch(t, sim, 10, m5a)
}

func TestMaxInstances(t *testing.T) {
	sim := newSim(t, ec2sim.Config{MaxInstances: 3})
	first := launch(t, sim, 2)
	insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, m5b}, Market: onDmd, Capacity: 2, Tags: owner})
	assert.Len(t, insts, 1)
	require.ErrorIs(t, err, awsctl.ErrLimitExceeded)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "InstanceLimitExceeded", apiErr.Code)
	var le *awsctl.LaunchError
	assert.False(t, errors.As(err, &le), "the account limit is not an offering's fault")

	_, err = sim.Terminate(bgCtx, []string{first[0].ID})
	require.NoError(t, err)
	launch(t, sim, 1) // shutting-down instances do not count
}

func TestContextCanceled(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	ctx, cancel := context.WithCancel(bgCtx)
	cancel()
	_, err := sim.Launch(ctx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 1})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = sim.ListInstances(ctx, awsctl.ListFilter{})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = sim.Terminate(ctx, []string{"i-00000000000000001"})
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, sim.Tag(ctx, nil, owner), context.Canceled)
	assert.ErrorIs(t, sim.Untag(ctx, nil, []string{"owner"}), context.Canceled)
	assert.Empty(t, sim.Instances())
	for op, n := range sim.Calls() {
		assert.Zero(t, n, op)
	}
}

func TestIDsAndAddresses(t *testing.T) {
	idPattern := regexp.MustCompile(`^i-[0-9a-f]{17}$`)
	ipPattern := regexp.MustCompile(`^10\.\d{1,3}\.\d{1,3}\.\d{1,3}$`)
	a := newSim(t, ec2sim.Config{Seed: 1})
	b := newSim(t, ec2sim.Config{Seed: 1})
	c := newSim(t, ec2sim.Config{Seed: 2})
	ia, ib, ic := launch(t, a, 5000), launch(t, b, 5000), launch(t, c, 5000)
	seenID, seenIP := map[string]bool{}, map[string]bool{}
	for i, inst := range ia {
		assert.Regexp(t, idPattern, inst.ID)
		assert.Regexp(t, ipPattern, inst.PrivateIP)
		assert.False(t, seenID[inst.ID] || seenIP[inst.PrivateIP], "repeated id or address at %d", i)
		seenID[inst.ID], seenIP[inst.PrivateIP] = true, true
		assert.Equal(t, inst.ID, ib[i].ID, "same seed, same ids")
		assert.Equal(t, inst.PrivateIP, ib[i].PrivateIP)
	}
	assert.NotEqual(t, ids(ia), ids(ic), "another seed, other ids")
}

func TestInstancesSortedByLaunchTimeThenID(t *testing.T) {
	sim := newSim(t, ec2sim.Config{})
	launch(t, sim, 3)
	require.NoError(t, sim.Advance(time.Second))
	launch(t, sim, 3)
	all := sim.Instances()
	require.Len(t, all, 6)
	assert.True(t, slices.IsSortedFunc(all, func(a, b awsctl.Instance) int {
		if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}), "not sorted: %v", all)
	assert.True(t, all[2].LaunchTime.Before(all[3].LaunchTime))
}

func TestNewValidation(t *testing.T) {
	cases := []struct {
		field string
		cfg   ec2sim.Config
	}{
		{"Region", ec2sim.Config{Region: "nowhere"}},
		{"Zones", ec2sim.Config{Zones: []string{"eu-west-1a"}}},
		{"Zones", ec2sim.Config{Zones: []string{"us-east-1a", "us-east-1a"}}},
		{"Zones", ec2sim.Config{Zones: []string{"us-east-1"}}},
		{"BootDelay", ec2sim.Config{BootDelay: ec2sim.Fixed(-time.Second)}},
		{"ShutdownDelay", ec2sim.Config{ShutdownDelay: ec2sim.Uniform(time.Minute, time.Second)}},
		{"ListDelay", ec2sim.Config{ListDelay: ec2sim.LogNormal(0, 0.5)}},
		{"ListDelay", ec2sim.Config{ListDelay: ec2sim.LogNormal(time.Second, -1)}},
		{"TerminatedVisibleFor", ec2sim.Config{TerminatedVisibleFor: -time.Minute}},
		{"MaxInstances", ec2sim.Config{MaxInstances: -1}},
		{"OnDemandPrices", ec2sim.Config{OnDemandPrices: map[string]float64{"m5.large": -0.1}}},
		{"OnDemandPrices", ec2sim.Config{OnDemandPrices: map[string]float64{"": 0.1}}},
	}
	for _, c := range cases {
		_, err := ec2sim.New(c.cfg)
		if assert.ErrorIs(t, err, ec2sim.ErrInvalidConfig, "%+v", c.cfg) {
			assert.Contains(t, err.Error(), c.field)
		}
	}
	sim, err := ec2sim.New(ec2sim.Config{Region: "eu-west-1", Zones: []string{"eu-west-1a", "eu-west-1b"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"eu-west-1a", "eu-west-1b"}, sim.Zones())
	_, err = ec2sim.New(ec2sim.Config{Zones: []string{"us-east-1-bos-1a"}})
	assert.NoError(t, err, "Local Zones are zones")
	assert.Error(t, sim.Advance(-time.Second))
}

func TestDelaysAreDeterministicAndInRange(t *testing.T) {
	// boots returns each instance's boot delay, rounded up to seconds, as
	// a user sees it: by stepping the clock.
	boots := func(seed int64, d ec2sim.Delay) []time.Duration {
		sim := newSim(t, ec2sim.Config{Seed: seed, BootDelay: d})
		insts := launch(t, sim, 200)
		out := make([]time.Duration, len(insts))
		for elapsed := time.Duration(0); elapsed <= 30*time.Second; elapsed += time.Second {
			for i, inst := range insts {
				if out[i] == 0 && state(t, sim, inst.ID) == awsctl.StateRunning {
					out[i] = elapsed
				}
			}
			require.NoError(t, sim.Advance(time.Second))
		}
		return out
	}
	u := ec2sim.Uniform(10*time.Second, 20*time.Second)
	got := boots(3, u)
	assert.Equal(t, got, boots(3, u))
	assert.NotEqual(t, got, boots(4, u))
	for _, d := range got {
		assert.True(t, d >= 10*time.Second && d <= 20*time.Second, "%v outside [10s, 20s]", d)
	}
}

func TestConcurrentUse(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0)})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			tags := map[string]string{"owner": fmt.Sprint("g", g)}
			for range 50 {
				insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: onDmd, Capacity: 2, Tags: tags})
				assert.NoError(t, err)
				assert.NoError(t, sim.Tag(bgCtx, []string{insts[0].ID}, map[string]string{"k": "v"}))
				_, err = sim.Terminate(bgCtx, []string{insts[1].ID})
				assert.NoError(t, err)
				_, err = sim.ListInstances(bgCtx, awsctl.ListFilter{Tags: tags})
				assert.NoError(t, err)
				_ = sim.Bill()
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		assert.Len(t, listIDs(t, sim, awsctl.ListFilter{Tags: map[string]string{"owner": fmt.Sprint("g", g), "k": "v"}}), 50)
	}
}
