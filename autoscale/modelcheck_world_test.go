package autoscale_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// mcCloud sits between the scaler and the sim. It checks, at the call, the
// invariants that only the call itself shows (who is terminated with what
// tags, which instances a call names, what a replacement replaces), and
// records launches for the per-pass checks.
type mcCloud struct {
	sim *ec2sim.Sim
	run *mcRun

	mu       sync.Mutex
	launches []mcLaunch
}

type mcLaunch struct {
	pass     int
	pool     string
	market   awsctl.Market
	capacity int
	replaces string
	insts    []awsctl.Instance
	zones    []string // offerings' zones, most preferred first
	// minWeight is the lightest offering's weight: a need is launched
	// rounded up to up to that less one unit more.
	minWeight int
	// winding is the set of the pool's servers winding down when the call
	// was made: a Step may pass twice, and a wind-down its second pass
	// starts did not exist when its first pass launched.
	winding map[string]bool
}

var _ awsctl.CloudClient = (*mcCloud)(nil)

func (c *mcCloud) ListInstances(ctx context.Context, f awsctl.ListFilter) ([]awsctl.Instance, error) {
	return c.sim.ListInstances(ctx, f)
}

func (c *mcCloud) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	r := c.run
	if x := req.Tags[pool.TagReplaces]; x != "" {
		var live []string
		for _, inst := range c.sim.Instances() {
			if inst.Tags[pool.TagReplaces] == x && !r.lost(inst) {
				live = append(live, inst.ID)
			}
		}
		if len(live) > 0 {
			r.violate("replaced-twice", "launching a replacement for %s while its replacement %v is on its way", x, live)
		}
		if by := r.swappedIn[x]; by != "" && r.lastRest[x] < r.swapPass[x] {
			if inst, ok := c.sim.Instance(by); ok && !r.lost(inst) {
				r.violate("replaced-twice", "launching a replacement for %s, already replaced by %s, which still works", x, by)
			}
		}
	}
	winding := map[string]bool{}
	for _, inst := range c.sim.Instances() {
		if _, ok := inst.Tags[pool.TagWindDownStart]; ok && inst.Tags[pool.TagPool] == req.Tags[pool.TagPool] {
			winding[inst.ID] = true
		}
	}
	insts, err := c.sim.Launch(ctx, req)
	l := mcLaunch{pass: r.curPass(), pool: req.Tags[pool.TagPool], market: req.Market, capacity: req.Capacity, replaces: req.Tags[pool.TagReplaces],
		insts: insts, winding: winding}
	for _, o := range req.Offerings {
		l.zones = append(l.zones, o.Zone)
		if l.minWeight == 0 || o.Weight < l.minWeight {
			l.minWeight = o.Weight
		}
	}
	c.mu.Lock()
	c.launches = append(c.launches, l)
	c.mu.Unlock()
	return insts, err
}

func (c *mcCloud) Terminate(ctx context.Context, ids []string) ([]string, error) {
	r := c.run
	for _, id := range ids {
		inst, ok := c.sim.Instance(id)
		if !ok {
			continue
		}
		if !r.touchable(inst, "terminate") {
			continue
		}
		_, winding := inst.Tags[pool.TagWindDownStart]
		if m := inst.Tags[pool.TagManager]; m != "" && !winding && working(inst.State) {
			r.violate("granted-terminated-without-wind-down", "terminating %s, granted to %s, without a wind-down", id, m)
		}
		// A server whose role still reports it busy (its drain is under
		// way) is waited for past its deadline, unless its hooks fail or
		// EC2 reclaims it (RELIABILITY: long jobs are not cut short).
		if start, busy := r.srv.busy(id, time.Now()); busy && working(inst.State) && !r.noticed[id] && !r.srv.everHung(id) {
			r.violate("cut-short", "terminating %s while its role reports it busy (drain since %s, not done) and no hook of it failed",
				id, start.Format(time.RFC3339))
		}
		// With hourly billing a server removed for less demand, or swapped
		// for spot, goes in the last part of its paid hour (RELIABILITY:
		// paid time is not thrown away). Shutdown drains at once.
		why := r.windWhy[id] // the pass's goroutine keeps it
		if ps := r.poolSpec(inst.Tags[pool.TagPool]); ps != nil && ps.billing == pool.Hourly && r.curPass() < r.sc.passes() &&
			working(inst.State) && voluntaryScaleIn(why) && !r.noticed[id] && inst.Tags[pool.TagInterrupted] == "" && inst.Tags[pool.TagRetire] == "" {
			if into := time.Since(inst.LaunchTime) % time.Hour; into < time.Hour-mcWindDownTimeout-pool.HourlyMargin {
				r.violate("hour-thrown", "terminating hourly %s %v into its paid hour (wound down for %q)", id, into.Round(time.Second), why)
			}
		}
	}
	return c.sim.Terminate(ctx, ids)
}

// voluntaryScaleIn reports whether a wind-down's reason is less demand or a
// swap to spot: the removals hourly billing times to the paid hour.
func voluntaryScaleIn(reason string) bool {
	return strings.HasPrefix(reason, "manager holds") || reason == "spare capacity" || strings.HasPrefix(reason, "replaced by")
}

func (c *mcCloud) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	for _, id := range ids {
		if inst, ok := c.sim.Instance(id); ok {
			c.run.touchable(inst, "tag")
		}
	}
	return c.sim.Tag(ctx, ids, tags)
}

func (c *mcCloud) Untag(ctx context.Context, ids []string, keys []string) error {
	for _, id := range ids {
		if inst, ok := c.sim.Instance(id); ok {
			c.run.touchable(inst, "untag")
		}
	}
	return c.sim.Untag(ctx, ids, keys)
}

// working reports whether an instance in state s is capacity: pending or
// running. Stopped, stopping, shutting-down and terminated instances do no
// work.
func working(s awsctl.State) bool { return s == awsctl.StatePending || s == awsctl.StateRunning }

// mcNotices is the scaler's spot notice feed: the sim's notices, plus
// rebalance recommendations the scenario injects (the sim issues those only
// long before a drawn interruption).
type mcNotices struct {
	sim *ec2sim.Sim

	mu       sync.Mutex
	injected []awsctl.SpotNotice
}

func (n *mcNotices) SpotNotices(ctx context.Context) ([]awsctl.SpotNotice, error) {
	out, err := n.sim.SpotNotices(ctx)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out = append(out, n.injected...)
	n.injected = nil
	return out, nil
}

func (n *mcNotices) inject(s awsctl.SpotNotice) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.injected = append(n.injected, s)
}

// mcServers simulates what runs on the instances: hooks that take a random
// (virtual) time, some that hang until their context ends, provisioning
// that sometimes fails, and a drain that takes a while once a wind-down is
// asked for. Durations are functions of the seed, the instance and the
// hook, so both runs of a seed see the same servers. The servers outlive a
// crash of the scaler.
type mcServers struct {
	seed  int64
	chaos func() bool // hangs and failures only happen in the chaos phase

	mu         sync.Mutex
	drainStart map[string]time.Time // when the latest wind-down reached the server
	hanging    map[string]int       // hooks hanging now, per instance
	failed     map[string]bool      // provisioning failed at least once
	tornDown   map[string]bool      // Teardown was called: the server is leaving
	hung       map[string]bool      // a hook of the server hung at least once
	drainLen   map[string]time.Duration
	sickFrom   map[string]time.Time // when a server turns unhealthy for good (some, in the chaos phase)
}

func newServersModel(seed int64, chaos func() bool) *mcServers {
	return &mcServers{seed: seed, chaos: chaos, drainStart: map[string]time.Time{}, hanging: map[string]int{}, failed: map[string]bool{},
		tornDown: map[string]bool{}, hung: map[string]bool{}, drainLen: map[string]time.Duration{},
		sickFrom: map[string]time.Time{}}
}

// draw returns a number in [0, 1) for (instance, what), the same in every
// run of the seed.
func (m *mcServers) draw(id, what string) float64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s/%s", m.seed, id, what)
	return float64(h.Sum64()>>11) / (1 << 53)
}

func (m *mcServers) span(id, what string, maxDur time.Duration) time.Duration {
	return time.Duration(m.draw(id, what) * float64(maxDur))
}

// wait lets d pass on the bubble's clock, or hangs until ctx ends when the
// hook hangs.
func (m *mcServers) wait(ctx context.Context, id string, d time.Duration, hang bool) error {
	if hang {
		m.mu.Lock()
		m.hanging[id]++
		m.hung[id] = true
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			m.hanging[id]--
			m.mu.Unlock()
		}()
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *mcServers) hangs(id, what string, p float64) bool {
	if what == "provision" {
		// Whether a server's provisioning hangs is a property of the
		// server, so that a crashed run, which runs it again, meets the
		// same fate as the reference run.
		return m.chaos() && m.draw(id, what+"/hang") < p
	}
	return m.chaos() && m.draw(id, what+"/hang/"+time.Now().String()) < p
}

func (m *mcServers) isHanging(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hanging[id] > 0
}

// tearingDown reports whether the server's Teardown was called: a server
// torn down is leaving, and no longer one the pool could put back to work.
func (m *mcServers) tearingDown(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tornDown[id]
}

// busy reports whether the server drains now: a wind-down reached it and
// its drain has not finished.
func (m *mcServers) busy(id string, now time.Time) (time.Time, bool) {
	m.mu.Lock()
	start, ok := m.drainStart[id]
	m.mu.Unlock()
	return start, ok && !m.drainDone(id, now)
}

// sick reports whether the server is unhealthy now, and since when.
func (m *mcServers) sick(id string, now time.Time) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	from, ok := m.sickFrom[id]
	return from, ok && !now.Before(from)
}

func (m *mcServers) everHung(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hung[id]
}

func (m *mcServers) provisionFailed(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed[id]
}

// drainDone reports whether the server's drain has finished by now: the
// wind-down reached it and its drain time has passed.
func (m *mcServers) drainDone(id string, now time.Time) bool {
	m.mu.Lock()
	start, ok := m.drainStart[id]
	d := m.drainLen[id]
	m.mu.Unlock()
	return ok && !now.Before(start.Add(d))
}

func (m *mcServers) role(name string) role.Role {
	r, err := role.New(name, awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(ctx context.Context, inst awsctl.Instance) error {
			err := m.wait(ctx, inst.ID, m.span(inst.ID, "provision", 90*time.Second), m.hangs(inst.ID, "provision", 0.08))
			if err == nil && m.chaos() && m.draw(inst.ID, "provision-fails") < 0.03 {
				err = fmt.Errorf("provisioning %s failed", inst.ID)
			}
			if err != nil {
				m.mu.Lock()
				m.failed[inst.ID] = true
				m.mu.Unlock()
			}
			if err == nil && m.chaos() && m.draw(inst.ID, "sick") < 0.05 {
				// One server in twenty falls sick within ten minutes of
				// being ready, and stays sick.
				m.mu.Lock()
				if _, ok := m.sickFrom[inst.ID]; !ok {
					m.sickFrom[inst.ID] = time.Now().Add(m.span(inst.ID, "sick-after", 10*time.Minute))
				}
				m.mu.Unlock()
			}
			return err
		},
		WindDown: func(ctx context.Context, inst awsctl.Instance) error {
			if err := m.wait(ctx, inst.ID, m.span(inst.ID, "wind-down", 10*time.Second), m.hangs(inst.ID, "wind-down", 0.05)); err != nil {
				return err
			}
			m.mu.Lock()
			if _, ok := m.drainStart[inst.ID]; !ok {
				now := time.Now()
				m.drainStart[inst.ID] = now
				// Most jobs end within minutes; in the chaos phase one in
				// ten runs past the wind-down timeout (10 min), a long job
				// the pool must wait for.
				d := m.span(inst.ID, "drain", 3*time.Minute)
				if m.chaos() && m.draw(inst.ID, "long-job/"+now.String()) < 0.1 {
					d = 11*time.Minute + m.span(inst.ID, "long-drain", 3*time.Minute)
				}
				m.drainLen[inst.ID] = d
			}
			m.mu.Unlock()
			return nil
		},
		Check: func(ctx context.Context, inst awsctl.Instance) (role.Status, error) {
			if err := m.wait(ctx, inst.ID, m.span(inst.ID, "check", 5*time.Second), m.hangs(inst.ID, "check", 0.03)); err != nil {
				return role.Status{}, err
			}
			done := m.drainDone(inst.ID, time.Now())
			m.mu.Lock()
			_, asked := m.drainStart[inst.ID]
			m.mu.Unlock()
			_, sick := m.sick(inst.ID, time.Now())
			return role.Status{Idle: !asked || done, WoundDown: done, Unhealthy: sick}, nil
		},
		Restore: func(ctx context.Context, inst awsctl.Instance) error {
			if err := m.wait(ctx, inst.ID, m.span(inst.ID, "restore", 10*time.Second), m.hangs(inst.ID, "restore", 0.05)); err != nil {
				return err
			}
			m.mu.Lock()
			delete(m.drainStart, inst.ID)
			m.mu.Unlock()
			return nil
		},
		Teardown: func(ctx context.Context, inst awsctl.Instance) error {
			m.mu.Lock()
			m.tornDown[inst.ID] = true
			m.mu.Unlock()
			return m.wait(ctx, inst.ID, m.span(inst.ID, "teardown", 5*time.Second), false)
		},
	})
	if err != nil {
		panic(err)
	}
	return r
}

// mcManager is a scenario's manager: a Fixed, Queue or TargetTracking fed
// the scenario's demand every pass, whose Demand may hang until its context
// ends during the scenario's hang window.
type mcManager struct {
	manager.Manager
	spec  *mcManagerSpec
	pass  func() int
	asked func(manager.Request) // records what the manager asked, for compareRuns
	fixed *manager.Fixed
	queue *manager.Queue
	track *manager.TargetTracking

	// held is the host's list of the manager's servers, kept from the
	// notices alone, as an embedder keeps it.
	mu   sync.Mutex
	held map[string]bool
}

func (m *mcManager) Notify(n manager.Notice) {
	m.Manager.Notify(n)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held == nil {
		m.held = map[string]bool{}
	}
	switch n.Kind {
	case manager.Granted, manager.Restored, manager.WindDown, manager.Interrupted:
		m.held[n.Server.ID] = true
	case manager.Revoked:
		delete(m.held, n.Server.ID)
	}
}

func (m *mcManager) view() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.held))
}

func newMCManager(spec *mcManagerSpec, pass func() int) *mcManager {
	m := &mcManager{spec: spec, pass: pass}
	var err error
	switch spec.kind {
	case mcFixed:
		var opts []manager.FixedOption
		if spec.zoneMinimums != nil {
			opts = append(opts, manager.WithZoneMinimums(spec.zoneMinimums))
		}
		m.fixed, err = manager.NewFixed(spec.name, 0, opts...)
		m.Manager = m.fixed
	case mcQueue:
		cfg := manager.QueueConfig{JobsPerUnit: spec.jobsPerServer, ScaleDownDelay: spec.delay, ZoneMinimums: spec.zoneMinimums}
		if spec.longPct > 0 {
			cfg.Classes = []manager.JobClass{mcLongJobs[spec.longJob], mcShortJob}
		}
		m.queue, err = manager.NewQueue(spec.name, cfg)
		m.Manager = m.queue
	case mcTracking:
		// The scenario's demand is exact, zeros included, and its phases
		// expect a drop to be followed within a few passes: no scale-in cap,
		// and a zero metric is real.
		m.track, err = manager.NewTargetTracking(spec.name, manager.TargetTrackingConfig{TargetPerServer: 100,
			Tolerance: -1, ScaleInCooldown: spec.delay, ZoneMinimums: spec.zoneMinimums,
			MaxScaleInPerPass: -1, ZeroIsIdle: true})
		m.Manager = m.track
	}
	if err != nil {
		panic(err)
	}
	return m
}

// feed tells the manager the demand of this pass, as its host would.
func (m *mcManager) feed(now time.Time, pass int) {
	d := m.spec.demandAt(pass)
	switch {
	case m.fixed != nil:
		_ = m.fixed.Set(d)
	case m.queue != nil && m.spec.longPct > 0:
		pct := m.spec.longPct
		if pass >= mcChaosPasses {
			pct = m.spec.finalLongPct
		}
		long, short := m.spec.jobs(d, pct)
		m.queue.ObserveClasses(now, map[string]manager.JobCount{
			mcLongJobs[m.spec.longJob].Name: {Queued: long - long/2, Running: long / 2},
			mcShortJob.Name:                 {Queued: short - short/2, Running: short / 2},
		})
	case m.queue != nil:
		jobs := d * m.spec.jobsPerServer
		running := jobs / 2
		m.queue.Observe(now, jobs-running, running)
	case m.track != nil:
		m.track.Observe(now, float64(d*100))
	}
}

func (m *mcManager) Demand(ctx context.Context, s manager.State) (manager.Request, error) {
	if m.spec.hangs(m.pass()) {
		<-ctx.Done()
		return manager.Request{}, ctx.Err()
	}
	req, err := m.Manager.Demand(ctx, s)
	if err == nil && m.asked != nil {
		m.asked(req)
	}
	return req, err
}

// fairShare is the documented clamp of targets that together exceed Max:
// equal shares, what a small manager leaves going to the others.
func fairShare(targets []int, maxCap int) []int {
	out := slices.Clone(targets)
	total := 0
	for i := range out {
		out[i] = min(out[i], maxCap)
		total += out[i]
	}
	if total <= maxCap {
		return out
	}
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return out[a] - out[b] })
	left := maxCap
	for k, i := range order {
		share := left / (len(order) - k)
		out[i] = min(out[i], share)
		left -= out[i]
	}
	return out
}

// mcRatedBook is a scenario's price book, which knows an hourly
// interruption rate (mcInterruptionRate) for every spot offering.
type mcRatedBook struct{ *spotprice.Book }

func (mcRatedBook) InterruptionRate(string, string, time.Time) (float64, bool) {
	return mcInterruptionRate, true
}

var _ spotprice.InterruptionRater = mcRatedBook{}
