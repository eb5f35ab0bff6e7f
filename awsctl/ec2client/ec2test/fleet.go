package ec2test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
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
	request     string // the creating call's parameters, see fingerprint
	// deleted marks a template deleted with DeleteLaunchTemplate: gone for
	// every lookup, but its id and client token are still remembered.
	deleted bool
}

// LaunchTemplates returns the launch templates created through the server
// and not deleted, in creation order.
func (s *Server) LaunchTemplates() []LaunchTemplate {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LaunchTemplate
	for _, t := range s.templates {
		if !t.deleted {
			out = append(out, *t)
		}
	}
	slices.SortFunc(out, func(a, b LaunchTemplate) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// DeleteLaunchTemplate deletes the launch template named name, as someone
// else's DeleteLaunchTemplate call would, and reports whether it existed.
// Later launches that name it, or give its id, fail with
// InvalidLaunchTemplateName.NotFoundException or
// InvalidLaunchTemplateId.NotFound; CreateLaunchTemplate may create it
// again, under a new client token (the one that created it still stands
// for that first answer).
func (s *Server) DeleteLaunchTemplate(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.templates[name]
	if !ok || t.deleted {
		return false
	}
	t.deleted = true
	return true
}

// findTemplate returns the live template of that name, or else of that id.
func (s *Server) findTemplate(id, name string) *LaunchTemplate {
	if name != "" {
		if t := s.templates[name]; t != nil && !t.deleted {
			return t
		}
		return nil
	}
	for _, t := range s.templates {
		if t.ID == id && !t.deleted {
			return t
		}
	}
	return nil
}

// deletedTemplate answers a launch that names a template deleted with
// DeleteLaunchTemplate as EC2 answers one naming a template that does not
// exist; nil if ref is not such a template.
func (s *Server) deletedTemplate(ref xmlTemplateSpec) *Fault {
	if s.findTemplate(ref.ID, ref.Name) != nil {
		return nil
	}
	for _, t := range s.templates {
		switch {
		case !t.deleted:
		case ref.Name != "" && t.Name == ref.Name:
			return templateNameNotFound(ref.Name)
		case ref.Name == "" && t.ID == ref.ID:
			return &Fault{Code: "InvalidLaunchTemplateId.NotFound",
				Message: fmt.Sprintf("The specified launch template, with template ID %s, does not exist.", ref.ID)}
		}
	}
	return nil
}

func templateNameNotFound(name string) *Fault {
	return &Fault{Code: "InvalidLaunchTemplateName.NotFoundException",
		Message: fmt.Sprintf("The specified launch template, with template name %s, does not exist.", name)}
}

// fingerprint is what a repeated call must match for its client token to
// replay the first answer: every parameter but the token itself.
func fingerprint(p params) string {
	var b strings.Builder
	for _, k := range p.keys {
		if k == "ClientToken" {
			continue
		}
		for _, v := range p.values[k] {
			fmt.Fprintf(&b, "%s=%q\n", k, v)
		}
	}
	return b.String()
}

// tokenMismatch is EC2's answer to a client token reused with other
// parameters.
func tokenMismatch() *Fault {
	return &Fault{Code: "IdempotentParameterMismatch",
		Message: "The client token of this request was used before with other parameters."}
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
	token, request := p.get("ClientToken"), fingerprint(p)
	var t *LaunchTemplate
	if token != "" {
		for _, old := range s.templates {
			if old.clientToken == token {
				t = old
			}
		}
	}
	existing := s.templates[name]
	switch {
	case t != nil && t.request != request:
		return nil, tokenMismatch()
	case t != nil:
		// A retry of the call that created t: its answer again, with
		// nothing created, even if t was deleted since.
	case existing != nil && !existing.deleted:
		return nil, &Fault{Code: "InvalidLaunchTemplateName.AlreadyExistsException",
			Message: fmt.Sprintf("Launch template name already in use: %s", name)}
	default:
		spec, fault := launchBase(p.sub("LaunchTemplateData"))
		if fault != nil {
			return nil, fault
		}
		if existing != nil {
			// Deleted: kept aside for its id and client token. (A
			// template name cannot hold a space.)
			s.templates["deleted "+existing.ID] = existing
		}
		s.seq++
		t = &LaunchTemplate{
			ID: fmt.Sprintf("lt-%017x", s.seq), Name: name, Spec: spec,
			Tags: p.tagSpecs("launch-template"), clientToken: token, request: request,
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
	InstanceType     string   `xml:"instanceType"`
	SubnetID         string   `xml:"subnetId,omitempty"`
	AvailabilityZone string   `xml:"availabilityZone,omitempty"`
	WeightedCapacity float64  `xml:"weightedCapacity"`
	Priority         *float64 `xml:"priority,omitempty"`
	MaxPrice         string   `xml:"maxPrice,omitempty"`
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
	priority float64 // +Inf when the override sets none: the lowest
}

// minSpotMaxPrice is the least MaxPrice EC2 accepts for a spot launch (per
// unit-hour in a fleet override); a lower one fails the whole call with
// InvalidParameterValue (EC2 API reference, FleetLaunchTemplateOverridesRequest
// and SpotMarketOptions, MaxPrice).
const minSpotMaxPrice = 0.001

// createFleet serves instant fleets only. The overrides, ordered by the
// allocation strategy (see allocationOrder), become the offerings of one
// launch of the backing cloud, which fills them in that order and skips
// those without capacity. Offerings the cloud could not fill are reported
// in errorSet, as EC2 does, instead of failing the call.
//
// A ClientToken makes the call idempotent as the EC2 idempotency guide
// describes: once a call with a token has been answered, a call with the
// same token and the same parameters gets that answer again (the same
// fleet, instances and errors, even if nothing launched) without launching
// anything, and one with other parameters fails with
// IdempotentParameterMismatch. The guide promises this for calls that
// completed, and nothing for calls answered with an error, which it advises
// repeating after a server error: here, a call the server refuses (a
// template not found, a price below the minimum) leaves its token unused,
// though the backing cloud may keep the token of a launch it processed (as
// ec2sim does). Tokens are kept for the server's lifetime; the guide states
// no lifetime (older editions gave RunInstances tokens at least 24 hours
// after the instance's termination).
func (s *Server) createFleet(ctx context.Context, p params) (response, *Fault) {
	token := p.get("ClientToken")
	if rec, ok := s.fleetRecord(token); ok {
		if rec.Request != fingerprint(p) {
			return nil, tokenMismatch()
		}
		return &rec.Answer, nil
	}
	out, fault := s.newFleet(ctx, p)
	if fault != nil {
		return nil, fault
	}
	s.recordFleet(token, fleetRecord{Request: fingerprint(p), Answer: *out})
	return out, nil
}

func (s *Server) newFleet(ctx context.Context, p params) (*createFleetResponse, *Fault) {
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
		switch {
		case ref.ID == "" && ref.Name == "":
			return nil, missing("LaunchTemplateConfigs.LaunchTemplateSpecification")
		case ref.ID != "" && ref.Name != "":
			// FleetLaunchTemplateSpecificationRequest: the id or the
			// name, not both.
			return nil, &Fault{Code: "InvalidParameterCombination",
				Message: "A launch template can be specified by its ID or by its name, but not both."}
		}
		if fault := s.deletedTemplate(ref); fault != nil {
			return nil, fault
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
			if o.get("MaxPrice") != "" {
				price, fault := o.float("MaxPrice", 0)
				if fault != nil {
					return nil, fault
				}
				if price < minSpotMaxPrice {
					return nil, invalidValue("MaxPrice %s of %s in %s is below the minimum of $%v",
						o.get("MaxPrice"), fo.offering.InstanceType, fo.offering.Zone, minSpotMaxPrice)
				}
				fo.xml.MaxPrice = o.get("MaxPrice")
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
	overrides, fault = s.allocationOrder(ctx, p, market, capacity, overrides)
	if fault != nil {
		return nil, fault
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

	s.seq++
	out := &createFleetResponse{FleetID: fmt.Sprintf("fleet-%08x-0000-4000-8000-%012x", s.seq, s.seq)}
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

// allocationOrder orders the overrides as the fleet's allocation strategy
// does, per the EC2 API reference (OnDemandOptionsRequest,
// SpotOptionsRequest, FleetLaunchTemplateOverridesRequest):
//
//   - lowest-price, the default of both markets, and the spot
//     price-capacity-optimized: cheapest first, whatever the priorities;
//     the price is per unit-hour (price over WeightedCapacity) unless every
//     weight reaches the target capacity, when one instance is launched and
//     the price per instance-hour counts. On-demand prices are the us-east-1
//     list prices of ec2sim.BuiltinOnDemandPrice; spot prices those of the
//     backing cloud, if it is an awsctl.SpotPriceSource that knows the
//     pool, else the latest the server holds (AddSpotPrices). Overrides
//     without a known price come last.
//   - prioritized (on-demand) and capacity-optimized-prioritized (spot):
//     by Priority, lowest number first; an override without one comes
//     last. EC2 honours spot priorities on a best-effort basis after
//     capacity; the backing cloud skipping offerings without capacity is
//     the simulation of that.
//   - capacity-optimized and diversified (spot): request order; the
//     backing cloud's capacity decides.
//
// Ties keep request order.
func (s *Server) allocationOrder(ctx context.Context, p params, market awsctl.Market, capacity int, overrides []fleetOverride) ([]fleetOverride, *Fault) {
	strategy := p.get("OnDemandOptions.AllocationStrategy")
	valid := []string{"lowest-price", "prioritized"}
	if market == awsctl.MarketSpot {
		strategy = p.get("SpotOptions.AllocationStrategy")
		valid = []string{"lowest-price", "diversified", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized"}
	}
	strategy = cmpOr(strategy, "lowest-price")
	if !slices.Contains(valid, strategy) {
		return nil, invalidValue("%q is not a valid %s allocation strategy", strategy, market)
	}
	out := slices.Clone(overrides)
	switch strategy {
	case "prioritized", "capacity-optimized-prioritized":
		slices.SortStableFunc(out, func(a, b fleetOverride) int { return cmp.Compare(a.priority, b.priority) })
	case "lowest-price", "price-capacity-optimized":
		perInstance := !slices.ContainsFunc(out, func(o fleetOverride) bool { return o.xml.WeightedCapacity < float64(capacity) })
		price := s.priceOf(ctx, market, out)
		key := func(o fleetOverride) float64 {
			p := price(o.offering)
			if !perInstance {
				p /= o.xml.WeightedCapacity
			}
			return p
		}
		slices.SortStableFunc(out, func(a, b fleetOverride) int { return cmp.Compare(key(a), key(b)) })
	}
	return out, nil
}

// priceOf returns the hourly price of an offering of the overrides in
// market, +Inf when unknown (see allocationOrder).
func (s *Server) priceOf(ctx context.Context, market awsctl.Market, overrides []fleetOverride) func(awsctl.Offering) float64 {
	if market == awsctl.MarketOnDemand {
		return func(o awsctl.Offering) float64 {
			if p, ok := ec2sim.BuiltinOnDemandPrice(o.InstanceType); ok {
				return p
			}
			return math.Inf(1)
		}
	}
	type pool struct{ instanceType, zone string }
	known := map[pool]awsctl.SpotPrice{}
	note := func(sp awsctl.SpotPrice) {
		k := pool{sp.InstanceType, sp.Zone}
		if old, ok := known[k]; !ok || sp.Time.After(old.Time) {
			known[k] = sp
		}
	}
	for _, e := range s.prices {
		if e.product == LinuxUNIX {
			note(e.SpotPrice)
		}
	}
	if src, ok := s.cloud.(awsctl.SpotPriceSource); ok {
		var types []string
		for _, o := range overrides {
			if !slices.Contains(types, o.offering.InstanceType) {
				types = append(types, o.offering.InstanceType)
			}
		}
		if prices, err := src.SpotPrices(ctx, types); err == nil {
			for _, sp := range prices {
				known[pool{sp.InstanceType, sp.Zone}] = sp // the cloud's market wins
			}
		}
	}
	return func(o awsctl.Offering) float64 {
		if sp, ok := known[pool{o.InstanceType, o.Zone}]; ok {
			return sp.PricePerHour
		}
		return math.Inf(1)
	}
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
	xo := xmlOverrides{InstanceType: instanceType, SubnetID: subnet, WeightedCapacity: weight}
	priority := math.Inf(1)
	if o.get("Priority") != "" {
		priority, fault = o.float("Priority", 0)
		if fault != nil {
			return fleetOverride{}, fault
		}
		if priority < 0 {
			return fleetOverride{}, invalidValue("Priority must not be negative, got %v", priority)
		}
		xo.Priority = &priority
	}
	if subnet == "" {
		xo.AvailabilityZone = zone
	}
	return fleetOverride{
		spec: ref, xml: xo, priority: priority,
		offering: awsctl.Offering{InstanceType: instanceType, Zone: zone, Weight: max(1, int(math.Ceil(weight)))},
	}, nil
}

// fleetRecord is what a client token stands for once a CreateFleet call
// with it was answered.
type fleetRecord struct {
	Request string // fingerprint of the call
	Answer  createFleetResponse
}

// The server keeps fleet records in its fleets map, token to the record
// encoded, so that they need no field of their own.

func (s *Server) fleetRecord(token string) (fleetRecord, bool) {
	var rec fleetRecord
	enc, ok := s.fleets[token]
	if token == "" || !ok {
		return rec, false
	}
	if err := json.Unmarshal([]byte(enc), &rec); err != nil {
		panic(fmt.Sprintf("ec2test: unreadable fleet record: %v", err))
	}
	return rec, true
}

func (s *Server) recordFleet(token string, rec fleetRecord) {
	if token == "" {
		return
	}
	enc, err := json.Marshal(rec)
	if err != nil {
		panic(fmt.Sprintf("ec2test: fleet record: %v", err))
	}
	s.fleets[token] = string(enc)
}
