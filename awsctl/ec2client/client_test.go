package ec2client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/cloudtest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

var (
	subnetA = awsctl.Subnet{ID: "subnet-0aaaaaaaaaaaaaaaa", Zone: "us-east-1a"}
	subnetB = awsctl.Subnet{ID: "subnet-0bbbbbbbbbbbbbbbb", Zone: "us-east-1b"}

	m5a = awsctl.Offering{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}
	c5b = awsctl.Offering{InstanceType: "c5.large", Zone: "us-east-1b", Weight: 1}

	spec = awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0", Subnets: []awsctl.Subnet{subnetA, subnetB}}

	owned = map[string]string{ec2client.OwnerTagKey: "scaler-1"}
)

// env is a client talking through the real SDK to an ec2test server
// backed by a fresh simulated EC2.
type env struct {
	sim    *ec2sim.Sim
	srv    *ec2test.Server
	client *ec2client.Client
}

type setup struct {
	opts      ec2client.Options
	srv       ec2test.Options
	inProcess bool           // no socket, for synctest bubbles
	http      aws.HTTPClient // over the socket, instead of the SDK's client
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{})
	require.NoError(t, err)
	if s.srv.Subnets == nil {
		s.srv.Subnets = []awsctl.Subnet{subnetA, subnetB}
	}
	srv, err := ec2test.New(sim, s.srv)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	// Tests count requests: one attempt per call unless a test wants the
	// SDK's retries, and no waiting for consistency unless it tests that.
	if s.opts.MaxAttempts == 0 {
		s.opts.MaxAttempts = 1
	}
	if s.opts.ConsistencyWait == 0 {
		s.opts.ConsistencyWait = -1
	}
	var cfg aws.Config
	if s.inProcess {
		cfg = srv.InProcessAWSConfig()
	} else {
		cfg = srv.AWSConfig()
		if s.http != nil {
			cfg.HTTPClient = s.http
		}
	}
	client, err := ec2client.New(cfg, s.opts)
	require.NoError(t, err)
	return &env{sim: sim, srv: srv, client: client}
}

// launchInSim starts instances directly in the sim, behind the client's
// back, as if another process had launched them.
func (e *env) launchInSim(t *testing.T, n int, market awsctl.Market, tags map[string]string) []awsctl.Instance {
	t.Helper()
	insts, err := e.sim.Launch(context.Background(), awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: market, Capacity: n, Tags: tags,
	})
	require.NoError(t, err)
	return insts
}

func ids(insts []awsctl.Instance) []string {
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.ID
	}
	return out
}

func TestOwnerTagKeyIsThePoolsOwnerTag(t *testing.T) {
	assert.Equal(t, pool.TagOwner, ec2client.OwnerTagKey, "docs/iam-policy.json conditions on this key")
}

// The conformance suite, over HTTP, through each launch path.
func TestConformance(t *testing.T) {
	for name, offerings := range map[string][]awsctl.Offering{
		"RunInstances": {m5a},
		"CreateFleet":  {m5a, c5b},
	} {
		t.Run(name, func(t *testing.T) {
			cloudtest.Run(t, func(t *testing.T) cloudtest.Harness {
				e := newEnv(t, setup{})
				return cloudtest.Harness{Client: e.client, Spec: spec, Offerings: offerings}
			})
		})
	}
}

func TestListInstancesPaginatesWithFilters(t *testing.T) {
	e := newEnv(t, setup{srv: ec2test.Options{PageSize: 2}})
	mine := e.launchInSim(t, 5, awsctl.MarketOnDemand, owned)
	e.launchInSim(t, 2, awsctl.MarketOnDemand, map[string]string{ec2client.OwnerTagKey: "someone-else"})
	_, err := e.sim.Terminate(context.Background(), []string{mine[0].ID})
	require.NoError(t, err)
	require.NoError(t, e.sim.Advance(time.Minute)) // past the shutdown delay

	got, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned})
	require.NoError(t, err)
	assert.ElementsMatch(t, ids(mine[1:]), ids(got), "owned live instances only")

	reqs := e.srv.Requests("DescribeInstances")
	require.Len(t, reqs, 2, "4 instances in pages of 2")
	first := reqs[0].Params
	assert.Equal(t, "1000", first.Get("MaxResults"))
	assert.Equal(t, "tag:"+ec2client.OwnerTagKey, first.Get("Filter.1.Name"))
	assert.Equal(t, "scaler-1", first.Get("Filter.1.Value.1"))
	assert.Equal(t, "instance-state-name", first.Get("Filter.2.Name"))
	var states []string
	for i := 1; first.Has(fmt.Sprintf("Filter.2.Value.%d", i)); i++ {
		states = append(states, first.Get(fmt.Sprintf("Filter.2.Value.%d", i)))
	}
	assert.ElementsMatch(t, []string{"pending", "running", "shutting-down", "stopping", "stopped"}, states)
	assert.NotEmpty(t, reqs[1].Params.Get("NextToken"))

	all, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned, IncludeTerminated: true})
	require.NoError(t, err)
	assert.ElementsMatch(t, ids(mine), ids(all))
}

func TestListInstancesMapsFields(t *testing.T) {
	e := newEnv(t, setup{})
	launched := e.launchInSim(t, 1, awsctl.MarketSpot, map[string]string{ec2client.OwnerTagKey: "scaler-1", "role": "web"})
	require.NoError(t, e.sim.Advance(5*time.Minute))

	got, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned})
	require.NoError(t, err)
	require.Len(t, got, 1)
	want := launched[0]
	want.State = awsctl.StateRunning
	assert.Equal(t, want.ID, got[0].ID)
	assert.Equal(t, "m5.large", got[0].Type)
	assert.Equal(t, "us-east-1a", got[0].Zone)
	assert.Equal(t, awsctl.MarketSpot, got[0].Market, "instanceLifecycle spot")
	assert.Equal(t, awsctl.StateRunning, got[0].State)
	assert.Equal(t, want.PrivateIP, got[0].PrivateIP)
	assert.True(t, want.LaunchTime.Equal(got[0].LaunchTime), "launch time %v, want %v", got[0].LaunchTime, want.LaunchTime)
	assert.Equal(t, map[string]string{ec2client.OwnerTagKey: "scaler-1", "role": "web"}, got[0].Tags)
}

func TestLaunchOneOfferingUsesRunInstances(t *testing.T) {
	e := newEnv(t, setup{})
	s := spec
	s.SecurityGroupIDs = []string{"sg-1", "sg-2"}
	s.InstanceProfile = "arn:aws:iam::123456789012:instance-profile/worker"
	s.KeyName = "ops"
	s.UserData = "#!/bin/sh\necho hello\n"
	s.Tags = map[string]string{"team": "spec", "env": "prod"}
	big := m5a
	big.Zone = "us-east-1b"
	big.Weight = 2
	req := awsctl.LaunchRequest{
		Spec: s, Offerings: []awsctl.Offering{big}, Market: awsctl.MarketSpot, Capacity: 3,
		Tags: map[string]string{ec2client.OwnerTagKey: "scaler-1", "team": "request"}, Token: "tok-1",
	}
	insts, err := e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	require.Len(t, insts, 2, "capacity 3 of weight-2 instances")
	wantTags := map[string]string{ec2client.OwnerTagKey: "scaler-1", "team": "request", "env": "prod"}
	for _, in := range insts {
		assert.Equal(t, awsctl.MarketSpot, in.Market)
		assert.Equal(t, "us-east-1b", in.Zone)
		assert.Equal(t, wantTags, in.Tags)
	}

	reqs := e.srv.Requests("RunInstances")
	require.Len(t, reqs, 1)
	assert.Empty(t, e.srv.Requests("CreateFleet"))
	p := reqs[0].Params
	assert.Equal(t, "1", p.Get("MinCount"))
	assert.Equal(t, "2", p.Get("MaxCount"))
	assert.Equal(t, "m5.large", p.Get("InstanceType"))
	assert.Equal(t, subnetB.ID, p.Get("SubnetId"), "the subnet of the offering's zone")
	assert.Equal(t, "ami-0123456789abcdef0", p.Get("ImageId"))
	assert.Equal(t, "tok-1", p.Get("ClientToken"))
	assert.Equal(t, "sg-1", p.Get("SecurityGroupId.1"))
	assert.Equal(t, "sg-2", p.Get("SecurityGroupId.2"))
	assert.Equal(t, s.InstanceProfile, p.Get("IamInstanceProfile.Arn"))
	assert.Equal(t, "ops", p.Get("KeyName"))
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte(s.UserData)), p.Get("UserData"))
	assert.Equal(t, "spot", p.Get("InstanceMarketOptions.MarketType"))
	assert.Equal(t, "one-time", p.Get("InstanceMarketOptions.SpotOptions.SpotInstanceType"))
	assert.False(t, p.Has("InstanceMarketOptions.SpotOptions.MaxPrice"), "no max price unless set")
	assert.Equal(t, "instance", p.Get("TagSpecification.1.ResourceType"))

	// Tags exist from the first moment: the listing shows them without
	// any CreateTags.
	listed, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned})
	require.NoError(t, err)
	require.Len(t, listed, 2)
	assert.Equal(t, wantTags, listed[0].Tags)
	assert.Empty(t, e.srv.Requests("CreateTags"))

	req.Token, req.MaxPrice = "tok-2", 0.05
	_, err = e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, "0.05", e.srv.Requests("RunInstances")[1].Params.Get("InstanceMarketOptions.SpotOptions.MaxPrice"))
}

func TestLaunchSeveralOfferingsUsesInstantFleet(t *testing.T) {
	e := newEnv(t, setup{})
	heavy := c5b
	heavy.Weight = 2
	req := awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{m5a, heavy}, Market: awsctl.MarketOnDemand, Capacity: 4,
		Tags: owned, Token: "fleet-1",
	}
	insts, err := e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	require.Len(t, insts, 4, "the sim fills the first offering first")
	for _, in := range insts {
		assert.Equal(t, "m5.large", in.Type)
		assert.Equal(t, "us-east-1a", in.Zone)
		assert.Equal(t, awsctl.StatePending, in.State)
		assert.False(t, in.LaunchTime.IsZero())
		assert.Equal(t, owned, in.Tags)
	}

	reqs := e.srv.Requests("CreateFleet")
	require.Len(t, reqs, 1)
	assert.Empty(t, e.srv.Requests("RunInstances"))
	p := reqs[0].Params
	assert.Equal(t, "instant", p.Get("Type"))
	assert.Equal(t, "fleet-1", p.Get("ClientToken"))
	assert.Equal(t, "4", p.Get("TargetCapacitySpecification.TotalTargetCapacity"))
	assert.Equal(t, "on-demand", p.Get("TargetCapacitySpecification.DefaultTargetCapacityType"))
	assert.Equal(t, "prioritized", p.Get("OnDemandOptions.AllocationStrategy"))
	o := "LaunchTemplateConfigs.1.Overrides."
	assert.Equal(t, "m5.large", p.Get(o+"1.InstanceType"))
	assert.Equal(t, subnetA.ID, p.Get(o+"1.SubnetId"))
	assert.Equal(t, "1", p.Get(o+"1.WeightedCapacity"))
	assert.Equal(t, "c5.large", p.Get(o+"2.InstanceType"))
	assert.Equal(t, subnetB.ID, p.Get(o+"2.SubnetId"))
	assert.Equal(t, "2", p.Get(o+"2.WeightedCapacity"))
	assert.Equal(t, "instance", p.Get("TagSpecification.1.ResourceType"))
	assert.Equal(t, ec2client.OwnerTagKey, p.Get("TagSpecification.1.Tag.1.Key"))

	// The launch template was made from the spec, tagged with the owner,
	// and is reused.
	templates := e.srv.LaunchTemplates()
	require.Len(t, templates, 1)
	assert.True(t, strings.HasPrefix(templates[0].Name, ec2client.TemplateNamePrefix))
	assert.Equal(t, spec.ImageID, templates[0].Spec.ImageID)
	assert.Equal(t, owned, templates[0].Tags)
	assert.Equal(t, templates[0].Name, p.Get("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName"))

	req.Token = "fleet-2"
	req.Market = awsctl.MarketSpot
	req.MaxPrice = 0.5
	_, err = e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, e.srv.Requests("CreateLaunchTemplate"), 1, "one template per spec and client")
	p = e.srv.Requests("CreateFleet")[1].Params
	assert.Equal(t, "spot", p.Get("TargetCapacitySpecification.DefaultTargetCapacityType"))
	assert.Equal(t, "capacity-optimized-prioritized", p.Get("SpotOptions.AllocationStrategy"))
	assert.Equal(t, "0.5", p.Get(o+"1.MaxPrice"), "max price per capacity unit")
	assert.Equal(t, "0.25", p.Get(o+"2.MaxPrice"))

	// A restarted client finds the same template by its name.
	restarted, err := ec2client.New(e.srv.AWSConfig(), ec2client.Options{MaxAttempts: 1})
	require.NoError(t, err)
	req.Token = "fleet-3"
	_, err = restarted.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, e.srv.LaunchTemplates(), 1)
}

func TestFleetPartialFulfilmentReportsFailedOfferings(t *testing.T) {
	e := newEnv(t, setup{})
	e.sim.SetCapacity(awsctl.MarketSpot, "m5.large", "us-east-1a", 0)
	e.sim.SetCapacity(awsctl.MarketSpot, "c5.large", "us-east-1b", 2)
	req := awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{m5a, c5b}, Market: awsctl.MarketSpot, Capacity: 5,
		Tags: owned, Token: "partial",
	}
	insts, err := e.client.Launch(t.Context(), req)
	require.Len(t, insts, 2, "what launched comes back with the error")
	for _, in := range insts {
		assert.Equal(t, "c5.large", in.Type)
		assert.Equal(t, awsctl.MarketSpot, in.Market)
	}
	require.Error(t, err)
	assert.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
	var le *awsctl.LaunchError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, m5a, le.Offering, "the offering that launched nothing")
	assert.Equal(t, awsctl.MarketSpot, le.Market)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, le, &apiErr)
	assert.Equal(t, "CreateFleet", apiErr.Op)
	assert.Equal(t, "InsufficientInstanceCapacity", apiErr.Code)
	assert.NotEmpty(t, apiErr.Message)

	// The same token replays the first answer: no new instances.
	again, err := e.client.Launch(t.Context(), req)
	assert.Error(t, err)
	assert.ElementsMatch(t, ids(insts), ids(again))
	assert.Len(t, e.sim.Instances(), 2)
}

func TestFleetFullyFilledDespiteOfferingErrorsIsSuccess(t *testing.T) {
	e := newEnv(t, setup{})
	e.sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", "us-east-1a", 0)
	insts, err := e.client.Launch(t.Context(), awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{m5a, c5b}, Market: awsctl.MarketOnDemand, Capacity: 2, Tags: owned,
	})
	require.NoError(t, err, "the capacity was met; a skipped offering is no failure")
	assert.Len(t, insts, 2)
}

func TestLaunchTokenReplay(t *testing.T) {
	for name, offerings := range map[string][]awsctl.Offering{"RunInstances": {m5a}, "CreateFleet": {m5a, c5b}} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, setup{})
			// Longer than EC2's 64 characters: the client sends a digest.
			token := strings.Repeat("intent/", 20)
			req := awsctl.LaunchRequest{Spec: spec, Offerings: offerings, Market: awsctl.MarketOnDemand, Capacity: 3, Tags: owned, Token: token}
			first, err := e.client.Launch(t.Context(), req)
			require.NoError(t, err)
			again, err := e.client.Launch(t.Context(), req)
			require.NoError(t, err)
			assert.ElementsMatch(t, ids(first), ids(again))
			assert.Len(t, e.sim.Instances(), 3, "a retried launch launches nothing")

			var sent []string
			for _, r := range e.srv.Requests("") {
				if tok := r.Params.Get("ClientToken"); tok != "" && r.Action != "CreateLaunchTemplate" {
					sent = append(sent, tok)
				}
			}
			require.Len(t, sent, 2)
			assert.Equal(t, sent[0], sent[1], "derived deterministically")
			assert.LessOrEqual(t, len(sent[0]), 64)
		})
	}
}

func TestLaunchPlacement(t *testing.T) {
	e := newEnv(t, setup{})
	noSubnet := awsctl.Offering{InstanceType: "m5.large", Zone: "us-east-1c", Weight: 1}
	insts, err := e.client.Launch(t.Context(), awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{noSubnet, m5a}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned,
	})
	require.Len(t, insts, 1, "the offering with a subnet still launches")
	var le *awsctl.LaunchError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, noSubnet, le.Offering)
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.Len(t, e.srv.Requests("RunInstances"), 1, "one usable offering: RunInstances")

	// Without subnets, launches go to the zone's default subnet.
	noSubnets := spec
	noSubnets.Subnets = nil
	_, err = e.client.Launch(t.Context(), awsctl.LaunchRequest{
		Spec: noSubnets, Offerings: []awsctl.Offering{noSubnet}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned,
	})
	require.NoError(t, err)
	p := e.srv.Requests("RunInstances")[1].Params
	assert.Equal(t, "us-east-1c", p.Get("Placement.AvailabilityZone"))
	assert.False(t, p.Has("SubnetId"))
}

func TestLaunchWithUserLaunchTemplate(t *testing.T) {
	e := newEnv(t, setup{})
	s := awsctl.LaunchSpec{LaunchTemplate: &awsctl.LaunchTemplate{ID: "lt-0123456789abcdef0", Version: "7"}, Subnets: spec.Subnets}
	_, err := e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: s, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned})
	require.NoError(t, err)
	p := e.srv.Requests("RunInstances")[0].Params
	assert.Equal(t, "lt-0123456789abcdef0", p.Get("LaunchTemplate.LaunchTemplateId"))
	assert.Equal(t, "7", p.Get("LaunchTemplate.Version"))

	s.ImageID = "ami-0fedcba9876543210"
	_, err = e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: s, Offerings: []awsctl.Offering{m5a, c5b}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned})
	require.NoError(t, err)
	p = e.srv.Requests("CreateFleet")[0].Params
	assert.Equal(t, "lt-0123456789abcdef0", p.Get("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId"))
	assert.Equal(t, "7", p.Get("LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version"))
	assert.Equal(t, "ami-0fedcba9876543210", p.Get("LaunchTemplateConfigs.1.Overrides.1.ImageId"))
	assert.Empty(t, e.srv.Requests("CreateLaunchTemplate"), "the user's template is used as is")

	s.UserData = "not here"
	_, err = e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: s, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketOnDemand, Capacity: 1})
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.ErrorContains(t, err, "template")
}

// errorCases are the error codes the classifier knows, with their kinds.
var errorCases = []struct {
	code string
	kind error
}{
	{"InsufficientInstanceCapacity", awsctl.ErrInsufficientCapacity},
	{"InsufficientCapacity", awsctl.ErrInsufficientCapacity},
	{"UnfulfillableCapacity", awsctl.ErrInsufficientCapacity},
	{"MaxSpotInstanceCountExceeded", awsctl.ErrQuotaExceeded},
	{"Unsupported", awsctl.ErrInsufficientCapacity},
	{"InsufficientFreeAddressesInSubnet", awsctl.ErrInsufficientCapacity},
	{"InstanceLimitExceeded", awsctl.ErrLimitExceeded},
	{"VcpuLimitExceeded", awsctl.ErrQuotaExceeded},
	{"RequestLimitExceeded", awsctl.ErrThrottled},
	{"InvalidInstanceID.NotFound", awsctl.ErrNotFound},
	{"InvalidSpotInstanceRequestID.NotFound", awsctl.ErrNotFound},
	{"InvalidLaunchTemplateName.NotFoundException", awsctl.ErrNotFound},
	{"UnauthorizedOperation", awsctl.ErrInvalidRequest},
	{"InvalidParameterValue", awsctl.ErrInvalidRequest},
	{"AuthFailure", awsctl.ErrInvalidRequest},
	{"AuthFailure.ServiceLinkedRoleCreationNotPermitted", awsctl.ErrInvalidRequest},
	{"IdempotentParameterMismatch", awsctl.ErrTokenMismatch},
	{"OperationNotPermitted", awsctl.ErrInvalidRequest},
	{"MissingParameter", awsctl.ErrInvalidRequest},
	{"InvalidAMIID.Malformed", awsctl.ErrInvalidRequest},
	{"InternalError", awsctl.ErrUnavailable},
	{"Unavailable", awsctl.ErrUnavailable},
	{"RequestTimeout", awsctl.ErrUnavailable},
	{"RequestExpired", awsctl.ErrUnavailable},
}

func TestErrorClasses(t *testing.T) {
	e := newEnv(t, setup{})
	for _, c := range errorCases {
		e.srv.FailNext("DescribeInstances", ec2test.Fault{Code: c.code, Message: "AWS says: " + c.code})
		_, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned})
		assert.ErrorIs(t, err, c.kind, c.code)
		var apiErr *awsctl.APIError
		if assert.ErrorAs(t, err, &apiErr, c.code) {
			assert.Equal(t, "DescribeInstances", apiErr.Op)
			assert.Equal(t, c.code, apiErr.Code)
			assert.Equal(t, "AWS says: "+c.code, apiErr.Message, "AWS's message is kept")
		}
	}
	// Unknown codes go by status: server errors are transient.
	e.srv.FailNext("DescribeInstances", ec2test.Fault{Code: "SomethingNew", Status: 502})
	_, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{})
	assert.ErrorIs(t, err, awsctl.ErrUnavailable)
	e.srv.FailNext("DescribeInstances", ec2test.Fault{Code: "SomethingNew", Status: 400})
	_, err = e.client.ListInstances(t.Context(), awsctl.ListFilter{})
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.Len(t, e.srv.Requests("DescribeInstances"), len(errorCases)+2, "one attempt each: MaxAttempts is 1")
}

func TestTransportFailureIsUnavailable(t *testing.T) {
	dead := httptest.NewServer(nil)
	dead.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}
	client, err := ec2client.New(cfg, ec2client.Options{Endpoint: dead.URL, MaxAttempts: 1})
	require.NoError(t, err)
	_, err = client.ListInstances(t.Context(), awsctl.ListFilter{})
	assert.ErrorIs(t, err, awsctl.ErrUnavailable)
}

func TestSDKRetriesThrottlingButNotCapacityErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true, opts: ec2client.Options{MaxAttempts: 3}})
		ctx := context.Background()
		throttled := ec2test.Fault{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}

		e.srv.FailNext("DescribeInstances", throttled, throttled)
		_, err := e.client.ListInstances(ctx, awsctl.ListFilter{})
		require.NoError(t, err, "the SDK retryer absorbs two throttles in three attempts")
		assert.Len(t, e.srv.Requests("DescribeInstances"), 3)

		e.srv.ResetRequests()
		e.srv.FailNext("DescribeInstances", throttled, throttled, throttled)
		_, err = e.client.ListInstances(ctx, awsctl.ListFilter{})
		assert.ErrorIs(t, err, awsctl.ErrThrottled)
		assert.Len(t, e.srv.Requests("DescribeInstances"), 3, "nothing retries on top of the SDK")

		// EC2 sends capacity errors with status 500, which the SDK would
		// retry; the client tells it not to.
		e.srv.FailNext("RunInstances", ec2test.Fault{Code: "InsufficientInstanceCapacity", Message: "none left"})
		_, err = e.client.Launch(ctx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketOnDemand, Capacity: 1})
		assert.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
		assert.Len(t, e.srv.Requests("RunInstances"), 1)

		e.srv.FailNext("RunInstances", ec2test.Fault{Code: "InternalError", Message: "oops"})
		_, err = e.client.Launch(ctx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketOnDemand, Capacity: 1})
		require.NoError(t, err, "an internal error is retried")
		assert.Len(t, e.srv.Requests("RunInstances"), 3)
	})
}

func TestAdaptiveRetryMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true, opts: ec2client.Options{RetryMode: aws.RetryModeAdaptive, MaxAttempts: 2}})
		e.srv.FailNext("DescribeInstances", ec2test.Fault{Code: "RequestLimitExceeded"})
		_, err := e.client.ListInstances(context.Background(), awsctl.ListFilter{})
		require.NoError(t, err)
		assert.Len(t, e.srv.Requests("DescribeInstances"), 2)
	})
}

func TestTerminateBatchesAndPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true})
		insts := e.launchInSim(t, 2001, awsctl.MarketOnDemand, owned)
		start := time.Now()
		accepted, err := e.client.Terminate(context.Background(), ids(insts))
		require.NoError(t, err)
		assert.ElementsMatch(t, ids(insts), accepted)

		reqs := e.srv.Requests("TerminateInstances")
		require.Len(t, reqs, 3)
		for i, want := range []int{1000, 1000, 1} {
			assert.True(t, reqs[i].Params.Has(fmt.Sprintf("InstanceId.%d", want)), "batch %d has %d ids", i, want)
			assert.False(t, reqs[i].Params.Has(fmt.Sprintf("InstanceId.%d", want+1)), "batch %d has %d ids", i, want)
		}
		// 1,000 terminations at once, then 20 a second: the second batch
		// waits 50 s, the third 1/20 s.
		assert.Equal(t, 50*time.Second+50*time.Millisecond, time.Since(start))
	})
}

func TestTerminateUnknownIDRetriesTheRest(t *testing.T) {
	e := newEnv(t, setup{})
	insts := e.launchInSim(t, 2, awsctl.MarketOnDemand, owned)
	unknown := "i-0fffffffffffffff0"
	accepted, err := e.client.Terminate(t.Context(), []string{insts[0].ID, unknown, insts[1].ID})
	assert.ElementsMatch(t, ids(insts), accepted)
	assert.ErrorIs(t, err, awsctl.ErrNotFound)
	assert.ErrorContains(t, err, unknown)

	reqs := e.srv.Requests("TerminateInstances")
	require.Len(t, reqs, 2)
	assert.Equal(t, insts[0].ID, reqs[1].Params.Get("InstanceId.1"))
	assert.Equal(t, insts[1].ID, reqs[1].Params.Get("InstanceId.2"))
	assert.False(t, reqs[1].Params.Has("InstanceId.3"))

	_, err = e.client.Terminate(t.Context(), []string{unknown})
	assert.ErrorIs(t, err, awsctl.ErrNotFound)
}

func TestTagAndUntagBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true})
		ctx := context.Background()
		insts := e.launchInSim(t, 1500, awsctl.MarketOnDemand, owned)
		require.NoError(t, e.client.Tag(ctx, ids(insts), map[string]string{"ec2autoscale:manager": "queue"}))
		reqs := e.srv.Requests("CreateTags")
		require.Len(t, reqs, 2)
		assert.True(t, reqs[0].Params.Has("ResourceId.1000"))
		assert.False(t, reqs[0].Params.Has("ResourceId.1001"))
		assert.True(t, reqs[1].Params.Has("ResourceId.500"))
		for _, id := range []string{insts[0].ID, insts[1499].ID} {
			in, _ := e.sim.Instance(id)
			assert.Equal(t, "queue", in.Tags["ec2autoscale:manager"])
		}

		require.NoError(t, e.client.Untag(ctx, ids(insts), []string{"ec2autoscale:manager"}))
		require.Len(t, e.srv.Requests("DeleteTags"), 2)
		in, _ := e.sim.Instance(insts[42].ID)
		assert.NotContains(t, in.Tags, "ec2autoscale:manager")
		assert.Equal(t, "scaler-1", in.Tags[ec2client.OwnerTagKey])
	})
}

func TestTagWaitsForANewInstanceToBecomeVisible(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true, opts: ec2client.Options{ConsistencyWait: 20 * time.Second}})
		ctx := context.Background()
		id := e.launchInSim(t, 1, awsctl.MarketOnDemand, owned)[0].ID
		notYet := ec2test.Fault{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance ID '%s' does not exist", id)}
		e.srv.FailNext("CreateTags", notYet, notYet)
		start := time.Now()
		require.NoError(t, e.client.Tag(ctx, []string{id}, map[string]string{"k": "v"}))
		assert.Len(t, e.srv.Requests("CreateTags"), 3)
		assert.Greater(t, time.Since(start), time.Duration(0), "it waited between attempts")

		// An id that never appears fails once the wait is over.
		e.srv.ResetRequests()
		start = time.Now()
		err := e.client.Tag(ctx, []string{"i-0fffffffffffffff0"}, map[string]string{"k": "v"})
		assert.ErrorIs(t, err, awsctl.ErrNotFound)
		assert.LessOrEqual(t, time.Since(start), 20*time.Second)
		// The backoff is jittered: at least four attempts fit in 20 s.
		assert.GreaterOrEqual(t, len(e.srv.Requests("CreateTags")), 4)

		// Other errors are not retried.
		e.srv.ResetRequests()
		e.srv.FailNext("CreateTags", ec2test.Fault{Code: "UnauthorizedOperation", Message: "no"})
		err = e.client.Tag(ctx, []string{id}, map[string]string{"k": "v"})
		assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
		assert.Len(t, e.srv.Requests("CreateTags"), 1)
	})
}

func TestRateLimitsPaceLaunchesAndRespectContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true})
		ctx := context.Background()
		req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned}
		start := time.Now()
		var at []time.Duration
		for range 7 {
			_, err := e.client.Launch(ctx, req)
			require.NoError(t, err)
			at = append(at, time.Since(start))
		}
		// RunInstances: 5 at once, then 2 a second.
		assert.Equal(t, []time.Duration{0, 0, 0, 0, 0, 500 * time.Millisecond, time.Second}, at)

		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() {
			_, err := e.client.Launch(cctx, req)
			done <- err
		}()
		synctest.Wait()
		cancel()
		err := <-done
		assert.ErrorIs(t, err, context.Canceled)
		assert.Len(t, e.srv.Requests("RunInstances"), 7, "a call cancelled while waiting is never sent")
	})
}

func TestCustomLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, setup{inProcess: true, opts: ec2client.Options{Limits: ec2client.Limits{
			Describe: ratelimit.Limit{Burst: 1, PerSecond: 1},
		}}})
		start := time.Now()
		for range 3 {
			_, err := e.client.ListInstances(context.Background(), awsctl.ListFilter{})
			require.NoError(t, err)
		}
		assert.Equal(t, 2*time.Second, time.Since(start))
	})
}

func TestSpotPrices(t *testing.T) {
	e := newEnv(t, setup{srv: ec2test.Options{PageSize: 2}})
	hourAgo, minuteAgo := time.Now().Add(-time.Hour).UTC(), time.Now().Add(-time.Minute).UTC()
	e.srv.AddSpotPrices("",
		awsctl.SpotPrice{InstanceType: "m5.large", Zone: "us-east-1a", PricePerHour: 0.031, Time: hourAgo},
		awsctl.SpotPrice{InstanceType: "m5.large", Zone: "us-east-1a", PricePerHour: 0.035, Time: minuteAgo},
		awsctl.SpotPrice{InstanceType: "m5.large", Zone: "us-east-1b", PricePerHour: 0.04, Time: hourAgo},
		awsctl.SpotPrice{InstanceType: "c5.large", Zone: "us-east-1a", PricePerHour: 0.03, Time: minuteAgo},
		awsctl.SpotPrice{InstanceType: "r5.large", Zone: "us-east-1a", PricePerHour: 0.05, Time: minuteAgo},
	)
	e.srv.AddSpotPrices("Windows", awsctl.SpotPrice{InstanceType: "m5.large", Zone: "us-east-1c", PricePerHour: 0.2, Time: minuteAgo})

	prices, err := e.client.SpotPrices(t.Context(), []string{"m5.large", "c5.large"})
	require.NoError(t, err)
	got := map[string]float64{}
	for _, p := range prices {
		got[p.InstanceType+"/"+p.Zone] = p.PricePerHour
		assert.False(t, p.Time.IsZero())
	}
	assert.Equal(t, map[string]float64{"m5.large/us-east-1a": 0.035, "m5.large/us-east-1b": 0.04, "c5.large/us-east-1a": 0.03}, got)

	reqs := e.srv.Requests("DescribeSpotPriceHistory")
	assert.Len(t, reqs, 2, "three current prices in pages of two")
	p := reqs[0].Params
	assert.Equal(t, "Linux/UNIX", p.Get("ProductDescription.1"))
	assert.NotEmpty(t, p.Get("StartTime"))
	assert.Equal(t, "m5.large", p.Get("InstanceType.1"))

	none, err := e.client.SpotPrices(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestReservations(t *testing.T) {
	e := newEnv(t, setup{})
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(-1, 0, 0)
	e.srv.AddReservedInstances(
		ec2test.ReservedInstances{InstanceType: "m5.large", Count: 4, Start: start, End: end},
		ec2test.ReservedInstances{InstanceType: "c5.large", Zone: "us-east-1b", Count: 2, Start: start, End: end},
		ec2test.ReservedInstances{InstanceType: "m5.large", Count: 9, Start: start, End: end, State: "retired"},
		ec2test.ReservedInstances{InstanceType: "m5.large", Count: 7, Start: start, End: end, ProductDescription: "Windows"},
	)
	got, err := e.client.Reservations(t.Context())
	require.NoError(t, err)
	assert.ElementsMatch(t, []awsctl.Reservation{
		{InstanceType: "m5.large", Count: 4, End: end},
		{InstanceType: "c5.large", Zone: "us-east-1b", Count: 2, End: end},
	}, got)
}

func TestLegacySpotRequests(t *testing.T) {
	e := newEnv(t, setup{srv: ec2test.Options{PageSize: 1}})
	created := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	e.srv.AddSpotRequests(
		ec2test.SpotRequest{ID: "sir-open", State: "open", InstanceType: "m5.large", Zone: "us-east-1a", CreateTime: created, Tags: owned},
		ec2test.SpotRequest{ID: "sir-active", State: "active", InstanceID: "i-0123456789abcdef0", InstanceType: "c5.large", Zone: "us-east-1b", CreateTime: created, Tags: owned},
		ec2test.SpotRequest{ID: "sir-closed", State: "cancelled", Tags: owned},
		ec2test.SpotRequest{ID: "sir-theirs", State: "open", Tags: map[string]string{ec2client.OwnerTagKey: "other"}},
	)
	reqs, err := e.client.OpenSpotRequests(t.Context(), owned)
	require.NoError(t, err)
	require.Len(t, reqs, 2)
	assert.Equal(t, ec2client.SpotRequest{ID: "sir-open", State: "open", InstanceType: "m5.large", Zone: "us-east-1a", CreateTime: created, Tags: owned}, reqs[0])
	assert.Equal(t, "i-0123456789abcdef0", reqs[1].InstanceID)
	assert.Len(t, e.srv.Requests("DescribeSpotInstanceRequests"), 2, "paginated")

	cancelled, err := e.client.CancelSpotRequests(t.Context(), []string{"sir-open", "sir-active"})
	require.NoError(t, err)
	assert.Equal(t, []string{"sir-open", "sir-active"}, cancelled)
	states := map[string]string{}
	for _, r := range e.srv.SpotRequests() {
		states[r.ID] = r.State
	}
	assert.Equal(t, map[string]string{"sir-open": "cancelled", "sir-active": "cancelled", "sir-closed": "cancelled", "sir-theirs": "open"}, states)

	_, err = e.client.CancelSpotRequests(t.Context(), []string{"sir-nope"})
	assert.ErrorIs(t, err, awsctl.ErrNotFound)
}

func TestNeverLogsCredentialsOrUserData(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, setup{opts: ec2client.Options{Logger: logger}})
	s := spec
	s.UserData = "password=hunter2"
	for _, offerings := range [][]awsctl.Offering{{m5a}, {m5a, c5b}} {
		_, err := e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: s, Offerings: offerings, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned})
		require.NoError(t, err)
	}
	_, err := e.client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned})
	require.NoError(t, err)
	require.NotEmpty(t, logs.String(), "the debug log is on")
	for _, secret := range []string{"hunter2", base64.StdEncoding.EncodeToString([]byte(s.UserData)), "ec2test-secret", "AKIDTEST"} {
		assert.NotContains(t, logs.String(), secret)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}
	for field, opts := range map[string]ec2client.Options{
		"Endpoint":    {Endpoint: "not a url"},
		"RetryMode":   {RetryMode: "eager"},
		"MaxAttempts": {MaxAttempts: -1},
		"Limits.Tags": {Limits: ec2client.Limits{Tags: ratelimit.Limit{Burst: 10}}},
	} {
		_, err := ec2client.New(cfg, opts)
		assert.ErrorContains(t, err, field)
	}
	_, err := ec2client.New(aws.Config{}, ec2client.Options{})
	assert.ErrorContains(t, err, "Region")
	_, err = ec2client.NewFromAPI(nil, ec2client.Options{})
	assert.Error(t, err)
}

func TestNewFromAPIUsesTheGivenSDKClient(t *testing.T) {
	e := newEnv(t, setup{})
	api := ec2.NewFromConfig(e.srv.AWSConfig(), func(o *ec2.Options) {
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
	})
	client, err := ec2client.NewFromAPI(api, ec2client.Options{})
	require.NoError(t, err)
	e.launchInSim(t, 1, awsctl.MarketOnDemand, owned)
	got, err := client.ListInstances(t.Context(), awsctl.ListFilter{Tags: owned})
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func TestEndpointOption(t *testing.T) {
	e := newEnv(t, setup{})
	cfg := e.srv.AWSConfig()
	url := *cfg.BaseEndpoint
	cfg.BaseEndpoint = nil // as from config.LoadDefaultConfig
	client, err := ec2client.New(cfg, ec2client.Options{Endpoint: url, MaxAttempts: 1})
	require.NoError(t, err)
	_, err = client.ListInstances(t.Context(), awsctl.ListFilter{})
	require.NoError(t, err)
	assert.Len(t, e.srv.Requests("DescribeInstances"), 1)
}

func TestServerRejectsUnknownActions(t *testing.T) {
	e := newEnv(t, setup{})
	api := ec2.NewFromConfig(e.srv.AWSConfig())
	_, err := api.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "InvalidAction")
	assert.True(t, slices.Contains(ec2test.Actions(), "CreateFleet"))
	assert.False(t, errors.Is(err, awsctl.ErrNotFound))
}
