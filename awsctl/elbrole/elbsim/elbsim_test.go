package elbsim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// lb is a load balancer whose targets are healthy 20 s after registration,
// unhealthy 20 s after they start failing, and drain for a minute.
func lb(t *testing.T, cfg elbsim.Config) (*elbsim.LB, string, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Clock = c.Now
	cfg.HealthCheckInterval, cfg.HealthyThreshold, cfg.UnhealthyThreshold = 10*time.Second, 2, 2
	if cfg.DeregistrationDelay == 0 {
		cfg.DeregistrationDelay = time.Minute
	}
	l, err := elbsim.New(cfg)
	require.NoError(t, err)
	arn, err := l.CreateTargetGroup("web", 80)
	require.NoError(t, err)
	return l, arn, c
}

func register(t *testing.T, l *elbsim.LB, arn string, ids ...string) error {
	t.Helper()
	var ts []types.TargetDescription
	for _, id := range ids {
		ts = append(ts, types.TargetDescription{Id: aws.String(id)})
	}
	_, err := l.RegisterTargets(context.Background(), &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: ts})
	return err
}

func deregister(t *testing.T, l *elbsim.LB, arn string, ids ...string) {
	t.Helper()
	var ts []types.TargetDescription
	for _, id := range ids {
		ts = append(ts, types.TargetDescription{Id: aws.String(id)})
	}
	_, err := l.DeregisterTargets(context.Background(), &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: ts})
	require.NoError(t, err)
}

func state(l *elbsim.LB, arn, id string) types.TargetHealthStateEnum {
	for _, tg := range l.Targets(arn) {
		if tg.ID == id {
			return tg.State
		}
	}
	return ""
}

func TestHealthFollowsTheChecks(t *testing.T) {
	l, arn, c := lb(t, elbsim.Config{})
	require.NoError(t, register(t, l, arn, "i-1"))
	steps := []struct {
		after   time.Duration
		failing *bool
		want    types.TargetHealthStateEnum
	}{
		{0, nil, types.TargetHealthStateEnumInitial},
		{19 * time.Second, nil, types.TargetHealthStateEnumInitial},
		{time.Second, nil, types.TargetHealthStateEnumHealthy},
		{0, aws.Bool(true), types.TargetHealthStateEnumHealthy}, // one failure is not enough
		{19 * time.Second, nil, types.TargetHealthStateEnumHealthy},
		{time.Second, nil, types.TargetHealthStateEnumUnhealthy},
		{0, aws.Bool(false), types.TargetHealthStateEnumUnhealthy}, // passing again, not enough yet
		{20 * time.Second, nil, types.TargetHealthStateEnumHealthy},
	}
	for i, s := range steps {
		c.Advance(s.after)
		if s.failing != nil {
			l.SetFailing("i-1", *s.failing)
		}
		assert.Equal(t, s.want, state(l, arn, "i-1"), "step %d", i)
	}
}

func TestDrainAndRegisterAgain(t *testing.T) {
	l, arn, c := lb(t, elbsim.Config{})
	require.NoError(t, register(t, l, arn, "i-1", "i-2"))
	c.Advance(time.Minute)
	deregister(t, l, arn, "i-1", "i-9") // i-9 was never registered: nothing to do
	assert.Equal(t, types.TargetHealthStateEnumDraining, state(l, arn, "i-1"))

	require.NoError(t, register(t, l, arn, "i-1"))
	assert.Equal(t, types.TargetHealthStateEnumInitial, state(l, arn, "i-1"), "back from draining: checked again")
	require.NoError(t, register(t, l, arn, "i-2"))
	assert.Equal(t, types.TargetHealthStateEnumHealthy, state(l, arn, "i-2"), "registering a registered target changes nothing")

	deregister(t, l, arn, "i-2")
	c.Advance(time.Minute - time.Second)
	assert.Equal(t, types.TargetHealthStateEnumDraining, state(l, arn, "i-2"))
	c.Advance(time.Second)
	assert.Len(t, l.Targets(arn), 1, "drained targets are forgotten")
}

func TestIdleTargetsDrainForTheWholeDelay(t *testing.T) {
	// ALB completes an idle target's deregistration early but reports it
	// draining until the delay is over; NLB drains for the delay too.
	l, arn, c := lb(t, elbsim.Config{})
	require.NoError(t, register(t, l, arn, "i-1", "i-2"))
	deregister(t, l, arn, "i-1", "i-2")
	c.Advance(time.Minute - time.Second)
	assert.Equal(t, []string{"i-1", "i-2"}, ids(l.Targets(arn)), "idle or not, draining")
	c.Advance(time.Second)
	assert.Empty(t, l.Targets(arn))

	l, arn, _ = lb(t, elbsim.Config{DeregistrationDelay: -1})
	require.NoError(t, register(t, l, arn, "i-1"))
	deregister(t, l, arn, "i-1")
	assert.Empty(t, l.Targets(arn), "no delay")
}

func ids(ts []elbsim.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestTargetsFollowTheirInstances(t *testing.T) {
	ec2 := map[string]awsctl.State{"i-run": awsctl.StateRunning, "i-boot": awsctl.StatePending}
	l, arn, _ := lb(t, elbsim.Config{Instances: func(id string) (awsctl.Instance, bool) {
		s, ok := ec2[id]
		return awsctl.Instance{ID: id, State: s}, ok
	}})
	var invalid *types.InvalidTargetException
	err := register(t, l, arn, "i-run", "i-boot")
	require.ErrorAs(t, err, &invalid)
	assert.Contains(t, invalid.ErrorMessage(), "i-boot")
	assert.Empty(t, l.Targets(arn), "all or nothing")
	require.ErrorAs(t, register(t, l, arn, "i-gone"), &invalid)

	require.NoError(t, register(t, l, arn, "i-run"))
	ec2["i-run"] = awsctl.StateTerminated
	tgs := l.Targets(arn)
	require.Len(t, tgs, 1)
	assert.Equal(t, types.TargetHealthStateEnumUnused, tgs[0].State)
	assert.Equal(t, types.TargetHealthReasonEnumInvalidState, tgs[0].Reason)
}

func TestAPIErrors(t *testing.T) {
	l, arn, _ := lb(t, elbsim.Config{})
	ctx := context.Background()
	code := func(err error) string {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			return apiErr.ErrorCode()
		}
		return ""
	}
	_, err := l.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn)})
	assert.Equal(t, "ValidationError", code(err))
	_, err = l.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{})
	assert.Equal(t, "ValidationError", code(err))
	_, err = l.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn + "x"),
		Targets: []types.TargetDescription{{Id: aws.String("i-1")}}})
	assert.Equal(t, "TargetGroupNotFound", code(err))

	l.FailNext(elbsim.OpDescribeTargetHealth, elbsim.Throttling())
	_, err = l.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	assert.Equal(t, "Throttling", code(err))
	_, err = l.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	assert.NoError(t, err, "one fault, one call")
	assert.Equal(t, map[string]int{"RegisterTargets": 1, "DeregisterTargets": 1, "DescribeTargetHealth": 3}, l.Calls())
}

func TestConfigAndNames(t *testing.T) {
	for _, cfg := range []elbsim.Config{
		{HealthCheckInterval: -time.Second},
		{HealthyThreshold: 1},
		{UnhealthyThreshold: 11},
	} {
		_, err := elbsim.New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	l, err := elbsim.New(elbsim.Config{Region: "eu-west-1", Account: "111122223333"})
	require.NoError(t, err)
	arn, err := l.CreateTargetGroup("web-blue", 8080)
	require.NoError(t, err)
	assert.Regexp(t, `^arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/web-blue/[0-9a-f]{16}$`, arn)
	for _, bad := range []string{"", "-web", "web-", "web_blue", "a-name-that-is-longer-than-32-chars"} {
		_, err := l.CreateTargetGroup(bad, 80)
		assert.Error(t, err, bad)
	}
	_, err = l.CreateTargetGroup("web-blue", 8080)
	assert.Error(t, err, "exists")
	_, err = l.CreateTargetGroup("web-green", 0)
	assert.Error(t, err, "port")
	assert.Nil(t, l.Targets("arn:nope"))
}
