package ec2client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// placement is an offering with the subnet it launches into ("" for the
// zone's default subnet).
type placement struct {
	awsctl.Offering
	subnet string
}

type offeringKey struct{ instanceType, zone string }

// Launch starts instances for req. A request with one usable offering is a
// RunInstances call; with several, an instant CreateFleet over all of them,
// which returns what it launched and an error per offering it could not
// fill. The fleet follows the order of req.Offerings with the default
// allocation strategies (see Options).
//
// Each launch carries req.Token as its ClientToken (a digest of it if it is
// not a valid token: longer than 64 characters or not printable ASCII), so
// that a retried Launch gets the first call's answer instead of launching
// again. EC2's idempotency guide promises that answer to a repeat of a call
// that completed (an instant fleet that launched nothing completed too),
// and IdempotentParameterMismatch to a call under the same token with other
// parameters; it promises nothing for a call answered with an error, and
// states no lifetime (older editions: at least 24 hours after the
// instance's termination, for RunInstances). A token is thus for retrying
// one launch, never for another. The mismatch is an error of kind
// awsctl.ErrTokenMismatch, which the client does not retry: choosing a new
// token is the caller's decision.
//
// CreateFleet needs a launch template. When req.Spec names none, the client
// creates one from the spec (image, security groups, instance profile, key,
// user data), named after a digest of those and the owner tag so that equal
// specs share it, and tagged with the owner tag. Templates are never
// deleted; there is one per distinct spec. The client remembers the
// templates it made; when EC2 answers that one does not exist (deleted by
// someone else, or not visible yet just after its creation), the client
// forgets it, creates it again and sends the fleet once more, with the same
// token.
//
// A spot req.MaxPrice is sent per instance-hour to RunInstances and per
// capacity unit-hour (MaxPrice over the offering's weight) in each fleet
// override, rounded up to a millionth of a dollar and raised to $0.001, the
// least EC2 accepts: a lower price fails the whole call.
//
// A spec with a LaunchTemplate takes its security groups, instance
// profile, key and user data from the template; setting them in the spec
// too is an invalid request (EC2 Fleet cannot override them). Its ImageID,
// if set, overrides the template's image.
func (c *Client) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	if err := validateLaunch(req); err != nil {
		return nil, err
	}
	placements, errs := place(req)
	var insts []awsctl.Instance
	var err error
	switch len(placements) {
	case 0:
	case 1:
		insts, err = c.runInstances(ctx, req, placements[0])
	default:
		insts, err = c.createFleet(ctx, req, placements)
	}
	return insts, errors.Join(append(errs, err)...)
}

func invalidLaunch(format string, args ...any) error {
	return fmt.Errorf("ec2client: Launch: %s: %w", fmt.Sprintf(format, args...), awsctl.ErrInvalidRequest)
}

func validateLaunch(req awsctl.LaunchRequest) error {
	switch {
	case !req.Market.Valid():
		return invalidLaunch("LaunchRequest.Market %q is not a market", req.Market)
	case req.Capacity < 1:
		return invalidLaunch("LaunchRequest.Capacity must be at least 1, got %d", req.Capacity)
	case len(req.Offerings) == 0:
		return invalidLaunch("LaunchRequest.Offerings is empty")
	case req.MaxPrice < 0:
		return invalidLaunch("LaunchRequest.MaxPrice must not be negative, got %v", req.MaxPrice)
	}
	spec := req.Spec
	if spec.ImageID == "" && spec.LaunchTemplate == nil {
		return invalidLaunch("LaunchSpec needs an ImageID or a LaunchTemplate")
	}
	if lt := spec.LaunchTemplate; lt != nil {
		if lt.ID == "" && lt.Name == "" {
			return invalidLaunch("LaunchSpec.LaunchTemplate needs an ID or a Name")
		}
		if lt.ID != "" && lt.Name != "" {
			// EC2 refuses a template given both ways
			// (LaunchTemplateSpecification, FleetLaunchTemplateSpecificationRequest).
			return invalidLaunch("LaunchSpec.LaunchTemplate has both an ID (%s) and a Name (%s); set only one", lt.ID, lt.Name)
		}
		if len(spec.SecurityGroupIDs) > 0 || spec.InstanceProfile != "" || spec.KeyName != "" || spec.UserData != "" {
			return invalidLaunch("with a LaunchSpec.LaunchTemplate, security groups, instance profile, key and user data come from the template")
		}
	}
	for i, o := range req.Offerings {
		if o.InstanceType == "" || o.Zone == "" {
			return invalidLaunch("LaunchRequest.Offerings[%d] needs an InstanceType and a Zone", i)
		}
		if o.Weight < 0 {
			return invalidLaunch("LaunchRequest.Offerings[%d].Weight must not be negative, got %d", i, o.Weight)
		}
	}
	return nil
}

// place pairs each offering with the first subnet of its zone, dropping
// duplicates. Offerings in a zone none of the spec's subnets covers fail
// with an invalid-request *LaunchError.
func place(req awsctl.LaunchRequest) ([]placement, []error) {
	var out []placement
	var errs []error
	seen := map[offeringKey]bool{}
	for _, o := range req.Offerings {
		o.Weight = max(o.Weight, 1)
		k := offeringKey{o.InstanceType, o.Zone}
		if seen[k] {
			continue
		}
		seen[k] = true
		p := placement{Offering: o}
		if len(req.Spec.Subnets) > 0 {
			for _, s := range req.Spec.Subnets {
				if s.Zone == o.Zone {
					p.subnet = s.ID
					break
				}
			}
			if p.subnet == "" {
				errs = append(errs, &awsctl.LaunchError{Offering: o, Market: req.Market,
					Err: invalidLaunch("no subnet of the LaunchSpec is in zone %s", o.Zone)})
				continue
			}
		}
		out = append(out, p)
	}
	return out, errs
}

// instanceTags are the tags every launched instance carries: the spec's,
// overridden by the request's (the scaler's own).
func instanceTags(req awsctl.LaunchRequest) map[string]string {
	tags := maps.Clone(req.Spec.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	maps.Copy(tags, req.Tags)
	return tags
}

func tagSpecs(resource types.ResourceType, tags map[string]string) []types.TagSpecification {
	if len(tags) == 0 {
		return nil
	}
	return []types.TagSpecification{{ResourceType: resource, Tags: toTags(tags)}}
}

// clientToken turns a launch token into a valid EC2 ClientToken (at most
// 64 printable ASCII characters), deterministically: a token that already
// is one is used as is, any other is replaced by a digest of it.
func clientToken(token string) *string {
	if token == "" {
		return nil
	}
	if len(token) <= 64 && isPrintableASCII(token) {
		return aws.String(token)
	}
	sum := sha256.Sum256([]byte(token))
	return aws.String("ea-" + hex.EncodeToString(sum[:24]))
}

func isPrintableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// minSpotMaxPrice is the least maximum spot price EC2 accepts, per
// instance-hour in RunInstances and per unit-hour in a fleet override. The
// EC2 API reference (SpotMarketOptions and
// FleetLaunchTemplateOverridesRequest, MaxPrice) says a lower one is an
// InvalidParameterValue, which fails the whole call, offerings with a
// higher price included.
//
// A cap that low (0.008 over a weight of 16, say) is raised to the minimum
// rather than dropped: the cap stays within a tenth of a cent per unit of
// what was asked, where dropping it would let the fleet pay up to the
// on-demand price.
const minSpotMaxPrice = 0.001

// spotMaxPrice formats a maximum spot price for EC2: rounded up to a
// millionth of a dollar, so that it never falls below the price asked and
// a quotient such as 0.1/3 does not print seventeen digits, and raised to
// minSpotMaxPrice.
func spotMaxPrice(p float64) string {
	// The tolerance keeps a binary fraction just above a whole number of
	// millionths (0.05 is 0.05000000000000000277) from rounding up.
	p = math.Ceil(p*1e6-1e-6) / 1e6
	return strconv.FormatFloat(max(p, minSpotMaxPrice), 'f', -1, 64)
}

func instanceProfile(nameOrARN string) *types.IamInstanceProfileSpecification {
	if nameOrARN == "" {
		return nil
	}
	if strings.HasPrefix(nameOrARN, "arn:") {
		return &types.IamInstanceProfileSpecification{Arn: aws.String(nameOrARN)}
	}
	return &types.IamInstanceProfileSpecification{Name: aws.String(nameOrARN)}
}

func encodeUserData(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(base64.StdEncoding.EncodeToString([]byte(s)))
}

func (c *Client) runInstances(ctx context.Context, req awsctl.LaunchRequest, p placement) ([]awsctl.Instance, error) {
	count := (req.Capacity + p.Weight - 1) / p.Weight
	fail := func(err error) error { return &awsctl.LaunchError{Offering: p.Offering, Market: req.Market, Err: err} }
	if err := wait(ctx, "RunInstances", c.limits.run, 1); err != nil {
		return nil, fail(err)
	}
	if err := wait(ctx, "RunInstances", c.limits.runInstances, count); err != nil {
		return nil, fail(err)
	}
	spec := req.Spec
	tags := instanceTags(req)
	in := &ec2.RunInstancesInput{
		MinCount:           aws.Int32(1),
		MaxCount:           aws.Int32(int32(count)),
		InstanceType:       types.InstanceType(p.InstanceType),
		ClientToken:        clientToken(req.Token),
		TagSpecifications:  tagSpecs(types.ResourceTypeInstance, tags),
		SecurityGroupIds:   spec.SecurityGroupIDs,
		IamInstanceProfile: instanceProfile(spec.InstanceProfile),
		UserData:           encodeUserData(spec.UserData),
	}
	if spec.ImageID != "" {
		in.ImageId = aws.String(spec.ImageID)
	}
	if spec.KeyName != "" {
		in.KeyName = aws.String(spec.KeyName)
	}
	if lt := spec.LaunchTemplate; lt != nil {
		in.LaunchTemplate = &types.LaunchTemplateSpecification{
			LaunchTemplateId: optional(lt.ID), LaunchTemplateName: optional(lt.Name), Version: optional(lt.Version),
		}
	}
	if p.subnet != "" {
		in.SubnetId = aws.String(p.subnet)
	} else {
		in.Placement = &types.Placement{AvailabilityZone: aws.String(p.Zone)}
	}
	if req.Market == awsctl.MarketSpot {
		opts := &types.SpotMarketOptions{
			SpotInstanceType:             types.SpotInstanceTypeOneTime,
			InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
		}
		if req.MaxPrice > 0 {
			opts.MaxPrice = aws.String(spotMaxPrice(req.MaxPrice))
		}
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot, SpotOptions: opts}
	}
	out, err := c.api.RunInstances(ctx, in)
	if err != nil {
		return nil, fail(classify("RunInstances", err))
	}
	insts := make([]awsctl.Instance, 0, len(out.Instances))
	for _, raw := range out.Instances {
		inst := toInstance(raw)
		inst.Market = req.Market
		for k, v := range tags {
			if _, ok := inst.Tags[k]; !ok {
				inst.Tags[k] = v
			}
		}
		insts = append(insts, inst)
	}
	c.log.Debug("RunInstances", "type", p.InstanceType, "zone", p.Zone, "market", req.Market,
		"requested", count, "launched", len(insts))
	if len(insts) < count {
		return insts, fail(fmt.Errorf("RunInstances launched %d of %d instances: %w", len(insts), count, awsctl.ErrInsufficientCapacity))
	}
	return insts, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func (c *Client) createFleet(ctx context.Context, req awsctl.LaunchRequest, placements []placement) ([]awsctl.Instance, error) {
	template, err := c.fleetTemplate(ctx, req, false)
	if err != nil {
		return nil, err
	}
	byKey := map[offeringKey]placement{}
	zoneOf := map[string]string{}
	overrides := make([]types.FleetLaunchTemplateOverridesRequest, len(placements))
	for i, p := range placements {
		byKey[offeringKey{p.InstanceType, p.Zone}] = p
		o := types.FleetLaunchTemplateOverridesRequest{
			InstanceType:     types.InstanceType(p.InstanceType),
			WeightedCapacity: aws.Float64(float64(p.Weight)),
			// The order of req.Offerings, for the prioritized
			// strategies (lower is better); the others ignore it.
			Priority: aws.Float64(float64(i)),
		}
		if p.subnet != "" {
			o.SubnetId = aws.String(p.subnet)
			zoneOf[p.subnet] = p.Zone
		} else {
			o.AvailabilityZone = aws.String(p.Zone)
		}
		if req.Spec.LaunchTemplate != nil && req.Spec.ImageID != "" {
			o.ImageId = aws.String(req.Spec.ImageID)
		}
		if req.Market == awsctl.MarketSpot && req.MaxPrice > 0 {
			// EC2 Fleet prices are per capacity unit.
			o.MaxPrice = aws.String(spotMaxPrice(req.MaxPrice / float64(p.Weight)))
		}
		overrides[i] = o
	}
	target := &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(int32(req.Capacity))}
	in := &ec2.CreateFleetInput{
		Type:        types.FleetTypeInstant,
		ClientToken: clientToken(req.Token),
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: template,
			Overrides:                   overrides,
		}},
		TargetCapacitySpecification: target,
		TagSpecifications:           tagSpecs(types.ResourceTypeInstance, instanceTags(req)),
	}
	// The allocation strategy decides which overrides EC2 fills first:
	// the prioritized ones (the defaults) follow Priority, so the
	// request's order; lowest-price and price-capacity-optimized go by
	// price and ignore it (see Options).
	if req.Market == awsctl.MarketSpot {
		target.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeSpot
		target.SpotTargetCapacity = aws.Int32(int32(req.Capacity))
		in.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: c.opts.SpotAllocationStrategy}
	} else {
		target.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeOnDemand
		target.OnDemandTargetCapacity = aws.Int32(int32(req.Capacity))
		in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: c.opts.OnDemandAllocationStrategy}
	}
	// An instant fleet is a record of one launch; it is never deleted,
	// since deleting it may terminate its instances.
	out, err := c.sendFleet(ctx, in)
	if isTemplateNotFound(err) && req.Spec.LaunchTemplate == nil {
		// The template this client made and remembers is gone, or not
		// visible yet: make it again and send the same request (same
		// token: EC2 used none for a call it refused) once more.
		c.log.Debug("CreateFleet: launch template not found; creating it again", "error", err)
		if in.LaunchTemplateConfigs[0].LaunchTemplateSpecification, err = c.fleetTemplate(ctx, req, true); err != nil {
			return nil, err
		}
		out, err = c.sendFleet(ctx, in)
	}
	if err != nil {
		if isTemplateNotFound(err) && req.Spec.LaunchTemplate == nil {
			c.forgetTemplate(aws.ToString(in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateName))
		}
		return nil, err
	}

	key := func(instanceType types.InstanceType, lto *types.LaunchTemplateAndOverridesResponse, subnet, zone *string) offeringKey {
		if lto != nil && lto.Overrides != nil {
			if instanceType == "" {
				instanceType = lto.Overrides.InstanceType
			}
			subnet = cmpOr(lto.Overrides.SubnetId, subnet)
			zone = cmpOr(lto.Overrides.AvailabilityZone, zone)
		}
		z := aws.ToString(zone)
		if s, ok := zoneOf[aws.ToString(subnet)]; ok {
			z = s
		}
		return offeringKey{string(instanceType), z}
	}
	now := time.Now()
	tags := instanceTags(req)
	launched := map[offeringKey]bool{}
	units := 0
	var insts []awsctl.Instance
	for _, fi := range out.Instances {
		k := key(fi.InstanceType, fi.LaunchTemplateAndOverrides, fi.SubnetId, fi.AvailabilityZone)
		market := req.Market
		if fi.Lifecycle != "" {
			market = awsctl.MarketOnDemand
			if fi.Lifecycle == types.InstanceLifecycleSpot {
				market = awsctl.MarketSpot
			}
		}
		for _, id := range fi.InstanceIds {
			launched[k] = true
			units += max(byKey[k].Weight, 1)
			// CreateFleet answers with ids only; the rest is known from
			// the request, and the next listing fills in the details.
			insts = append(insts, awsctl.Instance{
				ID: id, Type: k.instanceType, Zone: k.zone, Market: market,
				State: awsctl.StatePending, LaunchTime: now, Tags: maps.Clone(tags),
			})
		}
	}
	c.log.Debug("CreateFleet", "market", req.Market, "capacity", req.Capacity, "launched_units", units,
		"instances", len(insts), "errors", len(out.Errors))
	if units >= req.Capacity {
		return insts, nil
	}
	var errs []error
	failed := map[offeringKey]bool{}
	general := map[string]bool{}
	for _, fe := range out.Errors {
		code, msg := aws.ToString(fe.ErrorCode), aws.ToString(fe.ErrorMessage)
		k := key("", fe.LaunchTemplateAndOverrides, nil, nil)
		p, known := byKey[k]
		switch {
		case !known:
			// Not about one offering (an account limit, say).
			if !general[code] {
				general[code] = true
				errs = append(errs, fleetError(code, msg))
			}
		case !launched[k] && !failed[k]:
			failed[k] = true
			errs = append(errs, &awsctl.LaunchError{Offering: p.Offering, Market: req.Market, Err: fleetError(code, msg)})
		}
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("CreateFleet launched %d of %d capacity units: %w", units, req.Capacity, awsctl.ErrInsufficientCapacity))
	}
	return insts, errors.Join(errs...)
}

// sendFleet makes one CreateFleet call, paced by the mutating bucket.
func (c *Client) sendFleet(ctx context.Context, in *ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) {
	if err := wait(ctx, "CreateFleet", c.limits.mutating, 1); err != nil {
		return nil, err
	}
	out, err := c.api.CreateFleet(ctx, in)
	if err != nil {
		return nil, classify("CreateFleet", err)
	}
	return out, nil
}

func cmpOr(a, b *string) *string {
	if a != nil && *a != "" {
		return a
	}
	return b
}
