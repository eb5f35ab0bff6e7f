package elbsim

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
)

// Operation names of the settings calls, also keys of [LB.Calls].
const (
	OpDescribeTargetGroups          = "DescribeTargetGroups"
	OpDescribeTargetGroupAttributes = "DescribeTargetGroupAttributes"
	OpDescribeLoadBalancers         = "DescribeLoadBalancers"
)

var _ elbrole.SettingsAPI = (*LB)(nil)

// TargetGroupOptions are the settings of one target group that differ from
// the load balancer's.
type TargetGroupOptions struct {
	// TargetType: instance (the default), ip, lambda or alb. Only the type
	// is reported; registration works as for instances.
	TargetType types.TargetTypeEnum
	// DeregistrationDelay overrides Config.DeregistrationDelay; negative
	// means none.
	DeregistrationDelay time.Duration
	// SlowStart is reported as slow_start.duration_seconds (ALB only).
	SlowStart time.Duration
	// Detached: no load balancer uses the target group, so every target is
	// unused (Target.NotInUse).
	Detached bool
}

// CreateTargetGroupWith is CreateTargetGroup with options.
func (lb *LB) CreateTargetGroupWith(name string, port int32, opt TargetGroupOptions) (string, error) {
	arn, err := lb.CreateTargetGroup(name, port)
	if err != nil {
		return "", err
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	g := lb.groups[arn]
	g.opt = opt
	if g.opt.TargetType == "" {
		g.opt.TargetType = types.TargetTypeEnumInstance
	}
	switch {
	case opt.DeregistrationDelay < 0:
		g.delay = 0
	case opt.DeregistrationDelay > 0:
		g.delay = opt.DeregistrationDelay
	}
	return arn, nil
}

// lbARN is the ARN of the simulated load balancer every attached target
// group uses.
func (lb *LB) lbARN() string {
	kind := "app"
	if lb.cfg.Type == types.LoadBalancerTypeEnumNetwork {
		kind = "net"
	}
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s/sim/0123456789abcdef", lb.cfg.Region, lb.cfg.Account, kind)
}

// DescribeTargetGroups describes the target groups named by ARN.
func (lb *LB) DescribeTargetGroups(ctx context.Context, in *elbv2.DescribeTargetGroupsInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if err := lb.begin(ctx, OpDescribeTargetGroups); err != nil {
		return nil, err
	}
	if in == nil || len(in.TargetGroupArns) == 0 {
		return nil, validation("elbsim answers DescribeTargetGroups by TargetGroupArns only")
	}
	out := &elbv2.DescribeTargetGroupsOutput{}
	for _, arn := range in.TargetGroupArns {
		g, err := lb.group(aws.String(arn))
		if err != nil {
			return nil, err
		}
		tg := types.TargetGroup{TargetGroupArn: aws.String(g.arn), Port: aws.Int32(g.port), TargetType: g.opt.TargetType,
			Protocol: types.ProtocolEnumHttp, HealthCheckIntervalSeconds: aws.Int32(int32(lb.cfg.HealthCheckInterval / time.Second)),
			HealthyThresholdCount: aws.Int32(int32(lb.cfg.HealthyThreshold)), UnhealthyThresholdCount: aws.Int32(int32(lb.cfg.UnhealthyThreshold))}
		if lb.cfg.Type == types.LoadBalancerTypeEnumNetwork {
			tg.Protocol = types.ProtocolEnumTcp
		}
		if !g.opt.Detached {
			tg.LoadBalancerArns = []string{lb.lbARN()}
		}
		out.TargetGroups = append(out.TargetGroups, tg)
	}
	return out, nil
}

// DescribeTargetGroupAttributes reports the attributes the simulation
// models: the deregistration delay, and slow start (ALB) or connection
// termination (NLB).
func (lb *LB) DescribeTargetGroupAttributes(ctx context.Context, in *elbv2.DescribeTargetGroupAttributesInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupAttributesOutput, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if err := lb.begin(ctx, OpDescribeTargetGroupAttributes); err != nil {
		return nil, err
	}
	if in == nil {
		in = &elbv2.DescribeTargetGroupAttributesInput{}
	}
	g, err := lb.group(in.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	attr := func(k, v string) types.TargetGroupAttribute {
		return types.TargetGroupAttribute{Key: aws.String(k), Value: aws.String(v)}
	}
	out := &elbv2.DescribeTargetGroupAttributesOutput{Attributes: []types.TargetGroupAttribute{
		attr("deregistration_delay.timeout_seconds", strconv.Itoa(int(g.delay/time.Second))),
	}}
	if lb.cfg.Type == types.LoadBalancerTypeEnumNetwork {
		out.Attributes = append(out.Attributes, attr("deregistration_delay.connection_termination.enabled",
			strconv.FormatBool(lb.cfg.ConnectionTermination)))
	} else {
		out.Attributes = append(out.Attributes, attr("slow_start.duration_seconds", strconv.Itoa(int(g.opt.SlowStart/time.Second))))
	}
	return out, nil
}

// DescribeLoadBalancers describes the simulated load balancer and the zones
// enabled on it.
func (lb *LB) DescribeLoadBalancers(ctx context.Context, in *elbv2.DescribeLoadBalancersInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeLoadBalancersOutput, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if err := lb.begin(ctx, OpDescribeLoadBalancers); err != nil {
		return nil, err
	}
	out := &elbv2.DescribeLoadBalancersOutput{}
	for _, arn := range in.LoadBalancerArns {
		if arn != lb.lbARN() {
			return nil, &types.LoadBalancerNotFoundException{Message: aws.String(fmt.Sprintf("Load balancers '%s' not found", arn))}
		}
		typ := lb.cfg.Type
		if typ == "" {
			typ = types.LoadBalancerTypeEnumApplication
		}
		d := types.LoadBalancer{LoadBalancerArn: aws.String(arn), Type: typ}
		for _, z := range lb.zones() {
			d.AvailabilityZones = append(d.AvailabilityZones, types.AvailabilityZone{ZoneName: aws.String(z)})
		}
		out.LoadBalancers = append(out.LoadBalancers, d)
	}
	return out, nil
}

// zones returns the zones enabled on the load balancer.
func (lb *LB) zones() []string {
	if lb.cfg.Zones != nil {
		return lb.cfg.Zones
	}
	var out []string
	for _, l := range "abcdef" {
		out = append(out, lb.cfg.Region+string(l))
	}
	return out
}
