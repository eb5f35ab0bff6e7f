package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// maxTokenLen is EC2's limit on a client token.
const maxTokenLen = 64

// launchRecord remembers a launch made with a token, so that a retry gets
// the same answer. Records are kept for the sim's lifetime.
//
// Which requests consume their token follows AWS's "Ensuring idempotency in
// Amazon EC2 API requests" (EC2 developer guide): a client token names one
// request, which completes at most once; a retry with the same token and the
// same parameters gets the original request's result back (with the
// instances' current state) and does nothing more, and a retry with the same
// token but other parameters fails with IdempotentParameterMismatch. The
// guide recommends retrying with the same token only after a server error or
// a lost response; a client error (400) means the request will not succeed
// as sent. Our reading, for the sim:
//   - A request rejected by validation (a missing or malformed parameter,
//     too many tags) was never processed: it consumes no token, and sending
//     it again gets the same validation error anyway.
//   - A fault injected without effect (throttling, a server error before
//     the work) was never processed either: the token stays free, which is
//     exactly the case the guide says to retry with the same token.
//   - A request that was processed consumes its token, whatever came of it:
//     a full launch, a partial one, or none at all because no offering had
//     capacity (InsufficientInstanceCapacity, SpotMaxPriceTooLow) or the
//     account's instance limit was reached. A retry with the same token and
//     parameters gets that same answer again, the error included, and
//     launches nothing, even if capacity has come back since: a caller that
//     wants a new attempt must send a new token.
type launchRecord struct {
	req       awsctl.LaunchRequest // a deep copy
	instances []*instance
	err       error // what the first call reported as not launched
}

// Launch starts instances for req, walking req.Offerings in order and
// adding instances of each until their weights reach req.Capacity. An
// offering at its SetCapacity limit, inside a window of AddCapacityOutage
// or, in the spot market, without a known spot price yields an
// *awsctl.LaunchError wrapping an InsufficientInstanceCapacity error, and
// the walk moves on; so does a spot offering whose price is above the
// request's maximum (SpotMaxPriceTooLow, also of kind
// awsctl.ErrInsufficientCapacity). Reaching
// Config.MaxInstances stops it with an InstanceLimitExceeded error
// (awsctl.ErrLimitExceeded). The error is nil when the capacity was met,
// else the join of those errors, returned alongside whatever was launched.
//
// Invalid requests fail whole with an *awsctl.APIError of kind
// awsctl.ErrInvalidRequest naming the problem, and leave their Token
// unused. Any other request consumes its Token, even one that launched
// nothing: a later request with the same Token launches nothing and returns
// the first call's instances in their current state (and its error), or
// fails with IdempotentParameterMismatch (kind awsctl.ErrTokenMismatch) if
// its parameters differ from the first's. The instances' tags are Spec.Tags
// overlaid with req.Tags.
//
// Without Config.SpotPrices, spot launches succeed like on-demand ones and
// MaxPrice is validated but not applied. With them, see [Config.SpotPrices].
func (s *Sim) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: %s: %w", OpLaunch, err)
	}
	now := s.begin()
	defer s.mu.Unlock()
	s.calls[OpLaunch]++
	f := s.fault(OpLaunch)
	if f.err != nil && !f.afterEffect {
		return nil, f.err
	}
	out, err := s.launch(now, req)
	if f.err != nil {
		return nil, f.err
	}
	return out, err
}

func (s *Sim) launch(now time.Time, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	if err := s.validateLaunch(req); err != nil {
		return nil, err
	}
	if rec, ok := s.tokens[req.Token]; ok && req.Token != "" {
		if !sameLaunch(rec.req, req) {
			return nil, &awsctl.APIError{Op: OpLaunch, Code: "IdempotentParameterMismatch", Kind: awsctl.ErrTokenMismatch,
				Message: fmt.Sprintf("token %q was already used with different parameters", req.Token)}
		}
		return snapshots(rec.instances, now), rec.err
	}

	tags := mergedTags(req.Spec.Tags, req.Tags)
	remaining := req.Capacity
	var launched []*instance
	var failed []error
fill:
	for _, off := range req.Offerings {
		for remaining > 0 {
			if s.cfg.MaxInstances > 0 && s.live >= s.cfg.MaxInstances {
				failed = append(failed, &awsctl.APIError{Op: OpLaunch, Code: "InstanceLimitExceeded", Kind: awsctl.ErrLimitExceeded,
					Message: fmt.Sprintf("the account's limit of %d instances is reached", s.cfg.MaxInstances)})
				break fill
			}
			if err := s.offeringError(now, req, off); err != nil {
				failed = append(failed, &awsctl.LaunchError{Offering: off, Market: req.Market, Err: err})
				break
			}
			launched = append(launched, s.start(now, req.Market, off, tags))
			remaining -= off.Weight
		}
	}
	var err error
	if remaining > 0 {
		err = errors.Join(failed...)
	}
	if req.Token != "" {
		// The request was processed: its token is consumed, even if nothing
		// launched (see launchRecord).
		s.tokens[req.Token] = &launchRecord{req: cloneLaunch(req), instances: launched, err: err}
	}
	s.log.Debug("ec2sim: launch", "market", req.Market, "capacity", req.Capacity, "launched", len(launched), "err", err)
	return snapshots(launched, now), err
}

// offeringError reports why one more instance of off cannot be launched
// for req at now, or nil if it can. Every per-offering refusal belongs here.
func (s *Sim) offeringError(now time.Time, req awsctl.LaunchRequest, off awsctl.Offering) error {
	market := req.Market
	key := offeringKey{market: market, instanceType: off.InstanceType, zone: off.Zone}
	noCapacity := func(why string) error {
		return &awsctl.APIError{Op: OpLaunch, Code: "InsufficientInstanceCapacity", Kind: awsctl.ErrInsufficientCapacity,
			Message: fmt.Sprintf("no %s capacity for %s in %s%s", market, off.InstanceType, off.Zone, why)}
	}
	if s.inOutage(key, now) {
		return noCapacity(" (capacity outage)")
	}
	if limit, ok := s.capacity[key]; ok && s.liveBy[key] >= limit {
		return noCapacity("")
	}
	if err := s.quotaError(market, off); err != nil {
		return err
	}
	if market == awsctl.MarketSpot && s.market.enabled {
		return s.spotPriceError(now, req, off)
	}
	return nil
}

// start creates one instance. tags is shared by the instances of a launch;
// that is safe because tag maps are replaced, never modified.
func (s *Sim) start(now time.Time, market awsctl.Market, off awsctl.Offering, tags map[string]string) *instance {
	seq := uint64(len(s.history))
	r := &instance{
		seq: seq,
		view: awsctl.Instance{
			ID:         s.ids.instanceID(seq),
			Type:       off.InstanceType,
			Zone:       off.Zone,
			Market:     market,
			LaunchTime: now,
			PrivateIP:  privateIP(seq),
			Tags:       tags,
		},
		visibleAt: now.Add(sample(s.cfg.ListDelay, s.listRand)),
	}
	r.runningAt, r.readyAt = s.bootTimes(now, off.InstanceType)
	r.checksOKAt = r.runningAt.Add(sample(s.cfg.StatusInitDelay, s.statusRand))
	if market == awsctl.MarketSpot {
		s.planInterruption(r, now)
	}
	s.history = append(s.history, r)
	s.byID[r.view.ID] = r
	s.add(r)
	s.live++
	s.liveBy[offeringKeyOf(r)]++
	return r
}

func snapshots(rs []*instance, now time.Time) []awsctl.Instance {
	if len(rs) == 0 {
		return nil
	}
	out := make([]awsctl.Instance, len(rs))
	for i, r := range rs {
		out[i] = r.snapshot(now)
	}
	return out
}

// SetCapacity limits the live (pending or running) instances of one
// offering in one market to n; launches beyond it get
// InsufficientInstanceCapacity for that offering. A negative n removes the
// limit, which is the default. Lowering a limit below the live count
// terminates nothing.
func (s *Sim) SetCapacity(market awsctl.Market, instanceType, zone string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := offeringKey{market: market, instanceType: instanceType, zone: zone}
	if n < 0 {
		delete(s.capacity, key)
		return
	}
	s.capacity[key] = n
}

// validateLaunch checks req as EC2 would before launching anything.
func (s *Sim) validateLaunch(req awsctl.LaunchRequest) error {
	spec := req.Spec
	switch {
	case spec.ImageID == "" && spec.LaunchTemplate == nil:
		return missingParameter(OpLaunch, "the launch spec needs an ImageID or a LaunchTemplate")
	case spec.LaunchTemplate != nil && spec.LaunchTemplate.ID == "" && spec.LaunchTemplate.Name == "":
		return missingParameter(OpLaunch, "the launch template needs an ID or a Name")
	case spec.LaunchTemplate != nil && spec.LaunchTemplate.ID != "" && spec.LaunchTemplate.Name != "":
		// EC2 takes a template by id or by name, never both
		// (InvalidParameterCombination in the RunInstances and CreateFleet
		// references' LaunchTemplateSpecification).
		return &awsctl.APIError{Op: OpLaunch, Code: "InvalidParameterCombination", Kind: awsctl.ErrInvalidRequest,
			Message: "the launch template is given by both ID and Name; give one"}
	case !req.Market.Valid():
		return invalidParameter(OpLaunch, fmt.Sprintf("market %q is neither %q nor %q", req.Market, awsctl.MarketOnDemand, awsctl.MarketSpot))
	case req.Capacity < 1:
		return invalidParameter(OpLaunch, fmt.Sprintf("capacity %d is below 1", req.Capacity))
	case len(req.Offerings) == 0:
		return missingParameter(OpLaunch, "the request has no offerings")
	case req.MaxPrice < 0 || math.IsNaN(req.MaxPrice) || math.IsInf(req.MaxPrice, 0):
		return invalidParameter(OpLaunch, fmt.Sprintf("max price %v is not a price", req.MaxPrice))
	case len(req.Token) > maxTokenLen:
		return invalidParameter(OpLaunch, fmt.Sprintf("token is %d characters long; the limit is %d", len(req.Token), maxTokenLen))
	}
	subnetZones := make(map[string]bool, len(spec.Subnets))
	for _, sn := range spec.Subnets {
		if sn.ID == "" {
			return invalidParameter(OpLaunch, "a subnet has no ID")
		}
		if !s.zones[sn.Zone] {
			return invalidParameter(OpLaunch, fmt.Sprintf("subnet %s is in zone %q, which is not a zone of %s", sn.ID, sn.Zone, s.cfg.Region))
		}
		subnetZones[sn.Zone] = true
	}
	for _, off := range req.Offerings {
		switch {
		case off.InstanceType == "":
			return missingParameter(OpLaunch, "an offering has no instance type")
		case !s.knownType(off.InstanceType):
			// RunInstances rejects a type that does not exist with
			// InvalidParameterValue "Invalid value '<type>' for
			// InstanceType." (quoted in getmoto/moto#1695 and
			// CloudSlang/cs-actions#308): a typo must fail here too, not
			// pass a test that real EC2 fails.
			return invalidParameter(OpLaunch, fmt.Sprintf("Invalid value '%s' for InstanceType.", off.InstanceType))
		case !s.zones[off.Zone]:
			return invalidParameter(OpLaunch, fmt.Sprintf("offering %s in %q: not a zone of %s", off.InstanceType, off.Zone, s.cfg.Region))
		case off.Weight < 1:
			return invalidParameter(OpLaunch, fmt.Sprintf("offering %s in %s: weight %d is below 1", off.InstanceType, off.Zone, off.Weight))
		case len(spec.Subnets) > 0 && !subnetZones[off.Zone]:
			return invalidParameter(OpLaunch, fmt.Sprintf("offering %s in %s: none of the spec's subnets is in that zone", off.InstanceType, off.Zone))
		}
	}
	if err := validateTags(OpLaunch, spec.Tags); err != nil {
		return err
	}
	if err := validateTags(OpLaunch, req.Tags); err != nil {
		return err
	}
	if n := countMerged(spec.Tags, req.Tags); n > MaxTags {
		return &awsctl.APIError{Op: OpLaunch, Code: "TagLimitExceeded", Kind: awsctl.ErrInvalidRequest,
			Message: fmt.Sprintf("the launch would set %d tags; the limit is %d", n, MaxTags)}
	}
	return nil
}

func countMerged(base, over map[string]string) int {
	n := len(over)
	for k := range base {
		if _, ok := over[k]; !ok {
			n++
		}
	}
	return n
}

// sameLaunch reports whether b repeats a, token aside: what EC2 compares
// before answering a retried client token.
func sameLaunch(a, b awsctl.LaunchRequest) bool {
	return a.Capacity == b.Capacity && a.Market == b.Market && a.MaxPrice == b.MaxPrice &&
		slices.Equal(a.Offerings, b.Offerings) && maps.Equal(a.Tags, b.Tags) && sameSpec(a.Spec, b.Spec)
}

func sameSpec(a, b awsctl.LaunchSpec) bool {
	if (a.LaunchTemplate == nil) != (b.LaunchTemplate == nil) ||
		(a.LaunchTemplate != nil && *a.LaunchTemplate != *b.LaunchTemplate) {
		return false
	}
	return a.ImageID == b.ImageID && slices.Equal(a.Subnets, b.Subnets) &&
		slices.Equal(a.SecurityGroupIDs, b.SecurityGroupIDs) && a.InstanceProfile == b.InstanceProfile &&
		a.KeyName == b.KeyName && a.UserData == b.UserData && maps.Equal(a.Tags, b.Tags)
}

// cloneLaunch copies req deeply enough that the caller's later changes to
// its slices and maps cannot alter the record.
func cloneLaunch(req awsctl.LaunchRequest) awsctl.LaunchRequest {
	req.Offerings = slices.Clone(req.Offerings)
	req.Tags = maps.Clone(req.Tags)
	req.Spec.Subnets = slices.Clone(req.Spec.Subnets)
	req.Spec.SecurityGroupIDs = slices.Clone(req.Spec.SecurityGroupIDs)
	req.Spec.Tags = maps.Clone(req.Spec.Tags)
	if req.Spec.LaunchTemplate != nil {
		lt := *req.Spec.LaunchTemplate
		req.Spec.LaunchTemplate = &lt
	}
	req.Token = ""
	return req
}
