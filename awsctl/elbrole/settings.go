package elbrole

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// SettingsAPI is the part of the ELBv2 API that reads target group and load
// balancer settings. *elasticloadbalancingv2.Client and elbsim implement it;
// an API without it (or without the IAM permissions for it) skips the
// checks at first use.
type SettingsAPI interface {
	DescribeTargetGroups(context.Context, *elbv2.DescribeTargetGroupsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTargetGroupAttributes(context.Context, *elbv2.DescribeTargetGroupAttributesInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupAttributesOutput, error)
	DescribeLoadBalancers(context.Context, *elbv2.DescribeLoadBalancersInput, ...func(*elbv2.Options)) (*elbv2.DescribeLoadBalancersOutput, error)
}

var _ SettingsAPI = (*elbv2.Client)(nil)

// Target group attribute keys read at first use (ELBv2 API reference,
// TargetGroupAttribute).
const (
	attrDeregistrationDelay = "deregistration_delay.timeout_seconds"
	attrSlowStart           = "slow_start.duration_seconds"
	attrConnTermination     = "deregistration_delay.connection_termination.enabled"
)

// Settings is what the load balancer says about one target group.
type Settings struct {
	ARN        string
	TargetType types.TargetTypeEnum
	// DeregistrationDelay is how long a deregistered target is reported
	// draining; a wind-down lasts at least that long.
	DeregistrationDelay time.Duration
	// SlowStart is how long a new target's share of requests ramps up
	// (ALB); a server is not at full capacity before. Use it as warm-up.
	SlowStart time.Duration
	// ConnectionTermination (NLB): connections still open when the delay
	// ends are closed; without it they stay open after the target is gone.
	ConnectionTermination bool
	// LoadBalancers using the target group and the zones enabled on every
	// one of them.
	LoadBalancers []string
	Zones         []string
}

// Settings reads every target group's settings (in Config order) and checks
// them against the role, once: the first call that gets an answer is kept.
// It returns nil settings and no error if the API cannot read them (no
// SettingsAPI, or access denied). Provision and Restore call it first.
func (r *Role) Settings(ctx context.Context) ([]Settings, error) {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	if r.setDone {
		return r.settings, r.setErr
	}
	api, ok := r.api.(SettingsAPI)
	if !ok {
		r.setDone = true
		return nil, nil
	}
	var out []Settings
	for i, g := range r.groups {
		s, err := readSettings(ctx, api, g.tg.ARN)
		switch {
		case err == nil:
		case transient(err) || ctx.Err() != nil:
			return nil, fmt.Errorf("elbrole: read target group %s: %w", g.tg.ARN, err)
		case isCode(err, codeTargetGroupNotFound):
			r.setDone, r.setErr = true, fmt.Errorf("%w: %w", &ConfigError{Field: fmt.Sprintf("Config.TargetGroups[%d].ARN", i),
				Problem: fmt.Sprintf("%s: no such target group", g.tg.ARN)}, err)
			return nil, r.setErr
		default:
			// Missing permissions or an API that does not know the call:
			// the role works without the checks.
			r.log.LogAttrs(ctx, slog.LevelWarn, "elbrole: cannot read target group settings; not checked",
				slog.String("target_group", g.tg.ARN), slog.Any("error", err))
			r.setDone = true
			return nil, nil
		}
		out = append(out, s)
	}
	r.setDone, r.settings, r.setErr = true, out, r.checkSettings(out)
	return r.settings, r.setErr
}

// WarmUp returns the longest slow start of the target groups: how long a
// new or restored server takes to receive its full share of requests.
func (r *Role) WarmUp(ctx context.Context) (time.Duration, error) {
	ss, err := r.Settings(ctx)
	var d time.Duration
	for _, s := range ss {
		d = max(d, s.SlowStart)
	}
	return d, err
}

func readSettings(ctx context.Context, api SettingsAPI, arn string) (Settings, error) {
	s := Settings{ARN: arn}
	tgs, err := api.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})
	if err != nil {
		return s, classify("DescribeTargetGroups", err)
	}
	if len(tgs.TargetGroups) != 1 {
		return s, fmt.Errorf("DescribeTargetGroups: %d answers for %s", len(tgs.TargetGroups), arn)
	}
	s.TargetType = tgs.TargetGroups[0].TargetType
	s.LoadBalancers = tgs.TargetGroups[0].LoadBalancerArns
	attrs, err := api.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		return s, classify("DescribeTargetGroupAttributes", err)
	}
	for _, a := range attrs.Attributes {
		v := aws.ToString(a.Value)
		switch aws.ToString(a.Key) {
		case attrDeregistrationDelay:
			if n, err := strconv.Atoi(v); err == nil {
				s.DeregistrationDelay = time.Duration(n) * time.Second
			}
		case attrSlowStart:
			if n, err := strconv.Atoi(v); err == nil {
				s.SlowStart = time.Duration(n) * time.Second
			}
		case attrConnTermination:
			s.ConnectionTermination = v == "true"
		}
	}
	if len(s.LoadBalancers) == 0 {
		return s, nil
	}
	lbs, err := api.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: s.LoadBalancers})
	if err != nil {
		return s, classify("DescribeLoadBalancers", err)
	}
	for i, lb := range lbs.LoadBalancers {
		var zones []string
		for _, z := range lb.AvailabilityZones {
			if n := aws.ToString(z.ZoneName); n != "" && (i == 0 || slices.Contains(s.Zones, n)) {
				zones = append(zones, n)
			}
		}
		s.Zones = zones // a target must be in a zone every load balancer serves
	}
	slices.Sort(s.Zones)
	return s, nil
}

// checkSettings compares the settings with the role's configuration.
func (r *Role) checkSettings(ss []Settings) error {
	var errs []error
	for i, s := range ss {
		field := fmt.Sprintf("Config.TargetGroups[%d].ARN", i)
		if s.TargetType != "" && s.TargetType != types.TargetTypeEnumInstance {
			errs = append(errs, &ConfigError{Field: field,
				Problem: fmt.Sprintf("%s has target type %q; elbrole registers instances by id, so it needs type instance", s.ARN, s.TargetType)})
			continue
		}
		if r.cfg.WindDownTimeout > 0 && r.cfg.WindDownTimeout <= s.DeregistrationDelay {
			errs = append(errs, &ConfigError{Field: "Config.WindDownTimeout",
				Problem: fmt.Sprintf("%v is not longer than the deregistration delay of %s (%v): a wind-down would time out while the target still drains",
					r.cfg.WindDownTimeout, s.ARN, s.DeregistrationDelay)})
		}
		if len(s.LoadBalancers) == 0 {
			errs = append(errs, &ZoneError{TargetGroup: s.ARN, Description: "no load balancer uses the target group"})
			continue
		}
		for _, sub := range r.inner.LaunchSpec().Subnets {
			if sub.Zone != "" && !slices.Contains(s.Zones, sub.Zone) {
				errs = append(errs, &ZoneError{Zone: sub.Zone, TargetGroup: s.ARN,
					Description: fmt.Sprintf("subnet %s is in %s; the load balancer serves %v", sub.ID, sub.Zone, s.Zones)})
			}
		}
	}
	return errors.Join(errs...)
}
