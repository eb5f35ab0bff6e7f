package ec2test_test

// DescribeInstanceStatus as the EC2 API reference describes it, driven
// through the real SDK client: running instances only unless
// IncludeAllInstances, filters on the instance and on the answer, unknown
// ids, pagination, status check details and scheduled events.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

type statusEnv struct {
	sim   *ec2sim.Sim
	srv   *ec2test.Server
	api   *ec2.Client
	insts []awsctl.Instance
}

// newStatusEnv launches n instances and lets them run past their checks'
// initialization.
func newStatusEnv(t *testing.T, n int, opts ec2test.Options) *statusEnv {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{})
	require.NoError(t, err)
	srv, err := ec2test.New(sim, opts)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	api := ec2.NewFromConfig(srv.AWSConfig(), func(o *ec2.Options) {
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
	})
	insts, err := sim.Launch(context.Background(), awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}},
		Market:    awsctl.MarketOnDemand, Capacity: n,
	})
	require.NoError(t, err)
	require.NoError(t, sim.Advance(5*time.Minute))
	return &statusEnv{sim: sim, srv: srv, api: api, insts: insts}
}

func (e *statusEnv) describe(t *testing.T, in *ec2.DescribeInstanceStatusInput) []types.InstanceStatus {
	t.Helper()
	var out []types.InstanceStatus
	pages := ec2.NewDescribeInstanceStatusPaginator(e.api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		require.NoError(t, err)
		out = append(out, page.InstanceStatuses...)
	}
	return out
}

func statusIDs(sts []types.InstanceStatus) []string {
	var out []string
	for _, st := range sts {
		out = append(out, aws.ToString(st.InstanceId))
	}
	return out
}

func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func TestDescribeInstanceStatusReportsChecksAndEvents(t *testing.T) {
	e := newStatusEnv(t, 3, ec2test.Options{})
	impairedAt := e.sim.Now()
	require.NoError(t, e.sim.Impair(e.insts[0].ID, false))
	notBefore := impairedAt.Add(72 * time.Hour)
	retire, err := e.sim.ScheduleEvent(e.insts[1].ID, awsctl.EventInstanceRetirement, notBefore)
	require.NoError(t, err)
	e.srv.AddScheduledEvent(e.insts[1].ID, awsctl.ScheduledEvent{Code: awsctl.EventSystemReboot, Description: "[Completed] Scheduled reboot"})
	e.srv.SetStatusChecks(e.insts[2].ID, awsctl.CheckInsufficientData, "")

	sts := e.describe(t, &ec2.DescribeInstanceStatusInput{InstanceIds: ids(e.insts)})
	require.Len(t, sts, 3)
	byID := map[string]types.InstanceStatus{}
	for _, st := range sts {
		byID[aws.ToString(st.InstanceId)] = st
	}

	impaired := byID[e.insts[0].ID]
	assert.Equal(t, types.InstanceStateNameRunning, impaired.InstanceState.Name)
	assert.Equal(t, int32(16), aws.ToInt32(impaired.InstanceState.Code))
	assert.Equal(t, "us-east-1a", aws.ToString(impaired.AvailabilityZone))
	assert.Equal(t, types.SummaryStatusOk, impaired.SystemStatus.Status)
	assert.Equal(t, []types.InstanceStatusDetails{{Name: types.StatusNameReachability, Status: types.StatusTypePassed}}, impaired.SystemStatus.Details)
	assert.Equal(t, types.SummaryStatusImpaired, impaired.InstanceStatus.Status)
	require.Len(t, impaired.InstanceStatus.Details, 1)
	assert.Equal(t, types.StatusTypeFailed, impaired.InstanceStatus.Details[0].Status)
	assert.Equal(t, impairedAt, aws.ToTime(impaired.InstanceStatus.Details[0].ImpairedSince))
	assert.Empty(t, impaired.Events)

	retiring := byID[e.insts[1].ID]
	require.Len(t, retiring.Events, 2, "the sim's event, then the server's, completed ones included")
	assert.Equal(t, types.EventCodeInstanceRetirement, retiring.Events[0].Code)
	assert.Equal(t, retire.ID, aws.ToString(retiring.Events[0].InstanceEventId))
	assert.Equal(t, "The instance is running on degraded hardware", aws.ToString(retiring.Events[0].Description))
	assert.Equal(t, notBefore, aws.ToTime(retiring.Events[0].NotBefore))
	assert.Nil(t, retiring.Events[0].NotAfter)
	assert.Equal(t, "[Completed] Scheduled reboot", aws.ToString(retiring.Events[1].Description))
	assert.NotEmpty(t, aws.ToString(retiring.Events[1].InstanceEventId))

	overridden := byID[e.insts[2].ID]
	assert.Equal(t, types.SummaryStatusInsufficientData, overridden.SystemStatus.Status)
	assert.Equal(t, types.StatusTypeInsufficientData, overridden.SystemStatus.Details[0].Status)
	assert.Equal(t, types.SummaryStatusOk, overridden.InstanceStatus.Status)
	e.srv.SetStatusChecks(e.insts[2].ID, "", "")
	sts = e.describe(t, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{e.insts[2].ID}})
	assert.Equal(t, types.SummaryStatusOk, sts[0].SystemStatus.Status, "override removed")
}

func TestDescribeInstanceStatusRunningOnlyUnlessIncludeAll(t *testing.T) {
	e := newStatusEnv(t, 3, ec2test.Options{})
	require.NoError(t, e.sim.Stop(e.insts[0].ID))
	_, err := e.sim.Terminate(context.Background(), []string{e.insts[1].ID})
	require.NoError(t, err)
	initializing, err := e.sim.Launch(context.Background(), awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1}},
		Market:    awsctl.MarketOnDemand, Capacity: 1,
	})
	require.NoError(t, err)
	require.NoError(t, e.sim.Advance(time.Minute)) // the new one runs, its checks initialize; the terminated one is gone

	sts := e.describe(t, &ec2.DescribeInstanceStatusInput{})
	assert.ElementsMatch(t, []string{e.insts[2].ID, initializing[0].ID}, statusIDs(sts), "running instances only")

	sts = e.describe(t, &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true), MaxResults: aws.Int32(5)})
	assert.ElementsMatch(t, []string{e.insts[0].ID, e.insts[2].ID, initializing[0].ID}, statusIDs(sts), "terminated never")
	for _, st := range sts {
		switch aws.ToString(st.InstanceId) {
		case e.insts[0].ID:
			assert.Equal(t, types.InstanceStateNameStopped, st.InstanceState.Name)
			assert.Equal(t, types.SummaryStatusNotApplicable, st.SystemStatus.Status)
			assert.Empty(t, st.SystemStatus.Details)
		case initializing[0].ID:
			assert.Equal(t, types.SummaryStatusInitializing, st.InstanceStatus.Status)
			assert.Equal(t, types.StatusTypeInitializing, st.InstanceStatus.Details[0].Status)
		}
	}
}

func TestDescribeInstanceStatusFilters(t *testing.T) {
	e := newStatusEnv(t, 4, ec2test.Options{})
	require.NoError(t, e.sim.Impair(e.insts[0].ID, true))
	require.NoError(t, e.sim.Impair(e.insts[1].ID, false))
	_, err := e.sim.ScheduleEvent(e.insts[2].ID, awsctl.EventSystemMaintenance, e.sim.Now().Add(time.Hour))
	require.NoError(t, err)
	filter := func(name string, values ...string) []types.Filter {
		return []types.Filter{{Name: aws.String(name), Values: values}}
	}
	for _, c := range []struct {
		filters []types.Filter
		want    []string
	}{
		{filter("system-status.status", "impaired"), []string{e.insts[0].ID}},
		{filter("instance-status.status", "impaired"), []string{e.insts[1].ID}},
		{filter("instance-status.reachability", "failed"), []string{e.insts[1].ID}},
		{filter("event.code", "system-maintenance", "instance-stop"), []string{e.insts[2].ID}},
		{filter("event.code", "system-*"), []string{e.insts[2].ID}},
		{filter("instance-id", e.insts[3].ID, "i-0fffffffffffffff0"), []string{e.insts[3].ID}},
		{append(filter("instance-id", e.insts[0].ID, e.insts[1].ID), filter("system-status.status", "ok")...), []string{e.insts[1].ID}},
	} {
		got := e.describe(t, &ec2.DescribeInstanceStatusInput{Filters: c.filters, MaxResults: aws.Int32(1000)})
		assert.ElementsMatch(t, c.want, statusIDs(got), "%s", aws.ToString(c.filters[len(c.filters)-1].Name))
	}

	_, err = e.api.DescribeInstanceStatus(t.Context(), &ec2.DescribeInstanceStatusInput{Filters: filter("no-such-filter", "x")})
	assert.Equal(t, "InvalidParameterValue", apiCode(err))
}

func TestDescribeInstanceStatusUnknownIDs(t *testing.T) {
	e := newStatusEnv(t, 1, ec2test.Options{})
	unknown := "i-0fffffffffffffff0"
	_, err := e.api.DescribeInstanceStatus(t.Context(), &ec2.DescribeInstanceStatusInput{InstanceIds: []string{e.insts[0].ID, unknown}})
	assert.Equal(t, "InvalidInstanceID.NotFound", apiCode(err), "InstanceIds: an unknown id fails the call")
	assert.ErrorContains(t, err, unknown)

	sts := e.describe(t, &ec2.DescribeInstanceStatusInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{e.insts[0].ID, unknown}}}, MaxResults: aws.Int32(5),
	})
	assert.Equal(t, []string{e.insts[0].ID}, statusIDs(sts), "a filter: the unknown id matches nothing")

	_, err = e.api.DescribeInstanceStatus(t.Context(), &ec2.DescribeInstanceStatusInput{InstanceIds: []string{e.insts[0].ID}, MaxResults: aws.Int32(5)})
	assert.Equal(t, "InvalidParameterCombination", apiCode(err))
	_, err = e.api.DescribeInstanceStatus(t.Context(), &ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(4)})
	assert.Equal(t, "InvalidParameterValue", apiCode(err), "MaxResults is 5 to 1000")
}

func TestDescribeInstanceStatusPaginates(t *testing.T) {
	e := newStatusEnv(t, 7, ec2test.Options{PageSize: 3})
	sts := e.describe(t, &ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(5), IncludeAllInstances: aws.Bool(true)})
	assert.ElementsMatch(t, ids(e.insts), statusIDs(sts))
	reqs := e.srv.Requests("DescribeInstanceStatus")
	require.Len(t, reqs, 3, "7 in pages of 3")
	assert.NotEmpty(t, reqs[2].Params.Get("NextToken"))

	_, err := e.api.DescribeInstanceStatus(t.Context(), &ec2.DescribeInstanceStatusInput{NextToken: aws.String("page-999")})
	assert.Equal(t, "InvalidPaginationToken", apiCode(err))
}

func ids(insts []awsctl.Instance) []string {
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.ID
	}
	return out
}
