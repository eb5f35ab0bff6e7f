package ec2client_test

// Launch against an ec2test server that allocates, keeps templates and
// client tokens, and checks prices and template references as EC2 does.

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
)

// The pool lists a zone's offerings first to spread launches over zones.
// EC2's default strategies pick the cheapest offering whatever the order
// (here c5.large in us-east-1b, cheaper on both markets): the client must
// ask for the order to be followed.
func TestFleetFollowsTheOfferingOrder(t *testing.T) {
	for _, market := range []awsctl.Market{awsctl.MarketOnDemand, awsctl.MarketSpot} {
		t.Run(string(market), func(t *testing.T) {
			e := newEnv(t, setup{})
			e.srv.AddSpotPrices("",
				awsctl.SpotPrice{InstanceType: "m5.large", Zone: "us-east-1a", PricePerHour: 0.04, Time: e.sim.Now()},
				awsctl.SpotPrice{InstanceType: "c5.large", Zone: "us-east-1b", PricePerHour: 0.03, Time: e.sim.Now()})
			insts, err := e.client.Launch(t.Context(), awsctl.LaunchRequest{
				Spec: spec, Offerings: []awsctl.Offering{m5a, c5b}, Market: market, Capacity: 2, Tags: owned, Token: "spread",
			})
			require.NoError(t, err)
			require.Len(t, insts, 2)
			for _, in := range insts {
				assert.Equal(t, "us-east-1a", in.Zone, "the zone listed first")
			}
			p := e.srv.Requests("CreateFleet")[0].Params
			o := "LaunchTemplateConfigs.1.Overrides."
			assert.Equal(t, "0", p.Get(o+"1.Priority"))
			assert.Equal(t, "1", p.Get(o+"2.Priority"))
		})
	}

	// Chosen explicitly, a price-driven strategy applies: the cheapest wins.
	e := newEnv(t, setup{opts: ec2client.Options{OnDemandAllocationStrategy: "lowest-price"}})
	insts, err := e.client.Launch(t.Context(), awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{m5a, c5b}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned,
	})
	require.NoError(t, err)
	require.Len(t, insts, 1)
	assert.Equal(t, "c5.large", insts[0].Type)
}

func templateTokens(e *env) []string {
	var out []string
	for _, r := range e.srv.Requests("CreateLaunchTemplate") {
		out = append(out, r.Params.Get("ClientToken"))
	}
	return out
}

// A launch template the client made and cached, then deleted by someone
// else, is made again (under a new client token: the first one would only
// replay its creation) and the fleet retried once, with the same token.
func TestFleetRecreatesADeletedTemplate(t *testing.T) {
	e := newEnv(t, setup{})
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, c5b}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned, Token: "first"}
	_, err := e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	name := e.srv.LaunchTemplates()[0].Name
	require.True(t, e.srv.DeleteLaunchTemplate(name))

	req.Token = "second"
	insts, err := e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, insts, 1)
	templates := e.srv.LaunchTemplates()
	require.Len(t, templates, 1)
	assert.Equal(t, name, templates[0].Name)
	assert.Equal(t, owned, templates[0].Tags)
	tokens := templateTokens(e)
	require.Len(t, tokens, 2)
	assert.NotEqual(t, tokens[0], tokens[1])
	assert.LessOrEqual(t, len(tokens[1]), 64)
	fleets := e.srv.Requests("CreateFleet")
	require.Len(t, fleets, 3, "the first launch, the one that failed, its retry")
	assert.Equal(t, "second", fleets[1].Params.Get("ClientToken"))
	assert.Equal(t, "second", fleets[2].Params.Get("ClientToken"))

	// The next launch uses the cached template again.
	req.Token = "third"
	_, err = e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, e.srv.Requests("CreateLaunchTemplate"), 2)
	assert.Len(t, e.srv.Requests("CreateFleet"), 4)
}

// Just after its creation, a template may not be visible to CreateFleet
// yet; the client asks again (EC2 says the template exists) and retries
// once. A second miss is the launch's error, and the next launch starts
// over.
func TestFleetRetriesATemplateNotYetVisible(t *testing.T) {
	e := newEnv(t, setup{})
	notFound := ec2test.Fault{Code: "InvalidLaunchTemplateName.NotFoundException", Message: "The specified launch template does not exist."}
	req := awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, c5b}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned, Token: "t1"}
	e.srv.FailNext("CreateFleet", notFound)
	insts, err := e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, insts, 1)
	assert.Len(t, e.srv.Requests("CreateFleet"), 2)
	assert.Len(t, e.srv.LaunchTemplates(), 1)

	req.Token = "t2"
	e.srv.FailNext("CreateFleet", notFound, notFound)
	_, err = e.client.Launch(t.Context(), req)
	assert.ErrorIs(t, err, awsctl.ErrNotFound)
	assert.Len(t, e.srv.Requests("CreateFleet"), 4, "retried once only")

	req.Token = "t3"
	_, err = e.client.Launch(t.Context(), req)
	require.NoError(t, err)

	// A user's own template is not the client's to make: no retry.
	e.srv.ResetRequests()
	own := spec
	own.LaunchTemplate = &awsctl.LaunchTemplate{Name: "team-template"}
	own.ImageID = ""
	e.srv.FailNext("CreateFleet", notFound)
	_, err = e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: own, Offerings: []awsctl.Offering{m5a, c5b}, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned})
	assert.ErrorIs(t, err, awsctl.ErrNotFound)
	assert.Len(t, e.srv.Requests("CreateFleet"), 1)
	assert.Empty(t, e.srv.Requests("CreateLaunchTemplate"))
}

// The client sends the request's token as it is, and does not retry a
// token reused with other parameters: that is the caller's to resolve,
// with a new token. Here the first launch found no capacity: EC2 still
// answered it, so its token stands for that answer.
func TestLaunchTokenMismatchIsNotRetried(t *testing.T) {
	for name, offerings := range map[string][]awsctl.Offering{"RunInstances": {m5a}, "CreateFleet": {m5a, c5b}} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, setup{opts: ec2client.Options{MaxAttempts: 3}})
			req := awsctl.LaunchRequest{Spec: spec, Offerings: offerings, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned, Token: "intent-7"}
			if name == "RunInstances" {
				// RunInstances answers a launch without capacity with an
				// error, which leaves the token unused: launch something.
				_, err := e.client.Launch(t.Context(), req)
				require.NoError(t, err)
			} else {
				for _, o := range offerings {
					e.sim.SetCapacity(awsctl.MarketOnDemand, o.InstanceType, o.Zone, 0)
				}
				_, err := e.client.Launch(t.Context(), req)
				require.ErrorIs(t, err, awsctl.ErrInsufficientCapacity)
				for _, o := range offerings {
					e.sim.SetCapacity(awsctl.MarketOnDemand, o.InstanceType, o.Zone, 10)
				}
			}
			launched := len(e.sim.Instances())
			e.srv.ResetRequests()

			req.Capacity = 2
			insts, err := e.client.Launch(t.Context(), req)
			assert.Empty(t, insts)
			require.Error(t, err)
			assert.ErrorIs(t, err, awsctl.ErrTokenMismatch)
			var apiErr *awsctl.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "IdempotentParameterMismatch", apiErr.Code)
			assert.Len(t, e.sim.Instances(), launched, "nothing launched")
			var calls []ec2test.Request
			for _, r := range e.srv.Requests("") {
				if r.Action == "RunInstances" || r.Action == "CreateFleet" {
					calls = append(calls, r)
				}
			}
			require.Len(t, calls, 1, "no retry, in the SDK or the client")
			assert.Equal(t, "intent-7", calls[0].Params.Get("ClientToken"))
		})
	}
}

// A spot MaxPrice below $0.001 per unit-hour fails a whole CreateFleet on
// EC2; the client raises it to that minimum. Prices are also rounded up to
// a millionth of a dollar.
func TestSpotMaxPriceMinimum(t *testing.T) {
	e := newEnv(t, setup{})
	big := func(o awsctl.Offering) awsctl.Offering { o.Weight = 16; return o }
	req := awsctl.LaunchRequest{
		Spec: spec, Offerings: []awsctl.Offering{big(m5a), big(c5b)}, Market: awsctl.MarketSpot, Capacity: 16,
		Tags: owned, Token: "cheap", MaxPrice: 0.008,
	}
	insts, err := e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, insts, 1)
	o := "LaunchTemplateConfigs.1.Overrides."
	p := e.srv.Requests("CreateFleet")[0].Params
	assert.Equal(t, "0.001", p.Get(o+"1.MaxPrice"))
	assert.Equal(t, "0.001", p.Get(o+"2.MaxPrice"))

	req.Token, req.MaxPrice = "thirds", 0.1
	req.Offerings = []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 3}, c5b}
	_, err = e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	p = e.srv.Requests("CreateFleet")[1].Params
	assert.Equal(t, "0.033334", p.Get(o+"1.MaxPrice"), "0.1/3, rounded up")
	assert.Equal(t, "0.1", p.Get(o+"2.MaxPrice"))

	// RunInstances takes the price per instance-hour, with the same
	// minimum.
	req.Token, req.MaxPrice = "one", 0.0004
	req.Offerings = []awsctl.Offering{m5a}
	_, err = e.client.Launch(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, "0.001", e.srv.Requests("RunInstances")[0].Params.Get("InstanceMarketOptions.SpotOptions.MaxPrice"))
}

// EC2 takes a launch template by id or by name, never both: the client
// refuses such a spec before sending anything.
func TestLaunchTemplateByIDAndNameIsInvalid(t *testing.T) {
	e := newEnv(t, setup{})
	s := awsctl.LaunchSpec{
		LaunchTemplate: &awsctl.LaunchTemplate{ID: "lt-0123456789abcdef0", Name: "workers", Version: "3"},
		Subnets:        spec.Subnets,
	}
	for _, offerings := range [][]awsctl.Offering{{m5a}, {m5a, c5b}} {
		insts, err := e.client.Launch(t.Context(), awsctl.LaunchRequest{Spec: s, Offerings: offerings, Market: awsctl.MarketOnDemand, Capacity: 1, Tags: owned})
		assert.Empty(t, insts)
		require.ErrorIs(t, err, awsctl.ErrInvalidRequest)
		assert.True(t, strings.Contains(err.Error(), "LaunchSpec.LaunchTemplate"), err.Error())
		assert.True(t, strings.Contains(err.Error(), "both"), err.Error())
	}
	assert.Empty(t, e.srv.Requests(""))
}
