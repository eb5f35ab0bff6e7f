package ec2client_test

// The IAM policy in docs/iam-policy.json is checked here the way AWS would
// check it: the client is driven through every call it makes against a
// recording EC2 double, each recorded request is turned into the
// authorization checks AWS performs for it (one per action and resource,
// with the condition keys the Service Authorization Reference lists for
// that pair), and a small policy evaluator must allow every one of them,
// and deny the requests that would let the scaler touch what it does not
// own.
//
// References:
//   - Service Authorization Reference, "Actions, resources, and condition
//     keys for Amazon EC2"
//     (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html):
//     for each action, the resource types it is authorized on and the
//     condition keys each one carries. Encoded in iamSAR below.
//   - "Grant permission to tag resources during creation"
//     (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html):
//     tags given to a creating action are authorized as ec2:CreateTags on
//     each created resource, with ec2:CreateAction naming the creating
//     action; tags that come from a launch template count too.
//   - "Example policies" for EC2, RunInstances section
//     (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html):
//     a launch is authorized on the instance and on every resource it uses
//     or creates (image, subnet, security groups, network interface,
//     volumes, key pair, launch template, spot request), and
//     aws:RequestTag on a created resource type only sees the tags given
//     to that type.
//   - IAM condition operators
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
//     and multi-valued conditions
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html):
//     a missing key fails a positive operator and satisfies a negated one;
//     a key's values are ORed, or NORed by a negated operator; operators
//     and keys are ANDed; ForAllValues holds for an empty set; Null tests
//     presence.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
)

const (
	iamRegion  = "us-east-1"
	iamAccount = "123456789012"
	iamOwner   = "team-blue"
	iamRole    = "worker-role"
	// iamProfile is the instance profile the launches name; it holds iamRole.
	iamProfile = "worker-profile"
)

// iamPolicyFile is the policy under test.
const iamPolicyFile = "../../docs/iam-policy.json"

// ---- Service Authorization Reference -------------------------------------

// Condition keys the reference lists for a resource type of an action.
var (
	// Existing instances (TerminateInstances and the like).
	iamKeysInstance = []string{"aws:ResourceTag/${TagKey}", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId",
		"ec2:CpuOptionsAmdSevSnp", "ec2:EbsOptimized", "ec2:InstanceAutoRecovery", "ec2:InstanceBandwidthWeighting",
		"ec2:InstanceID", "ec2:InstanceMarketType", "ec2:InstanceMetadataTags", "ec2:InstanceProfile", "ec2:InstanceType",
		"ec2:ManagedResourceOperator", "ec2:MetadataHttpEndpoint", "ec2:MetadataHttpPutResponseHopLimit",
		"ec2:MetadataHttpTokens", "ec2:PlacementGroup", "ec2:ProductCode", "ec2:Region", "ec2:ResourceTag/${TagKey}",
		"ec2:RootDeviceType", "ec2:Tenancy"}
	// CreateTags and DeleteTags on any resource type; the keys specific to
	// a type (ec2:InstanceType and the like) are left out, the policy does
	// not use them.
	iamKeysTagging  = []string{"aws:RequestTag/${TagKey}", "aws:ResourceTag/${TagKey}", "aws:TagKeys", "ec2:CreateAction", "ec2:Region", "ec2:ResourceTag/${TagKey}"}
	iamKeysUntag    = []string{"aws:RequestTag/${TagKey}", "aws:ResourceTag/${TagKey}", "aws:TagKeys", "ec2:Region", "ec2:ResourceTag/${TagKey}"}
	iamKeysDescribe = []string{"ec2:Region"}
)

// iamSAR is the part of the reference the client's calls need: action ->
// resource type -> condition keys. Resource type "*" stands for an action
// without resource-level permissions (Resource must be "*"). Types the
// reference marks required carry no mark here: the checks come from the
// requests, which always name them.
var iamSAR = map[string]map[string][]string{
	"ec2:DescribeInstances":            {"*": iamKeysDescribe},
	"ec2:DescribeInstanceStatus":       {"*": iamKeysDescribe},
	"ec2:DescribeSpotPriceHistory":     {"*": iamKeysDescribe},
	"ec2:DescribeReservedInstances":    {"*": iamKeysDescribe},
	"ec2:DescribeSpotInstanceRequests": {"*": iamKeysDescribe},
	"ec2:RunInstances": {
		"image": {"aws:ResourceTag/${TagKey}", "ec2:ImageID", "ec2:ImageType", "ec2:IsLaunchTemplateResource",
			"ec2:LaunchTemplate", "ec2:Owner", "ec2:Public", "ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:RootDeviceType"},
		"instance": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId",
			"ec2:CpuOptionsAmdSevSnp", "ec2:EbsOptimized", "ec2:InstanceAutoRecovery", "ec2:InstanceBandwidthWeighting",
			"ec2:InstanceID", "ec2:InstanceMarketType", "ec2:InstanceMetadataTags", "ec2:InstanceProfile",
			"ec2:InstanceType", "ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate", "ec2:ManagedResourceOperator",
			"ec2:MetadataHttpEndpoint", "ec2:MetadataHttpPutResponseHopLimit", "ec2:MetadataHttpTokens",
			"ec2:PlacementGroup", "ec2:ProductCode", "ec2:Region", "ec2:RootDeviceType", "ec2:Tenancy"},
		"key-pair": {"aws:ResourceTag/${TagKey}", "ec2:IsLaunchTemplateResource", "ec2:KeyPairName", "ec2:KeyPairType",
			"ec2:LaunchTemplate", "ec2:Region", "ec2:ResourceTag/${TagKey}"},
		"launch-template": {"aws:ResourceTag/${TagKey}", "ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate",
			"ec2:ManagedResourceOperator", "ec2:Region", "ec2:ResourceTag/${TagKey}"},
		"network-interface": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:AssociatePublicIpAddress",
			"ec2:AuthorizedService", "ec2:AvailabilityZone", "ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate",
			"ec2:ManagedResourceOperator", "ec2:NetworkInterfaceID", "ec2:Region", "ec2:Subnet", "ec2:Vpc"},
		"placement-group": {"aws:ResourceTag/${TagKey}", "ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate",
			"ec2:PlacementGroupName", "ec2:PlacementGroupStrategy", "ec2:Region", "ec2:ResourceTag/${TagKey}"},
		"security-group": {"aws:ResourceTag/${TagKey}", "ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate",
			"ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:SecurityGroupID", "ec2:Vpc"},
		"snapshot": {"aws:ResourceTag/${TagKey}", "ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate", "ec2:Owner",
			"ec2:ParentVolume", "ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:SnapshotID", "ec2:SnapshotTime", "ec2:VolumeSize"},
		"spot-instances-request": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:Region"},
		"subnet": {"aws:ResourceTag/${TagKey}", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId",
			"ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate", "ec2:Region", "ec2:ResourceTag/${TagKey}",
			"ec2:SubnetID", "ec2:Vpc"},
		"volume": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId",
			"ec2:Encrypted", "ec2:IsLaunchTemplateResource", "ec2:LaunchTemplate", "ec2:ManagedResourceOperator",
			"ec2:ParentSnapshot", "ec2:Region", "ec2:VolumeID", "ec2:VolumeInitializationRate", "ec2:VolumeIops",
			"ec2:VolumeSize", "ec2:VolumeThroughput", "ec2:VolumeType"},
	},
	// The reference's CreateFleet entry adds that the resources named in
	// the launch template are authorized under RunInstances: an instant
	// fleet launches with the caller's own permissions (it needs no
	// service-linked role, per "EC2 Fleet prerequisites",
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-fleet-prerequisites.html).
	"ec2:CreateFleet": {
		"fleet": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:Region"},
		"image": {"aws:ResourceTag/${TagKey}", "ec2:ImageID", "ec2:ImageType", "ec2:Owner", "ec2:Public", "ec2:Region",
			"ec2:ResourceTag/${TagKey}", "ec2:RootDeviceType"},
		"instance": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId",
			"ec2:CpuOptionsAmdSevSnp", "ec2:EbsOptimized", "ec2:InstanceBandwidthWeighting", "ec2:InstanceID",
			"ec2:InstanceProfile", "ec2:InstanceType", "ec2:PlacementGroup", "ec2:Region", "ec2:RootDeviceType", "ec2:Tenancy"},
		"launch-template": {"aws:ResourceTag/${TagKey}", "ec2:Region", "ec2:ResourceTag/${TagKey}"},
		"placement-group": {"aws:ResourceTag/${TagKey}", "ec2:PlacementGroupName", "ec2:PlacementGroupStrategy",
			"ec2:Region", "ec2:ResourceTag/${TagKey}"},
		"subnet": {"aws:ResourceTag/${TagKey}", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId", "ec2:Region",
			"ec2:ResourceTag/${TagKey}", "ec2:SubnetID", "ec2:Vpc"},
		"volume": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId",
			"ec2:Encrypted", "ec2:KmsKeyId", "ec2:ParentSnapshot", "ec2:Region", "ec2:VolumeID", "ec2:VolumeIops",
			"ec2:VolumeSize", "ec2:VolumeThroughput", "ec2:VolumeType"},
	},
	// Dependent actions: ec2:CreateTags (tags in the request) and
	// iam:PassRole (an instance profile in the template data).
	"ec2:CreateLaunchTemplate": {
		"launch-template": {"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:Region"},
	},
	"ec2:CreateTags": {
		"instance": iamKeysTagging, "launch-template": iamKeysTagging, "volume": iamKeysTagging,
		"network-interface": iamKeysTagging, "spot-instances-request": iamKeysTagging, "fleet": iamKeysTagging,
	},
	"ec2:DeleteTags":         {"instance": iamKeysUntag},
	"ec2:TerminateInstances": {"instance": iamKeysInstance},
	"ec2:CancelSpotInstanceRequests": {
		"spot-instances-request": {"aws:ResourceTag/${TagKey}", "ec2:Region", "ec2:ResourceTag/${TagKey}"},
	},
	// From the IAM entry of the same reference (list_awsidentityandaccessmanagementiam.html).
	"iam:PassRole": {"role": {"iam:AssociatedResourceArn", "iam:PassedToService"}},
}

// iamLaunchTypes are the resource types a launch uses or creates. Whether
// EC2 checks those of an instant fleet's template under CreateFleet (as
// the report of the broken policy has it) or only under RunInstances (as
// the reference's CreateFleet entry says), the policy must allow the
// fleet: CreateFleet is checked on all of them too, with RunInstances'
// keys for the types the CreateFleet entry does not list.
var iamLaunchTypes = []string{"image", "instance", "key-pair", "launch-template", "network-interface",
	"security-group", "snapshot", "spot-instances-request", "subnet", "volume"}

// iamARN returns the ARN of a resource, in the formats of the reference's
// resource types table (images and snapshots have no account).
func iamARN(typ, id string) string {
	switch typ {
	case "*":
		return "*"
	case "image", "snapshot":
		return fmt.Sprintf("arn:aws:ec2:%s::%s/%s", iamRegion, typ, id)
	case "role":
		return fmt.Sprintf("arn:aws:iam::%s:role/%s", iamAccount, id)
	}
	return fmt.Sprintf("arn:aws:ec2:%s:%s:%s/%s", iamRegion, iamAccount, typ, id)
}

// ---- Authorization checks --------------------------------------------------

// iamCheck is one authorization AWS performs for a request.
type iamCheck struct {
	action string // "ec2:RunInstances"
	target string // ARN, or "*"
	ctx    map[string][]string
	what   string // for messages
}

// iamResource is one resource a request touches.
type iamResource struct {
	typ, id string
	// tags of an existing resource; nil for one the request creates.
	tags map[string]string
	// reqTags are the tags a created resource is given by the request or
	// its launch template.
	reqTags map[string]string
	created bool
	// extra condition values (ec2:InstanceType and the like).
	extra map[string]string
}

// iamModelled are the condition keys the checks fill in. A policy that
// conditions on another key the reference lists cannot be judged here.
var iamModelled = []string{"aws:RequestTag/${TagKey}", "aws:TagKeys", "aws:ResourceTag/${TagKey}",
	"ec2:ResourceTag/${TagKey}", "ec2:CreateAction", "ec2:Region", "ec2:InstanceType", "ec2:LaunchTemplate",
	"ec2:ImageID", "ec2:SubnetID", "ec2:SecurityGroupID", "ec2:KeyPairName", "iam:PassedToService"}

// iamCheckOn builds the check of action on r. Only the condition keys the
// reference lists for the pair (keys) get values: AWS supplies no others.
func iamCheckOn(action string, r iamResource, keys []string) iamCheck {
	ctx := map[string][]string{}
	if strings.HasPrefix(action, "ec2:") {
		ctx["aws:requestedregion"] = []string{iamRegion} // global key
	}
	has := func(k string) bool { return slices.Contains(keys, k) }
	if has("ec2:Region") {
		ctx["ec2:region"] = []string{iamRegion}
	}
	if has("aws:RequestTag/${TagKey}") {
		for k, v := range r.reqTags {
			ctx[strings.ToLower("aws:RequestTag/"+k)] = []string{v}
		}
	}
	if has("aws:TagKeys") && len(r.reqTags) > 0 {
		ctx["aws:tagkeys"] = slices.Sorted(maps.Keys(r.reqTags))
	}
	for _, prefix := range []string{"aws:ResourceTag/", "ec2:ResourceTag/"} {
		if has(prefix + "${TagKey}") {
			for k, v := range r.tags {
				ctx[strings.ToLower(prefix+k)] = []string{v}
			}
		}
	}
	for k, v := range r.extra {
		if has(k) {
			ctx[strings.ToLower(k)] = []string{v}
		}
	}
	return iamCheck{action: action, target: iamARN(r.typ, r.id), ctx: ctx, what: fmt.Sprintf("%s on %s %s", action, r.typ, r.id)}
}

// iamChecks returns the checks of a request of action touching res: one per
// resource whose type the reference lists for the action, and one
// ec2:CreateTags per created resource given tags, for each creating action
// name in createActions.
func iamChecks(action string, res []iamResource, createActions ...string) []iamCheck {
	var out []iamCheck
	for _, r := range res {
		keys, ok := iamSAR[action][r.typ]
		if !ok && action == "ec2:CreateFleet" && slices.Contains(iamLaunchTypes, r.typ) {
			keys, ok = iamSAR["ec2:RunInstances"][r.typ], true
		}
		if !ok {
			continue
		}
		out = append(out, iamCheckOn(action, r, keys))
		if r.created && len(r.reqTags) > 0 {
			for _, ca := range createActions {
				tr := r
				tr.tags = nil
				tr.extra = map[string]string{"ec2:CreateAction": ca}
				c := iamCheckOn("ec2:CreateTags", tr, iamSAR["ec2:CreateTags"][r.typ])
				c.what = fmt.Sprintf("ec2:CreateTags on %s %s created by %s", r.typ, r.id, ca)
				out = append(out, c)
			}
		}
	}
	return out
}

func iamPassRole(role string) iamCheck {
	c := iamCheckOn("iam:PassRole", iamResource{typ: "role", id: role,
		extra: map[string]string{"iam:PassedToService": "ec2.amazonaws.com"}}, iamSAR["iam:PassRole"]["role"])
	c.what = "iam:PassRole on " + role
	return c
}

// ---- Recording EC2 double --------------------------------------------------

// iamTemplate is a template the double knows: one of the user's, or one
// the client created.
type iamTemplate struct {
	id, name string
	tags     map[string]string
	data     *types.RequestLaunchTemplateData
}

// iamEC2 answers the client's calls from a small world of instances,
// spot requests and templates, and records every request.
type iamEC2 struct {
	ec2client.EC2API // nil: a call the double does not answer panics

	mu        sync.Mutex
	requests  []any
	instances map[string]map[string]string // id -> tags
	spot      map[string]map[string]string // spot request id -> tags
	templates []*iamTemplate
	n         int
}

func (f *iamEC2) record(in any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, in)
}

func (f *iamEC2) newID(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%017x", prefix, f.n)
}

func (f *iamEC2) template(id, name *string) *iamTemplate {
	for _, lt := range f.templates {
		if id != nil && lt.id == *id || name != nil && lt.name == *name {
			return lt
		}
	}
	return nil
}

func iamTagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func iamSpecTags[T types.TagSpecification | types.LaunchTemplateTagSpecificationRequest](specs []T, typ types.ResourceType) map[string]string {
	m := map[string]string{}
	for _, s := range specs {
		var rt types.ResourceType
		var tags []types.Tag
		switch s := any(s).(type) {
		case types.TagSpecification:
			rt, tags = s.ResourceType, s.Tags
		case types.LaunchTemplateTagSpecificationRequest:
			rt, tags = s.ResourceType, s.Tags
		}
		if rt == typ {
			maps.Copy(m, iamTagMap(tags))
		}
	}
	return m
}

func (f *iamEC2) launch(n int, tags map[string]string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for range n {
		id := f.newID("i")
		f.instances[id] = maps.Clone(tags)
		ids = append(ids, id)
	}
	return ids
}

func (f *iamEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.record(in)
	tags := iamSpecTags(in.TagSpecifications, types.ResourceTypeInstance)
	if in.LaunchTemplate != nil {
		if lt := f.template(in.LaunchTemplate.LaunchTemplateId, in.LaunchTemplate.LaunchTemplateName); lt != nil {
			tags = iamMerged(iamSpecTags(lt.data.TagSpecifications, types.ResourceTypeInstance), tags)
		}
	}
	zone := "us-east-1a"
	if in.Placement != nil {
		zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	out := &ec2.RunInstancesOutput{}
	for _, id := range f.launch(int(aws.ToInt32(in.MaxCount)), tags) {
		out.Instances = append(out.Instances, types.Instance{
			InstanceId: aws.String(id), InstanceType: in.InstanceType,
			Placement: &types.Placement{AvailabilityZone: aws.String(zone)},
			State:     &types.InstanceState{Name: types.InstanceStateNamePending}, LaunchTime: aws.Time(time.Now()),
		})
	}
	return out, nil
}

func (f *iamEC2) CreateFleet(_ context.Context, in *ec2.CreateFleetInput, _ ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error) {
	f.record(in)
	cfg := in.LaunchTemplateConfigs[0]
	o := cfg.Overrides[0]
	tags := iamSpecTags(in.TagSpecifications, types.ResourceTypeInstance)
	if lt := f.template(cfg.LaunchTemplateSpecification.LaunchTemplateId, cfg.LaunchTemplateSpecification.LaunchTemplateName); lt != nil {
		tags = iamMerged(iamSpecTags(lt.data.TagSpecifications, types.ResourceTypeInstance), tags)
	}
	ids := f.launch(int(aws.ToInt32(in.TargetCapacitySpecification.TotalTargetCapacity)), tags)
	return &ec2.CreateFleetOutput{FleetId: aws.String("fleet-0"), Instances: []types.CreateFleetInstance{{
		InstanceIds: ids, InstanceType: o.InstanceType,
		LaunchTemplateAndOverrides: &types.LaunchTemplateAndOverridesResponse{Overrides: &types.FleetLaunchTemplateOverrides{
			InstanceType: o.InstanceType, SubnetId: o.SubnetId, AvailabilityZone: o.AvailabilityZone}},
	}}}, nil
}

func (f *iamEC2) CreateLaunchTemplate(_ context.Context, in *ec2.CreateLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error) {
	f.record(in)
	f.mu.Lock()
	defer f.mu.Unlock()
	lt := &iamTemplate{id: f.newID("lt"), name: aws.ToString(in.LaunchTemplateName),
		tags: iamSpecTags(in.TagSpecifications, types.ResourceTypeLaunchTemplate), data: in.LaunchTemplateData}
	f.templates = append(f.templates, lt)
	return &ec2.CreateLaunchTemplateOutput{LaunchTemplate: &types.LaunchTemplate{
		LaunchTemplateId: aws.String(lt.id), LaunchTemplateName: aws.String(lt.name)}}, nil
}

func (f *iamEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.record(in)
	f.mu.Lock()
	defer f.mu.Unlock()
	r := types.Reservation{}
	for _, id := range slices.Sorted(maps.Keys(f.instances)) {
		var tags []types.Tag
		for k, v := range f.instances[id] {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		r.Instances = append(r.Instances, types.Instance{InstanceId: aws.String(id), InstanceType: "c5.large",
			Placement: &types.Placement{AvailabilityZone: aws.String("us-east-1a")},
			State:     &types.InstanceState{Name: types.InstanceStateNameRunning}, Tags: tags, LaunchTime: aws.Time(time.Now())})
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{r}}, nil
}

func (f *iamEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	f.record(in)
	out := &ec2.TerminateInstancesOutput{}
	for _, id := range in.InstanceIds {
		out.TerminatingInstances = append(out.TerminatingInstances, types.InstanceStateChange{InstanceId: aws.String(id),
			CurrentState: &types.InstanceState{Name: types.InstanceStateNameShuttingDown}})
	}
	return out, nil
}

func (f *iamEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.record(in)
	return &ec2.CreateTagsOutput{}, nil
}

func (f *iamEC2) DeleteTags(_ context.Context, in *ec2.DeleteTagsInput, _ ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error) {
	f.record(in)
	return &ec2.DeleteTagsOutput{}, nil
}

func (f *iamEC2) DescribeSpotPriceHistory(_ context.Context, in *ec2.DescribeSpotPriceHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	f.record(in)
	return &ec2.DescribeSpotPriceHistoryOutput{}, nil
}

func (f *iamEC2) DescribeReservedInstances(_ context.Context, in *ec2.DescribeReservedInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeReservedInstancesOutput, error) {
	f.record(in)
	return &ec2.DescribeReservedInstancesOutput{}, nil
}

func (f *iamEC2) DescribeSpotInstanceRequests(_ context.Context, in *ec2.DescribeSpotInstanceRequestsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotInstanceRequestsOutput, error) {
	f.record(in)
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ec2.DescribeSpotInstanceRequestsOutput{}
	for _, id := range slices.Sorted(maps.Keys(f.spot)) {
		var tags []types.Tag
		for k, v := range f.spot[id] {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out.SpotInstanceRequests = append(out.SpotInstanceRequests, types.SpotInstanceRequest{
			SpotInstanceRequestId: aws.String(id), State: types.SpotInstanceStateOpen, Tags: tags})
	}
	return out, nil
}

func (f *iamEC2) CancelSpotInstanceRequests(_ context.Context, in *ec2.CancelSpotInstanceRequestsInput, _ ...func(*ec2.Options)) (*ec2.CancelSpotInstanceRequestsOutput, error) {
	f.record(in)
	out := &ec2.CancelSpotInstanceRequestsOutput{}
	for _, id := range in.SpotInstanceRequestIds {
		out.CancelledSpotInstanceRequests = append(out.CancelledSpotInstanceRequests, types.CancelledSpotInstanceRequest{
			SpotInstanceRequestId: aws.String(id), State: types.CancelSpotInstanceRequestStateCancelled})
	}
	return out, nil
}

func (f *iamEC2) DescribeInstanceStatus(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	f.record(in)
	return &ec2.DescribeInstanceStatusOutput{}, nil
}

func iamMerged(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// ---- From requests to checks -------------------------------------------------

// iamLaunch is what a launch uses, from its request and its template.
type iamLaunch struct {
	template            *iamTemplate
	image, subnet, key  string
	securityGroups      []string
	profile             string
	instanceType        string
	spot                bool
	instanceTags        map[string]string
	volumeTags, eniTags map[string]string
	spotRequestTags     map[string]string
}

func (p *iamLaunch) fromTemplate(lt *iamTemplate) {
	if lt == nil {
		return
	}
	p.template = lt
	d := lt.data
	p.image = aws.ToString(d.ImageId)
	p.key = aws.ToString(d.KeyName)
	p.securityGroups = d.SecurityGroupIds
	if d.IamInstanceProfile != nil {
		p.profile = iamOr(aws.ToString(d.IamInstanceProfile.Name), aws.ToString(d.IamInstanceProfile.Arn))
	}
	p.instanceTags = iamSpecTags(d.TagSpecifications, types.ResourceTypeInstance)
	p.volumeTags = iamSpecTags(d.TagSpecifications, types.ResourceTypeVolume)
	p.eniTags = iamSpecTags(d.TagSpecifications, types.ResourceTypeNetworkInterface)
	p.spotRequestTags = iamSpecTags(d.TagSpecifications, types.ResourceTypeSpotInstancesRequest)
}

func iamOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// resources lists what the launch touches: what it creates (instance,
// network interface, root volume, spot request) and what it uses.
func (p iamLaunch) resources() []iamResource {
	extra := map[string]string{"ec2:InstanceType": p.instanceType}
	if p.template != nil {
		extra["ec2:LaunchTemplate"] = iamARN("launch-template", p.template.id)
	}
	subnet := iamOr(p.subnet, "subnet-default") // no subnet: the zone's default one
	sgs := p.securityGroups
	if len(sgs) == 0 {
		sgs = []string{"sg-default"}
	}
	res := []iamResource{
		{typ: "instance", id: "*", created: true, reqTags: p.instanceTags, extra: extra},
		{typ: "network-interface", id: "*", created: true, reqTags: p.eniTags},
		{typ: "volume", id: "*", created: true, reqTags: p.volumeTags},
		{typ: "image", id: p.image, tags: map[string]string{}, extra: map[string]string{"ec2:ImageID": p.image}},
		// The image's root snapshot, shared by its owner.
		{typ: "snapshot", id: "snap-0root", tags: map[string]string{}},
		{typ: "subnet", id: subnet, tags: map[string]string{}, extra: map[string]string{"ec2:SubnetID": subnet}},
	}
	for _, sg := range sgs {
		res = append(res, iamResource{typ: "security-group", id: sg, tags: map[string]string{}, extra: map[string]string{"ec2:SecurityGroupID": sg}})
	}
	if p.key != "" {
		res = append(res, iamResource{typ: "key-pair", id: p.key, tags: map[string]string{}, extra: map[string]string{"ec2:KeyPairName": p.key}})
	}
	if p.template != nil {
		res = append(res, iamResource{typ: "launch-template", id: p.template.id, tags: p.template.tags})
	}
	if p.spot {
		res = append(res, iamResource{typ: "spot-instances-request", id: "*", created: true, reqTags: p.spotRequestTags})
	}
	return res
}

// requestChecks turns one recorded request into the checks AWS makes.
func (f *iamEC2) requestChecks(t *testing.T, in any) (action string, out []iamCheck) {
	t.Helper()
	existing := func(typ, id string, tags map[string]string) iamResource {
		return iamResource{typ: typ, id: id, tags: tags}
	}
	switch in := in.(type) {
	case *ec2.DescribeInstancesInput:
		return "DescribeInstances", []iamCheck{iamCheckOn("ec2:DescribeInstances", iamResource{typ: "*"}, iamKeysDescribe)}
	case *ec2.DescribeInstanceStatusInput:
		return "DescribeInstanceStatus", []iamCheck{iamCheckOn("ec2:DescribeInstanceStatus", iamResource{typ: "*"}, iamKeysDescribe)}
	case *ec2.DescribeSpotPriceHistoryInput:
		return "DescribeSpotPriceHistory", []iamCheck{iamCheckOn("ec2:DescribeSpotPriceHistory", iamResource{typ: "*"}, iamKeysDescribe)}
	case *ec2.DescribeReservedInstancesInput:
		return "DescribeReservedInstances", []iamCheck{iamCheckOn("ec2:DescribeReservedInstances", iamResource{typ: "*"}, iamKeysDescribe)}
	case *ec2.DescribeSpotInstanceRequestsInput:
		return "DescribeSpotInstanceRequests", []iamCheck{iamCheckOn("ec2:DescribeSpotInstanceRequests", iamResource{typ: "*"}, iamKeysDescribe)}

	case *ec2.RunInstancesInput:
		var p iamLaunch
		if lt := in.LaunchTemplate; lt != nil {
			p.fromTemplate(f.template(lt.LaunchTemplateId, lt.LaunchTemplateName))
		}
		p.image = iamOr(aws.ToString(in.ImageId), p.image)
		p.key = iamOr(aws.ToString(in.KeyName), p.key)
		p.subnet = aws.ToString(in.SubnetId)
		if len(in.SecurityGroupIds) > 0 {
			p.securityGroups = in.SecurityGroupIds
		}
		if in.IamInstanceProfile != nil {
			p.profile = iamOr(aws.ToString(in.IamInstanceProfile.Name), aws.ToString(in.IamInstanceProfile.Arn))
		}
		p.instanceType = string(in.InstanceType)
		p.spot = in.InstanceMarketOptions != nil && in.InstanceMarketOptions.MarketType == types.MarketTypeSpot
		p.instanceTags = iamMerged(p.instanceTags, iamSpecTags(in.TagSpecifications, types.ResourceTypeInstance))
		p.volumeTags = iamMerged(p.volumeTags, iamSpecTags(in.TagSpecifications, types.ResourceTypeVolume))
		p.eniTags = iamMerged(p.eniTags, iamSpecTags(in.TagSpecifications, types.ResourceTypeNetworkInterface))
		p.spotRequestTags = iamMerged(p.spotRequestTags, iamSpecTags(in.TagSpecifications, types.ResourceTypeSpotInstancesRequest))
		out = iamChecks("ec2:RunInstances", p.resources(), "RunInstances")
		if p.profile != "" {
			out = append(out, iamPassRole(iamRole))
		}
		return "RunInstances", out

	case *ec2.CreateFleetInput:
		require.Len(t, in.LaunchTemplateConfigs, 1)
		cfg := in.LaunchTemplateConfigs[0]
		spec := cfg.LaunchTemplateSpecification
		lt := f.template(spec.LaunchTemplateId, spec.LaunchTemplateName)
		require.NotNil(t, lt, "CreateFleet names a template the account has")
		fleet := iamResource{typ: "fleet", id: "*", created: true, reqTags: iamSpecTags(in.TagSpecifications, types.ResourceTypeFleet)}
		out = iamChecks("ec2:CreateFleet", []iamResource{fleet}, "CreateFleet")
		for _, o := range cfg.Overrides {
			var p iamLaunch
			p.fromTemplate(lt)
			p.image = iamOr(aws.ToString(o.ImageId), p.image)
			p.subnet = aws.ToString(o.SubnetId)
			p.instanceType = string(o.InstanceType)
			p.spot = in.TargetCapacitySpecification.DefaultTargetCapacityType == types.DefaultTargetCapacityTypeSpot
			p.instanceTags = iamMerged(p.instanceTags, iamSpecTags(in.TagSpecifications, types.ResourceTypeInstance))
			p.volumeTags = iamMerged(p.volumeTags, iamSpecTags(in.TagSpecifications, types.ResourceTypeVolume))
			p.eniTags = iamMerged(p.eniTags, iamSpecTags(in.TagSpecifications, types.ResourceTypeNetworkInterface))
			res := p.resources()
			// Which creating action an instant fleet's tags are attributed
			// to is not documented: the policy must allow both.
			out = append(out, iamChecks("ec2:CreateFleet", res, "CreateFleet", "RunInstances")...)
			out = append(out, iamChecks("ec2:RunInstances", res, "CreateFleet", "RunInstances")...)
			if p.profile != "" {
				out = append(out, iamPassRole(iamRole))
			}
		}
		return "CreateFleet", out

	case *ec2.CreateLaunchTemplateInput:
		r := iamResource{typ: "launch-template", id: "*", created: true,
			reqTags: iamSpecTags(in.TagSpecifications, types.ResourceTypeLaunchTemplate)}
		out = iamChecks("ec2:CreateLaunchTemplate", []iamResource{r}, "CreateLaunchTemplate")
		if in.LaunchTemplateData != nil && in.LaunchTemplateData.IamInstanceProfile != nil {
			out = append(out, iamPassRole(iamRole))
		}
		return "CreateLaunchTemplate", out

	case *ec2.CreateTagsInput:
		for _, id := range in.Resources {
			r := existing("instance", id, f.instances[id])
			r.reqTags = iamTagMap(in.Tags)
			out = append(out, iamChecks("ec2:CreateTags", []iamResource{r})...)
		}
		return "CreateTags", out
	case *ec2.DeleteTagsInput:
		for _, id := range in.Resources {
			r := existing("instance", id, f.instances[id])
			r.reqTags = iamTagMap(in.Tags)
			out = append(out, iamChecks("ec2:DeleteTags", []iamResource{r})...)
		}
		return "DeleteTags", out
	case *ec2.TerminateInstancesInput:
		for _, id := range in.InstanceIds {
			out = append(out, iamChecks("ec2:TerminateInstances", []iamResource{existing("instance", id, f.instances[id])})...)
		}
		return "TerminateInstances", out
	case *ec2.CancelSpotInstanceRequestsInput:
		for _, id := range in.SpotInstanceRequestIds {
			out = append(out, iamChecks("ec2:CancelSpotInstanceRequests", []iamResource{existing("spot-instances-request", id, f.spot[id])})...)
		}
		return "CancelSpotInstanceRequests", out
	}
	t.Fatalf("no authorization model for %T", in)
	return "", nil
}

// ---- Policy evaluation -------------------------------------------------------

// iamStrings is a policy element that is a string or a list of strings.
type iamStrings []string

func (l *iamStrings) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*l = iamStrings{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*l = many
	return nil
}

type iamStatement struct {
	Sid         string
	Effect      string
	Action      iamStrings
	NotAction   iamStrings
	Resource    iamStrings
	NotResource iamStrings
	Condition   map[string]map[string]iamStrings
}

type iamPolicy struct {
	Version   string
	Statement []iamStatement
}

// loadIAMPolicy reads a policy and replaces its placeholders.
func loadIAMPolicy(t *testing.T, path string) iamPolicy {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	text := strings.NewReplacer("${REGION}", iamRegion, "${ACCOUNT_ID}", iamAccount, "${OWNER}", iamOwner,
		"${INSTANCE_ROLE}", iamRole, "${TARGET_GROUP_NAME}", "web", "${TARGET_GROUP_ID}", "0123456789abcdef").Replace(string(raw))
	var p iamPolicy
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p))
	require.Equal(t, "2012-10-17", p.Version)
	require.NotRegexp(t, `\$\{[A-Z_]+\}`, text, "a placeholder the test does not substitute")
	return p
}

// iamWildcard matches s against an IAM pattern, where * is any run and ? any
// one character.
func iamWildcard(pattern, s string, fold bool) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	if fold {
		re = "(?i)" + re
	}
	return regexp.MustCompile(re).MatchString(s)
}

// iamDecision is the outcome of evaluating a check.
type iamDecision struct {
	allowed bool
	by      []string // the Sids that allowed, or denied
}

// evaluate applies the policy to c: an explicit Deny wins, else an Allow,
// else the implicit deny.
func (p iamPolicy) evaluate(c iamCheck) (iamDecision, error) {
	var allow, deny []string
	for _, s := range p.Statement {
		if len(s.NotAction) > 0 || len(s.NotResource) > 0 {
			return iamDecision{}, fmt.Errorf("statement %q: NotAction and NotResource are not modelled", s.Sid)
		}
		if !slices.ContainsFunc(s.Action, func(a string) bool { return iamWildcard(a, c.action, true) }) {
			continue
		}
		if !slices.ContainsFunc(s.Resource, func(r string) bool { return iamWildcard(r, c.target, false) }) {
			continue
		}
		ok, err := iamConditionsHold(s.Condition, c.ctx)
		if err != nil {
			return iamDecision{}, fmt.Errorf("statement %q: %w", s.Sid, err)
		}
		if !ok {
			continue
		}
		switch s.Effect {
		case "Allow":
			allow = append(allow, s.Sid)
		case "Deny":
			deny = append(deny, s.Sid)
		default:
			return iamDecision{}, fmt.Errorf("statement %q: Effect %q", s.Sid, s.Effect)
		}
	}
	if len(deny) > 0 {
		return iamDecision{false, deny}, nil
	}
	return iamDecision{len(allow) > 0, allow}, nil
}

// iamConditionsHold evaluates a Condition block: every operator, every key
// of it must hold.
func iamConditionsHold(cond map[string]map[string]iamStrings, ctx map[string][]string) (bool, error) {
	for op, block := range cond {
		for key, want := range block {
			ok, err := iamConditionHolds(op, strings.ToLower(key), want, ctx)
			if err != nil {
				return false, fmt.Errorf("%s %s: %w", op, key, err)
			}
			if !ok {
				return false, nil
			}
		}
	}
	return true, nil
}

func iamConditionHolds(op, key string, want []string, ctx map[string][]string) (bool, error) {
	got, present := ctx[key]
	set, base, _ := strings.Cut(op, ":")
	if base == "" {
		set, base = "", op
	}
	ifExists := strings.HasSuffix(base, "IfExists")
	base = strings.TrimSuffix(base, "IfExists")

	if base == "Null" {
		if set != "" || len(want) != 1 {
			return false, fmt.Errorf("malformed Null")
		}
		return (want[0] == "true") == !present, nil
	}
	var match func(got, want string) bool
	negated := false
	switch base {
	case "StringEquals", "ArnEquals":
		match = func(g, w string) bool { return g == w }
	case "StringNotEquals", "ArnNotEquals":
		match, negated = func(g, w string) bool { return g == w }, true
	case "StringLike", "ArnLike":
		match = func(g, w string) bool { return iamWildcard(w, g, false) }
	case "StringNotLike", "ArnNotLike":
		match, negated = func(g, w string) bool { return iamWildcard(w, g, false) }, true
	case "Bool":
		match = func(g, w string) bool { return strings.EqualFold(g, w) }
	default:
		return false, fmt.Errorf("operator %s is not modelled", base)
	}
	// One request value against the policy's values: a positive operator
	// needs one of them to match, a negated one none.
	one := func(g string) bool {
		return slices.ContainsFunc(want, func(w string) bool { return match(g, w) }) != negated
	}
	switch set {
	case "ForAllValues":
		for _, g := range got {
			if !one(g) {
				return false, nil
			}
		}
		return true, nil
	case "ForAnyValue":
		return slices.ContainsFunc(got, one), nil
	case "":
		if !present {
			return ifExists || negated, nil
		}
		if len(got) != 1 {
			return false, fmt.Errorf("single-valued operator on %d values", len(got))
		}
		return one(got[0]), nil
	}
	return false, fmt.Errorf("set operator %s is not modelled", set)
}

// ---- Tests -------------------------------------------------------------------

// The policy must list each EC2 call the client can make, and nothing
// more: the EC2API interface lists exactly those calls, and the reference
// table above must cover each of them.
func TestIAMPolicyGrantsExactlyTheCallsMade(t *testing.T) {
	p := loadIAMPolicy(t, iamPolicyFile)
	var granted []string
	for _, s := range p.Statement {
		for _, a := range s.Action {
			if name, ok := strings.CutPrefix(a, "ec2:"); ok && !slices.Contains(granted, name) {
				assert.NotContains(t, a, "*", "statement %q: no action wildcards", s.Sid)
				granted = append(granted, name)
			}
		}
	}
	api := reflect.TypeFor[ec2client.EC2API]()
	var used []string
	for i := range api.NumMethod() {
		used = append(used, api.Method(i).Name)
	}
	assert.ElementsMatch(t, used, granted)
	assert.ElementsMatch(t, used, ec2test.Actions(), "the test server serves every call the client makes")
	for _, name := range used {
		assert.Contains(t, iamSAR, "ec2:"+name, "the reference's entry for %s is encoded", name)
	}

	// A condition on a key the checks do not fill in would be judged
	// absent here but not on AWS.
	tagKey := regexp.MustCompile(`^((?i)aws:RequestTag|aws:ResourceTag|ec2:ResourceTag)/.+$`)
	for _, s := range p.Statement {
		if !slices.ContainsFunc(s.Action, func(a string) bool { return strings.HasPrefix(a, "ec2:") || strings.HasPrefix(a, "iam:") }) {
			continue
		}
		for op, block := range s.Condition {
			for key := range block {
				k := tagKey.ReplaceAllString(key, "$1/$${TagKey}")
				assert.True(t, k == "aws:RequestedRegion" || slices.Contains(iamModelled, k),
					"statement %q: %s on %s, which the checks do not model", s.Sid, op, key)
			}
		}
	}
}

// iamWorld is the account the client runs in: the user's launch template
// tags the volumes and network interfaces it creates, one instance and one
// spot request are someone else's.
func iamWorld() *iamEC2 {
	return &iamEC2{
		instances: map[string]map[string]string{
			"i-0foreign": {ec2client.OwnerTagKey: "team-red"},
		},
		spot: map[string]map[string]string{
			"sir-0mine":    {ec2client.OwnerTagKey: iamOwner},
			"sir-0foreign": {ec2client.OwnerTagKey: "team-red"},
		},
		templates: []*iamTemplate{{
			id: "lt-0user", name: "web-tier", tags: map[string]string{"team": "web"},
			data: &types.RequestLaunchTemplateData{
				ImageId: aws.String("ami-0user"), KeyName: aws.String("ops"), SecurityGroupIds: []string{"sg-0web"},
				IamInstanceProfile: &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String(iamProfile)},
				TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{
					{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}}},
					{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String("cost-center"), Value: aws.String("42")}}},
					{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("cost-center"), Value: aws.String("42")}}},
				},
			},
		}},
	}
}

// iamDriveClient makes every call the client can make, as a scaler with the
// identity iamOwner would.
func iamDriveClient(t *testing.T, f *iamEC2) {
	t.Helper()
	c, err := ec2client.NewFromAPI(f, ec2client.Options{})
	require.NoError(t, err)
	ctx := t.Context()
	spec := awsctl.LaunchSpec{
		ImageID:          "ami-0abc",
		Subnets:          []awsctl.Subnet{{ID: "subnet-0a", Zone: "us-east-1a"}, {ID: "subnet-0b", Zone: "us-east-1b"}},
		SecurityGroupIDs: []string{"sg-0app"},
		InstanceProfile:  iamProfile,
		KeyName:          "ops",
		Tags:             map[string]string{"app": "jobs"},
	}
	owned := map[string]string{ec2client.OwnerTagKey: iamOwner, "ec2autoscale:pool": "workers"}
	one := []awsctl.Offering{{InstanceType: "c5.large", Zone: "us-east-1a"}}
	two := []awsctl.Offering{{InstanceType: "c5.large", Zone: "us-east-1a"}, {InstanceType: "m5.large", Zone: "us-east-1b"}}
	template := awsctl.LaunchSpec{LaunchTemplate: &awsctl.LaunchTemplate{Name: "web-tier"}, ImageID: "ami-0override",
		Subnets: spec.Subnets}
	templateByID := awsctl.LaunchSpec{LaunchTemplate: &awsctl.LaunchTemplate{ID: "lt-0user"}}

	var ids []string
	for i, req := range []awsctl.LaunchRequest{
		{Spec: spec, Offerings: one, Market: awsctl.MarketOnDemand},
		{Spec: spec, Offerings: one, Market: awsctl.MarketSpot, MaxPrice: 0.05},
		{Spec: spec, Offerings: two, Market: awsctl.MarketOnDemand},
		{Spec: spec, Offerings: two, Market: awsctl.MarketSpot},
		{Spec: template, Offerings: two, Market: awsctl.MarketOnDemand},
		{Spec: templateByID, Offerings: one, Market: awsctl.MarketSpot},
	} {
		req.Capacity, req.Tags, req.Token = 1, owned, fmt.Sprintf("launch-%d", i)
		insts, err := c.Launch(ctx, req)
		assert.NoError(t, err, "launch %d", i)
		for _, in := range insts {
			ids = append(ids, in.ID)
		}
	}
	_, err = c.ListInstances(ctx, awsctl.ListFilter{Tags: map[string]string{ec2client.OwnerTagKey: iamOwner}})
	assert.NoError(t, err)
	assert.NoError(t, c.Tag(ctx, ids, map[string]string{"ec2autoscale:wind-down-start": "2025-06-01T00:00:00Z"}))
	assert.NoError(t, c.Untag(ctx, ids, []string{"ec2autoscale:wind-down-start"}))
	_, err = c.InstanceHealth(ctx, ids)
	assert.NoError(t, err)
	_, err = c.SpotPrices(ctx, []string{"c5.large"})
	assert.NoError(t, err)
	_, err = c.Reservations(ctx)
	assert.NoError(t, err)
	reqs, err := c.OpenSpotRequests(ctx, map[string]string{ec2client.OwnerTagKey: iamOwner})
	assert.NoError(t, err)
	var mine []string
	for _, r := range reqs {
		if r.Tags[ec2client.OwnerTagKey] == iamOwner {
			mine = append(mine, r.ID)
		}
	}
	_, err = c.CancelSpotRequests(ctx, mine)
	assert.NoError(t, err)
	_, err = c.Terminate(ctx, ids)
	assert.NoError(t, err)
}

// Every authorization AWS makes for every call the client makes, on every
// resource the call touches, must be allowed: launches on the instance and
// all it uses or creates, under CreateFleet as under RunInstances; tags at
// creation (ec2:CreateAction), including those the user's launch template
// puts on volumes and network interfaces; tag changes and terminations on
// the scaler's own instances.
func TestIAMPolicyAuthorizesEveryCallTheClientMakes(t *testing.T) {
	p := loadIAMPolicy(t, iamPolicyFile)
	f := iamWorld()
	iamDriveClient(t, f)

	made := map[string]bool{}
	for _, in := range f.requests {
		action, cs := f.requestChecks(t, in)
		made[action] = true
		require.NotEmpty(t, cs, "%s is authorized on something", action)
		for _, c := range cs {
			d, err := p.evaluate(c)
			require.NoError(t, err, c.what)
			assert.True(t, d.allowed, "denied: %s (context %v)", c.what, c.ctx)
		}
	}
	api := reflect.TypeFor[ec2client.EC2API]()
	for i := range api.NumMethod() {
		assert.True(t, made[api.Method(i).Name], "the scenarios make a %s call", api.Method(i).Name)
	}
}

// The policy confines the scaler to its own instances: whatever it asks,
// it cannot launch untagged or foreign-tagged instances, tag or terminate
// others' instances, change an owner tag, or tag existing volumes.
func TestIAMPolicyConfinesTheScalerToItsInstances(t *testing.T) {
	p := loadIAMPolicy(t, iamPolicyFile)
	f := iamWorld()
	ours := map[string]string{ec2client.OwnerTagKey: iamOwner}
	theirs := map[string]string{ec2client.OwnerTagKey: "team-red"}
	launch := func(action string, tags map[string]string) []iamCheck {
		return iamChecks(action, []iamResource{{typ: "instance", id: "*", created: true, reqTags: tags,
			extra: map[string]string{"ec2:InstanceType": "c5.large"}}}, strings.TrimPrefix(action, "ec2:"))
	}
	instance := func(id string, tags, reqTags map[string]string) []iamResource {
		return []iamResource{{typ: "instance", id: id, tags: tags, reqTags: reqTags}}
	}
	for name, cs := range map[string][]iamCheck{
		"RunInstances without tags":                launch("ec2:RunInstances", nil),
		"RunInstances as team-red":                 launch("ec2:RunInstances", theirs),
		"CreateFleet without tags":                 launch("ec2:CreateFleet", nil),
		"CreateFleet as team-red":                  launch("ec2:CreateFleet", theirs),
		"CreateLaunchTemplate without owner tag":   iamChecks("ec2:CreateLaunchTemplate", []iamResource{{typ: "launch-template", id: "*", created: true}}),
		"TerminateInstances on team-red's":         iamChecks("ec2:TerminateInstances", instance("i-0foreign", theirs, nil)),
		"CreateTags adopting team-red's":           iamChecks("ec2:CreateTags", instance("i-0foreign", theirs, ours)),
		"CreateTags on team-red's":                 iamChecks("ec2:CreateTags", instance("i-0foreign", theirs, map[string]string{"x": "y"})),
		"CreateTags giving ours away":              iamChecks("ec2:CreateTags", instance("i-0mine", ours, theirs)),
		"DeleteTags removing our owner tag":        iamChecks("ec2:DeleteTags", instance("i-0mine", ours, map[string]string{ec2client.OwnerTagKey: ""})),
		"CreateTags on an existing volume":         iamChecks("ec2:CreateTags", []iamResource{{typ: "volume", id: "vol-0", tags: map[string]string{}, reqTags: ours}}),
		"CancelSpotInstanceRequests on team-red's": iamChecks("ec2:CancelSpotInstanceRequests", []iamResource{{typ: "spot-instances-request", id: "sir-0foreign", tags: f.spot["sir-0foreign"]}}),
		"PassRole of another role":                 {iamPassRole("admin")},
	} {
		require.NotEmpty(t, cs, name)
		denied := false
		for _, c := range cs {
			d, err := p.evaluate(c)
			require.NoError(t, err, c.what)
			denied = denied || !d.allowed
		}
		assert.True(t, denied, "allowed: %s", name)
	}
}

// The evaluator itself, on the rules the policy relies on.
func TestIAMEvaluator(t *testing.T) {
	p := iamPolicy{Statement: []iamStatement{
		{Sid: "Tagged", Effect: "Allow", Action: iamStrings{"ec2:Run*"}, Resource: iamStrings{"arn:aws:ec2:*:*:instance/*"},
			Condition: map[string]map[string]iamStrings{"StringEquals": {"aws:RequestTag/Owner": {"me"}}}},
		{Sid: "OnCreate", Effect: "Allow", Action: iamStrings{"ec2:CreateTags"}, Resource: iamStrings{"*"},
			Condition: map[string]map[string]iamStrings{
				"StringEquals":              {"ec2:CreateAction": {"RunInstances", "CreateFleet"}},
				"ForAllValues:StringEquals": {"aws:TagKeys": {"Owner", "app"}},
			}},
		{Sid: "NoOwnerChange", Effect: "Deny", Action: iamStrings{"ec2:CreateTags"}, Resource: iamStrings{"*"},
			Condition: map[string]map[string]iamStrings{"Null": {"ec2:ResourceTag/Owner": {"false"}}}},
	}}
	for _, tc := range []struct {
		name string
		c    iamCheck
		want bool
	}{
		{"tag matches, action wildcard, key case", iamCheck{action: "EC2:RunInstances", target: "arn:aws:ec2:r:1:instance/*",
			ctx: map[string][]string{"aws:requesttag/owner": {"me"}}}, true},
		{"value is case-sensitive", iamCheck{action: "ec2:RunInstances", target: "arn:aws:ec2:r:1:instance/*",
			ctx: map[string][]string{"aws:requesttag/owner": {"Me"}}}, false},
		{"missing key fails StringEquals", iamCheck{action: "ec2:RunInstances", target: "arn:aws:ec2:r:1:instance/*"}, false},
		{"resource wildcard", iamCheck{action: "ec2:RunInstances", target: "arn:aws:ec2:r:1:volume/*",
			ctx: map[string][]string{"aws:requesttag/owner": {"me"}}}, false},
		{"one of the listed values", iamCheck{action: "ec2:CreateTags", target: "x",
			ctx: map[string][]string{"ec2:createaction": {"CreateFleet"}, "aws:tagkeys": {"app"}}}, true},
		{"ForAllValues rejects an extra key", iamCheck{action: "ec2:CreateTags", target: "x",
			ctx: map[string][]string{"ec2:createaction": {"CreateFleet"}, "aws:tagkeys": {"app", "x"}}}, false},
		{"ForAllValues holds on no keys", iamCheck{action: "ec2:CreateTags", target: "x",
			ctx: map[string][]string{"ec2:createaction": {"RunInstances"}}}, true},
		{"an explicit deny wins", iamCheck{action: "ec2:CreateTags", target: "x",
			ctx: map[string][]string{"ec2:createaction": {"RunInstances"}, "ec2:resourcetag/owner": {"me"}}}, false},
	} {
		d, err := p.evaluate(tc.c)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, d.allowed, tc.name)
	}
	ok, err := iamConditionHolds("StringNotEquals", "k", []string{"a"}, nil)
	require.NoError(t, err)
	assert.True(t, ok, "a negated operator holds on a missing key")
	_, err = iamConditionHolds("NumericLessThan", "k", []string{"1"}, nil)
	assert.Error(t, err, "operators the evaluator does not know are reported, not guessed")
}
