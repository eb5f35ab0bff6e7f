package ec2test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// templatePrefix starts the names of the launch templates package
// ec2client creates; a reference to an unknown template of that name is an
// error, where other unknown templates are taken to exist elsewhere.
const templatePrefix = "ec2autoscale-"

// LaunchTemplate is a launch template created through the server.
type LaunchTemplate struct {
	ID   string
	Name string
	// Spec holds the template's image, security groups, instance profile,
	// key and user data (decoded).
	Spec awsctl.LaunchSpec
	Tags map[string]string

	clientToken string
}

// LaunchTemplates returns the launch templates created through the server,
// in creation order.
func (s *Server) LaunchTemplates() []LaunchTemplate {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LaunchTemplate
	for _, t := range s.templates {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b LaunchTemplate) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (s *Server) findTemplate(id, name string) *LaunchTemplate {
	if name != "" {
		return s.templates[name]
	}
	for _, t := range s.templates {
		if t.ID == id {
			return t
		}
	}
	return nil
}

type xmlLaunchTemplate struct {
	ID             string   `xml:"launchTemplateId"`
	Name           string   `xml:"launchTemplateName"`
	DefaultVersion int      `xml:"defaultVersionNumber"`
	LatestVersion  int      `xml:"latestVersionNumber"`
	CreateTime     string   `xml:"createTime"`
	CreatedBy      string   `xml:"createdBy"`
	Tags           []xmlTag `xml:"tagSet>item"`
}

type createLaunchTemplateResponse struct {
	answer
	Template xmlLaunchTemplate `xml:"launchTemplate"`
}

func (s *Server) createLaunchTemplate(_ context.Context, p params) (response, *Fault) {
	name := p.get("LaunchTemplateName")
	if name == "" {
		return nil, missing("LaunchTemplateName")
	}
	token := p.get("ClientToken")
	t, exists := s.templates[name]
	switch {
	case exists && token != "" && token == t.clientToken:
		// A retry of the call that created it.
	case exists:
		return nil, &Fault{Code: "InvalidLaunchTemplateName.AlreadyExistsException",
			Message: fmt.Sprintf("Launch template name already in use: %s", name)}
	default:
		spec, fault := launchBase(p.sub("LaunchTemplateData"))
		if fault != nil {
			return nil, fault
		}
		s.seq++
		t = &LaunchTemplate{
			ID: fmt.Sprintf("lt-%017x", s.seq), Name: name, Spec: spec,
			Tags: p.tagSpecs("launch-template"), clientToken: token,
		}
		s.templates[name] = t
	}
	return &createLaunchTemplateResponse{Template: xmlLaunchTemplate{
		ID: t.ID, Name: t.Name, DefaultVersion: 1, LatestVersion: 1,
		CreateTime: formatTime(s.now()), CreatedBy: "arn:aws:iam::" + ownerID + ":user/ec2test",
		Tags: toXMLTags(t.Tags),
	}}, nil
}

type xmlTemplateSpec struct {
	ID      string `xml:"launchTemplateId,omitempty"`
	Name    string `xml:"launchTemplateName,omitempty"`
	Version string `xml:"version,omitempty"`
}

type xmlOverrides struct {
	InstanceType     string  `xml:"instanceType"`
	SubnetID         string  `xml:"subnetId,omitempty"`
	AvailabilityZone string  `xml:"availabilityZone,omitempty"`
	WeightedCapacity float64 `xml:"weightedCapacity"`
	Priority         float64 `xml:"priority"`
}

type xmlTemplateAndOverrides struct {
	Spec      xmlTemplateSpec `xml:"launchTemplateSpecification"`
	Overrides *xmlOverrides   `xml:"overrides,omitempty"`
}

type xmlFleetInstance struct {
	TemplateAndOverrides xmlTemplateAndOverrides `xml:"launchTemplateAndOverrides"`
	Lifecycle            string                  `xml:"lifecycle"`
	InstanceIDs          []string                `xml:"instanceIds>item"`
	InstanceType         string                  `xml:"instanceType"`
}

type xmlFleetError struct {
	TemplateAndOverrides xmlTemplateAndOverrides `xml:"launchTemplateAndOverrides"`
	Lifecycle            string                  `xml:"lifecycle"`
	Code                 string                  `xml:"errorCode"`
	Message              string                  `xml:"errorMessage"`
}

type createFleetResponse struct {
	answer
	FleetID   string             `xml:"fleetId"`
	Errors    []xmlFleetError    `xml:"errorSet>item"`
	Instances []xmlFleetInstance `xml:"fleetInstanceSet>item"`
}

// fleetOverride is one override of a CreateFleet request, resolved.
type fleetOverride struct {
	spec     xmlTemplateSpec
	xml      xmlOverrides
	offering awsctl.Offering
}

// createFleet serves instant fleets only. The fleet's overrides become the
// offerings of one launch of the backing cloud, in request order (or
// priority order for the prioritized strategies); the allocation strategy
// is otherwise not simulated. Offerings the cloud could not fill are
// reported in errorSet, as EC2 does, instead of failing the call.
func (s *Server) createFleet(ctx context.Context, p params) (response, *Fault) {
	if t := p.get("Type"); t != "instant" {
		return nil, invalidValue("fleet type %q is not served; this server makes instant fleets only", t)
	}
	target := p.sub("TargetCapacitySpecification")
	capacity, fault := target.int("TotalTargetCapacity", 0)
	if fault != nil {
		return nil, fault
	}
	if capacity < 1 {
		return nil, invalidValue("TotalTargetCapacity must be at least 1")
	}
	market := awsctl.MarketOnDemand
	switch target.get("DefaultTargetCapacityType") {
	case "spot":
		market = awsctl.MarketSpot
	case "on-demand":
	default:
		return nil, missing("TargetCapacitySpecification.DefaultTargetCapacityType")
	}
	var overrides []fleetOverride
	spec := awsctl.LaunchSpec{}
	maxPrice := 0.0
	for _, cfg := range p.list("LaunchTemplateConfigs") {
		ltp := cfg.sub("LaunchTemplateSpecification")
		ref := xmlTemplateSpec{ID: ltp.get("LaunchTemplateId"), Name: ltp.get("LaunchTemplateName"), Version: ltp.get("Version")}
		if ref.ID == "" && ref.Name == "" {
			return nil, missing("LaunchTemplateConfigs.LaunchTemplateSpecification")
		}
		if fault := s.resolveTemplate(ltp, &spec); fault != nil {
			return nil, fault
		}
		for _, o := range cfg.list("Overrides") {
			fo, fault := s.override(o, ref)
			if fault != nil {
				return nil, fault
			}
			if img := o.get("ImageId"); img != "" {
				spec.ImageID = img
			}
			if price, fault := o.float("MaxPrice", 0); fault != nil {
				return nil, fault
			} else if price > 0 {
				maxPrice = max(maxPrice, price*fo.xml.WeightedCapacity)
			}
			if fo.xml.SubnetID != "" && !slices.ContainsFunc(spec.Subnets, func(sn awsctl.Subnet) bool { return sn.ID == fo.xml.SubnetID }) {
				spec.Subnets = append(spec.Subnets, awsctl.Subnet{ID: fo.xml.SubnetID, Zone: fo.offering.Zone})
			}
			overrides = append(overrides, fo)
		}
	}
	if len(overrides) == 0 {
		return nil, missing("LaunchTemplateConfigs.Overrides")
	}
	strategy := p.get("OnDemandOptions.AllocationStrategy")
	if market == awsctl.MarketSpot {
		strategy = p.get("SpotOptions.AllocationStrategy")
	}
	if strategy == "prioritized" || strategy == "capacity-optimized-prioritized" {
		slices.SortStableFunc(overrides, func(a, b fleetOverride) int { return cmp.Compare(a.xml.Priority, b.xml.Priority) })
	}
	req := awsctl.LaunchRequest{
		Spec:     spec,
		Market:   market,
		Capacity: capacity,
		Tags:     p.tagSpecs("instance"),
		Token:    p.get("ClientToken"),
		MaxPrice: maxPrice,
	}
	for _, o := range overrides {
		req.Offerings = append(req.Offerings, o.offering)
	}
	insts, err := s.cloud.Launch(ctx, req)
	perOffering, other := launchFaults(err)
	if len(insts) == 0 && len(perOffering) == 0 && len(other) > 0 {
		// Nothing about capacity: the request itself failed.
		return nil, faultOf(other[0])
	}

	out := &createFleetResponse{FleetID: s.fleetID(req.Token)}
	lifecycle := string(market)
	find := func(instanceType, zone string) *fleetOverride {
		for i := range overrides {
			if overrides[i].offering.InstanceType == instanceType && overrides[i].offering.Zone == zone {
				return &overrides[i]
			}
		}
		return nil
	}
	for _, in := range insts {
		o := find(in.Type, in.Zone)
		if o == nil {
			return nil, &Fault{Code: "InternalError", Message: fmt.Sprintf("the cloud launched %s in %s, which no override asked for", in.Type, in.Zone)}
		}
		i := slices.IndexFunc(out.Instances, func(fi xmlFleetInstance) bool {
			return fi.InstanceType == in.Type && fi.TemplateAndOverrides.Overrides.AvailabilityZone == o.xml.AvailabilityZone &&
				fi.TemplateAndOverrides.Overrides.SubnetID == o.xml.SubnetID
		})
		if i < 0 {
			ov := o.xml
			out.Instances = append(out.Instances, xmlFleetInstance{
				TemplateAndOverrides: xmlTemplateAndOverrides{Spec: o.spec, Overrides: &ov},
				Lifecycle:            lifecycle, InstanceType: in.Type,
			})
			i = len(out.Instances) - 1
		}
		out.Instances[i].InstanceIDs = append(out.Instances[i].InstanceIDs, in.ID)
	}
	for _, le := range perOffering {
		f := faultOf(le.Err)
		fe := xmlFleetError{Lifecycle: lifecycle, Code: f.Code, Message: f.Message}
		if o := find(le.Offering.InstanceType, le.Offering.Zone); o != nil {
			ov := o.xml
			fe.TemplateAndOverrides = xmlTemplateAndOverrides{Spec: o.spec, Overrides: &ov}
		}
		out.Errors = append(out.Errors, fe)
	}
	for _, err := range other {
		f := faultOf(err)
		out.Errors = append(out.Errors, xmlFleetError{Lifecycle: lifecycle, Code: f.Code, Message: f.Message,
			TemplateAndOverrides: xmlTemplateAndOverrides{Spec: overrides[0].spec}})
	}
	return out, nil
}

// override reads one Overrides member.
func (s *Server) override(o params, ref xmlTemplateSpec) (fleetOverride, *Fault) {
	instanceType := o.get("InstanceType")
	if instanceType == "" {
		return fleetOverride{}, invalidValue("this server needs an InstanceType in every override")
	}
	subnet := o.get("SubnetId")
	zone, fault := s.zoneOf(subnet, o.get("AvailabilityZone"))
	if fault != nil {
		return fleetOverride{}, fault
	}
	weight, fault := o.float("WeightedCapacity", 1)
	if fault != nil {
		return fleetOverride{}, fault
	}
	if weight <= 0 {
		return fleetOverride{}, invalidValue("WeightedCapacity must be positive, got %v", weight)
	}
	priority, fault := o.float("Priority", 0)
	if fault != nil {
		return fleetOverride{}, fault
	}
	xo := xmlOverrides{InstanceType: instanceType, SubnetID: subnet, WeightedCapacity: weight, Priority: priority}
	if subnet == "" {
		xo.AvailabilityZone = zone
	}
	return fleetOverride{
		spec: ref, xml: xo,
		offering: awsctl.Offering{InstanceType: instanceType, Zone: zone, Weight: max(1, int(math.Ceil(weight)))},
	}, nil
}

// fleetID returns the id of the fleet of a launch: the same for a retry
// with the same client token.
func (s *Server) fleetID(token string) string {
	if id, ok := s.fleets[token]; ok && token != "" {
		return id
	}
	s.seq++
	id := fmt.Sprintf("fleet-%08x-0000-4000-8000-%012x", s.seq, s.seq)
	if token != "" {
		s.fleets[token] = id
	}
	return id
}
