package elbrole_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbtest"
	"github.com/ec2autoscale/ec2autoscale/role"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// manualClock is a clock that moves only when told to.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// instances is a fake EC2 for the load balancer: the state of each id.
type instances struct {
	mu     sync.Mutex
	states map[string]awsctl.State
}

func (in *instances) set(id string, s awsctl.State) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.states[id] = s
}

func (in *instances) lookup(id string) (awsctl.Instance, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.states[id]
	return awsctl.Instance{ID: id, State: s}, ok
}

func running(ids ...string) *instances {
	in := &instances{states: map[string]awsctl.State{}}
	for _, id := range ids {
		in.states[id] = awsctl.StateRunning
	}
	return in
}

// wire is the real SDK client talking HTTP to an elbtest server backed by a
// simulated load balancer.
type wire struct {
	clock *manualClock
	lb    *elbsim.LB
	srv   *elbtest.Server
	api   *elbv2.Client
	arn   string
}

// noRetries makes every SDK call a single attempt, so a test sees each
// answer as the server gave it.
func noRetries(o *elbv2.Options) { o.RetryMaxAttempts = 1 }

func newWire(t *testing.T, ec2 *instances) *wire {
	t.Helper()
	w := &wire{clock: &manualClock{now: t0}}
	cfg := elbsim.Config{Clock: w.clock.Now, HealthCheckInterval: 10 * time.Second, HealthyThreshold: 2,
		UnhealthyThreshold: 2, DeregistrationDelay: time.Minute}
	if ec2 != nil {
		cfg.Instances = ec2.lookup
	}
	var err error
	w.lb, err = elbsim.New(cfg)
	require.NoError(t, err)
	w.arn, err = w.lb.CreateTargetGroup("web", 8080)
	require.NoError(t, err)
	w.srv, err = elbtest.New(w.lb)
	require.NoError(t, err)
	t.Cleanup(w.srv.Close)
	w.api = elbv2.NewFromConfig(w.srv.AWSConfig(), noRetries)
	return w
}

func targetsOf(ids ...string) []types.TargetDescription {
	out := make([]types.TargetDescription, len(ids))
	for i, id := range ids {
		out[i] = types.TargetDescription{Id: aws.String(id)}
	}
	return out
}

// health is one line of a DescribeTargetHealth answer.
type health struct {
	ID     string
	Port   int32
	State  types.TargetHealthStateEnum
	Reason types.TargetHealthReasonEnum
}

func (w *wire) describe(t *testing.T, ids ...string) []health {
	t.Helper()
	out, err := w.api.DescribeTargetHealth(context.Background(), &elbv2.DescribeTargetHealthInput{
		TargetGroupArn: aws.String(w.arn), Targets: targetsOf(ids...)})
	require.NoError(t, err)
	var hs []health
	for _, d := range out.TargetHealthDescriptions {
		require.NotNil(t, d.Target)
		require.NotNil(t, d.TargetHealth)
		hs = append(hs, health{aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port), d.TargetHealth.State, d.TargetHealth.Reason})
	}
	return hs
}

func TestWireTargetLifecycle(t *testing.T) {
	ec2 := running("i-0a", "i-0b", "i-0c")
	w := newWire(t, ec2)
	ctx := context.Background()

	_, err := w.api.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(w.arn), Targets: []types.TargetDescription{
		{Id: aws.String("i-0a"), Port: aws.Int32(8080)}, {Id: aws.String("i-0b")},
	}})
	require.NoError(t, err)
	reqs := w.srv.Requests("RegisterTargets")
	require.Len(t, reqs, 1)
	p := reqs[0].Params
	assert.Equal(t, "2015-12-01", p.Get("Version"))
	assert.Equal(t, w.arn, p.Get("TargetGroupArn"))
	assert.Equal(t, "i-0a", p.Get("Targets.member.1.Id"))
	assert.Equal(t, "8080", p.Get("Targets.member.1.Port"))
	assert.Equal(t, "i-0b", p.Get("Targets.member.2.Id"))
	assert.False(t, p.Has("Targets.member.2.Port"), "no port: the target group's")

	initial, healthy, unhealthy := types.TargetHealthStateEnumInitial, types.TargetHealthStateEnumHealthy, types.TargetHealthStateEnumUnhealthy
	assert.Equal(t, []health{
		{"i-0a", 8080, initial, types.TargetHealthReasonEnumRegistrationInProgress},
		{"i-0b", 8080, initial, types.TargetHealthReasonEnumRegistrationInProgress},
	}, w.describe(t))
	w.clock.Advance(10 * time.Second)
	assert.Equal(t, []health{
		{"i-0a", 8080, initial, types.TargetHealthReasonEnumInitialHealthChecking},
		{"i-0b", 8080, initial, types.TargetHealthReasonEnumInitialHealthChecking},
	}, w.describe(t))
	w.clock.Advance(10 * time.Second)
	assert.Equal(t, []health{{"i-0a", 8080, healthy, ""}, {"i-0b", 8080, healthy, ""}}, w.describe(t))

	w.lb.SetFailing("i-0b", true)
	w.clock.Advance(10 * time.Second)
	assert.Equal(t, healthy, w.describe(t, "i-0b")[0].State, "one failed check is not enough")
	w.clock.Advance(10 * time.Second)
	assert.Equal(t, []health{{"i-0b", 8080, unhealthy, types.TargetHealthReasonEnumFailedHealthChecks}}, w.describe(t, "i-0b"))

	_, err = w.api.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(w.arn), Targets: targetsOf("i-0a")})
	require.NoError(t, err)
	assert.Equal(t, "i-0a", w.srv.Requests("DeregisterTargets")[0].Params.Get("Targets.member.1.Id"))
	assert.Equal(t, []health{
		{"i-0a", 8080, types.TargetHealthStateEnumDraining, types.TargetHealthReasonEnumDeregistrationInProgress},
		{"i-0c", 8080, types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumNotRegistered},
	}, w.describe(t, "i-0a", "i-0c"))

	ec2.set("i-0b", awsctl.StateStopped)
	assert.Equal(t, []health{{"i-0b", 8080, types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumInvalidState}}, w.describe(t, "i-0b"))

	w.clock.Advance(time.Minute)
	assert.Equal(t, []health{{"i-0b", 8080, types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumInvalidState}}, w.describe(t),
		"the drained target is no longer listed")
	assert.Equal(t, []health{{"i-0a", 8080, types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumNotRegistered}}, w.describe(t, "i-0a"))
}

// scripted is a backend whose DescribeTargetHealth answers what it is told.
type scripted struct {
	elbrole.API
	answer []types.TargetHealthDescription
}

func (s *scripted) DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	return &elbv2.DescribeTargetHealthOutput{TargetHealthDescriptions: s.answer}, nil
}

func TestWireEveryTargetState(t *testing.T) {
	// Every state the API defines, as the SDK decodes it from the wire and
	// as the role reads it.
	states := []struct {
		state                   types.TargetHealthStateEnum
		reason                  types.TargetHealthReasonEnum
		healthy, draining, gone bool
	}{
		{types.TargetHealthStateEnumInitial, types.TargetHealthReasonEnumInitialHealthChecking, false, false, false},
		{types.TargetHealthStateEnumHealthy, "", true, false, false},
		{types.TargetHealthStateEnumUnhealthy, types.TargetHealthReasonEnumTimeout, false, false, false},
		{types.TargetHealthStateEnumUnhealthyDraining, types.TargetHealthReasonEnumDeregistrationInProgress, false, true, false},
		{types.TargetHealthStateEnumDraining, types.TargetHealthReasonEnumDeregistrationInProgress, false, true, false},
		{types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumNotRegistered, false, false, true},
		{types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumNotInUse, false, false, false},
		{types.TargetHealthStateEnumUnavailable, types.TargetHealthReasonEnumHealthCheckDisabled, false, false, false},
	}
	backend := &scripted{}
	for i, s := range states {
		backend.answer = append(backend.answer, types.TargetHealthDescription{
			Target:          &types.TargetDescription{Id: aws.String(fmt.Sprintf("i-%02d", i)), Port: aws.Int32(80)},
			HealthCheckPort: aws.String("80"),
			TargetHealth:    &types.TargetHealth{State: s.state, Reason: s.reason, Description: aws.String("why " + string(s.state))},
		})
	}
	srv, err := elbtest.New(backend)
	require.NoError(t, err)
	defer srv.Close()
	api := elbv2.NewFromConfig(srv.AWSConfig(), noRetries)
	const arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"

	out, err := api.DescribeTargetHealth(context.Background(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Equal(t, backend.answer, out.TargetHealthDescriptions, "every field survives the round trip")

	r, err := elbrole.New(noHooks(t), api, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn}}})
	require.NoError(t, err)
	for i, s := range states {
		hs, err := r.Health(context.Background(), fmt.Sprintf("i-%02d", i))
		require.NoError(t, err)
		require.Len(t, hs, 1)
		h := hs[0]
		assert.Equal(t, s.state, h.State)
		assert.Equal(t, s.reason, h.Reason)
		assert.Equal(t, "why "+string(s.state), h.Description)
		assert.Equal(t, s.healthy, h.Healthy(), "%s healthy", s.state)
		assert.Equal(t, s.draining, h.Draining(), "%s draining", s.state)
		assert.Equal(t, s.gone, h.Gone(), "%s/%s gone", s.state, s.reason)
	}
	assert.Len(t, srv.Requests("DescribeTargetHealth"), 2, "one reading answered for every target")
}

func noHooks(t testing.TB) *role.Func {
	r, err := role.New("web", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	require.NoError(t, err)
	return r
}

func TestWireErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		fault elbtest.Fault
		kind  error
	}{
		{elbtest.Fault{Code: "Throttling", Message: "Rate exceeded"}, awsctl.ErrThrottled},
		{elbtest.Fault{Code: "ThrottlingException", Message: "Rate exceeded"}, awsctl.ErrThrottled},
		{elbtest.Fault{Code: "TargetGroupNotFound", Message: "One or more target groups not found"}, awsctl.ErrNotFound},
		{elbtest.Fault{Code: "LoadBalancerNotFound", Message: "gone"}, awsctl.ErrNotFound},
		{elbtest.Fault{Code: "InvalidTarget", Message: "The following targets are not in a running state"}, awsctl.ErrInvalidRequest},
		{elbtest.Fault{Code: "ValidationError", Message: "1 validation error detected"}, awsctl.ErrInvalidRequest},
		{elbtest.Fault{Code: "AccessDenied", Message: "not authorized to perform: elasticloadbalancing:RegisterTargets"}, awsctl.ErrInvalidRequest},
		{elbtest.Fault{Code: "TooManyTargets", Message: "You have reached the limit on the number of targets"}, awsctl.ErrLimitExceeded},
		{elbtest.Fault{Code: "TooManyRegistrationsForTargetId", Message: "too many"}, awsctl.ErrLimitExceeded},
		{elbtest.Fault{Code: "HealthUnavailable", Message: "health unavailable"}, awsctl.ErrUnavailable},
		{elbtest.Fault{Code: "InternalFailure", Message: "internal"}, awsctl.ErrUnavailable},
		{elbtest.Fault{Code: "ServiceUnavailable", Message: "try later"}, awsctl.ErrUnavailable},
		{elbtest.Fault{Code: "SomethingNew", Message: "server side", Status: http.StatusBadGateway}, awsctl.ErrUnavailable},
		{elbtest.Fault{Code: "SomethingNew", Message: "client side"}, awsctl.ErrInvalidRequest},
	} {
		t.Run(fmt.Sprintf("%s %d", tc.fault.Code, tc.fault.Status), func(t *testing.T) {
			w := newWire(t, nil)
			r, err := elbrole.New(noHooks(t), w.api, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: w.arn}},
				BatchWindow: elbrole.NoBatchWindow})
			require.NoError(t, err)
			w.srv.FailNext("DescribeTargetHealth", tc.fault)
			_, err = r.Health(context.Background(), "i-0a")
			require.ErrorIs(t, err, tc.kind)
			var apiErr *awsctl.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "DescribeTargetHealth", apiErr.Op)
			assert.Equal(t, tc.fault.Code, apiErr.Code)
			assert.Equal(t, tc.fault.Message, apiErr.Message)
			assert.Contains(t, err.Error(), w.arn, "the error names the target group")

			w.srv.FailNext("DeregisterTargets", tc.fault)
			err = r.WindDown(context.Background(), awsctl.Instance{ID: "i-0a"})
			switch tc.fault.Code {
			case "InvalidTarget":
				assert.NoError(t, err, "an instance ELB does not know has nothing to drain")
				return
			case "TargetGroupNotFound":
				assert.NoError(t, err, "a deleted target group has nothing to drain")
				return
			}
			require.ErrorIs(t, err, tc.kind)
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "DeregisterTargets", apiErr.Op)
		})
	}
}

func TestWireUnsignedRequestIsRefused(t *testing.T) {
	w := newWire(t, nil)
	resp, err := http.PostForm(w.srv.Start(), url.Values{"Action": {"DescribeTargetHealth"}, "Version": {"2015-12-01"},
		"TargetGroupArn": {w.arn}})
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, string(body), "<Code>MissingAuthenticationToken</Code>")
	assert.Equal(t, 0, w.lb.Calls()[elbsim.OpDescribeTargetHealth], "refused before the backend")
}

func TestWireSDKRetriesThrottling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lb, err := elbsim.New(elbsim.Config{})
		require.NoError(t, err)
		arn, err := lb.CreateTargetGroup("web", 80)
		require.NoError(t, err)
		srv, err := elbtest.New(lb)
		require.NoError(t, err)
		api := elbv2.NewFromConfig(srv.InProcessAWSConfig()) // the SDK's standard retryer
		throttled := elbtest.Fault{Code: "Throttling", Message: "Rate exceeded"}
		srv.FailNext("RegisterTargets", throttled, throttled)

		_, err = api.RegisterTargets(context.Background(), &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: targetsOf("i-0a")})
		require.NoError(t, err)
		assert.Len(t, srv.Requests("RegisterTargets"), 3, "two throttled attempts, then success")
		assert.Len(t, lb.Targets(arn), 1)

		srv.FailNext("RegisterTargets", throttled, throttled, throttled)
		r, err := elbrole.New(noHooks(t), api, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn}}})
		require.NoError(t, err)
		require.NoError(t, r.Restore(context.Background(), awsctl.Instance{ID: "i-0b"}),
			"throttled past the SDK's attempts, then retried by the role")
		assert.Len(t, srv.Requests("RegisterTargets"), 3+3+1)
	})
}
