package elbrole

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

// callTimeout bounds one API call made on behalf of several hooks (the
// rate limiter's wait included): a registration call runs until every hook
// it serves has left, whichever leaves last, and a describe runs detached
// from the hooks' contexts, since others may still need it.
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
//
// Each request carries its caller's context, and a batch is sent only for
// the requests still live right before the wire call: the pool runs hooks
// under a context that ends when this replica stops leading (or the hook
// times out), and a deposed leader's deregistration sent after the new
// leader restored the server would take it out of service behind the new
// leader's back. ELB cannot refuse such a stale call: RegisterTargets and
// DeregisterTargets take only a target group and targets, with no
// precondition (ELBv2 API reference, https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeregisterTargets.html),
// so not sending it is the only fence.
//
// Batches are not split per term: a hook's context does not say which term
// it belongs to, and checking each request's own context sends, from a
// batch mixing an old term's requests with a new one's, only the new ones.
type batcher struct {
	g      *group
	op     string
	bucket *ratelimit.Bucket
	window time.Duration
	send   func(ctx context.Context, ids []string) error

	mu        sync.Mutex
	queue     []*request
	scheduled bool
}

// request is one hook's wish to (de)register id.
type request struct {
	ctx  context.Context
	id   string
	done chan error // buffered: flush never blocks on a caller that has left
}

// do adds id to the next call and returns that call's result for it. If
// ctx ends first, do returns ctx's error and id is not sent for this
// caller (unless the call is already on the wire).
func (b *batcher) do(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", b.op, err)
	}
	req := &request{ctx: ctx, id: id, done: make(chan error, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	if !b.scheduled {
		b.scheduled = true
		go b.flush()
	}
	b.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// Still queued: leave the batch. Taken by a flush already: the
		// flush checks ctx again before the wire call. Once on the wire the
		// call may still take effect; the pool repeats a hook that did
		// not finish, and (de)registration is idempotent.
		b.mu.Lock()
		b.queue = slices.DeleteFunc(b.queue, func(r *request) bool { return r == req })
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", b.op, ctx.Err())
	}
}

// flush waits for the window to collect more requests, then sends one call
// per MaxTargetsPerCall of their ids.
func (b *batcher) flush() {
	if b.window > 0 {
		_ = b.g.clock.Sleep(context.Background(), b.window)
	}
	b.mu.Lock()
	queue := b.queue
	b.queue, b.scheduled = nil, false
	b.mu.Unlock()

	// Several hooks may ask for the same id; it is sent once, for them all.
	var ids []string
	byID := map[string][]*request{}
	for _, r := range queue {
		if byID[r.id] == nil {
			ids = append(ids, r.id)
		}
		byID[r.id] = append(byID[r.id], r)
	}
	// Results go out once every call is made, so that the waiters' next
	// health reading, which must follow their registration change, is one
	// reading for all of them.
	results := make(map[*request]error, len(queue))
	for start := 0; start < len(ids); start += MaxTargetsPerCall {
		var chunk []*request
		for _, id := range ids[start:min(start+MaxTargetsPerCall, len(ids))] {
			chunk = append(chunk, byID[id]...)
		}
		sent, err := b.call(chunk, results)
		if err != nil && len(sent) > 1 && isCode(err, codeInvalidTarget) {
			// One bad instance fails the whole call: find out which, so
			// that the others go through.
			for _, id := range sent {
				_, _ = b.call(byID[id], results)
			}
		}
	}
	for r, err := range results {
		r.done <- err
	}
}

// call makes one call for the ids of reqs whose callers are still waiting,
// checked after the rate limiter's wait, right before the call; it records
// every request's result in results and returns the ids sent and the call's
// error.
func (b *batcher) call(reqs []*request, results map[*request]error) (sent []string, err error) {
	ctx, cancel := callContext(reqs)
	defer cancel()
	err = b.bucket.Wait(ctx, 1)
	var live []*request
	for _, r := range reqs {
		if cerr := r.ctx.Err(); cerr != nil {
			results[r] = fmt.Errorf("%s: %w", b.op, cerr)
			continue
		}
		live = append(live, r)
		if !slices.Contains(sent, r.id) {
			sent = append(sent, r.id)
		}
	}
	if len(live) == 0 {
		return nil, nil // nobody waits for it any more: not sent
	}
	if err == nil {
		err = b.send(ctx, sent)
		// Even a failed call may have taken effect.
		b.g.changedNow(sent)
	} else {
		sent = nil
	}
	b.g.log.LogAttrs(ctx, slog.LevelDebug, "elbrole call", slog.String("op", b.op),
		slog.String("target_group", b.g.tg.ARN), slog.Int("targets", len(sent)),
		slog.Int("dropped", len(reqs)-len(live)), slog.Any("error", err))
	if err = classify(b.op, err); err != nil {
		err = fmt.Errorf("target group %s: %w", b.g.tg.ARN, err)
	}
	for _, r := range live {
		results[r] = err
	}
	return sent, err
}

// callContext returns the context of a call made for reqs: it ends once
// every one of their contexts has ended, so that a call nobody waits for is
// neither waited for, nor made, nor retried by the SDK's retryer, and after
// callTimeout at most. It carries no caller's values: it serves them all.
func callContext(reqs []*request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	var left atomic.Int64
	left.Store(int64(len(reqs)))
	stops := make([]func() bool, 0, len(reqs))
	for _, r := range reqs {
		stops = append(stops, context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
