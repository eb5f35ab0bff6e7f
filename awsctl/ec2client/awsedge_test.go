package ec2client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
)

// rawAPI is an SDK client on the env's server that makes one attempt per
// call, for checking what the server answers.
func (e *env) rawAPI() *ec2.Client {
	return ec2.NewFromConfig(e.srv.AWSConfig(), func(o *ec2.Options) {
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
	})
}

func ownerTags(owner string) map[string]string {
	return map[string]string{ec2client.OwnerTagKey: owner}
}

func (e *env) launchOffering(t *testing.T, n int, off awsctl.Offering, tags map[string]string) []awsctl.Instance {
	t.Helper()
	insts, err := e.sim.Launch(context.Background(), awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{off}, Market: awsctl.MarketOnDemand, Capacity: n, Tags: tags,
	})
	require.NoError(t, err)
	return insts
}

// looseFilters is an EC2-compatible endpoint that ignores the escapes of
// filter values and matches them as wildcards, as some third-party
// implementations do.
type looseFilters struct{ ec2client.EC2API }

func (l looseFilters) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	copied := *in
	copied.Filters = nil
	for _, f := range in.Filters {
		g := types.Filter{Name: f.Name}
		for _, v := range f.Values {
			g.Values = append(g.Values, strings.ReplaceAll(v, `\`, ""))
		}
		copied.Filters = append(copied.Filters, g)
	}
	return l.EC2API.DescribeInstances(ctx, &copied, opts...)
}

// Issue 11, finding 2: EC2 reads "*" and "?" in filter values as wildcards.
// A scaler whose identity is "team-*" must list, tag and terminate its own
// instances only, not team-blue's.
func TestOwnerFilterMatchesTheIdentityLiterally(t *testing.T) {
	e := newEnv(t, setup{})
	blue := e.launchInSim(t, 2, awsctl.MarketOnDemand, ownerTags("team-blue"))
	star := e.launchInSim(t, 1, awsctl.MarketOnDemand, ownerTags("team-*"))

	// The server matches as EC2 does: the bare value is a wildcard.
	out, err := e.rawAPI().DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:" + ec2client.OwnerTagKey), Values: []string{"team-*"}}},
	})
	require.NoError(t, err)
	assert.Len(t, out.Reservations, 3, "team-* matches team-blue on EC2")

	got, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: ownerTags("team-*")})
	require.NoError(t, err)
	assert.Equal(t, ids(star), ids(got))
	reqs := e.srv.Requests("DescribeInstances")
	assert.Equal(t, `team-\*`, reqs[len(reqs)-1].Params.Get("Filter.1.Value.1"), "the value is escaped")

	got, err = e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: ownerTags("team-blue")})
	require.NoError(t, err)
	assert.ElementsMatch(t, ids(blue), ids(got))

	// An endpoint that ignores escapes: the client still keeps to exact
	// equality, and so tags and terminates only its own instances.
	api := looseFilters{e.rawAPI()}
	loose, err := ec2client.NewFromAPI(api, ec2client.Options{ConsistencyWait: -1})
	require.NoError(t, err)
	got, err = loose.ListInstances(t.Context(), awsctl.ListFilter{Tags: ownerTags("team-*")})
	require.NoError(t, err)
	require.Equal(t, ids(star), ids(got))

	e.srv.ResetRequests()
	require.NoError(t, loose.Tag(t.Context(), ids(got), map[string]string{"ec2autoscale:state": "winding-down"}))
	accepted, err := loose.Terminate(t.Context(), ids(got))
	require.NoError(t, err)
	assert.Equal(t, ids(star), accepted)
	for _, r := range append(e.srv.Requests("CreateTags"), e.srv.Requests("TerminateInstances")...) {
		for k, v := range r.Params {
			for _, in := range blue {
				assert.NotContains(t, v, in.ID, "%s %s names team-blue's instance", r.Action, k)
			}
		}
	}
	for _, in := range blue {
		now, _ := e.sim.Instance(in.ID)
		assert.True(t, now.State.Live(), "team-blue's %s is untouched", in.ID)
		assert.NotContains(t, now.Tags, "ec2autoscale:state")
	}
}

// Issue 11, finding 8: one instance under termination protection fails its
// TerminateInstances call, and with it the call's instances in its zone,
// while those of other zones are terminated anyway. The client terminates
// every unprotected instance and reports the protected one once.
func TestTerminateIsolatesAProtectedInstance(t *testing.T) {
	e := newEnv(t, setup{})
	inA := e.launchOffering(t, 2, m5a, owned)
	inB := e.launchOffering(t, 2, c5b, owned)
	protected := inB[0].ID
	require.NoError(t, e.srv.SetTerminationProtection(protected, true))
	all := append(ids(inA), ids(inB)...)

	accepted, err := e.client.Terminate(t.Context(), all)
	assert.ElementsMatch(t, []string{inA[0].ID, inA[1].ID, inB[1].ID}, accepted)
	require.Error(t, err)
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "OperationNotPermitted", apiErr.Code)
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "a join of per-instance errors: %v", err)
	require.Len(t, joined.Unwrap(), 1, "the protected instance is reported once: %v", err)
	assert.ErrorContains(t, err, "instance "+protected)

	for _, id := range all {
		in, _ := e.sim.Instance(id)
		assert.Equal(t, id == protected, in.State.Live(), "%s is %s", id, in.State)
	}

	// Once protection is off, it goes like any other.
	require.NoError(t, e.srv.SetTerminationProtection(protected, false))
	accepted, err = e.client.Terminate(t.Context(), all)
	require.NoError(t, err)
	assert.ElementsMatch(t, all, accepted)
}

// The server answers a protected batch as the TerminateInstances API
// reference describes.
func TestServerTerminationProtectionSplitsByZone(t *testing.T) {
	e := newEnv(t, setup{})
	inA := e.launchOffering(t, 2, m5a, owned)
	inB := e.launchOffering(t, 2, c5b, owned)
	require.NoError(t, e.srv.SetTerminationProtection(inB[0].ID, true))
	_, err := e.rawAPI().TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: append(ids(inA), ids(inB)...)})
	require.ErrorContains(t, err, "OperationNotPermitted")
	for _, in := range inA {
		now, _ := e.sim.Instance(in.ID)
		assert.Equal(t, awsctl.StateShuttingDown, now.State, "another zone: terminated")
	}
	for _, in := range inB {
		now, _ := e.sim.Instance(in.ID)
		assert.Equal(t, awsctl.StatePending, now.State, "the protected instance's zone: untouched")
	}
	spot := e.launchInSim(t, 1, awsctl.MarketSpot, owned)
	assert.Error(t, e.srv.SetTerminationProtection(spot[0].ID, true), "EC2 does not protect spot instances")
	assert.Error(t, e.srv.SetTerminationProtection("i-0fffffffffffffff0", true))
}

// Issue 11, finding 11: EC2 throttles describes made with neither filters
// nor pagination in a smaller bucket (50, then 10 a second) than the one the
// client paces describes by. InstanceHealth stays out of it.
func TestInstanceHealthStaysOutOfTheUnfilteredDescribeBucket(t *testing.T) {
	e := newEnv(t, setup{srv: ec2test.Options{UnfilteredDescribeLimit: ec2test.UnfilteredDescribeDefault}})
	insts := e.launchInSim(t, 2, awsctl.MarketOnDemand, owned)
	require.NoError(t, e.sim.Advance(10*time.Minute)) // running, checks ok
	e.srv.AddScheduledEvent(insts[0].ID, awsctl.ScheduledEvent{Code: awsctl.EventSystemReboot, Description: "reboot"})
	unknown := "i-0fffffffffffffff0"
	for i := range 60 {
		health, err := e.client.InstanceHealth(t.Context(), []string{insts[0].ID, insts[1].ID, unknown})
		require.NoError(t, err, "call %d", i+1)
		require.Len(t, health, 1)
		assert.Equal(t, insts[0].ID, health[0].ID)
	}
	p := e.srv.Requests("DescribeInstanceStatus")[0].Params
	assert.Equal(t, "instance-id", p.Get("Filter.1.Name"))
	assert.Equal(t, insts[1].ID, p.Get("Filter.1.Value.2"))
	assert.Equal(t, "1000", p.Get("MaxResults"))

	// The server throttles the unfiltered, unpaginated form, on the sim's
	// clock: 50 at once, then 10 a second.
	api := e.rawAPI()
	unfiltered := func() error {
		_, err := api.DescribeInstanceStatus(t.Context(), &ec2.DescribeInstanceStatusInput{InstanceIds: []string{insts[0].ID}})
		return err
	}
	for i := range 50 {
		require.NoError(t, unfiltered(), "call %d", i+1)
	}
	err := unfiltered()
	require.ErrorContains(t, err, "RequestLimitExceeded")
	require.NoError(t, e.sim.Advance(time.Second))
	for range 10 {
		require.NoError(t, unfiltered())
	}
	require.ErrorContains(t, unfiltered(), "RequestLimitExceeded")
	_, err = ec2test.New(e.sim, ec2test.Options{UnfilteredDescribeLimit: ec2test.UnfilteredDescribeDefault})
	require.NoError(t, err)
}

// Issue 11, finding 12: the client answers "final" only for codes it knows
// to be final, and lets the SDK's standard retryer decide the others, with
// the real SDK against the server.
func TestSDKDecidesRetriesOfCodesNotKnownFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true, opts: ec2client.Options{MaxAttempts: 3}})
		ctx := context.Background()
		list := func() error {
			_, err := e.client.ListInstances(ctx, awsctl.ListFilter{Tags: owned})
			return err
		}
		skew := 10 * time.Minute
		for _, f := range []ec2test.Fault{
			// The Date header shows the client's clock 10 minutes off: the
			// SDK retries, signing with the corrected time.
			{Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials", ClockSkew: skew},
			{Code: "SignatureDoesNotMatch", Message: "Signature not yet current", ClockSkew: -skew},
			{Code: "RequestExpired", Message: "Request has expired."},
			{Code: "RequestTimeout", Message: "timed out"},
			// Unknown codes go by the SDK's rules: a 503 is retried.
			{Code: "SomethingNew", Message: "new", Status: 503},
		} {
			e.srv.ResetRequests()
			e.srv.FailNext("DescribeInstances", f)
			require.NoError(t, list(), f.Code)
			assert.Len(t, e.srv.Requests("DescribeInstances"), 2, "%s: once, then success", f.Code)
		}

		// Final by the SDK's rules: an AuthFailure without clock skew, an
		// unknown code with status 400.
		for _, f := range []ec2test.Fault{{Code: "AuthFailure"}, {Code: "SomethingNew", Status: 400}} {
			e.srv.ResetRequests()
			e.srv.FailNext("DescribeInstances", f)
			assert.ErrorIs(t, list(), awsctl.ErrInvalidRequest, f.Code)
			assert.Len(t, e.srv.Requests("DescribeInstances"), 1, f.Code)
		}

		// Final by the client's rules, though EC2 sends some with HTTP 500.
		for _, c := range []struct {
			code string
			kind error
		}{
			{"InsufficientInstanceCapacity", awsctl.ErrInsufficientCapacity},
			{"VcpuLimitExceeded", awsctl.ErrQuotaExceeded},
			{"MaxSpotInstanceCountExceeded", awsctl.ErrQuotaExceeded},
			{"IdempotentParameterMismatch", awsctl.ErrTokenMismatch},
			{"InstanceLimitExceeded", awsctl.ErrLimitExceeded},
		} {
			e.srv.ResetRequests()
			e.srv.FailNext("RunInstances", ec2test.Fault{Code: c.code, Status: 500})
			_, err := e.client.Launch(ctx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketOnDemand, Capacity: 1})
			assert.ErrorIs(t, err, c.kind, c.code)
			assert.Len(t, e.srv.Requests("RunInstances"), 1, c.code)
		}
	})
}

// Issue 11, finding 3: a used-up vCPU quota is a quota error, not the
// account's instance limit, from RunInstances as from CreateFleet.
func TestVcpuQuotaIsAQuotaError(t *testing.T) {
	e := newEnv(t, setup{opts: ec2client.Options{MaxAttempts: 3}})
	require.NoError(t, e.srv.SetVcpuQuota(awsctl.MarketOnDemand, "standard", 0))
	launch := func(offerings ...awsctl.Offering) ([]awsctl.Instance, error) {
		return e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: spec, Offerings: offerings, Market: awsctl.MarketOnDemand, Capacity: 2})
	}

	got, err := launch(m5a)
	assert.Empty(t, got)
	assert.ErrorIs(t, err, awsctl.ErrQuotaExceeded)
	assert.False(t, errors.Is(err, awsctl.ErrLimitExceeded))
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "VcpuLimitExceeded", apiErr.Code)
	assert.Len(t, e.srv.Requests("RunInstances"), 1, "not retried")

	// CreateFleet reports it per override.
	require.NoError(t, e.srv.SetVcpuQuota(awsctl.MarketOnDemand, "standard", 2))
	got, err = launch(m5a, c5b)
	assert.Len(t, got, 1, "one 2-vCPU instance fits the quota")
	assert.ErrorIs(t, err, awsctl.ErrQuotaExceeded)
	var le *awsctl.LaunchError
	assert.ErrorAs(t, err, &le)
	assert.Len(t, e.srv.Requests("CreateFleet"), 1)

	// Spot has its own quota.
	got, err = e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketSpot, Capacity: 1})
	require.NoError(t, err)
	assert.Len(t, got, 1)
}
