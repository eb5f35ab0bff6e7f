package elbrole

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// Defaults of Config fields left zero.
const (
	// DefaultHealthyTimeout bounds the wait for a new target to pass its
	// health checks. A target group's default checks (5 passes 30 s apart)
	// take 2.5 minutes; keep it below the pool's ProvisionTimeout.
	DefaultHealthyTimeout = 5 * time.Minute
	// DefaultPollInterval is how often a waiting hook looks at the
	// target group's health again. It is also the longest a health
	// reading is reused.
	DefaultPollInterval = 5 * time.Second
	// DefaultBatchWindow is how long a registration waits for the calls of
	// other instances to join it.
	DefaultBatchWindow = 200 * time.Millisecond
	// NoBatchWindow sends registrations at once; only those that arrive
	// together share a call.
	NoBatchWindow time.Duration = -1
)

// Limits are client-side token buckets that keep the role's calls under
// Elastic Load Balancing's request rate limits, so that a burst of hooks is
// spread out instead of answered with throttling errors.
type Limits struct {
	// Describe counts DescribeTargetHealth calls.
	Describe ratelimit.Limit
	// Registration counts RegisterTargets and DeregisterTargets calls.
	Registration ratelimit.Limit
}

// DefaultLimits returns the limits used for fields left zero: for
// describes, the documented limit of the ELB API's non-mutating calls (a
// bucket of 40, refilled at 10 a second); for registrations, a conservative
// bucket of 20 refilled at 4 a second. Each Role has its own buckets, so
// several roles in one account should share the account's limits between
// them.
func DefaultLimits() Limits {
	return Limits{
		Describe:     ratelimit.Limit{Burst: 40, PerSecond: 10},
		Registration: ratelimit.Limit{Burst: 20, PerSecond: 4},
	}
}

// TargetGroup is one target group the role's instances join.
type TargetGroup struct {
	// ARN of the target group, whose target type must be "instance".
	ARN string
	// Port the instances serve the target group on; 0 means the target
	// group's own port.
	Port int32
}

// Config configures a [Role]. The zero value of every field but
// TargetGroups has a documented default.
type Config struct {
	// TargetGroups the instances are registered in; at least one. An
	// instance is ready when it is healthy in every one.
	TargetGroups []TargetGroup
	// HealthyTimeout bounds Provision's wait for the load balancer to
	// report the instance healthy; past it Provision fails and the pool
	// replaces the instance. Default DefaultHealthyTimeout.
	HealthyTimeout time.Duration
	// PollInterval: see DefaultPollInterval.
	PollInterval time.Duration
	// BatchWindow: see DefaultBatchWindow and NoBatchWindow.
	BatchWindow time.Duration
	// Limits: see DefaultLimits; zero fields take the default.
	Limits Limits
	// Clock is the time source; nil means the wall clock.
	Clock Clock
	// WindDownTimeout, if set, is the pool's WindDownTimeout: at first use
	// it must be longer than every target group's deregistration delay.
	// Zero skips the check; compare with [Role.Settings] instead.
	WindDownTimeout time.Duration
	// Logger receives a debug record per call and a warning when a
	// wind-down has to be delivered again; nil discards them.
	Logger *slog.Logger
}

// Role is a [role.Role] that puts the instances of an inner role behind a
// load balancer. Each hook runs the inner role's hook and the load balancer's
// side of it:
//
//   - Provision: the inner Provision, then register in every target group,
//     then wait until every target group reports the instance healthy
//     (bounded by HealthyTimeout). Only then is the server granted.
//   - WindDown: deregister from every target group, so the load balancer
//     sends no new requests and starts draining, then the inner WindDown.
//   - Check: wound down once every target group has finished draining the
//     instance and the inner Check reports it wound down. The load balancer
//     reports a target draining for the whole deregistration delay, even
//     an idle one, so a wind-down lasts at least that long.
//   - Restore: the inner Restore, then register again, then wait until
//     every target group reports the instance healthy (bounded by
//     HealthyTimeout and the hook's context), since registering again
//     restarts the health checks.
//   - Teardown: deregister (harmless if already gone), then the inner
//     Teardown.
//
// Calls are shared between instances: registrations arriving within
// BatchWindow make one call per target group, and one DescribeTargetHealth
// per target group and PollInterval answers every hook waiting on it. A Role
// is safe for concurrent use.
type Role struct {
	inner  role.Role
	cfg    Config
	log    *slog.Logger
	groups []*group

	api API

	mu          sync.Mutex
	windingDown map[string]bool // wind-downs delivered by this process

	setMu    sync.Mutex // held while the settings are read, once
	setDone  bool
	settings []Settings
	setErr   error
}

var _ role.Role = (*Role)(nil)

// New returns a role that registers the instances of inner in the target
// groups of cfg through api (usually an *elasticloadbalancingv2.Client).
func New(inner role.Role, api API, cfg Config) (*Role, error) {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if inner == nil {
		return nil, bad("inner", "must not be nil")
	}
	if api == nil {
		return nil, bad("api", "must not be nil")
	}
	if len(cfg.TargetGroups) == 0 {
		return nil, bad("Config.TargetGroups", "must name at least one target group")
	}
	cfg.TargetGroups = append([]TargetGroup(nil), cfg.TargetGroups...)
	seen := map[TargetGroup]bool{}
	for i, tg := range cfg.TargetGroups {
		field := fmt.Sprintf("Config.TargetGroups[%d]", i)
		if !strings.HasPrefix(tg.ARN, "arn:") || !strings.Contains(tg.ARN, ":targetgroup/") {
			return nil, bad(field+".ARN", "%q is not a target group ARN (arn:aws:elasticloadbalancing:...:targetgroup/...)", tg.ARN)
		}
		if tg.Port < 0 || tg.Port > 65535 {
			return nil, bad(field+".Port", "must be 0 to 65535, got %d", tg.Port)
		}
		if seen[tg] {
			return nil, bad(field, "%s listed twice", tg.ARN)
		}
		seen[tg] = true
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"Config.HealthyTimeout", &cfg.HealthyTimeout, DefaultHealthyTimeout},
		{"Config.PollInterval", &cfg.PollInterval, DefaultPollInterval},
	} {
		if *d.v < 0 {
			return nil, bad(d.field, "must not be negative, got %v", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.BatchWindow == 0 {
		cfg.BatchWindow = DefaultBatchWindow
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	def := DefaultLimits()
	buckets := make([]*ratelimit.Bucket, 2)
	for i, l := range []struct {
		field    string
		set, def ratelimit.Limit
	}{
		{"Config.Limits.Describe", cfg.Limits.Describe, def.Describe},
		{"Config.Limits.Registration", cfg.Limits.Registration, def.Registration},
	} {
		lim := l.set
		if lim == (ratelimit.Limit{}) {
			lim = l.def
		}
		b, err := ratelimit.NewBucket(lim)
		if err != nil {
			return nil, bad(l.field, "is invalid: %v", err)
		}
		buckets[i] = b
	}
	r := &Role{inner: inner, cfg: cfg, log: log, api: api, windingDown: map[string]bool{}}
	for _, tg := range cfg.TargetGroups {
		r.groups = append(r.groups, newGroup(tg, api, cfg, log, buckets[0], buckets[1]))
	}
	return r, nil
}

// Name returns the inner role's name.
func (r *Role) Name() string { return r.inner.Name() }

// LaunchSpec returns the inner role's launch spec.
func (r *Role) LaunchSpec() awsctl.LaunchSpec { return r.inner.LaunchSpec() }

// Inner returns the wrapped role.
func (r *Role) Inner() role.Role { return r.inner }

// Provision runs the inner Provision, registers the instance in every
// target group and waits until each reports it healthy. A target still not
// healthy after HealthyTimeout fails with a *HealthError, and is
// deregistered at once; a registration that keeps being throttled until
// then fails too. The pool then winds the failed server down and replaces
// it.
func (r *Role) Provision(ctx context.Context, inst awsctl.Instance) error {
	if _, err := r.Settings(ctx); err != nil && !transient(err) {
		return err
	}
	if err := r.inner.Provision(ctx, inst); err != nil {
		return err
	}
	start := r.cfg.Clock.Now()
	deadline := start.Add(r.cfg.HealthyTimeout)
	for _, g := range r.groups {
		if err := r.registerBy(ctx, g, inst.ID, deadline); err != nil {
			return fmt.Errorf("elbrole: register %s: %w", inst.ID, err)
		}
	}
	return r.waitHealthy(ctx, inst, start, deadline, true)
}

// waitHealthy waits until every target group reports inst healthy.
//
// A target the load balancer does not use (unused, Target.NotInUse: the
// target group has no load balancer, or the instance's zone is not enabled
// on it) will never turn healthy: that is a configuration error, returned
// at once as a *ZoneError. A target whose health the load balancer cannot
// tell (unavailable, or Elb.InternalError) is the load balancer's fault,
// not the server's: past the deadline it is waited for as long as ctx
// allows, and the error then wraps awsctl.ErrUnavailable, not
// ErrNotHealthy. With takeOut, a target not healthy by the deadline is
// deregistered at once.
func (r *Role) waitHealthy(ctx context.Context, inst awsctl.Instance, start, deadline time.Time, takeOut bool) error {
	last := map[*group]Health{}
	lastErr := map[*group]error{}
	waiting := r.groups
	for {
		still := waiting[:0:0]
		for _, g := range waiting {
			h, err := g.health(ctx, inst.ID)
			switch {
			case ctx.Err() != nil:
				return r.notYet(inst.ID, g, last[g], ctx.Err())
			case err != nil && !transient(err):
				return fmt.Errorf("elbrole: wait for %s to be healthy: %w", inst.ID, err)
			case err != nil:
				lastErr[g] = err
				still = append(still, g)
			case h.NotInUse():
				// Nothing the server does changes this; tell the operator.
				_ = r.deregister(ctx, inst.ID, true)
				return &ZoneError{Instance: inst.ID, Zone: inst.Zone, TargetGroup: g.tg.ARN, Description: h.Description}
			case !h.Healthy():
				last[g], lastErr[g] = h, nil
				still = append(still, g)
			}
		}
		waiting = still
		if len(waiting) == 0 {
			return nil
		}
		now := r.cfg.Clock.Now()
		wait := min(r.cfg.PollInterval, deadline.Sub(now))
		if !now.Before(deadline) {
			g, lbFault := waiting[0], true
			for _, w := range waiting {
				if !last[w].LoadBalancerFault() {
					g, lbFault = w, false
					break
				}
			}
			if !lbFault {
				h := last[g]
				if takeOut {
					// Take the target out at once: a load balancer whose
					// targets are all unhealthy sends requests to every
					// one of them.
					_ = r.deregister(ctx, inst.ID, true)
				}
				return &HealthError{Instance: inst.ID, TargetGroup: g.tg.ARN, State: h.State, Reason: h.Reason,
					Description: h.Description, Waited: now.Sub(start), Err: lastErr[g]}
			}
			wait = r.cfg.PollInterval // the load balancer's fault: wait while ctx allows
		}
		if err := r.cfg.Clock.Sleep(ctx, wait); err != nil {
			return r.notYet(inst.ID, waiting[0], last[waiting[0]], err)
		}
	}
}

// notYet is the error of a wait for health that ctx ended.
func (r *Role) notYet(id string, g *group, h Health, err error) error {
	if h.State == "" {
		return fmt.Errorf("elbrole: wait for %s to be healthy: %w", id, err)
	}
	if h.LoadBalancerFault() {
		err = errors.Join(err, awsctl.ErrUnavailable)
	}
	return fmt.Errorf("elbrole: wait for %s to be healthy in %s (last %s %s): %w", id, g.tg.ARN, h.State, h.Reason, err)
}

// registerBy registers id in g, trying again through throttling and
// service failures until deadline.
func (r *Role) registerBy(ctx context.Context, g *group, id string, deadline time.Time) error {
	for {
		err := g.register.do(ctx, id)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		now := r.cfg.Clock.Now()
		if !now.Before(deadline) {
			return err
		}
		if err := r.cfg.Clock.Sleep(ctx, min(r.cfg.PollInterval, deadline.Sub(now))); err != nil {
			return err
		}
	}
}

// WindDown deregisters the instance from every target group, so the load
// balancer sends it no new requests and drains those it has, then runs the
// inner WindDown. If a deregistration fails, the inner WindDown is not run
// (the server must keep serving what the load balancer still sends it) and
// the pool tries again. A target group that no longer exists
// (TargetGroupNotFound) has nothing to drain and is skipped.
//
// A deregistration whose ctx ends before it is sent is not sent: the pool
// ends a term's hooks when its replica stops leading, and the new leader may
// restore the server meanwhile. The role then forgets the wind-down too.
func (r *Role) WindDown(ctx context.Context, inst awsctl.Instance) error {
	was := r.isWindingDown(inst.ID)
	r.setWindingDown(inst.ID, true)
	// A deleted target group sends the server nothing and holds nothing to
	// drain: failing here would repeat the wind-down forever.
	if err := r.deregister(ctx, inst.ID, true); err != nil {
		if ctx.Err() != nil {
			// Otherwise Check, polling the server's health once another
			// leader has put it back in service, would deregister it.
			r.setWindingDown(inst.ID, was)
		}
		return fmt.Errorf("elbrole: wind down %s: %w", inst.ID, err)
	}
	return r.inner.WindDown(ctx, inst)
}

// deregister removes id from every target group. An instance the load
// balancer does not know (InvalidTarget: it no longer exists) has nothing to
// drain; with missingGroupOK, neither has a target group that is gone.
func (r *Role) deregister(ctx context.Context, id string, missingGroupOK bool) error {
	var errs []error
	for _, g := range r.groups {
		err := g.deregister.do(ctx, id)
		switch {
		case err == nil, isCode(err, codeInvalidTarget):
		case missingGroupOK && isCode(err, codeTargetGroupNotFound):
		default:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Check reports the server wound down once no target group lists it any
// more (its draining is over) and the inner Check reports it wound down;
// until the load balancer has drained it, the server is neither idle nor
// wound down and the inner Check is not asked.
//
// A target Check finds still in service although this role delivered its
// wind-down (a Restore that registered it again but failed afterwards) is
// deregistered again: otherwise the wind-down would never end, and the pool
// would terminate a server still taking requests when the wind-down timed
// out.
func (r *Role) Check(ctx context.Context, inst awsctl.Instance) (role.Status, error) {
	gone, unhealthy := true, false
	for _, g := range r.groups {
		h, err := g.health(ctx, inst.ID)
		switch {
		case isCode(err, codeTargetGroupNotFound):
			continue // deleted: nothing left to drain
		case err != nil:
			return role.Status{}, fmt.Errorf("elbrole: check %s: %w", inst.ID, err)
		}
		switch {
		case h.State == types.TargetHealthStateEnumUnused:
			// Not registered, or registered but sent nothing (instance
			// stopped, zone not served): either way nothing to drain.
		case h.Draining():
			gone = false
		default:
			gone = false
			if !r.isWindingDown(inst.ID) {
				// In service: the pool polls this to replace a server the
				// load balancer keeps failing.
				unhealthy = unhealthy || h.State == types.TargetHealthStateEnumUnhealthy
				continue
			}
			r.log.LogAttrs(ctx, slog.LevelWarn, "elbrole: target still in service during its wind-down; deregistering again",
				slog.String("instance", inst.ID), slog.String("target_group", g.tg.ARN), slog.String("state", string(h.State)))
			if err := g.deregister.do(ctx, inst.ID); err != nil && !isCode(err, codeInvalidTarget) {
				return role.Status{}, fmt.Errorf("elbrole: check %s: %w", inst.ID, err)
			}
		}
	}
	if !gone {
		return role.Status{Unhealthy: unhealthy}, nil
	}
	return r.inner.Check(ctx, inst)
}

// ReportsHealth reports true: for a server in service, Check says whether
// the load balancer reads it unhealthy in any target group, and the pool
// replaces one that stays so (role.HealthReporter).
func (r *Role) ReportsHealth() bool { return true }

// Restore runs the inner Restore, so the server takes work again, then
// registers it in every target group and waits, as Provision does, until
// every target group reports it healthy: registering again restarts the
// health checks, and the server is not capacity until they pass. The wait is
// bounded by HealthyTimeout and by ctx, so give the pool a HookTimeout longer
// than the target groups' checks take (healthy threshold times interval).
// Until Restore succeeds the wind-down stands: a Check in between
// deregisters the server again.
func (r *Role) Restore(ctx context.Context, inst awsctl.Instance) error {
	if _, err := r.Settings(ctx); err != nil && !transient(err) {
		return err
	}
	if err := r.inner.Restore(ctx, inst); err != nil {
		return err
	}
	start := r.cfg.Clock.Now()
	deadline := start.Add(r.cfg.HealthyTimeout)
	for _, g := range r.groups {
		if err := r.registerBy(ctx, g, inst.ID, deadline); err != nil {
			return fmt.Errorf("elbrole: restore %s: %w", inst.ID, err)
		}
	}
	if err := r.waitHealthy(ctx, inst, start, deadline, false); err != nil {
		return fmt.Errorf("elbrole: restore %s: %w", inst.ID, err)
	}
	r.setWindingDown(inst.ID, false)
	return nil
}

// Teardown deregisters the instance from every target group (a target
// already gone, or a target group deleted, is no error), then runs the inner
// Teardown. Both run even if the other fails; the errors are joined.
func (r *Role) Teardown(ctx context.Context, inst awsctl.Instance) error {
	var errs []error
	if err := r.deregister(ctx, inst.ID, true); err != nil {
		errs = append(errs, fmt.Errorf("elbrole: teardown %s: %w", inst.ID, err))
	}
	if err := r.inner.Teardown(ctx, inst); err != nil {
		errs = append(errs, err)
	}
	r.mu.Lock()
	delete(r.windingDown, inst.ID)
	r.mu.Unlock()
	for _, g := range r.groups {
		g.forget(inst.ID)
	}
	return errors.Join(errs...)
}

// Health returns what each target group (in Config order) last reported
// about the instance, from a reading at most PollInterval old.
func (r *Role) Health(ctx context.Context, instanceID string) ([]Health, error) {
	out := make([]Health, len(r.groups))
	for i, g := range r.groups {
		h, err := g.health(ctx, instanceID)
		if err != nil {
			return nil, fmt.Errorf("elbrole: health of %s: %w", instanceID, err)
		}
		out[i] = h
	}
	return out, nil
}

func (r *Role) setWindingDown(id string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.windingDown[id] = true
	} else {
		delete(r.windingDown, id)
	}
}

func (r *Role) isWindingDown(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.windingDown[id]
}
