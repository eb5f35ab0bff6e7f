package elbrole_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbtest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// app is the inner role: it records its hooks, runs a probe inside each,
// and answers Check with status.
type app struct {
	mu     sync.Mutex
	calls  []string
	errs   map[string]error
	status role.Status
	probe  func(hook, id string)
}

func newApp() *app {
	return &app{errs: map[string]error{}, status: role.Status{Idle: true, WoundDown: true}}
}

func (a *app) hook(name string) func(context.Context, awsctl.Instance) error {
	return func(_ context.Context, inst awsctl.Instance) error {
		a.mu.Lock()
		a.calls = append(a.calls, name+" "+inst.ID)
		probe, err := a.probe, a.errs[name]
		a.mu.Unlock()
		if probe != nil {
			probe(name, inst.ID)
		}
		return err
	}
}

func (a *app) role(t testing.TB) role.Role {
	r, err := role.New("web", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{
		Provision: a.hook("provision"),
		WindDown:  a.hook("wind-down"),
		Restore:   a.hook("restore"),
		Teardown:  a.hook("teardown"),
		Check: func(_ context.Context, inst awsctl.Instance) (role.Status, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.calls = append(a.calls, "check "+inst.ID)
			return a.status, a.errs["check"]
		},
	})
	require.NoError(t, err)
	return r
}

func (a *app) called() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func (a *app) set(f func(a *app)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// fixture is a role around an app, in front of a simulated load balancer
// whose targets are healthy 20 s after registration and drain for a minute.
// It runs on the clock of the synctest bubble it is made in.
type fixture struct {
	lb   *elbsim.LB
	arn  string
	app  *app
	role *elbrole.Role
}

func newFixture(t *testing.T, cfg elbrole.Config, lbCfg elbsim.Config) *fixture {
	t.Helper()
	lbCfg.HealthCheckInterval, lbCfg.HealthyThreshold = 10*time.Second, 2
	lbCfg.UnhealthyThreshold, lbCfg.DeregistrationDelay = 2, time.Minute
	lb, err := elbsim.New(lbCfg)
	require.NoError(t, err)
	arn, err := lb.CreateTargetGroup("web", 8080)
	require.NoError(t, err)
	f := &fixture{lb: lb, arn: arn, app: newApp()}
	if len(cfg.TargetGroups) == 0 {
		cfg.TargetGroups = []elbrole.TargetGroup{{ARN: arn}}
	}
	f.role, err = elbrole.New(f.app.role(t), lb, cfg)
	require.NoError(t, err)
	return f
}

func (f *fixture) state(id string) types.TargetHealthStateEnum {
	for _, tg := range f.lb.Targets(f.arn) {
		if tg.ID == id {
			return tg.State
		}
	}
	return ""
}

var inst = awsctl.Instance{ID: "i-0a"}

func TestProvisionWaitsUntilHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		var stateAtProvision types.TargetHealthStateEnum = "?"
		f.app.probe = func(hook, id string) {
			if hook == "provision" {
				stateAtProvision = f.state(id)
			}
		}
		start := time.Now()
		require.NoError(t, f.role.Provision(context.Background(), inst))
		assert.Equal(t, types.TargetHealthStateEnum(""), stateAtProvision, "the app is provisioned before the target is registered")
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID))
		// Registered after the batch window; healthy 20 s later, seen at
		// the fifth look, 5 s apart.
		assert.Equal(t, elbrole.DefaultBatchWindow+20*time.Second, time.Since(start))
		assert.Equal(t, map[string]int{"RegisterTargets": 1, "DeregisterTargets": 0, "DescribeTargetHealth": 5,
			"DescribeTargetGroups": 1, "DescribeTargetGroupAttributes": 1, "DescribeLoadBalancers": 1}, f.lb.Calls(),
			"settings read once, at first use")
	})
}

func TestProvisionBatchesCallsAcrossInstances(t *testing.T) {
	// 150 servers provisioning at once, over the wire: the registrations
	// share two calls (at most MaxTargetsPerCall each) and every wait
	// shares one DescribeTargetHealth per poll.
	synctest.Test(t, func(t *testing.T) {
		lb, err := elbsim.New(elbsim.Config{HealthCheckInterval: 10 * time.Second, HealthyThreshold: 2})
		require.NoError(t, err)
		arn, err := lb.CreateTargetGroup("web", 8080)
		require.NoError(t, err)
		srv, err := elbtest.New(lb)
		require.NoError(t, err)
		api := elbv2.NewFromConfig(srv.InProcessAWSConfig())
		r, err := elbrole.New(noHooks(t), api, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn}}})
		require.NoError(t, err)

		start := time.Now()
		var wg sync.WaitGroup
		for i := range 150 {
			wg.Go(func() {
				assert.NoError(t, r.Provision(context.Background(), awsctl.Instance{ID: fmt.Sprintf("i-%04d", i)}))
			})
		}
		wg.Wait()
		assert.Equal(t, elbrole.DefaultBatchWindow+20*time.Second, time.Since(start))
		regs := srv.Requests("RegisterTargets")
		require.Len(t, regs, 2)
		assert.True(t, regs[0].Params.Has("Targets.member.100.Id"))
		assert.False(t, regs[0].Params.Has("Targets.member.101.Id"), "at most MaxTargetsPerCall a call")
		assert.True(t, regs[1].Params.Has("Targets.member.50.Id"))
		assert.False(t, regs[1].Params.Has("Targets.member.51.Id"))
		assert.Len(t, srv.Requests("DescribeTargetHealth"), 5, "one reading per poll for all 150")
		assert.Len(t, lb.Targets(arn), 150)
	})
}

func TestProvisionFailsWhenNeverHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{HealthyTimeout: time.Minute}, elbsim.Config{})
		f.lb.SetFailing(inst.ID, true)
		start := time.Now()
		err := f.role.Provision(context.Background(), inst)
		require.ErrorIs(t, err, elbrole.ErrNotHealthy)
		var he *elbrole.HealthError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, elbrole.HealthError{Instance: inst.ID, TargetGroup: f.arn, State: types.TargetHealthStateEnumUnhealthy,
			Reason: types.TargetHealthReasonEnumFailedHealthChecks, Description: "Health checks failed", Waited: time.Minute}, *he)
		assert.Equal(t, time.Minute+elbrole.DefaultBatchWindow, time.Since(start), "the wait, then the deregistration")
		assert.Contains(t, err.Error(), "unhealthy (Target.FailedHealthChecks)")
		assert.Equal(t, types.TargetHealthStateEnumDraining, f.state(inst.ID), "taken out of service at once")
	})
}

func TestProvisionRetriesThrottledRegistration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		f.lb.FailNext(elbsim.OpRegisterTargets, elbsim.Throttling(), elbsim.Throttling())
		require.NoError(t, f.role.Provision(context.Background(), inst))
		assert.Equal(t, 3, f.lb.Calls()[elbsim.OpRegisterTargets])
	})
}

func TestProvisionStopsAtAPermanentError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{TargetGroups: []elbrole.TargetGroup{
			{ARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/deleted/0000000000000000"},
		}}, elbsim.Config{})
		start := time.Now()
		err := f.role.Provision(context.Background(), inst)
		require.ErrorIs(t, err, awsctl.ErrNotFound)
		assert.Contains(t, err.Error(), "TargetGroupNotFound")
		assert.LessOrEqual(t, time.Since(start), elbrole.DefaultBatchWindow, "no point waiting")
	})
}

func TestProvisionOfTheAppFailsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		errBoot := errors.New("app did not start")
		f.app.errs["provision"] = errBoot
		require.ErrorIs(t, f.role.Provision(context.Background(), inst), errBoot)
		assert.Empty(t, f.lb.Targets(f.arn), "a server that did not start is not registered")
	})
}

// lagging reports every target of one target group as still in its
// initial health checks.
type lagging struct {
	*elbsim.LB
	arn string
}

func (l lagging) DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, opts ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	out, err := l.LB.DescribeTargetHealth(ctx, in, opts...)
	if err == nil && aws.ToString(in.TargetGroupArn) == l.arn {
		for i := range out.TargetHealthDescriptions {
			out.TargetHealthDescriptions[i].TargetHealth = &types.TargetHealth{State: types.TargetHealthStateEnumInitial,
				Reason: types.TargetHealthReasonEnumInitialHealthChecking}
		}
	}
	return out, err
}

func TestProvisionNeedsEveryTargetGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lb, err := elbsim.New(elbsim.Config{HealthCheckInterval: 10 * time.Second, HealthyThreshold: 2})
		require.NoError(t, err)
		http, err := lb.CreateTargetGroup("web-http", 8080)
		require.NoError(t, err)
		grpc, err := lb.CreateTargetGroup("web-grpc", 9090)
		require.NoError(t, err)
		r, err := elbrole.New(noHooks(t), lagging{lb, grpc}, elbrole.Config{HealthyTimeout: time.Minute,
			TargetGroups: []elbrole.TargetGroup{{ARN: http}, {ARN: grpc}}})
		require.NoError(t, err)

		err = r.Provision(context.Background(), inst)
		var he *elbrole.HealthError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, grpc, he.TargetGroup, "healthy in one target group is not enough")
		assert.Equal(t, types.TargetHealthStateEnumInitial, he.State)
		assert.Equal(t, int32(9090), lb.Targets(grpc)[0].Port)
		for _, arn := range []string{http, grpc} {
			assert.Equal(t, types.TargetHealthStateEnumDraining, lb.Targets(arn)[0].State, "taken out of every target group")
		}
	})
}

func TestWindDownDeregistersBeforeTheApp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		require.NoError(t, f.role.Provision(context.Background(), inst))
		var stateAtWindDown types.TargetHealthStateEnum
		f.app.probe = func(hook, id string) {
			if hook == "wind-down" {
				stateAtWindDown = f.state(id)
			}
		}
		require.NoError(t, f.role.WindDown(context.Background(), inst))
		assert.Equal(t, types.TargetHealthStateEnumDraining, stateAtWindDown, "no new requests reach a server told to wind down")
	})
}

func TestWindDownThatCannotDeregisterLeavesTheAppServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		require.NoError(t, f.role.Provision(context.Background(), inst))
		f.lb.FailNext(elbsim.OpDeregisterTargets, &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "try later"})
		err := f.role.WindDown(context.Background(), inst)
		require.ErrorIs(t, err, awsctl.ErrUnavailable)
		assert.NotContains(t, f.app.called(), "wind-down i-0a")
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID))
	})
}

func TestCheckWaitsForTheDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		require.NoError(t, f.role.WindDown(ctx, inst))
		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{}, st, "draining: neither idle nor wound down")
		assert.NotContains(t, f.app.called(), "check i-0a", "the app is not asked while the load balancer drains")

		// The deregistration went out after the batch window; the drain
		// lasts a minute from there.
		time.Sleep(time.Minute - elbrole.DefaultPollInterval)
		st, err = f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{}, st)

		f.app.set(func(a *app) { a.status = role.Status{Idle: true} })
		time.Sleep(elbrole.DefaultPollInterval + elbrole.DefaultBatchWindow)
		st, err = f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{Idle: true}, st, "drained; now the app says")
		f.app.set(func(a *app) { a.status = role.Status{Idle: true, WoundDown: true} })
		st, err = f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{Idle: true, WoundDown: true}, st)
	})
}

func TestCheckWaitsOutTheDelayOfAnIdleTarget(t *testing.T) {
	// The load balancer reports an idle target draining for the whole
	// deregistration delay; the wind-down lasts that long.
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		require.NoError(t, f.role.WindDown(ctx, inst))
		time.Sleep(time.Minute - elbrole.DefaultPollInterval)
		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.False(t, st.WoundDown, "idle, but still draining")

		time.Sleep(elbrole.DefaultPollInterval)
		st, err = f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.True(t, st.WoundDown)
	})
}

func TestHealthReadingsFollowRegistrations(t *testing.T) {
	// A reading made before a registration must not answer for the target
	// after it, even within the poll interval.
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		hs, err := f.role.Health(ctx, inst.ID)
		require.NoError(t, err)
		assert.True(t, hs[0].Gone())

		require.NoError(t, f.role.Restore(ctx, inst), "would never see the target if the first reading answered")
		hs, err = f.role.Health(ctx, inst.ID)
		require.NoError(t, err)
		assert.Equal(t, types.TargetHealthStateEnumHealthy, hs[0].State)

		require.NoError(t, f.role.WindDown(ctx, inst))
		hs, err = f.role.Health(ctx, inst.ID)
		require.NoError(t, err)
		assert.True(t, hs[0].Draining())

		calls := f.lb.Calls()[elbsim.OpDescribeTargetHealth]
		_, err = f.role.Health(ctx, "i-other")
		require.NoError(t, err)
		assert.Equal(t, calls, f.lb.Calls()[elbsim.OpDescribeTargetHealth], "other targets use the latest reading")
	})
}

func TestCheckDeliversAWindDownAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		require.NoError(t, f.role.WindDown(ctx, inst))
		// A Restore registered the target again, then failed: the pool
		// still thinks the wind-down is on.
		_, err := f.lb.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(f.arn), Targets: targetsOf(inst.ID)})
		require.NoError(t, err)
		time.Sleep(elbrole.DefaultPollInterval)

		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{}, st)
		assert.Equal(t, types.TargetHealthStateEnumDraining, f.state(inst.ID), "deregistered again")

		// A role that did not deliver a wind-down (another process, or a
		// host asking about a server in service) leaves targets alone.
		other, err := elbrole.New(newApp().role(t), f.lb, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: f.arn}}})
		require.NoError(t, err)
		b := awsctl.Instance{ID: "i-0b"}
		require.NoError(t, other.Restore(ctx, b))
		st, err = other.Check(ctx, b)
		require.NoError(t, err)
		assert.Equal(t, role.Status{}, st)
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(b.ID))
	})
}

func TestRestoreRegistersAfterTheApp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		require.NoError(t, f.role.WindDown(ctx, inst))
		var stateAtRestore types.TargetHealthStateEnum
		f.app.probe = func(hook, id string) {
			if hook == "restore" {
				stateAtRestore = f.state(id)
			}
		}
		start := time.Now()
		require.NoError(t, f.role.Restore(ctx, inst))
		assert.Equal(t, types.TargetHealthStateEnumDraining, stateAtRestore, "the app takes work before the load balancer sends it")
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID), "restored only once healthy again")
		assert.Equal(t, elbrole.DefaultBatchWindow+20*time.Second, time.Since(start))

		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{}, st, "restored: in service, not wound down")
		assert.Equal(t, types.TargetHealthStateEnumHealthy, f.state(inst.ID), "and not deregistered again")
	})
}

func TestTeardown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Teardown(ctx, awsctl.Instance{ID: "i-never"}), "nothing to deregister")

		require.NoError(t, f.role.Provision(ctx, inst))
		require.NoError(t, f.role.Teardown(ctx, inst))
		assert.Equal(t, types.TargetHealthStateEnumDraining, f.state(inst.ID))
		assert.Contains(t, f.app.called(), "teardown i-0a")

		f.lb.FailNext(elbsim.OpDeregisterTargets, &types.TargetGroupNotFoundException{Message: aws.String("gone")})
		require.NoError(t, f.role.Teardown(ctx, inst), "a deleted target group holds nothing")

		errLogs := errors.New("logs not shipped")
		f.app.errs["teardown"] = errLogs
		f.lb.FailNext(elbsim.OpDeregisterTargets, elbsim.Throttling())
		err := f.role.Teardown(ctx, inst)
		assert.ErrorIs(t, err, errLogs)
		assert.ErrorIs(t, err, awsctl.ErrThrottled, "both failures are reported")
	})
}

func TestRoleDelegatesNameAndSpec(t *testing.T) {
	inner := noHooks(t)
	r, err := elbrole.New(inner, &scripted{}, elbrole.Config{TargetGroups: []elbrole.TargetGroup{
		{ARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"}}})
	require.NoError(t, err)
	assert.Equal(t, "web", r.Name())
	assert.Equal(t, inner.LaunchSpec(), r.LaunchSpec())
	assert.Same(t, role.Role(inner), r.Inner())
}

func TestNewValidates(t *testing.T) {
	const arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
	tgs := []elbrole.TargetGroup{{ARN: arn}}
	for _, tc := range []struct {
		field string
		inner role.Role
		api   elbrole.API
		cfg   elbrole.Config
	}{
		{"inner", nil, &scripted{}, elbrole.Config{TargetGroups: tgs}},
		{"api", noHooks(t), nil, elbrole.Config{TargetGroups: tgs}},
		{"Config.TargetGroups", noHooks(t), &scripted{}, elbrole.Config{}},
		{"Config.TargetGroups[0].ARN", noHooks(t), &scripted{}, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: "web"}}}},
		{"Config.TargetGroups[1].ARN", noHooks(t), &scripted{}, elbrole.Config{TargetGroups: []elbrole.TargetGroup{
			{ARN: arn}, {ARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef"}}}},
		{"Config.TargetGroups[0].Port", noHooks(t), &scripted{}, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn, Port: 70000}}}},
		{"Config.TargetGroups[1]", noHooks(t), &scripted{}, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn}, {ARN: arn}}}},
		{"Config.HealthyTimeout", noHooks(t), &scripted{}, elbrole.Config{TargetGroups: tgs, HealthyTimeout: -time.Second}},
		{"Config.PollInterval", noHooks(t), &scripted{}, elbrole.Config{TargetGroups: tgs, PollInterval: -time.Second}},
		{"Config.Limits.Registration", noHooks(t), &scripted{}, elbrole.Config{TargetGroups: tgs,
			Limits: elbrole.Limits{Registration: ratelimit.Limit{Burst: 0, PerSecond: 1}}}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, err := elbrole.New(tc.inner, tc.api, tc.cfg)
			require.ErrorIs(t, err, elbrole.ErrInvalidConfig)
			var ce *elbrole.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	_, err := elbrole.New(noHooks(t), &scripted{}, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn}, {ARN: arn, Port: 8443}}})
	assert.NoError(t, err, "one target group on two ports")
}

func TestOneInvalidInstanceDoesNotFailTheBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ec2 := running("i-0a", "i-0b")
		ec2.set("i-0c", awsctl.StatePending) // not running: ELB refuses it
		f := newFixture(t, elbrole.Config{}, elbsim.Config{Instances: ec2.lookup})
		errs := map[string]error{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range []string{"i-0a", "i-0b", "i-0c"} {
			wg.Go(func() {
				err := f.role.Provision(context.Background(), awsctl.Instance{ID: id})
				mu.Lock()
				errs[id] = err
				mu.Unlock()
			})
		}
		wg.Wait()
		assert.NoError(t, errs["i-0a"])
		assert.NoError(t, errs["i-0b"])
		require.ErrorIs(t, errs["i-0c"], awsctl.ErrInvalidRequest)
		assert.Contains(t, errs["i-0c"].Error(), "not in a running state")
		assert.Equal(t, 4, f.lb.Calls()[elbsim.OpRegisterTargets], "the batch, then one call per instance")
		assert.Equal(t, map[string]bool{"i-0a": true, "i-0b": true}, map[string]bool{
			f.lb.Targets(f.arn)[0].ID: true, f.lb.Targets(f.arn)[1].ID: true})
	})
}

func TestCheckReportsAServerInServiceTheLoadBalancerFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.False(t, st.Unhealthy)
		f.lb.SetFailing(inst.ID, true)
		time.Sleep(30 * time.Second) // two failed checks, 10 s apart
		st, err = f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.True(t, st.Unhealthy, "the load balancer reads it unhealthy")
		assert.False(t, st.WoundDown)
		var hr role.HealthReporter = f.role
		assert.True(t, hr.ReportsHealth())
	})
}
