package elbrole_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbtest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

var instB = awsctl.Instance{ID: "i-0b"}

// provisionBoth brings inst and instB into service through r.
func provisionBoth(t *testing.T, r *elbrole.Role) {
	t.Helper()
	var wg sync.WaitGroup
	for _, in := range []awsctl.Instance{inst, instB} {
		wg.Go(func() { assert.NoError(t, r.Provision(context.Background(), in)) })
	}
	wg.Wait()
}

// windDownBoth starts WindDown of inst under ctxA and of instB under a
// context that stays live, and returns their errors once both are back.
func windDownBoth(r *elbrole.Role, ctxA context.Context) func() (errA, errB error) {
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { errA = r.WindDown(ctxA, inst) })
	wg.Go(func() { errB = r.WindDown(context.Background(), instB) })
	return func() (error, error) {
		wg.Wait()
		return errA, errB
	}
}

// A deposed leader's wind-down, cancelled while it waits in the batch
// window, must not reach the load balancer: the new leader may have
// restored the server by then. The live caller batched with it still has
// its deregistration sent.
func TestWindDownCancelledWhileQueuedIsNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		provisionBoth(t, f.role)
		before := f.lb.Calls()[elbsim.OpDeregisterTargets]

		ctxA, cancelA := context.WithCancel(context.Background())
		wait := windDownBoth(f.role, ctxA)
		synctest.Wait() // both queued, the batch window not over
		cancelA()
		errA, errB := wait()

		require.ErrorIs(t, errA, context.Canceled)
		require.NoError(t, errB)
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID), "the cancelled deregistration was dropped")
		assert.Equal(t, types.TargetHealthStateEnumDraining, f.state(instB.ID), "the live one was sent")
		assert.Equal(t, before+1, f.lb.Calls()[elbsim.OpDeregisterTargets], "one call, for the live caller")
		assert.NotContains(t, f.app.called(), "wind-down i-0a")

		// The role does not remember the dropped wind-down either: the
		// health poll of the server, still in service, leaves it there.
		st, err := f.role.Check(context.Background(), inst)
		require.NoError(t, err)
		assert.False(t, st.WoundDown)
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID), "not deregistered by a later Check")
	})
}

// wireRole is a role in front of the simulated load balancer over ELB's
// wire protocol, with a registration bucket that holds one call every
// 25 s.
func wireRole(t *testing.T, api func(elbrole.API) elbrole.API) (*elbrole.Role, *elbsim.LB, *elbtest.Server, string) {
	t.Helper()
	lb, err := elbsim.New(elbsim.Config{HealthCheckInterval: 10 * time.Second, HealthyThreshold: 2, DeregistrationDelay: time.Minute})
	require.NoError(t, err)
	arn, err := lb.CreateTargetGroup("web", 8080)
	require.NoError(t, err)
	srv, err := elbtest.New(lb)
	require.NoError(t, err)
	var client elbrole.API = elbv2.NewFromConfig(srv.InProcessAWSConfig())
	if api != nil {
		client = api(client)
	}
	r, err := elbrole.New(noHooks(t), client, elbrole.Config{
		TargetGroups: []elbrole.TargetGroup{{ARN: arn}},
		Limits:       elbrole.Limits{Registration: ratelimit.Limit{Burst: 1, PerSecond: 1.0 / 25}},
	})
	require.NoError(t, err)
	return r, lb, srv, arn
}

func targetState(lb *elbsim.LB, arn, id string) types.TargetHealthStateEnum {
	for _, tg := range lb.Targets(arn) {
		if tg.ID == id {
			return tg.State
		}
	}
	return ""
}

// A caller whose context ends while its batch waits for the rate limiter
// is dropped from the call: liveness is checked again right before the
// wire call.
func TestDeregistrationCancelledDuringTheRateLimitWaitIsNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, lb, srv, arn := wireRole(t, nil)
		provisionBoth(t, r) // 20 s; took the only token, the next comes at 25 s

		ctxA, cancelA := context.WithCancel(context.Background())
		start := time.Now()
		wait := windDownBoth(r, ctxA)
		time.Sleep(elbrole.DefaultBatchWindow + time.Second)
		synctest.Wait() // the batch is out of its window, waiting for a token
		require.Empty(t, srv.Requests(elbrole.OpDeregisterTargets))
		cancelA()
		errA, errB := wait()

		require.ErrorIs(t, errA, context.Canceled)
		require.NoError(t, errB)
		assert.Greater(t, time.Since(start), 4*time.Second, "the call waited for the rate limiter")
		regs := srv.Requests(elbrole.OpDeregisterTargets)
		require.Len(t, regs, 1)
		assert.Equal(t, instB.ID, regs[0].Params.Get("Targets.member.1.Id"))
		assert.False(t, regs[0].Params.Has("Targets.member.2.Id"), "only the live caller's target")
		assert.Equal(t, types.TargetHealthStateEnumHealthy, targetState(lb, arn, inst.ID))
		assert.Equal(t, types.TargetHealthStateEnumDraining, targetState(lb, arn, instB.ID))
	})
}

func TestBatchWhoseCallersAllLeftIsNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, lb, srv, arn := wireRole(t, nil)
		provisionBoth(t, r)

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, in := range []awsctl.Instance{inst, instB} {
			wg.Go(func() { assert.ErrorIs(t, r.WindDown(ctx, in), context.Canceled) })
		}
		time.Sleep(elbrole.DefaultBatchWindow + time.Second)
		synctest.Wait()
		cancel()
		wg.Wait()
		time.Sleep(time.Minute) // long past the token's refill
		synctest.Wait()

		assert.Empty(t, srv.Requests(elbrole.OpDeregisterTargets), "nobody waits for it any more")
		for _, id := range []string{inst.ID, instB.ID} {
			assert.Equal(t, types.TargetHealthStateEnumHealthy, targetState(lb, arn, id))
		}
	})
}

// holding holds every DeregisterTargets call until its context ends, and
// hands that context to the test.
type holding struct {
	elbrole.API
	calls chan context.Context
}

func (h holding) DeregisterTargets(ctx context.Context, in *elbv2.DeregisterTargetsInput, opts ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error) {
	h.calls <- ctx
	<-ctx.Done()
	return nil, ctx.Err()
}

// A call on the wire runs until every caller it serves has left (or the
// call timeout), not while only one of them has.
func TestBatchCallEndsWhenAllItsCallersHaveLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := make(chan context.Context, 1)
		r, _, _, _ := wireRole(t, func(api elbrole.API) elbrole.API { return holding{api, calls} })
		provisionBoth(t, r)
		time.Sleep(time.Minute) // a token for the deregistration

		ctxA, cancelA := context.WithCancel(context.Background())
		ctxB, cancelB := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { assert.ErrorIs(t, r.WindDown(ctxA, inst), context.Canceled) })
		wg.Go(func() { assert.ErrorIs(t, r.WindDown(ctxB, instB), context.Canceled) })
		call := <-calls

		cancelA()
		synctest.Wait()
		assert.NoError(t, call.Err(), "B still waits for the call")
		cancelB()
		synctest.Wait()
		assert.ErrorIs(t, call.Err(), context.Canceled, "nobody waits for it any more")
		wg.Wait()
	})
}
