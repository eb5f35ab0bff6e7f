package ec2test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/ec2filter"
)

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func toXMLTags(tags map[string]string) []xmlTag {
	out := make([]xmlTag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, xmlTag{k, tags[k]})
	}
	return out
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

// toXMLState gives a state with EC2's numeric code.
func toXMLState(s awsctl.State) xmlState {
	code := 0 // pending
	switch s {
	case awsctl.StateRunning:
		code = 16
	case awsctl.StateShuttingDown:
		code = 32
	case awsctl.StateTerminated:
		code = 48
	case awsctl.StateStopping:
		code = 64
	case awsctl.StateStopped:
		code = 80
	}
	return xmlState{Code: code, Name: string(s)}
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
}

type xmlInstance struct {
	InstanceID   string       `xml:"instanceId"`
	State        xmlState     `xml:"instanceState"`
	PrivateIP    string       `xml:"privateIpAddress,omitempty"`
	InstanceType string       `xml:"instanceType"`
	LaunchTime   string       `xml:"launchTime,omitempty"`
	Placement    xmlPlacement `xml:"placement"`
	Lifecycle    string       `xml:"instanceLifecycle,omitempty"`
	Tags         []xmlTag     `xml:"tagSet>item"`
}

func toXMLInstance(in awsctl.Instance) xmlInstance {
	out := xmlInstance{
		InstanceID:   in.ID,
		State:        toXMLState(in.State),
		PrivateIP:    in.PrivateIP,
		InstanceType: in.Type,
		LaunchTime:   formatTime(in.LaunchTime),
		Placement:    xmlPlacement{in.Zone},
		Tags:         toXMLTags(in.Tags),
	}
	if in.Market == awsctl.MarketSpot {
		out.Lifecycle = "spot"
	}
	return out
}

// ownerID is the account the server pretends to be.
const ownerID = "123456789012"

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	answer
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

// reservationID names the reservation of one instance; the server puts
// each instance in a reservation of its own.
func reservationID(instanceID string) string { return "r-" + strings.TrimPrefix(instanceID, "i-") }

func (s *Server) describeInstances(ctx context.Context, p params) (response, *Fault) {
	ids := p.strings("InstanceId")
	if len(ids) > 0 && p.get("MaxResults") != "" {
		return nil, &Fault{Code: "InvalidParameterCombination", Message: "The parameter instancesSet cannot be used with the parameter maxResults"}
	}
	insts, next, fault := paginate(s, p, 5, 1000, func() ([]awsctl.Instance, *Fault) {
		return s.matchingInstances(ctx, ids, p.filters())
	})
	if fault != nil {
		return nil, fault
	}
	out := &describeInstancesResponse{NextToken: next}
	for _, inst := range insts {
		out.Reservations = append(out.Reservations, xmlReservation{
			ReservationID: reservationID(inst.ID), OwnerID: ownerID, Instances: []xmlInstance{toXMLInstance(inst)},
		})
	}
	return out, nil
}

// tagFilterer is the optional ability of a cloud to match tag filters as
// EC2 does, wildcards included, as ec2sim.Sim.FilterInstances does.
type tagFilterer interface {
	FilterInstances(ctx context.Context, filters []ec2sim.TagFilter, includeTerminated bool) ([]awsctl.Instance, error)
}

// matchingInstances lists the cloud's instances, terminated ones included,
// and keeps those named by ids (if any) that pass every filter. Filter
// values have EC2's wildcards and escapes.
func (s *Server) matchingInstances(ctx context.Context, ids []string, filters []filter) ([]awsctl.Instance, *Fault) {
	// Tag filters go to the cloud, which may index tags; everything is
	// checked again here.
	var all []awsctl.Instance
	var err error
	if tf, ok := s.cloud.(tagFilterer); ok {
		var tags []ec2sim.TagFilter
		for _, f := range filters {
			if k, ok := strings.CutPrefix(f.name, "tag:"); ok {
				tags = append(tags, ec2sim.TagFilter{Key: k, Values: f.values})
			}
		}
		all, err = tf.FilterInstances(ctx, tags, true)
	} else {
		// A plain cloud matches exact values only: give it the filters
		// whose one value has no wildcard.
		exact := map[string]string{}
		for _, f := range filters {
			if k, ok := strings.CutPrefix(f.name, "tag:"); ok && len(f.values) == 1 {
				if v, literal := ec2filter.Literal(f.values[0]); literal {
					exact[k] = v
				}
			}
		}
		all, err = s.cloud.ListInstances(ctx, awsctl.ListFilter{Tags: exact, IncludeTerminated: true})
	}
	if err != nil {
		return nil, faultOf(err)
	}
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			if !slices.ContainsFunc(all, func(in awsctl.Instance) bool { return in.ID == id }) {
				if _, known := s.instance(ctx, id); !known {
					missing = append(missing, id)
				}
			}
		}
		if len(missing) > 0 {
			return nil, instancesNotFound(missing)
		}
		all = slices.DeleteFunc(all, func(in awsctl.Instance) bool { return !slices.Contains(ids, in.ID) })
	}
	var out []awsctl.Instance
	for _, inst := range all {
		ok, fault := matchInstance(inst, filters)
		if fault != nil {
			return nil, fault
		}
		if ok {
			out = append(out, inst)
		}
	}
	return out, nil
}

func matchInstance(in awsctl.Instance, filters []filter) (bool, *Fault) {
	for _, f := range filters {
		var ok bool
		switch {
		case strings.HasPrefix(f.name, "tag:"):
			v, has := in.Tags[strings.TrimPrefix(f.name, "tag:")]
			ok = has && f.match(v)
		case f.name == "tag-key":
			ok = slices.ContainsFunc(slices.Collect(maps.Keys(in.Tags)), f.match)
		case f.name == "instance-state-name":
			ok = f.match(string(in.State))
		case f.name == "instance-id":
			ok = f.match(in.ID)
		case f.name == "instance-type":
			ok = f.match(in.Type)
		case f.name == "availability-zone":
			ok = f.match(in.Zone)
		case f.name == "instance-lifecycle":
			ok = in.Market == awsctl.MarketSpot && f.match("spot")
		default:
			return false, invalidValue("The filter '%s' is invalid", f.name)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func instancesNotFound(ids []string) *Fault {
	if len(ids) == 1 {
		return &Fault{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance ID '%s' does not exist", ids[0])}
	}
	return &Fault{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(ids, ", "))}
}

// instance looks up one instance of the cloud, terminated ones included.
func (s *Server) instance(ctx context.Context, id string) (awsctl.Instance, bool) {
	if s.lookup != nil {
		return s.lookup.Instance(id)
	}
	all, err := s.cloud.ListInstances(ctx, awsctl.ListFilter{IncludeTerminated: true})
	if err != nil {
		return awsctl.Instance{}, false
	}
	i := slices.IndexFunc(all, func(in awsctl.Instance) bool { return in.ID == id })
	if i < 0 {
		return awsctl.Instance{}, false
	}
	return all[i], true
}

type runInstancesResponse struct {
	answer
	xmlReservation
}

// launchBase reads what RunInstances and a launch template share: image,
// security groups, instance profile, key and user data, into a spec.
func launchBase(p params) (awsctl.LaunchSpec, *Fault) {
	spec := awsctl.LaunchSpec{
		ImageID:          p.get("ImageId"),
		SecurityGroupIDs: p.strings("SecurityGroupId"),
		InstanceProfile:  p.get("IamInstanceProfile.Arn"),
		KeyName:          p.get("KeyName"),
	}
	if spec.InstanceProfile == "" {
		spec.InstanceProfile = p.get("IamInstanceProfile.Name")
	}
	var err *Fault
	spec.UserData, err = p.userData("UserData")
	return spec, err
}

// resolveTemplate fills spec from the launch template p names: from the
// template's data if the server created it, else by reference (templates
// made elsewhere are taken to exist). Fields set in spec win, as explicit
// RunInstances parameters override a template.
func (s *Server) resolveTemplate(p params, spec *awsctl.LaunchSpec) *Fault {
	id, name, version := p.get("LaunchTemplateId"), p.get("LaunchTemplateName"), p.get("Version")
	if id == "" && name == "" {
		return nil
	}
	if t := s.findTemplate(id, name); t != nil {
		spec.ImageID = cmpOr(spec.ImageID, t.Spec.ImageID)
		if len(spec.SecurityGroupIDs) == 0 {
			spec.SecurityGroupIDs = t.Spec.SecurityGroupIDs
		}
		spec.InstanceProfile = cmpOr(spec.InstanceProfile, t.Spec.InstanceProfile)
		spec.KeyName = cmpOr(spec.KeyName, t.Spec.KeyName)
		spec.UserData = cmpOr(spec.UserData, t.Spec.UserData)
		return nil
	}
	if strings.HasPrefix(name, templatePrefix) {
		// Looks like one of ours, yet unknown: EC2 would not find it.
		return &Fault{Code: "InvalidLaunchTemplateName.NotFoundException",
			Message: fmt.Sprintf("The specified launch template, with template name %s, does not exist.", name)}
	}
	spec.LaunchTemplate = &awsctl.LaunchTemplate{ID: id, Name: name, Version: version}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// zoneOf returns the zone a launch goes to: its subnet's, else its
// placement's.
func (s *Server) zoneOf(subnet, zone string) (string, *Fault) {
	if subnet != "" {
		z, ok := s.subnets[subnet]
		if !ok {
			return "", &Fault{Code: "InvalidSubnetID.NotFound", Message: fmt.Sprintf("The subnet ID '%s' does not exist", subnet)}
		}
		return z, nil
	}
	if zone == "" {
		return "", missing("SubnetId or Placement.AvailabilityZone")
	}
	return zone, nil
}

func (s *Server) runInstances(ctx context.Context, p params) (response, *Fault) {
	minCount, fault := p.int("MinCount", 0)
	if fault != nil {
		return nil, fault
	}
	maxCount, fault := p.int("MaxCount", 0)
	if fault != nil {
		return nil, fault
	}
	if minCount < 1 || maxCount < minCount {
		return nil, invalidValue("MinCount %d and MaxCount %d must satisfy 1 <= MinCount <= MaxCount", minCount, maxCount)
	}
	spec, fault := launchBase(p)
	if fault != nil {
		return nil, fault
	}
	if fault := s.resolveTemplate(p.sub("LaunchTemplate"), &spec); fault != nil {
		return nil, fault
	}
	instanceType := p.get("InstanceType")
	if instanceType == "" {
		return nil, missing("InstanceType")
	}
	subnet := p.get("SubnetId")
	zone, fault := s.zoneOf(subnet, p.get("Placement.AvailabilityZone"))
	if fault != nil {
		return nil, fault
	}
	if subnet != "" {
		spec.Subnets = []awsctl.Subnet{{ID: subnet, Zone: zone}}
	}
	req := awsctl.LaunchRequest{
		Spec:      spec,
		Offerings: []awsctl.Offering{{InstanceType: instanceType, Zone: zone, Weight: 1}},
		Market:    awsctl.MarketOnDemand,
		Capacity:  maxCount,
		Tags:      p.tagSpecs("instance"),
		Token:     p.get("ClientToken"),
	}
	if m := p.sub("InstanceMarketOptions"); m.get("MarketType") == "spot" {
		req.Market = awsctl.MarketSpot
		if req.MaxPrice, fault = m.float("SpotOptions.MaxPrice", 0); fault != nil {
			return nil, fault
		}
	}
	insts, err := s.cloud.Launch(ctx, req)
	if len(insts) < minCount {
		if len(insts) > 0 {
			// EC2 launches nothing below MinCount.
			_, _ = s.cloud.Terminate(ctx, idsOf(insts))
		}
		if err == nil {
			err = &awsctl.APIError{Code: "InsufficientInstanceCapacity",
				Message: fmt.Sprintf("only %d of the minimum %d instances could be launched", len(insts), minCount)}
		}
		return nil, faultOf(err)
	}
	out := &runInstancesResponse{xmlReservation: xmlReservation{ReservationID: reservationID(insts[0].ID), OwnerID: ownerID}}
	for _, in := range insts {
		out.Instances = append(out.Instances, toXMLInstance(in))
	}
	return out, nil
}

func idsOf(insts []awsctl.Instance) []string {
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.ID
	}
	return ids
}

type xmlStateChange struct {
	InstanceID    string    `xml:"instanceId"`
	CurrentState  xmlState  `xml:"currentState"`
	PreviousState *xmlState `xml:"previousState,omitempty"`
}

type terminateInstancesResponse struct {
	answer
	Instances []xmlStateChange `xml:"instancesSet>item"`
}

// terminateInstances terminates the ids, or fails whole with
// InvalidInstanceID.NotFound if the cloud does not know one of them, as
// EC2 does. (A cloud that terminates the known ids anyway, as ec2sim does,
// has terminated them when the error is answered; a retry without the
// unknown ids accepts them again.)
//
// Instances under termination protection (SetTerminationProtection) fail
// the call with OperationNotPermitted, and with them every instance of the
// call in the same zone; the call's instances in other zones are
// terminated all the same, as the TerminateInstances API reference
// describes for a batch that spans zones.
func (s *Server) terminateInstances(ctx context.Context, p params) (response, *Fault) {
	ids := p.strings("InstanceId")
	if len(ids) == 0 {
		return nil, missing("InstanceId")
	}
	before := map[string]awsctl.State{}
	zones := map[string]string{}
	for _, id := range ids {
		if in, ok := s.instance(ctx, id); ok {
			before[id] = in.State
			zones[id] = in.Zone
		}
	}
	var protected []string
	blocked := map[string]bool{}
	for _, id := range ids {
		if s.protected[id] && !slices.Contains(protected, id) {
			protected = append(protected, id)
			blocked[zones[id]] = true
		}
	}
	if len(protected) > 0 {
		var free []string
		for _, id := range ids {
			if z, ok := zones[id]; ok && !blocked[z] {
				free = append(free, id)
			}
		}
		if len(free) > 0 {
			_, _ = s.cloud.Terminate(ctx, free)
		}
		return nil, notPermitted(protected)
	}
	accepted, err := s.cloud.Terminate(ctx, ids)
	if err != nil {
		return nil, faultOf(err)
	}
	out := &terminateInstancesResponse{}
	for _, id := range accepted {
		change := xmlStateChange{InstanceID: id, CurrentState: toXMLState(awsctl.StateShuttingDown)}
		if in, ok := s.instance(ctx, id); ok {
			change.CurrentState = toXMLState(in.State)
		}
		if st, ok := before[id]; ok {
			prev := toXMLState(st)
			change.PreviousState = &prev
		}
		out.Instances = append(out.Instances, change)
	}
	return out, nil
}

func notPermitted(ids []string) *Fault {
	return &Fault{Code: "OperationNotPermitted", Message: fmt.Sprintf(
		"The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
		strings.Join(ids, ", "))}
}

// SetTerminationProtection turns the termination protection of the
// instance id on or off, as ModifyInstanceAttribute's DisableApiTermination
// does: TerminateInstances then refuses it (see terminateInstances). EC2
// does not protect spot instances; neither does the server.
func (s *Server) SetTerminationProtection(id string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instance(context.Background(), id)
	switch {
	case !ok:
		return fmt.Errorf("ec2test: instance %s does not exist", id)
	case on && in.Market == awsctl.MarketSpot:
		return fmt.Errorf("ec2test: instance %s is a spot instance, which cannot be protected from termination", id)
	}
	if on {
		s.protected[id] = true
	} else {
		delete(s.protected, id)
	}
	return nil
}

// vcpuQuotaSetter is the optional ability of a cloud to change a vCPU
// quota, as ec2sim.Sim.SetVcpuQuota does.
type vcpuQuotaSetter interface {
	SetVcpuQuota(market awsctl.Market, bucket string, vcpus int)
}

// SetVcpuQuota sets the vCPU quota of one bucket of instance families
// ("standard", "g", "p", ... as ec2sim.QuotaBucket names them) in one
// market, or removes it if vcpus is negative. Launches beyond it fail as on
// EC2: RunInstances with VcpuLimitExceeded (MaxSpotInstanceCountExceeded
// for spot), CreateFleet with that code in the errors of the overrides
// concerned. The backing cloud enforces the quota: it must be an ec2sim.Sim
// or have its SetVcpuQuota method.
func (s *Server) SetVcpuQuota(market awsctl.Market, bucket string, vcpus int) error {
	q, ok := s.cloud.(vcpuQuotaSetter)
	if !ok {
		return fmt.Errorf("ec2test: the backing cloud (%T) has no vCPU quotas", s.cloud)
	}
	q.SetVcpuQuota(market, bucket, vcpus)
	return nil
}

type returnResponse struct {
	answer
	Return bool `xml:"return"`
}

func (s *Server) createTags(ctx context.Context, p params) (response, *Fault) {
	ids := p.strings("ResourceId")
	if len(ids) == 0 {
		return nil, missing("ResourceId")
	}
	tags := p.tags("Tag")
	if len(tags) == 0 {
		return nil, missing("Tag")
	}
	if err := s.cloud.Tag(ctx, ids, tags); err != nil {
		return nil, faultOf(err)
	}
	return &returnResponse{Return: true}, nil
}

// deleteTags removes the tag keys given. Tag values in the request are
// ignored: the server removes a key whatever its value.
func (s *Server) deleteTags(ctx context.Context, p params) (response, *Fault) {
	ids := p.strings("ResourceId")
	if len(ids) == 0 {
		return nil, missing("ResourceId")
	}
	var keys []string
	for _, t := range p.list("Tag") {
		keys = append(keys, t.get("Key"))
	}
	if len(keys) == 0 {
		// EC2 would delete every tag; the scaler never asks for that.
		return nil, invalidValue("DeleteTags without tag keys is not supported by this server")
	}
	if err := s.cloud.Untag(ctx, ids, keys); err != nil {
		return nil, faultOf(err)
	}
	return &returnResponse{Return: true}, nil
}

// launchFaults splits the error of a cloud launch into per-offering
// errors and the rest.
func launchFaults(err error) (perOffering []*awsctl.LaunchError, other []error) {
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		var le *awsctl.LaunchError
		if errors.As(err, &le) {
			perOffering = append(perOffering, le)
			return
		}
		other = append(other, err)
	}
	walk(err)
	return perOffering, other
}
