package elbrole_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// settingsRole is a role in front of one target group created with opt, on
// a load balancer serving zones, for an inner role launching in subnets.
func settingsRole(t *testing.T, opt elbsim.TargetGroupOptions, zones []string, subnets []awsctl.Subnet, cfg elbrole.Config) (*elbrole.Role, *elbsim.LB, string) {
	t.Helper()
	lb, err := elbsim.New(elbsim.Config{HealthCheckInterval: 10 * time.Second, HealthyThreshold: 2,
		DeregistrationDelay: 2 * time.Minute, Zones: zones})
	require.NoError(t, err)
	arn, err := lb.CreateTargetGroupWith("web", 8080, opt)
	require.NoError(t, err)
	inner, err := role.New("web", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0", Subnets: subnets}, role.Hooks{})
	require.NoError(t, err)
	cfg.TargetGroups = []elbrole.TargetGroup{{ARN: arn}}
	r, err := elbrole.New(inner, lb, cfg)
	require.NoError(t, err)
	return r, lb, arn
}

func TestSettingsAreReadAtFirstUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, lb, arn := settingsRole(t, elbsim.TargetGroupOptions{SlowStart: 90 * time.Second}, nil,
			[]awsctl.Subnet{{ID: "subnet-0a", Zone: "us-east-1a"}}, elbrole.Config{})
		ctx := context.Background()
		require.NoError(t, r.Provision(ctx, awsctl.Instance{ID: "i-0a", Zone: "us-east-1a"}))
		ss, err := r.Settings(ctx)
		require.NoError(t, err)
		require.Len(t, ss, 1)
		assert.Equal(t, arn, ss[0].ARN)
		assert.Equal(t, types.TargetTypeEnumInstance, ss[0].TargetType)
		assert.Equal(t, 2*time.Minute, ss[0].DeregistrationDelay, "for the caller to compare with its wind-down timeout")
		assert.Len(t, ss[0].LoadBalancers, 1)
		assert.Contains(t, ss[0].Zones, "us-east-1a")
		warm, err := r.WarmUp(ctx)
		require.NoError(t, err)
		assert.Equal(t, 90*time.Second, warm, "slow start is the warm-up")
		require.NoError(t, r.Provision(ctx, awsctl.Instance{ID: "i-0b", Zone: "us-east-1a"}))
		assert.Equal(t, 1, lb.Calls()[elbsim.OpDescribeTargetGroupAttributes], "read once")
	})
}

func TestSettingsRejectWhatCannotWork(t *testing.T) {
	us1a := []awsctl.Subnet{{ID: "subnet-0a", Zone: "us-east-1a"}}
	for _, tc := range []struct {
		name    string
		opt     elbsim.TargetGroupOptions
		zones   []string
		subnets []awsctl.Subnet
		cfg     elbrole.Config
		is      error
		says    string
	}{
		{"ip target type", elbsim.TargetGroupOptions{TargetType: types.TargetTypeEnumIp}, nil, us1a, elbrole.Config{},
			elbrole.ErrInvalidConfig, `target type "ip"`},
		{"wind-down shorter than the delay", elbsim.TargetGroupOptions{}, nil, us1a, elbrole.Config{WindDownTimeout: time.Minute},
			elbrole.ErrInvalidConfig, "Config.WindDownTimeout"},
		{"subnet zone not served", elbsim.TargetGroupOptions{}, []string{"us-east-1a", "us-east-1b"},
			[]awsctl.Subnet{{ID: "subnet-0a", Zone: "us-east-1a"}, {ID: "subnet-0c", Zone: "us-east-1c"}}, elbrole.Config{},
			elbrole.ErrZoneNotServed, "zone us-east-1c"},
		{"no load balancer", elbsim.TargetGroupOptions{Detached: true}, nil, us1a, elbrole.Config{},
			elbrole.ErrZoneNotServed, "no load balancer uses the target group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, lb, arn := settingsRole(t, tc.opt, tc.zones, tc.subnets, tc.cfg)
				err := r.Provision(context.Background(), awsctl.Instance{ID: "i-0a", Zone: "us-east-1a"})
				require.ErrorIs(t, err, tc.is)
				assert.Contains(t, err.Error(), tc.says)
				assert.Empty(t, lb.Targets(arn), "nothing registered")
				assert.Zero(t, lb.Calls()[elbsim.OpRegisterTargets])
				err = r.Restore(context.Background(), awsctl.Instance{ID: "i-0a", Zone: "us-east-1a"})
				require.ErrorIs(t, err, tc.is, "Restore checks too")
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		r, _, _ := settingsRole(t, elbsim.TargetGroupOptions{}, nil, us1a, elbrole.Config{WindDownTimeout: 3 * time.Minute})
		assert.NoError(t, r.Provision(context.Background(), awsctl.Instance{ID: "i-0a", Zone: "us-east-1a"}), "longer than the delay")
	})
}

func TestSimulatedZoneNotServedIsNotInUse(t *testing.T) {
	// elbsim reports a target in a zone its load balancer does not serve as
	// unused (Target.NotInUse), and the role fails fast naming the zone.
	synctest.Test(t, func(t *testing.T) {
		ec2 := running("i-0c")
		lb, err := elbsim.New(elbsim.Config{Zones: []string{"us-east-1a"}, Instances: func(id string) (awsctl.Instance, bool) {
			inst, ok := ec2.lookup(id)
			inst.Zone = "us-east-1c"
			return inst, ok
		}})
		require.NoError(t, err)
		arn, err := lb.CreateTargetGroup("web", 8080)
		require.NoError(t, err)
		r, err := elbrole.New(noHooks(t), lb, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn}}})
		require.NoError(t, err)
		err = r.Provision(context.Background(), awsctl.Instance{ID: "i-0c", Zone: "us-east-1c"})
		require.ErrorIs(t, err, elbrole.ErrZoneNotServed)
		assert.Contains(t, err.Error(), "zone us-east-1c")
	})
}
