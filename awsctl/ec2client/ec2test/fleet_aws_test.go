package ec2test_test

// CreateFleet, CreateLaunchTemplate and client tokens as the EC2 API
// reference and the EC2 idempotency guide describe them, driven through
// the real SDK client.

import (
	"errors"
	"strings"
	"testing"

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

var (
	subnetA = awsctl.Subnet{ID: "subnet-0aaaaaaaaaaaaaaaa", Zone: "us-east-1a"}
	subnetB = awsctl.Subnet{ID: "subnet-0bbbbbbbbbbbbbbbb", Zone: "us-east-1b"}
)

type fleetEnv struct {
	sim *ec2sim.Sim
	srv *ec2test.Server
	api *ec2.Client
}

func newFleetEnv(t *testing.T) *fleetEnv {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{})
	require.NoError(t, err)
	srv, err := ec2test.New(sim, ec2test.Options{Subnets: []awsctl.Subnet{subnetA, subnetB}})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	api := ec2.NewFromConfig(srv.AWSConfig(), func(o *ec2.Options) {
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
	})
	e := &fleetEnv{sim: sim, srv: srv, api: api}
	_, err = api.CreateLaunchTemplate(t.Context(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("ec2autoscale-test"),
		ClientToken:        aws.String("lt-token"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
	})
	require.NoError(t, err)
	return e
}

// override of type in subnet (so zone), with a weight and an optional
// priority (negative: none).
func override(instanceType string, subnet awsctl.Subnet, priority float64) types.FleetLaunchTemplateOverridesRequest {
	o := types.FleetLaunchTemplateOverridesRequest{
		InstanceType: types.InstanceType(instanceType), SubnetId: aws.String(subnet.ID), WeightedCapacity: aws.Float64(1),
	}
	if priority >= 0 {
		o.Priority = aws.Float64(priority)
	}
	return o
}

func fleetInput(market awsctl.Market, capacity int32, token string, overrides ...types.FleetLaunchTemplateOverridesRequest) *ec2.CreateFleetInput {
	in := &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{
				LaunchTemplateName: aws.String("ec2autoscale-test"), Version: aws.String("1"),
			},
			Overrides: overrides,
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(capacity), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand,
		},
	}
	if token != "" {
		in.ClientToken = aws.String(token)
	}
	if market == awsctl.MarketSpot {
		in.TargetCapacitySpecification.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeSpot
	}
	return in
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// zonesOf returns the zone of each override that launched, once per
// instance.
func launchedTypes(out *ec2.CreateFleetOutput) []string {
	var got []string
	for _, fi := range out.Instances {
		for range fi.InstanceIds {
			got = append(got, string(fi.InstanceType))
		}
	}
	return got
}

// lowest-price, the default of both markets, ignores priorities and takes
// the cheapest offering; the prioritized strategies follow Priority.
func TestCreateFleetAllocationStrategies(t *testing.T) {
	e := newFleetEnv(t)
	// m5.large lists at 0.096/h, c5.large at 0.085/h.
	m5 := override("m5.large", subnetA, 0)
	c5 := override("c5.large", subnetB, 1)

	out, err := e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 2, "", m5, c5))
	require.NoError(t, err)
	assert.Equal(t, []string{"c5.large", "c5.large"}, launchedTypes(out), "default lowest-price: the cheaper, whatever its priority")

	in := fleetInput(awsctl.MarketOnDemand, 2, "", m5, c5)
	in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyPrioritized}
	out, err = e.api.CreateFleet(t.Context(), in)
	require.NoError(t, err)
	assert.Equal(t, []string{"m5.large", "m5.large"}, launchedTypes(out), "prioritized: priority 0 first")

	// Without a priority, an override comes last.
	in = fleetInput(awsctl.MarketOnDemand, 1, "", override("m5.large", subnetA, -1), c5)
	in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyPrioritized}
	out, err = e.api.CreateFleet(t.Context(), in)
	require.NoError(t, err)
	assert.Equal(t, []string{"c5.large"}, launchedTypes(out))

	// Spot prices from the server's history: c5.large in 1b is cheaper.
	e.srv.AddSpotPrices("",
		awsctl.SpotPrice{InstanceType: "m5.large", Zone: "us-east-1a", PricePerHour: 0.04, Time: e.sim.Now()},
		awsctl.SpotPrice{InstanceType: "c5.large", Zone: "us-east-1b", PricePerHour: 0.03, Time: e.sim.Now()})
	for strategy, want := range map[types.SpotAllocationStrategy]string{
		"": "c5.large", types.SpotAllocationStrategyLowestPrice: "c5.large",
		types.SpotAllocationStrategyPriceCapacityOptimized:       "c5.large",
		types.SpotAllocationStrategyCapacityOptimizedPrioritized: "m5.large",
	} {
		in := fleetInput(awsctl.MarketSpot, 1, "", m5, c5)
		in.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: strategy}
		out, err := e.api.CreateFleet(t.Context(), in)
		require.NoError(t, err, strategy)
		assert.Equal(t, []string{want}, launchedTypes(out), strategy)
	}

	// Lowest price is per unit-hour: c5.xlarge (0.17/h) with weight 4 beats
	// m5.large (0.096/h) with weight 1.
	big := override("c5.xlarge", subnetB, 1)
	big.WeightedCapacity = aws.Float64(4)
	out, err = e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 8, "", m5, big))
	require.NoError(t, err)
	assert.Equal(t, []string{"c5.xlarge", "c5.xlarge"}, launchedTypes(out))

	in = fleetInput(awsctl.MarketOnDemand, 1, "", m5, c5)
	in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: "cheapest"}
	_, err = e.api.CreateFleet(t.Context(), in)
	assert.Equal(t, "InvalidParameterValue", errorCode(err))
}

// A spot MaxPrice below $0.001 (per unit-hour in an override) fails the
// whole call.
func TestCreateFleetRejectsMaxPriceBelowMinimum(t *testing.T) {
	e := newFleetEnv(t)
	cheap := override("m5.large", subnetA, 0)
	cheap.WeightedCapacity = aws.Float64(16)
	cheap.MaxPrice = aws.String("0.0005")
	_, err := e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketSpot, 16, "", cheap, override("c5.large", subnetB, 1)))
	assert.Equal(t, "InvalidParameterValue", errorCode(err))
	assert.Empty(t, e.sim.Instances(), "nothing launched, not even the override without a price")

	cheap.MaxPrice = aws.String("0.001")
	_, err = e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketSpot, 16, "", cheap))
	require.NoError(t, err)
}

// A launch template is given by id or by name, not both.
func TestCreateFleetRejectsTemplateByIDAndName(t *testing.T) {
	e := newFleetEnv(t)
	in := fleetInput(awsctl.MarketOnDemand, 1, "", override("m5.large", subnetA, 0))
	in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateId = aws.String(e.srv.LaunchTemplates()[0].ID)
	_, err := e.api.CreateFleet(t.Context(), in)
	assert.Equal(t, "InvalidParameterCombination", errorCode(err))
	assert.Empty(t, e.sim.Instances())
}

// A template deleted by someone else is not found, by name or by id; it
// can be created again, under a new client token.
func TestDeletedLaunchTemplate(t *testing.T) {
	e := newFleetEnv(t)
	id := e.srv.LaunchTemplates()[0].ID
	require.True(t, e.srv.DeleteLaunchTemplate("ec2autoscale-test"))
	assert.False(t, e.srv.DeleteLaunchTemplate("ec2autoscale-test"), "already gone")
	assert.Empty(t, e.srv.LaunchTemplates())

	_, err := e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 1, "", override("m5.large", subnetA, 0)))
	assert.Equal(t, "InvalidLaunchTemplateName.NotFoundException", errorCode(err))
	byID := fleetInput(awsctl.MarketOnDemand, 1, "", override("m5.large", subnetA, 0))
	byID.LaunchTemplateConfigs[0].LaunchTemplateSpecification = &types.FleetLaunchTemplateSpecificationRequest{
		LaunchTemplateId: aws.String(id), Version: aws.String("1"),
	}
	_, err = e.api.CreateFleet(t.Context(), byID)
	assert.Equal(t, "InvalidLaunchTemplateId.NotFound", errorCode(err))

	create := &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("ec2autoscale-test"),
		ClientToken:        aws.String("lt-token"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
	}
	// The token that created it stands for that answer: nothing is
	// created.
	out, err := e.api.CreateLaunchTemplate(t.Context(), create)
	require.NoError(t, err)
	assert.Equal(t, id, aws.ToString(out.LaunchTemplate.LaunchTemplateId))
	assert.Empty(t, e.srv.LaunchTemplates())

	create.ClientToken = aws.String("lt-token-2")
	out, err = e.api.CreateLaunchTemplate(t.Context(), create)
	require.NoError(t, err)
	assert.NotEqual(t, id, aws.ToString(out.LaunchTemplate.LaunchTemplateId))
	require.Len(t, e.srv.LaunchTemplates(), 1)
	_, err = e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 1, "", override("m5.large", subnetA, 0)))
	require.NoError(t, err)
	_, err = e.api.CreateFleet(t.Context(), byID)
	assert.Equal(t, "InvalidLaunchTemplateId.NotFound", errorCode(err), "the old id stays gone")
}

func TestCreateLaunchTemplateTokenWithOtherParameters(t *testing.T) {
	e := newFleetEnv(t)
	_, err := e.api.CreateLaunchTemplate(t.Context(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("ec2autoscale-other"),
		ClientToken:        aws.String("lt-token"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
	})
	assert.Equal(t, "IdempotentParameterMismatch", errorCode(err))
	assert.Len(t, e.srv.LaunchTemplates(), 1)
}

// Client tokens of CreateFleet, per the EC2 idempotency guide: a repeat of
// an answered call gets the same answer and launches nothing, even when the
// first launched nothing; other parameters under the same token fail with
// IdempotentParameterMismatch; a call that failed leaves its token unused.
func TestCreateFleetClientToken(t *testing.T) {
	e := newFleetEnv(t)
	m5, c5 := override("m5.large", subnetA, 0), override("c5.large", subnetB, 1)
	e.sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", "us-east-1a", 0)
	e.sim.SetCapacity(awsctl.MarketOnDemand, "c5.large", "us-east-1b", 0)
	first, err := e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 2, "tok", m5, c5))
	require.NoError(t, err, "an instant fleet reports its failures in Errors")
	assert.Empty(t, first.Instances)
	require.Len(t, first.Errors, 2)

	// Capacity is back, but the token's answer stands.
	e.sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", "us-east-1a", 10)
	again, err := e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 2, "tok", m5, c5))
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(first.FleetId), aws.ToString(again.FleetId))
	assert.Empty(t, again.Instances)
	assert.Len(t, again.Errors, 2)
	assert.Empty(t, e.sim.Instances())

	// Other parameters, even ones the launch does not see.
	for name, in := range map[string]*ec2.CreateFleetInput{
		"capacity": fleetInput(awsctl.MarketOnDemand, 3, "tok", m5, c5),
		"priority": fleetInput(awsctl.MarketOnDemand, 2, "tok", m5, override("c5.large", subnetB, 2)),
	} {
		_, err := e.api.CreateFleet(t.Context(), in)
		assert.Equal(t, "IdempotentParameterMismatch", errorCode(err), name)
	}

	// A launch that did launch: its instances again, nothing more.
	second, err := e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 2, "tok-2", m5, c5))
	require.NoError(t, err)
	require.Len(t, launchedTypes(second), 2)
	again, err = e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 2, "tok-2", m5, c5))
	require.NoError(t, err)
	assert.Equal(t, second.Instances, again.Instances)
	assert.Len(t, e.sim.Instances(), 2)

	// A call that failed did not use its token.
	require.True(t, e.srv.DeleteLaunchTemplate("ec2autoscale-test"))
	_, err = e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 1, "tok-3", m5))
	require.Equal(t, "InvalidLaunchTemplateName.NotFoundException", errorCode(err))
	_, err = e.api.CreateLaunchTemplate(t.Context(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("ec2autoscale-test"),
		ClientToken:        aws.String("lt-token-2"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
	})
	require.NoError(t, err)
	third, err := e.api.CreateFleet(t.Context(), fleetInput(awsctl.MarketOnDemand, 1, "tok-3", m5))
	require.NoError(t, err)
	assert.Len(t, launchedTypes(third), 1)
}

// RunInstances tokens, which the server leaves to the backing cloud
// (ec2sim keeps them as EC2 does).
func TestRunInstancesClientToken(t *testing.T) {
	e := newFleetEnv(t)
	run := func(count int32) (*ec2.RunInstancesOutput, error) {
		return e.api.RunInstances(t.Context(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: types.InstanceTypeM5Large,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(count), SubnetId: aws.String(subnetA.ID),
			ClientToken: aws.String("run-tok"),
		})
	}
	first, err := run(2)
	require.NoError(t, err)
	again, err := run(2)
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(first.ReservationId), aws.ToString(again.ReservationId))
	assert.Len(t, e.sim.Instances(), 2)
	_, err = run(3)
	assert.Equal(t, "IdempotentParameterMismatch", errorCode(err))
	assert.True(t, strings.Contains(err.Error(), "IdempotentParameterMismatch"))
}
