package elbrole_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/role"
)

func TestWindDownOfADeletedTargetGroupCompletes(t *testing.T) {
	// Someone deleted the target group: the server receives nothing and has
	// nothing to drain, so its wind-down must end rather than fail forever.
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		f.lb.DeleteTargetGroup(f.arn)

		require.NoError(t, f.role.WindDown(ctx, inst))
		assert.Contains(t, f.app.called(), "wind-down i-0a", "the app is told too")
		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{Idle: true, WoundDown: true}, st)
	})
}

// rewrite is a simulated load balancer whose health answers pass through
// edit first, to produce states elbsim does not model.
type rewrite struct {
	*elbsim.LB
	mu   sync.Mutex
	edit func(id string, h *types.TargetHealth)
}

func (r *rewrite) set(edit func(id string, h *types.TargetHealth)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.edit = edit
}

func (r *rewrite) DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, opts ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	out, err := r.LB.DescribeTargetHealth(ctx, in, opts...)
	r.mu.Lock()
	edit := r.edit
	r.mu.Unlock()
	if err == nil && edit != nil {
		for _, d := range out.TargetHealthDescriptions {
			edit(aws.ToString(d.Target.Id), d.TargetHealth)
		}
	}
	return out, err
}

// newRewriteFixture is newFixture with the role reading health through a
// rewrite.
func newRewriteFixture(t *testing.T, cfg elbrole.Config) (*fixture, *rewrite) {
	t.Helper()
	f := newFixture(t, cfg, elbsim.Config{})
	rw := &rewrite{LB: f.lb}
	cfg.TargetGroups = []elbrole.TargetGroup{{ARN: f.arn}}
	var err error
	f.role, err = elbrole.New(f.app.role(t), rw, cfg)
	require.NoError(t, err)
	return f, rw
}

func TestRestoreWaitsUntilHealthyAgain(t *testing.T) {
	// Registering again restarts the health checks: the server is not
	// capacity until they pass.
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		require.NoError(t, f.role.WindDown(ctx, inst))

		short, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := f.role.Restore(short, inst)
		require.ErrorIs(t, err, context.DeadlineExceeded, "bounded by the hook's context")
		assert.Contains(t, err.Error(), "initial")
		assert.Equal(t, types.TargetHealthStateEnumInitial, f.state(inst.ID))

		// The restore did not finish: the wind-down stands, and Check takes
		// the server out again.
		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.False(t, st.WoundDown)
		assert.Equal(t, types.TargetHealthStateEnumDraining, f.state(inst.ID))

		start := time.Now()
		require.NoError(t, f.role.Restore(ctx, inst))
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID))
		assert.Equal(t, elbrole.DefaultBatchWindow+20*time.Second, time.Since(start))
	})
}

func TestNotInUseFailsFastNamingTheZone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, rw := newRewriteFixture(t, elbrole.Config{})
		rw.set(func(_ string, h *types.TargetHealth) {
			h.State, h.Reason = types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumNotInUse
			h.Description = aws.String("Target is in an Availability Zone that is not enabled for the load balancer")
		})
		start := time.Now()
		err := f.role.Provision(context.Background(), awsctl.Instance{ID: inst.ID, Zone: "us-east-1c"})
		require.ErrorIs(t, err, elbrole.ErrZoneNotServed)
		require.ErrorIs(t, err, elbrole.ErrInvalidConfig)
		assert.NotErrorIs(t, err, elbrole.ErrNotHealthy)
		var ze *elbrole.ZoneError
		require.ErrorAs(t, err, &ze)
		assert.Equal(t, "us-east-1c", ze.Zone)
		assert.Contains(t, err.Error(), "zone us-east-1c")
		assert.Contains(t, err.Error(), f.arn)
		assert.Less(t, time.Since(start), elbrole.DefaultHealthyTimeout/10, "not waited for")
		assert.Equal(t, types.TargetHealthStateEnumDraining, f.state(inst.ID), "not left registered")
	})
}

func TestLoadBalancerFaultIsNotTheServers(t *testing.T) {
	for _, fault := range []types.TargetHealth{
		{State: types.TargetHealthStateEnumUnhealthy, Reason: types.TargetHealthReasonEnumInternalError},
		{State: types.TargetHealthStateEnumUnavailable, Reason: types.TargetHealthReasonEnumHealthCheckDisabled},
	} {
		t.Run(string(fault.State), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, rw := newRewriteFixture(t, elbrole.Config{HealthyTimeout: time.Minute})
				until := time.Now().Add(3 * time.Minute)
				rw.set(func(_ string, h *types.TargetHealth) {
					if time.Now().Before(until) {
						h.State, h.Reason = fault.State, fault.Reason
					}
				})
				// Past HealthyTimeout the wait goes on while ctx allows, and
				// the target is not taken out.
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				err := f.role.Provision(ctx, inst)
				require.ErrorIs(t, err, awsctl.ErrUnavailable)
				assert.NotErrorIs(t, err, elbrole.ErrNotHealthy)
				assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID), "still registered")

				require.NoError(t, f.role.Provision(context.Background(), inst), "healthy once the load balancer recovers")
				assert.False(t, time.Now().Before(until))
			})
		})
	}
}

func TestUnusedAfterDeregistrationIsDrained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, rw := newRewriteFixture(t, elbrole.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		require.NoError(t, f.role.WindDown(ctx, inst))
		// The instance stopped: the target is listed, but unused.
		rw.set(func(_ string, h *types.TargetHealth) {
			h.State, h.Reason = types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumInvalidState
		})
		time.Sleep(elbrole.DefaultPollInterval)
		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.True(t, st.WoundDown, "nothing left to drain")
	})
}
