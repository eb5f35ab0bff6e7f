package elbrole

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

// callTimeout bounds one API call made on behalf of several hooks: it runs
// detached from any one hook's context, since the others still need it.
const callTimeout = 30 * time.Second

// Health is a target's health in one target group, as the load balancer
// reports it. A target the target group does not list is reported as
// unused with reason Target.NotRegistered, as DescribeTargetHealth does when
// asked about it by id.
type Health struct {
	State       types.TargetHealthStateEnum
	Reason      types.TargetHealthReasonEnum
	Description string
}

var notRegistered = Health{
	State:  types.TargetHealthStateEnumUnused,
	Reason: types.TargetHealthReasonEnumNotRegistered,
}

// Gone reports whether the target is not registered at all: deregistered
// and drained, or never registered.
func (h Health) Gone() bool {
	return h.State == types.TargetHealthStateEnumUnused && h.Reason == types.TargetHealthReasonEnumNotRegistered
}

// Draining reports whether the target is deregistered but still finishing
// the requests it had.
func (h Health) Draining() bool {
	return h.State == types.TargetHealthStateEnumDraining || h.State == types.TargetHealthStateEnumUnhealthyDraining
}

// NotInUse reports whether the load balancer does not use the target
// (unused, Target.NotInUse): the target group has no load balancer, or the
// target's zone is not enabled on it. See the TargetHealth reason codes in
// the ELBv2 API reference.
func (h Health) NotInUse() bool {
	return h.State == types.TargetHealthStateEnumUnused && h.Reason == types.TargetHealthReasonEnumNotInUse
}

// LoadBalancerFault reports whether the load balancer cannot tell the
// target's health for reasons of its own (unavailable, or an internal error
// of its health checks): the server is not to blame.
func (h Health) LoadBalancerFault() bool {
	return h.State == types.TargetHealthStateEnumUnavailable || h.Reason == types.TargetHealthReasonEnumInternalError
}

// Healthy reports whether the load balancer routes new requests to the
// target.
func (h Health) Healthy() bool { return h.State == types.TargetHealthStateEnumHealthy }

// group is one target group: its registration batchers and a shared view of
// its targets' health.
type group struct {
	tg       TargetGroup
	api      API
	clock    Clock
	log      *slog.Logger
	describe *ratelimit.Bucket
	maxAge   time.Duration

	register, deregister *batcher

	mu sync.Mutex
	// gen counts the registration calls that have returned. A health
	// reading tells about a target only if it was asked for after the last
	// registration call for that target returned (changed[id]), since an
	// earlier one may not show that change.
	gen      uint64
	changed  map[string]uint64
	latest   *reading // the latest health reading
	inflight *reading // a reading being made, if any
}

// reading is one DescribeTargetHealth call and its answer.
type reading struct {
	gen     uint64 // g.gen when the call was sent
	at      time.Time
	done    chan struct{}
	targets map[string]Health
	err     error
}

func newGroup(tg TargetGroup, api API, cfg Config, log *slog.Logger, describe, registration *ratelimit.Bucket) *group {
	g := &group{
		tg:       tg,
		api:      api,
		clock:    cfg.Clock,
		log:      log,
		describe: describe,
		maxAge:   cfg.PollInterval,
		changed:  map[string]uint64{},
	}
	g.register = &batcher{g: g, op: OpRegisterTargets, bucket: registration, window: cfg.BatchWindow, send: g.sendRegister}
	g.deregister = &batcher{g: g, op: OpDeregisterTargets, bucket: registration, window: cfg.BatchWindow, send: g.sendDeregister}
	return g
}

func (g *group) targets(ids []string) []types.TargetDescription {
	out := make([]types.TargetDescription, len(ids))
	for i, id := range ids {
		out[i] = types.TargetDescription{Id: aws.String(id)}
		if g.tg.Port != 0 {
			out[i].Port = aws.Int32(g.tg.Port)
		}
	}
	return out
}

func (g *group) sendRegister(ctx context.Context, ids []string) error {
	_, err := g.api.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(g.tg.ARN), Targets: g.targets(ids)})
	return err
}

func (g *group) sendDeregister(ctx context.Context, ids []string) error {
	_, err := g.api.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(g.tg.ARN), Targets: g.targets(ids)})
	return err
}

// changedNow records that a registration call for ids has returned, so that
// only health readings asked for from now on count for them.
func (g *group) changedNow(ids []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen++
	for _, id := range ids {
		g.changed[id] = g.gen
	}
}

func (g *group) forget(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.changed, id)
}

// health returns id's health, from a reading younger than the poll interval
// made after id's last registration change, or from a new reading shared
// with every caller that needs one now: one DescribeTargetHealth call per
// target group answers for all its targets.
func (g *group) health(ctx context.Context, id string) (Health, error) {
	g.mu.Lock()
	need := g.changed[id]
	r := g.latest
	if r == nil || r.gen < need || g.clock.Now().Sub(r.at) >= g.maxAge {
		r = g.inflight
		if r == nil || r.gen < need {
			r = &reading{gen: g.gen, done: make(chan struct{})}
			g.inflight = r
			go g.read(context.WithoutCancel(ctx), r)
		}
	}
	g.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return Health{}, fmt.Errorf("%s: %w", OpDescribeTargetHealth, ctx.Err())
	}
	if r.err != nil {
		return Health{}, r.err
	}
	if h, ok := r.targets[id]; ok {
		return h, nil
	}
	return notRegistered, nil
}

// read makes reading r: the health of every target of the group.
func (g *group) read(ctx context.Context, r *reading) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r.err = g.describe.Wait(ctx, 1)
	if r.err == nil {
		var out *elbv2.DescribeTargetHealthOutput
		out, r.err = g.api.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(g.tg.ARN)})
		if r.err == nil {
			r.targets = make(map[string]Health, len(out.TargetHealthDescriptions))
			for _, d := range out.TargetHealthDescriptions {
				if d.Target == nil || d.Target.Id == nil || d.TargetHealth == nil {
					continue
				}
				if g.tg.Port != 0 && d.Target.Port != nil && *d.Target.Port != g.tg.Port {
					continue // the same instance on another port: not ours
				}
				r.targets[*d.Target.Id] = Health{
					State:       d.TargetHealth.State,
					Reason:      d.TargetHealth.Reason,
					Description: aws.ToString(d.TargetHealth.Description),
				}
			}
		}
	}
	r.err = classify(OpDescribeTargetHealth, r.err)
	if r.err != nil {
		r.err = fmt.Errorf("target group %s: %w", g.tg.ARN, r.err)
	}
	r.at = g.clock.Now()
	g.mu.Lock()
	if g.inflight == r {
		g.inflight = nil
	}
	if r.err == nil && (g.latest == nil || r.gen >= g.latest.gen) {
		g.latest = r
	}
	g.mu.Unlock()
	close(r.done)
}

// MaxTargetsPerCall caps the targets of one RegisterTargets or
// DeregisterTargets call; larger batches are split.
const MaxTargetsPerCall = 100

// batcher turns the registration calls that hooks make within a short
// window into one call for all their instances.
type batcher struct {
	g      *group
	op     string
	bucket *ratelimit.Bucket
	window time.Duration
	send   func(ctx context.Context, ids []string) error

	mu        sync.Mutex
	order     []string
	waiters   map[string][]chan error
	scheduled bool
}

// do adds id to the next call and returns that call's result for it.
func (b *batcher) do(ctx context.Context, id string) error {
	done := make(chan error, 1)
	b.mu.Lock()
	if b.waiters == nil {
		b.waiters = map[string][]chan error{}
	}
	if _, ok := b.waiters[id]; !ok {
		b.order = append(b.order, id)
	}
	b.waiters[id] = append(b.waiters[id], done)
	if !b.scheduled {
		b.scheduled = true
		go b.flush()
	}
	b.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The call may still be made: registration is idempotent, and the
		// pool repeats a hook that did not finish.
		return fmt.Errorf("%s: %w", b.op, ctx.Err())
	}
}

// flush waits for the window to collect more ids, then sends one call per
// MaxTargetsPerCall of them.
func (b *batcher) flush() {
	if b.window > 0 {
		_ = b.g.clock.Sleep(context.Background(), b.window)
	}
	b.mu.Lock()
	ids, waiters := b.order, b.waiters
	b.order, b.waiters, b.scheduled = nil, nil, false
	b.mu.Unlock()
	// Results go out once every call is made, so that the waiters' next
	// health reading, which must follow their registration change, is one
	// reading for all of them.
	results := make(map[string]error, len(ids))
	for start := 0; start < len(ids); start += MaxTargetsPerCall {
		chunk := ids[start:min(start+MaxTargetsPerCall, len(ids))]
		err := b.call(chunk)
		if err != nil && len(chunk) > 1 && isCode(err, codeInvalidTarget) {
			// One bad instance fails the whole call: find out which, so
			// that the others go through.
			for _, id := range chunk {
				results[id] = b.call([]string{id})
			}
			continue
		}
		for _, id := range chunk {
			results[id] = err
		}
	}
	for id, err := range results {
		for _, w := range waiters[id] {
			w <- err
		}
	}
}

func (b *batcher) call(ids []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := b.bucket.Wait(ctx, 1)
	if err == nil {
		err = b.send(ctx, ids)
		// Even a failed call may have taken effect.
		b.g.changedNow(ids)
	}
	b.g.log.LogAttrs(ctx, slog.LevelDebug, "elbrole call", slog.String("op", b.op),
		slog.String("target_group", b.g.tg.ARN), slog.Int("targets", len(ids)), slog.Any("error", err))
	if err = classify(b.op, err); err != nil {
		return fmt.Errorf("target group %s: %w", b.g.tg.ARN, err)
	}
	return nil
}
