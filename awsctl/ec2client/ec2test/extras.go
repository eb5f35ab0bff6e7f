package ec2test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// LinuxUNIX is the product description of Linux spot prices and
// reservations, the default of the Add methods.
const LinuxUNIX = "Linux/UNIX"

type spotPriceEntry struct {
	awsctl.SpotPrice
	product string
}

// AddSpotPrices records spot prices of product ("" means LinuxUNIX) for
// DescribeSpotPriceHistory.
func (s *Server) AddSpotPrices(product string, prices ...awsctl.SpotPrice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	product = cmpOr(product, LinuxUNIX)
	for _, p := range prices {
		s.prices = append(s.prices, spotPriceEntry{p, product})
	}
}

type xmlSpotPrice struct {
	InstanceType       string `xml:"instanceType"`
	ProductDescription string `xml:"productDescription"`
	SpotPrice          string `xml:"spotPrice"`
	Timestamp          string `xml:"timestamp"`
	AvailabilityZone   string `xml:"availabilityZone"`
}

type describeSpotPriceHistoryResponse struct {
	answer
	Prices    []xmlSpotPrice `xml:"spotPriceHistorySet>item"`
	NextToken string         `xml:"nextToken"`
}

// describeSpotPriceHistory answers as EC2 does: with a StartTime, each
// pool's entries from then on plus the one in effect at StartTime, newest
// first.
func (s *Server) describeSpotPriceHistory(_ context.Context, p params) (response, *Fault) {
	prices, next, fault := paginate(s, p, 1, 1000, func() ([]spotPriceEntry, *Fault) {
		return s.matchingPrices(p)
	})
	if fault != nil {
		return nil, fault
	}
	out := &describeSpotPriceHistoryResponse{NextToken: next}
	for _, e := range prices {
		out.Prices = append(out.Prices, xmlSpotPrice{
			InstanceType: e.InstanceType, ProductDescription: e.product, AvailabilityZone: e.Zone,
			SpotPrice: strconv.FormatFloat(e.PricePerHour, 'f', 6, 64), Timestamp: formatTime(e.Time),
		})
	}
	return out, nil
}

func (s *Server) matchingPrices(p params) ([]spotPriceEntry, *Fault) {
	start, hasStart, fault := p.time("StartTime")
	if fault != nil {
		return nil, fault
	}
	end, hasEnd, fault := p.time("EndTime")
	if fault != nil {
		return nil, fault
	}
	types, products, zone := p.strings("InstanceType"), p.strings("ProductDescription"), p.get("AvailabilityZone")
	for _, f := range p.filters() {
		switch f.name {
		case "instance-type":
			types = append(types, f.values...)
		case "product-description":
			products = append(products, f.values...)
		case "availability-zone":
			if len(f.values) > 0 {
				zone = f.values[0]
			}
		default:
			return nil, invalidValue("The filter '%s' is invalid", f.name)
		}
	}
	type pool struct{ instanceType, zone, product string }
	inEffect := map[pool]spotPriceEntry{} // the latest entry at or before start
	var out []spotPriceEntry
	for _, e := range s.prices {
		switch {
		case len(types) > 0 && !slices.Contains(types, e.InstanceType),
			len(products) > 0 && !slices.Contains(products, e.product),
			zone != "" && zone != e.Zone,
			hasEnd && e.Time.After(end):
			continue
		}
		if hasStart && !e.Time.After(start) {
			k := pool{e.InstanceType, e.Zone, e.product}
			if old, ok := inEffect[k]; !ok || e.Time.After(old.Time) {
				inEffect[k] = e
			}
			continue
		}
		out = append(out, e)
	}
	out = slices.AppendSeq(out, maps.Values(inEffect))
	slices.SortStableFunc(out, func(a, b spotPriceEntry) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.InstanceType, b.InstanceType), cmp.Compare(a.Zone, b.Zone))
	})
	return out, nil
}

// ReservedInstances is a purchase of reserved instances.
type ReservedInstances struct {
	ID           string
	InstanceType string
	// Zone is set for a zonal reservation; empty for a regional one.
	Zone  string
	Count int
	Start time.Time
	End   time.Time
	// State is "active" when empty; EC2 also has "payment-pending",
	// "payment-failed", "retired" and "queued".
	State string
	// ProductDescription is LinuxUNIX when empty.
	ProductDescription string
}

// AddReservedInstances records reservations for DescribeReservedInstances.
func (s *Server) AddReservedInstances(ris ...ReservedInstances) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ri := range ris {
		ri.State = cmpOr(ri.State, "active")
		ri.ProductDescription = cmpOr(ri.ProductDescription, LinuxUNIX)
		if ri.ID == "" {
			s.seq++
			ri.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", s.seq, s.seq)
		}
		s.reserved = append(s.reserved, ri)
	}
}

func (ri ReservedInstances) scope() string {
	if ri.Zone == "" {
		return "Region"
	}
	return "Availability Zone"
}

type xmlReservedInstances struct {
	ID                 string `xml:"reservedInstancesId"`
	InstanceType       string `xml:"instanceType"`
	AvailabilityZone   string `xml:"availabilityZone,omitempty"`
	Start              string `xml:"start"`
	End                string `xml:"end"`
	Duration           int64  `xml:"duration"`
	InstanceCount      int    `xml:"instanceCount"`
	ProductDescription string `xml:"productDescription"`
	State              string `xml:"state"`
	Scope              string `xml:"scope"`
	InstanceTenancy    string `xml:"instanceTenancy"`
	CurrencyCode       string `xml:"currencyCode"`
	OfferingType       string `xml:"offeringType"`
	OfferingClass      string `xml:"offeringClass"`
}

type describeReservedInstancesResponse struct {
	answer
	Reserved []xmlReservedInstances `xml:"reservedInstancesSet>item"`
}

func (s *Server) describeReservedInstances(_ context.Context, p params) (response, *Fault) {
	ids := p.strings("ReservedInstancesId")
	filters := p.filters()
	out := &describeReservedInstancesResponse{}
	for _, ri := range s.reserved {
		if len(ids) > 0 && !slices.Contains(ids, ri.ID) {
			continue
		}
		ok := true
		for _, f := range filters {
			switch f.name {
			case "state":
				ok = ok && f.match(ri.State)
			case "product-description":
				ok = ok && f.match(ri.ProductDescription)
			case "instance-type":
				ok = ok && f.match(ri.InstanceType)
			case "availability-zone":
				ok = ok && f.match(ri.Zone)
			case "scope":
				ok = ok && f.match(ri.scope())
			default:
				return nil, invalidValue("The filter '%s' is invalid", f.name)
			}
		}
		if !ok {
			continue
		}
		out.Reserved = append(out.Reserved, xmlReservedInstances{
			ID: ri.ID, InstanceType: ri.InstanceType, AvailabilityZone: ri.Zone,
			Start: formatTime(ri.Start), End: formatTime(ri.End), Duration: int64(ri.End.Sub(ri.Start).Seconds()),
			InstanceCount: ri.Count, ProductDescription: ri.ProductDescription, State: ri.State, Scope: ri.scope(),
			InstanceTenancy: "default", CurrencyCode: "USD", OfferingType: "No Upfront", OfferingClass: "standard",
		})
	}
	return out, nil
}

// SpotRequest is a legacy spot instance request.
type SpotRequest struct {
	ID string
	// State is "open", "active", "closed", "cancelled" or "failed".
	State        string
	InstanceID   string
	InstanceType string
	Zone         string
	CreateTime   time.Time
	Tags         map[string]string
}

// AddSpotRequests records spot instance requests for
// DescribeSpotInstanceRequests and CancelSpotInstanceRequests.
func (s *Server) AddSpotRequests(reqs ...SpotRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range reqs {
		if r.ID == "" {
			s.seq++
			r.ID = fmt.Sprintf("sir-%08x", s.seq)
		}
		r.Tags = maps.Clone(r.Tags)
		s.spotReqs = append(s.spotReqs, &r)
	}
}

// SpotRequests returns the spot requests in their current state.
func (s *Server) SpotRequests() []SpotRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SpotRequest, len(s.spotReqs))
	for i, r := range s.spotReqs {
		out[i] = *r
	}
	return out
}

type xmlSpotRequest struct {
	ID                  string           `xml:"spotInstanceRequestId"`
	State               string           `xml:"state"`
	Type                string           `xml:"type"`
	InstanceID          string           `xml:"instanceId,omitempty"`
	CreateTime          string           `xml:"createTime,omitempty"`
	LaunchSpecification xmlLaunchSpec    `xml:"launchSpecification"`
	LaunchedZone        string           `xml:"launchedAvailabilityZone,omitempty"`
	ProductDescription  string           `xml:"productDescription"`
	Tags                []xmlTag         `xml:"tagSet>item"`
	Status              *xmlSpotReqState `xml:"status,omitempty"`
}

type xmlLaunchSpec struct {
	InstanceType string       `xml:"instanceType"`
	Placement    xmlPlacement `xml:"placement"`
}

type xmlSpotReqState struct {
	Code string `xml:"code"`
}

type describeSpotInstanceRequestsResponse struct {
	answer
	Requests  []xmlSpotRequest `xml:"spotInstanceRequestSet>item"`
	NextToken string           `xml:"nextToken,omitempty"`
}

func (s *Server) describeSpotInstanceRequests(_ context.Context, p params) (response, *Fault) {
	reqs, next, fault := paginate(s, p, 5, 1000, func() ([]SpotRequest, *Fault) {
		ids, filters := p.strings("SpotInstanceRequestId"), p.filters()
		var out []SpotRequest
		for _, r := range s.spotReqs {
			if len(ids) > 0 && !slices.Contains(ids, r.ID) {
				continue
			}
			ok := true
			for _, f := range filters {
				switch {
				case strings.HasPrefix(f.name, "tag:"):
					v, has := r.Tags[strings.TrimPrefix(f.name, "tag:")]
					ok = ok && has && f.match(v)
				case f.name == "state":
					ok = ok && f.match(r.State)
				case f.name == "spot-instance-request-id":
					ok = ok && f.match(r.ID)
				case f.name == "instance-id":
					ok = ok && f.match(r.InstanceID)
				default:
					return nil, invalidValue("The filter '%s' is invalid", f.name)
				}
			}
			if ok {
				out = append(out, *r)
			}
		}
		return out, nil
	})
	if fault != nil {
		return nil, fault
	}
	out := &describeSpotInstanceRequestsResponse{NextToken: next}
	for _, r := range reqs {
		x := xmlSpotRequest{
			ID: r.ID, State: r.State, Type: "one-time", InstanceID: r.InstanceID, CreateTime: formatTime(r.CreateTime),
			LaunchSpecification: xmlLaunchSpec{InstanceType: r.InstanceType, Placement: xmlPlacement{r.Zone}},
			ProductDescription:  LinuxUNIX, Tags: toXMLTags(r.Tags),
		}
		if r.InstanceID != "" {
			x.LaunchedZone = r.Zone
		}
		out.Requests = append(out.Requests, x)
	}
	return out, nil
}

type xmlCancelledRequest struct {
	ID    string `xml:"spotInstanceRequestId"`
	State string `xml:"state"`
}

type cancelSpotInstanceRequestsResponse struct {
	answer
	Requests []xmlCancelledRequest `xml:"spotInstanceRequestSet>item"`
}

func (s *Server) cancelSpotInstanceRequests(_ context.Context, p params) (response, *Fault) {
	ids := p.strings("SpotInstanceRequestId")
	if len(ids) == 0 {
		return nil, missing("SpotInstanceRequestId")
	}
	var found []*SpotRequest
	for _, id := range ids {
		i := slices.IndexFunc(s.spotReqs, func(r *SpotRequest) bool { return r.ID == id })
		if i < 0 {
			return nil, &Fault{Code: "InvalidSpotInstanceRequestID.NotFound",
				Message: fmt.Sprintf("The spot instance request ID '%s' does not exist", id)}
		}
		found = append(found, s.spotReqs[i])
	}
	out := &cancelSpotInstanceRequestsResponse{}
	for _, r := range found {
		if r.State == "open" || r.State == "active" {
			r.State = "cancelled"
		}
		out.Requests = append(out.Requests, xmlCancelledRequest{ID: r.ID, State: r.State})
	}
	return out, nil
}
