package elbsim

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
)

// Defaults of Config fields left zero: those of a new Application Load
// Balancer target group, and a made-up account.
const (
	DefaultHealthCheckInterval = 30 * time.Second
	DefaultHealthyThreshold    = 5
	DefaultUnhealthyThreshold  = 2
	DefaultDeregistrationDelay = 300 * time.Second
	DefaultRegion              = "us-east-1"
	DefaultAccount             = "123456789012"
)

// Config configures an [LB]. The zero value is a usable load balancer on the
// wall clock with ALB's default health checks and deregistration delay.
type Config struct {
	// Clock is the load balancer's time; nil means time.Now. Give it the
	// clock of the simulated EC2 it serves (ec2sim.Sim.Now).
	Clock func() time.Time
	// HealthCheckInterval between two health checks of a target; a target
	// is healthy after HealthyThreshold passing checks in a row and
	// unhealthy after UnhealthyThreshold failing ones.
	HealthCheckInterval                  time.Duration
	HealthyThreshold, UnhealthyThreshold int
	// DeregistrationDelay is how long a deregistered target drains; a
	// negative value means none (targets leave at once).
	DeregistrationDelay time.Duration
	// Instances, if set, is the EC2 the targets live in (ec2sim.Sim.Instance
	// fits): only running instances can be registered, unknown ids are
	// invalid targets, and a registered instance that stops running is
	// reported unused (Target.InvalidState). Nil accepts every id as a
	// running instance.
	Instances func(id string) (awsctl.Instance, bool)
	// Type is the load balancer's type: application (the default) or
	// network. It decides the attributes DescribeTargetGroupAttributes
	// reports; both report a deregistered target draining for the delay.
	Type types.LoadBalancerTypeEnum
	// ConnectionTermination is NLB's
	// deregistration_delay.connection_termination.enabled.
	ConnectionTermination bool
	// Zones enabled on the load balancer; nil means the region's zones a
	// to f. A target whose instance (see Instances) is in another zone is
	// unused (Target.NotInUse), as the load balancer sends it nothing.
	Zones []string
	// Region and Account appear in target group ARNs.
	Region, Account string
}

// Operation names, the keys of [LB.Calls].
const (
	OpRegisterTargets      = elbrole.OpRegisterTargets
	OpDeregisterTargets    = elbrole.OpDeregisterTargets
	OpDescribeTargetHealth = elbrole.OpDescribeTargetHealth
)

// LB is a simulated Elastic Load Balancing v2 API: target groups whose
// targets are registered, pass or fail health checks, and drain, all on the
// configured clock. It implements [elbrole.API] without any network, and is
// safe for concurrent use.
//
// As in package ec2sim nothing runs in the background: a target's state
// follows from the times it was registered, started or stopped failing its
// health checks, and was deregistered.
type LB struct {
	cfg Config

	mu      sync.Mutex
	groups  map[string]*targetGroup
	failing map[string]bool
	calls   map[string]int
	faults  map[string][]error
}

type targetGroup struct {
	arn     string
	port    int32
	delay   time.Duration // deregistration delay
	opt     TargetGroupOptions
	targets map[targetKey]*target
}

type targetKey struct {
	id   string
	port int32
}

// target is one registration. Its health follows from these times.
type target struct {
	registeredAt time.Time
	// checks is when the current run of passing (or, with failing,
	// failing) health checks began.
	checks  time.Time
	failing bool
	// before is the state the target was in when the current run began;
	// it keeps it until the run reaches its threshold.
	before   types.TargetHealthStateEnum
	draining bool
	drainEnd time.Time
}

var _ elbrole.API = (*LB)(nil)

// New returns a load balancer configured by cfg, or an error naming the bad
// field.
func New(cfg Config) (*LB, error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	switch {
	case cfg.HealthCheckInterval < 0:
		return nil, fmt.Errorf("elbsim: Config.HealthCheckInterval must not be negative, got %v", cfg.HealthCheckInterval)
	case cfg.HealthCheckInterval == 0:
		cfg.HealthCheckInterval = DefaultHealthCheckInterval
	}
	switch {
	case cfg.DeregistrationDelay < 0:
		cfg.DeregistrationDelay = 0
	case cfg.DeregistrationDelay == 0:
		cfg.DeregistrationDelay = DefaultDeregistrationDelay
	}
	for _, t := range []struct {
		field string
		v     *int
		def   int
	}{
		{"HealthyThreshold", &cfg.HealthyThreshold, DefaultHealthyThreshold},
		{"UnhealthyThreshold", &cfg.UnhealthyThreshold, DefaultUnhealthyThreshold},
	} {
		if *t.v < 0 || *t.v == 1 || *t.v > 10 {
			return nil, fmt.Errorf("elbsim: Config.%s must be 2 to 10 (0 for the default), got %d", t.field, *t.v)
		}
		if *t.v == 0 {
			*t.v = t.def
		}
	}
	cfg.Region = cmp.Or(cfg.Region, DefaultRegion)
	cfg.Account = cmp.Or(cfg.Account, DefaultAccount)
	return &LB{cfg: cfg, groups: map[string]*targetGroup{}, failing: map[string]bool{},
		calls: map[string]int{}, faults: map[string][]error{}}, nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

// CreateTargetGroup adds a target group of instances served on port and
// returns its ARN. Names follow ELB's rule: 1 to 32 letters, digits and
// hyphens, not starting or ending with a hyphen.
func (lb *LB) CreateTargetGroup(name string, port int32) (string, error) {
	if !namePattern.MatchString(name) {
		return "", fmt.Errorf("elbsim: target group name %q: 1 to 32 letters, digits and inner hyphens", name)
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("elbsim: target group port must be 1 to 65535, got %d", port)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	arn := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%016x", lb.cfg.Region, lb.cfg.Account, name, h.Sum64())
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if _, ok := lb.groups[arn]; ok {
		return "", fmt.Errorf("elbsim: target group %q exists", name)
	}
	lb.groups[arn] = &targetGroup{arn: arn, port: port, delay: lb.cfg.DeregistrationDelay,
		opt: TargetGroupOptions{TargetType: types.TargetTypeEnumInstance}, targets: map[targetKey]*target{}}
	return arn, nil
}

// DeleteTargetGroup removes the target group arn and its targets, as if
// someone deleted it outside the scaler; later calls naming it fail with
// TargetGroupNotFound.
func (lb *LB) DeleteTargetGroup(arn string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	delete(lb.groups, arn)
}

// SetFailing makes the health checks of instance id fail (or pass again)
// from now on, in every target group.
func (lb *LB) SetFailing(id string, failing bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.failing[id] == failing {
		return
	}
	now := lb.cfg.Clock()
	if failing {
		lb.failing[id] = true
	} else {
		delete(lb.failing, id)
	}
	for _, g := range lb.groups {
		for k, t := range g.targets {
			if k.id == id && !t.draining {
				t.before, t.checks, t.failing = lb.state(g, id, t, now).State, now, failing
			}
		}
	}
}

// Target is a registration as the load balancer sees it.
type Target struct {
	ID           string
	Port         int32
	State        types.TargetHealthStateEnum
	Reason       types.TargetHealthReasonEnum
	RegisteredAt time.Time
}

// Targets returns the targets of the target group arn (nil for an unknown
// one), sorted by id and port, in their state at the current time.
func (lb *LB) Targets(arn string) []Target {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	g := lb.groups[arn]
	if g == nil {
		return nil
	}
	now := lb.cfg.Clock()
	lb.prune(g, now)
	out := make([]Target, 0, len(g.targets))
	for k, t := range g.targets {
		h := lb.state(g, k.id, t, now)
		out = append(out, Target{ID: k.id, Port: k.port, State: h.State, Reason: h.Reason, RegisteredAt: t.registeredAt})
	}
	slices.SortFunc(out, func(a, b Target) int { return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Port, b.Port)) })
	return out
}

// Calls returns the number of calls per operation, including failed ones.
func (lb *LB) Calls() map[string]int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := map[string]int{}
	for _, op := range []string{OpRegisterTargets, OpDeregisterTargets, OpDescribeTargetHealth} {
		out[op] = lb.calls[op]
	}
	for _, op := range []string{OpDescribeTargetGroups, OpDescribeTargetGroupAttributes, OpDescribeLoadBalancers} {
		if lb.calls[op] == 0 {
			continue // listed once made, so older callers' maps still match
		}
		out[op] = lb.calls[op]
	}
	return out
}

// FailNext makes the next calls of op fail with errs, one call each, before
// anything else happens: the call has no effect.
func (lb *LB) FailNext(op string, errs ...error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.faults[op] = append(lb.faults[op], errs...)
}

// Throttling returns the error Elastic Load Balancing answers a caller over
// its request rate with.
func Throttling() error {
	return &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded", Fault: smithy.FaultClient}
}

func validation(format string, args ...any) error {
	return &smithy.GenericAPIError{Code: "ValidationError", Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}

// begin counts a call of op and returns the fault to answer it with, if
// any. The caller holds lb.mu.
func (lb *LB) begin(ctx context.Context, op string) error {
	lb.calls[op]++
	if err := ctx.Err(); err != nil {
		return err
	}
	if q := lb.faults[op]; len(q) > 0 {
		lb.faults[op] = q[1:]
		return q[0]
	}
	return nil
}

// group finds the target group of an input. The caller holds lb.mu.
func (lb *LB) group(arn *string) (*targetGroup, error) {
	if arn == nil || *arn == "" {
		return nil, validation("A target group ARN must be specified")
	}
	g := lb.groups[*arn]
	if g == nil {
		return nil, &types.TargetGroupNotFoundException{Message: aws.String(fmt.Sprintf("Target groups '%s' not found", *arn))}
	}
	return g, nil
}

// keys checks the targets of a registration input and returns their keys.
// The caller holds lb.mu.
func (lb *LB) keys(g *targetGroup, targets []types.TargetDescription, mustRun bool) ([]targetKey, error) {
	if len(targets) == 0 {
		return nil, validation("At least one target must be specified")
	}
	var unknown, stopped []string
	keys := make([]targetKey, len(targets))
	for i, t := range targets {
		id := aws.ToString(t.Id)
		if id == "" {
			return nil, validation("A target ID must be specified")
		}
		port := g.port
		if t.Port != nil {
			port = *t.Port
		}
		if port < 1 || port > 65535 {
			return nil, validation("Port '%d' is not a valid port", port)
		}
		keys[i] = targetKey{id, port}
		if lb.cfg.Instances == nil {
			continue
		}
		inst, ok := lb.cfg.Instances(id)
		switch {
		case !ok:
			unknown = append(unknown, id)
		case mustRun && inst.State != awsctl.StateRunning:
			stopped = append(stopped, id)
		}
	}
	if len(unknown) > 0 {
		return nil, &types.InvalidTargetException{Message: aws.String(fmt.Sprintf("The following targets are not valid instances: '%s'", join(unknown)))}
	}
	if len(stopped) > 0 {
		return nil, &types.InvalidTargetException{Message: aws.String(fmt.Sprintf("The following targets are not in a running state and cannot be registered: '%s'", join(stopped)))}
	}
	return keys, nil
}

func join(ids []string) string { return strings.Join(ids, ", ") }

// RegisterTargets registers targets: a new target starts its initial health
// checks, a draining one stops draining and starts them again, and a
// registered one is left as it is. Every target must be valid or nothing is
// registered.
func (lb *LB) RegisterTargets(ctx context.Context, in *elbv2.RegisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error) {
	if in == nil {
		in = &elbv2.RegisterTargetsInput{}
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	g, keys, now, err := lb.targetsOf(ctx, OpRegisterTargets, in.TargetGroupArn, in.Targets, true)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if t, ok := g.targets[k]; ok && !t.draining {
			continue
		}
		g.targets[k] = &target{registeredAt: now, checks: now, failing: lb.failing[k.id], before: types.TargetHealthStateEnumInitial}
	}
	return &elbv2.RegisterTargetsOutput{}, nil
}

// DeregisterTargets starts draining targets; deregistering a target that is
// draining or not registered does nothing.
func (lb *LB) DeregisterTargets(ctx context.Context, in *elbv2.DeregisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error) {
	if in == nil {
		in = &elbv2.DeregisterTargetsInput{}
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	g, keys, now, err := lb.targetsOf(ctx, OpDeregisterTargets, in.TargetGroupArn, in.Targets, false)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if t, ok := g.targets[k]; ok && !t.draining {
			t.draining, t.drainEnd = true, now.Add(g.delay)
		}
	}
	lb.prune(g, now)
	return &elbv2.DeregisterTargetsOutput{}, nil
}

// targetsOf is what registering and deregistering share: count the call
// (and apply a queued fault), find the group and the targets, and bring the
// group's state up to now. The caller holds lb.mu.
func (lb *LB) targetsOf(ctx context.Context, op string, arn *string, targets []types.TargetDescription, mustRun bool) (*targetGroup, []targetKey, time.Time, error) {
	if err := lb.begin(ctx, op); err != nil {
		return nil, nil, time.Time{}, err
	}
	g, err := lb.group(arn)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	keys, err := lb.keys(g, targets, mustRun)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	now := lb.cfg.Clock()
	lb.prune(g, now)
	return g, keys, now, nil
}

// DescribeTargetHealth reports the health of the given targets, or of every
// registered target (draining ones included) when none is given. A target
// asked about by id that is not registered is reported unused
// (Target.NotRegistered).
func (lb *LB) DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if err := lb.begin(ctx, OpDescribeTargetHealth); err != nil {
		return nil, err
	}
	if in == nil {
		in = &elbv2.DescribeTargetHealthInput{}
	}
	g, err := lb.group(in.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	now := lb.cfg.Clock()
	lb.prune(g, now)
	describe := func(k targetKey, h types.TargetHealth) types.TargetHealthDescription {
		return types.TargetHealthDescription{
			Target:          &types.TargetDescription{Id: aws.String(k.id), Port: aws.Int32(k.port)},
			HealthCheckPort: aws.String(strconv.Itoa(int(k.port))),
			TargetHealth:    &h,
		}
	}
	out := &elbv2.DescribeTargetHealthOutput{}
	if len(in.Targets) > 0 {
		keys, err := lb.keys(g, in.Targets, false)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			h := types.TargetHealth{State: types.TargetHealthStateEnumUnused, Reason: types.TargetHealthReasonEnumNotRegistered,
				Description: aws.String("Target is not registered to the target group")}
			if t, ok := g.targets[k]; ok {
				h = lb.state(g, k.id, t, now)
			}
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, describe(k, h))
		}
		return out, nil
	}
	keys := make([]targetKey, 0, len(g.targets))
	for k := range g.targets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b targetKey) int { return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.port, b.port)) })
	for _, k := range keys {
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, describe(k, lb.state(g, k.id, g.targets[k], now)))
	}
	return out, nil
}

// prune forgets the targets whose draining is over. The caller holds lb.mu.
func (lb *LB) prune(g *targetGroup, now time.Time) {
	for k, t := range g.targets {
		if t.draining && !now.Before(t.drainEnd) {
			delete(g.targets, k)
		}
	}
}

// state is the health of t at now. The caller holds lb.mu.
func (lb *LB) state(g *targetGroup, id string, t *target, now time.Time) types.TargetHealth {
	h := func(s types.TargetHealthStateEnum, r types.TargetHealthReasonEnum, desc string) types.TargetHealth {
		out := types.TargetHealth{State: s, Reason: r}
		if desc != "" {
			out.Description = aws.String(desc)
		}
		return out
	}
	if t.draining {
		return h(types.TargetHealthStateEnumDraining, types.TargetHealthReasonEnumDeregistrationInProgress, "Target deregistration is in progress")
	}
	if lb.cfg.Instances != nil {
		inst, ok := lb.cfg.Instances(id)
		if !ok || inst.State != awsctl.StateRunning {
			return h(types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumInvalidState, "Target is in the stopped or terminated state")
		}
		if inst.Zone != "" && !slices.Contains(lb.zones(), inst.Zone) {
			return h(types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumNotInUse,
				"Target is in an Availability Zone that is not enabled for the load balancer")
		}
	}
	if g.opt.Detached {
		return h(types.TargetHealthStateEnumUnused, types.TargetHealthReasonEnumNotInUse, "Target group is not configured to receive traffic from the load balancer")
	}
	interval := lb.cfg.HealthCheckInterval
	if t.failing {
		if !now.Before(t.checks.Add(time.Duration(lb.cfg.UnhealthyThreshold) * interval)) {
			return h(types.TargetHealthStateEnumUnhealthy, types.TargetHealthReasonEnumFailedHealthChecks, "Health checks failed")
		}
	} else if !now.Before(t.checks.Add(time.Duration(lb.cfg.HealthyThreshold) * interval)) {
		return h(types.TargetHealthStateEnumHealthy, "", "")
	}
	switch t.before {
	case types.TargetHealthStateEnumHealthy:
		return h(types.TargetHealthStateEnumHealthy, "", "")
	case types.TargetHealthStateEnumUnhealthy:
		return h(types.TargetHealthStateEnumUnhealthy, types.TargetHealthReasonEnumFailedHealthChecks, "Health checks failed")
	}
	if now.Sub(t.registeredAt) < interval {
		return h(types.TargetHealthStateEnumInitial, types.TargetHealthReasonEnumRegistrationInProgress, "Target registration is in progress")
	}
	return h(types.TargetHealthStateEnumInitial, types.TargetHealthReasonEnumInitialHealthChecking, "Initial health checking in progress")
}
