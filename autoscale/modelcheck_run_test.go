package autoscale_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing/synctest"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// mcViolation is one invariant broken at one pass of one run.
type mcViolation struct {
	invariant string
	run       string
	pass      int
	detail    string
}

func (v mcViolation) String() string {
	return fmt.Sprintf("[%s] %s run, pass %d: %s", v.invariant, v.run, v.pass, v.detail)
}

// mcRun is one run of a scenario: the uncrashed reference, or the run whose
// scaler dies at a cloud call and is replaced by a new one.
type mcRun struct {
	sc    *mcScenario
	label string
	start time.Time
	sim   *ec2sim.Sim
	cloud *mcCloud
	feed  *mcNotices
	srv   *mcServers
	dying *dying // counts calls; kills the scaler in the crashed run

	scaler   *autoscale.Scaler
	scalers  []*autoscale.Scaler
	managers [][]*mcManager // per pool, the current process's
	pass     int
	passNow  atomic.Int64 // pass, for the scaler's goroutines (hooks, managers, cloud calls)

	crashed    bool
	crashPass  int
	chaosCalls int             // cloud calls made during the chaos phase (reference run)
	lostUnits  int             // capacity launched by the dead process and not listed yet when it died
	inFlight   map[string]bool // those instances
	// reprovision are the servers whose Provision hook ran when the
	// process died: the next one runs it again, from the start.
	reprovision map[string]bool
	hit         map[string]bool // servers hit from outside (stopped, terminated, interrupted)

	mu         sync.Mutex
	events     []autoscale.Event // of the current pass
	violations []mcViolation
	seen       map[string]bool // violation keys already reported, so a state that lasts is reported once

	foreign    map[string]awsctl.Instance
	swappedIn  map[string]string         // replaced server -> the replacement that took its place
	swapPass   map[string]int            // replaced server -> pass its replacement took its place
	replaced   map[string]bool           // servers a replacement was launched for
	noticed    map[string]bool           // spot servers with an interruption notice
	lastWind   map[string]int            // server -> pass of its latest wind-down event
	windWhy    map[string]string         // server -> reason of its latest wind-down event
	lastRest   map[string]int            // server -> pass of its latest restore event
	workFrom   map[string]time.Time      // server -> start of the pass of its latest grant or restore
	asked      map[mcAsk]string          // what each manager asked at each pass (demandOf)
	provFailed map[string]bool           // servers whose provisioning failed (a provision-failed event)
	held       map[string]map[string]int // at the end of the settle phase: pool -> manager -> held
	lastNeed   map[string]time.Time      // pool -> start of the latest pass it showed it needed capacity it holds (see mcRun.needEvent)
	full       map[string]bool           // at the end of the settle phase: pools without room for their lightest type
	roomBefore map[string]int            // pool -> its room under Max at the end of the previous pass

	logf func(format string, args ...any) // with -modelcheck.trace: every pass's events and instances
}

func newMCRun(sc *mcScenario, label string, crashAfter int) *mcRun {
	r := &mcRun{sc: sc, label: label, start: time.Now(), seen: map[string]bool{}, foreign: map[string]awsctl.Instance{},
		swappedIn: map[string]string{}, swapPass: map[string]int{}, replaced: map[string]bool{}, noticed: map[string]bool{},
		lastWind: map[string]int{}, windWhy: map[string]string{}, lastRest: map[string]int{},
		workFrom: map[string]time.Time{}, hit: map[string]bool{}, provFailed: map[string]bool{}, inFlight: map[string]bool{}, reprovision: map[string]bool{}, asked: map[mcAsk]string{}, lastNeed: map[string]time.Time{}, roomBefore: map[string]int{}}
	sim, err := ec2sim.New(ec2sim.Config{
		Clock:         time.Now,
		BootDelay:     ec2sim.Uniform(30*time.Second, 90*time.Second),
		ShutdownDelay: ec2sim.Uniform(10*time.Second, 60*time.Second),
		ListDelay:     ec2sim.Uniform(0, sc.listDelay),
		SpotPrices:    sc.spotPrices(r.start),
		Seed:          sc.seed,
	})
	if err != nil {
		panic(err)
	}
	r.sim = sim
	r.cloud = &mcCloud{sim: sim, run: r}
	r.feed = &mcNotices{sim: sim}
	r.srv = newServersModel(sc.seed, func() bool { return r.curPass() < mcChaosPasses })
	left := 1 << 30
	if crashAfter >= 0 {
		left = crashAfter
	}
	r.dying = &dying{CloudClient: r.cloud, left: left}
	r.placeForeign()
	r.startScaler(r.dying)
	return r
}

// placeForeign launches instances the scaler must never touch: another
// owner with the scaler's pool tag, an owner that is a glob matching the
// scaler's identity, a sibling identity, and no owner at all.
func (r *mcRun) placeForeign() {
	for _, tags := range []map[string]string{
		{pool.TagOwner: "other-scaler", pool.TagPool: mcForeignPool, pool.TagRole: mcForeignPool},
		{pool.TagOwner: "mc-*", pool.TagPool: mcForeignPool},
		{pool.TagOwner: mcIdentity + "-2", pool.TagPool: mcForeignPool, pool.TagManager: "m0"},
		{pool.TagPool: mcForeignPool},
	} {
		insts, err := r.sim.Launch(context.Background(), awsctl.LaunchRequest{
			Spec:      awsctl.LaunchSpec{ImageID: "ami-87654321"},
			Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: mcZones[0], Weight: 1}},
			Market:    awsctl.MarketOnDemand, Capacity: 1, Tags: tags,
		})
		if err != nil {
			panic(err)
		}
		r.foreign[insts[0].ID] = insts[0]
	}
}

// startScaler starts a scaler process: new managers, a new price book, a
// new scaler over the same cloud with the same identity. Nothing in memory
// survives from an earlier process; the servers (hooks) do.
func (r *mcRun) startScaler(cloud awsctl.CloudClient) {
	r.managers = nil
	var pools []pool.Config
	for _, ps := range r.sc.pools {
		var mgrs []*mcManager
		cfg := pool.Config{
			Name:             ps.name,
			Role:             &mcImageRole{Role: r.srv.role("worker-" + ps.name), from: ps.imageAt, pass: r.curPass},
			Types:            ps.types,
			Zones:            ps.zones,
			Min:              ps.min,
			Max:              ps.max,
			Billing:          ps.billing,
			Market:           ps.market,
			LaunchBatch:      ps.batch,
			WindDownTimeout:  mcWindDownTimeout,
			ProvisionTimeout: 3 * time.Minute,
			HookTimeout:      30 * time.Second,
			Disruption:       pool.Disruption{MaxServers: ps.budget},
		}
		for _, ms := range ps.managers {
			m := newMCManager(ms, r.curPass)
			m.asked = func(req manager.Request) {
				r.mu.Lock()
				r.asked[mcAsk{ps.name, ms.name, r.curPass()}] = demandOf(req)
				r.mu.Unlock()
			}
			mgrs = append(mgrs, m)
			cfg.Managers = append(cfg.Managers, m)
		}
		if ps.market != pool.OnDemand {
			b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: r.sim, Reservations: r.sim, SpotTTL: time.Minute})
			if err != nil {
				panic(err)
			}
			cfg.Prices = &mcRatedBook{b}
		}
		r.managers = append(r.managers, mgrs)
		pools = append(pools, cfg)
	}
	s, err := autoscale.New(cloud, pools, autoscale.Options{
		Identity:     mcIdentity,
		Interval:     mcInterval,
		BusyInterval: mcInterval,
		Clock:        time.Now,
		HookWait:     2 * time.Second,
		SpotNotices:  r.feed,
		Observer: autoscale.ObserverFunc(func(e autoscale.Event) {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}),
	})
	if err != nil {
		panic(err)
	}
	r.scaler = s
	r.scalers = append(r.scalers, s)
}

// violate records a broken invariant at the current pass; the same
// invariant with the same detail is recorded once per run.
func (r *mcRun) violate(invariant, format string, args ...any) {
	detail := fmt.Sprintf(format, args...)
	r.violateOnce(detail, invariant, "%s", detail)
}

// violateOnce records a broken invariant unless one with the same key was
// recorded before in the run: a state that lasts is reported at its first
// pass.
func (r *mcRun) violateOnce(key, invariant, format string, args ...any) {
	detail := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	key = invariant + "\x00" + key
	if r.seen[key] {
		return
	}
	if r.logf != nil {
		r.logf("VIOLATION [%s] pass %d: %s", invariant, r.curPass(), detail)
	}
	r.seen[key] = true
	r.violations = append(r.violations, mcViolation{invariant: invariant, run: r.label, pass: r.curPass(), detail: detail})
}

// touchable checks that a call names only the scaler's own instances.
func (r *mcRun) touchable(inst awsctl.Instance, op string) bool {
	if inst.Tags[pool.TagOwner] == mcIdentity {
		return true
	}
	r.violate("foreign-touched", "%s of %s, owned by %q", op, inst.ID, inst.Tags[pool.TagOwner])
	return false
}

// play runs the whole scenario.
func (r *mcRun) play() {
	total := r.sc.passes()
	for r.pass = 0; r.pass < total; r.pass++ {
		r.passNow.Store(int64(r.pass))
		slot := r.start.Add(time.Duration(r.pass+1) * mcInterval)
		r.before()
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		err := r.scaler.Step(ctx)
		cancel()
		if r.dying.dead() && !r.crashed {
			r.crash()
		} else if errors.Is(err, context.DeadlineExceeded) {
			r.violate("host-calls-bounded", "the pass ran until its caller's deadline: %v", err)
		}
		r.after()
		if r.pass == mcChaosPasses-1 {
			r.chaosCalls = r.dying.calls
		}
		time.Sleep(time.Until(slot))
		// What happens at the slot's instant happens before the pass: a
		// hook that hangs until its timeout (HookTimeout is the interval)
		// returns at the very instant the next pass starts, and without
		// this wait, which of the two goes first is up to the scheduler,
		// so a seed would not always replay the same run.
		synctest.Wait()
	}
	r.shutdown()
}

// curPass is the pass in progress; safe from any goroutine.
func (r *mcRun) curPass() int { return int(r.passNow.Load()) }

// before applies the scenario's script for this pass: demand, capacity and
// actions from outside.
func (r *mcRun) before() {
	now := time.Now()
	for _, mgrs := range r.managers {
		for _, m := range mgrs {
			m.feed(now, r.pass)
		}
	}
	if r.pass == mcChaosPasses {
		for _, c := range r.sc.capacity {
			r.sim.SetCapacity(c.market, c.typ, c.zone, -1)
		}
	}
	for _, c := range r.sc.capacity {
		if c.pass == r.pass && r.pass < mcChaosPasses {
			r.sim.SetCapacity(c.market, c.typ, c.zone, c.n)
		}
	}
	for _, o := range r.sc.outside {
		if o.pass == r.pass {
			r.outside(o)
		}
	}
	for _, ps := range r.sc.pools {
		if ps.refreshAt == r.pass {
			if err := r.scaler.Refresh(ps.name); err != nil {
				r.violate("refresh", "Refresh(%q): %v", ps.name, err)
			}
		}
	}
}

// mcImageRole launches a new image from a pass on, as a host rolling out
// a new AMI does.
type mcImageRole struct {
	role.Role
	from int
	pass func() int
}

// ReportsHealth: the model's Check reports sick servers in service.
func (m *mcImageRole) ReportsHealth() bool { return true }

func (m *mcImageRole) LaunchSpec() awsctl.LaunchSpec {
	spec := m.Role.LaunchSpec()
	if m.from >= 0 && m.pass() >= m.from {
		spec.ImageID = "ami-00000002"
	}
	return spec
}

// mcSickBound is how long a sick server may stay counted as a manager's
// capacity: the health grace from ready (5 min) or the sickness, whichever
// is later, then three readings a minute apart, the passes that act on
// them, a Check that hangs until its timeout, and a crash that forgets the
// readings so far. A restore starts it again: a scaler restarted before its
// predecessor's retire tag was written may restore a sick server, and no
// Check runs while the Restore hook does.
const mcSickBound = 10 * time.Minute

// checkSick: a server its role reports unhealthy stops working for its
// manager within mcSickBound (RELIABILITY: sick servers are replaced).
func (r *mcRun) checkSick(insts []awsctl.Instance) {
	now := time.Now()
	for _, inst := range insts {
		from, sick := r.srv.sick(inst.ID, now)
		if !sick || inst.Tags[pool.TagOwner] != mcIdentity || !working(inst.State) || inst.Tags[pool.TagManager] == "" ||
			inst.Tags[pool.TagWindDownStart] != "" {
			continue
		}
		if ready, err := time.Parse(time.RFC3339, inst.Tags[pool.TagReady]); err == nil && ready.Add(pool.DefaultHealthGrace).After(from) {
			from = ready.Add(pool.DefaultHealthGrace)
		}
		if at := r.workFrom[inst.ID]; at.After(from) {
			from = at // health is read while a server works
		}
		if now.Sub(from) > mcSickBound {
			r.violateOnce(inst.ID, "sick-kept", "%s, sick since %s, still works for %s", inst.ID,
				from.Format(time.RFC3339), inst.Tags[pool.TagManager])
		}
	}
}

// checkBudget: no more servers of a pool under voluntary replacement (a
// replacement on its way for a server still at work, or a replaced server
// leaving) than its Disruption budget.
func (r *mcRun) checkBudget(insts []awsctl.Instance) {
	working := map[string]bool{}
	for _, inst := range insts {
		if inst.State.Live() && inst.Tags[pool.TagManager] != "" && inst.Tags[pool.TagWindDownStart] == "" {
			working[inst.ID] = true
		}
	}
	for _, ps := range r.sc.pools {
		var ids []string
		for _, inst := range insts {
			if !inst.State.Live() || inst.Tags[pool.TagOwner] != mcIdentity || inst.Tags[pool.TagPool] != ps.name || r.lost(inst) {
				continue
			}
			onItsWay := inst.Tags[pool.TagManager] == "" && working[inst.Tags[pool.TagReplaces]]
			if onItsWay || inst.Tags[pool.TagRetire] == pool.RetireReplaced {
				ids = append(ids, inst.ID)
			}
		}
		if len(ids) > ps.budget {
			r.violate("budget", "pool %s has %d servers under replacement, budget %d: %v", ps.name, len(ids), ps.budget, ids)
		}
	}
}

func (r *mcRun) outside(o mcOutside) {
	ps := r.sc.pools[o.pool]
	var cands []awsctl.Instance
	for _, inst := range r.sim.Instances() {
		if inst.Tags[pool.TagOwner] != mcIdentity || inst.Tags[pool.TagPool] != ps.name || inst.State != awsctl.StateRunning {
			continue
		}
		if (o.kind == mcStop) == (inst.Market == awsctl.MarketSpot) && o.kind != mcTerminate {
			continue // only on-demand instances stop; only spot ones are interrupted
		}
		cands = append(cands, inst)
	}
	if len(cands) == 0 {
		return
	}
	inst := cands[o.pick%len(cands)]
	switch o.kind {
	case mcStop:
		if r.sim.Stop(inst.ID) == nil {
			r.hit[inst.ID] = true
		}
	case mcTerminate:
		if _, err := r.sim.Terminate(context.Background(), []string{inst.ID}); err == nil {
			r.hit[inst.ID] = true
		}
	case mcInterrupt:
		if r.sim.Interrupt(inst.ID) == nil {
			r.hit[inst.ID] = true
			r.noticed[inst.ID] = true
		}
	case mcRebalance:
		r.feed.inject(awsctl.SpotNotice{InstanceID: inst.ID, Kind: awsctl.Rebalance, Time: time.Now()})
	}
}

// crash replaces the dead scaler by a new process over the same cloud.
func (r *mcRun) crash() {
	r.crashed, r.crashPass = true, r.pass
	// What the dead process launched that the listing did not show yet is
	// lost with its memory.
	for _, inst := range r.sim.Instances() {
		if inst.Tags[pool.TagOwner] == mcIdentity && time.Since(inst.LaunchTime) <= r.sc.listDelay {
			r.lostUnits += r.poolSpec(inst.Tags[pool.TagPool]).weight(inst.Type)
			r.inFlight[inst.ID] = true
		}
		_, winding := inst.Tags[pool.TagWindDownStart]
		if inst.Tags[pool.TagOwner] == mcIdentity && inst.State == awsctl.StateRunning && inst.Tags[pool.TagReady] == "" && !winding && !r.provFailed[inst.ID] {
			r.reprovision[inst.ID] = true
		}
	}
	dead := r.scaler
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_ = dead.Shutdown(ctx, autoscale.ShutdownOptions{})
	cancel()
	r.startScaler(r.cloud)
}

func (r *mcRun) poolSpec(name string) *mcPoolSpec {
	for _, p := range r.sc.pools {
		if p.name == name {
			return p
		}
	}
	return &mcPoolSpec{name: name}
}

// shutdown winds everything down with Shutdown and checks that nothing is
// left, then stops every scaler process of the run.
func (r *mcRun) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	err := r.scaler.Shutdown(ctx, autoscale.ShutdownOptions{WindDown: true})
	cancel()
	time.Sleep(2 * time.Minute) // let EC2 finish shutting down
	var left []string
	for _, inst := range r.sim.Instances() {
		if inst.Tags[pool.TagOwner] == mcIdentity && inst.State.Live() {
			left = append(left, fmt.Sprintf("%s(%s,%s)", inst.ID, inst.Tags[pool.TagPool], inst.State))
		}
	}
	if len(left) > 0 {
		r.violate("no-leak", "after Shutdown with WindDown (err %v), owned instances remain: %v", err, left)
	}
	for _, s := range r.scalers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = s.Shutdown(ctx, autoscale.ShutdownOptions{})
		cancel()
	}
	r.checkForeign()
}

// after runs the checks of every pass on what EC2 holds.
func (r *mcRun) after() {
	r.mu.Lock()
	events := r.events
	r.events = nil
	r.mu.Unlock()
	insts := r.sim.Instances()
	if r.logf != nil {
		r.trace(events, insts)
	}
	r.track(events, insts)
	r.checkMax(insts)
	r.checkReplacements(insts)
	r.checkBudget(insts)
	r.checkSick(insts)
	r.checkLaunchWhileWinding(events, insts)
	r.checkForeign()
	r.checkLaunchWithoutDemand()
	r.checkHostView(insts)
	switch {
	case r.pass >= mcChaosPasses+mcConvergeBound && r.pass < mcChaosPasses+mcSettlePasses:
		r.checkConverged(insts, r.pass == mcChaosPasses+mcSettlePasses-1)
	case r.pass == r.sc.passes()-1:
		r.checkDrained(insts)
	}
	for _, ps := range r.sc.pools {
		r.roomBefore[ps.name] = r.room(ps, insts)
	}
}

// track updates what the checks remember across passes.
func (r *mcRun) track(events []autoscale.Event, insts []awsctl.Instance) {
	for _, e := range events {
		switch e.Kind {
		case pool.EventWindDown:
			r.lastWind[e.Instance] = r.pass
			r.windWhy[e.Instance] = e.Reason
		case pool.EventRestore, pool.EventHandOver:
			r.lastRest[e.Instance] = r.pass
			if e.Kind == pool.EventRestore {
				// Back at work once its Restore hook ends: no Check runs
				// while that hook does, so readings begin again there.
				r.workFrom[e.Instance] = e.Time
			}
		case pool.EventGrant:
			r.workFrom[e.Instance] = e.Time
		case pool.EventProvisionFailed:
			r.provFailed[e.Instance] = true
		}
		if r.needEvent(e) {
			r.lastNeed[e.Pool] = e.Time
		}
	}
	for _, l := range r.cloud.launchesOf(r.pass) {
		if l.replaces != "" {
			r.replaced[l.replaces] = true
		}
	}
	for _, inst := range insts {
		if inst.Tags[pool.TagOwner] != mcIdentity {
			continue
		}
		if _, ok := inst.Tags[pool.TagInterrupted]; ok {
			r.noticed[inst.ID] = true
		}
	}
	// A replacement that lost its replaces tag while working for its
	// server's manager (or once that server left) has taken its place: that
	// server must never be replaced again. One that became ordinary
	// capacity (its server was no longer at work when it was ready) and
	// went to another manager took nobody's place.
	for _, l := range r.cloud.launchesUpTo(r.pass) {
		if l.replaces == "" {
			continue
		}
		x, xok := r.sim.Instance(l.replaces)
		for _, li := range l.insts {
			now, ok := r.sim.Instance(li.ID)
			mgr := now.Tags[pool.TagManager]
			inPlace := mgr != "" && (!xok || !working(x.State) || x.Tags[pool.TagWindDownStart] != "" || x.Tags[pool.TagManager] == mgr)
			if ok && working(now.State) && now.Tags[pool.TagReplaces] == "" && inPlace && r.swappedIn[l.replaces] == "" {
				r.swappedIn[l.replaces] = li.ID
				r.swapPass[l.replaces] = r.pass
			}
		}
	}
}

func (c *mcCloud) launchesOf(pass int) []mcLaunch {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []mcLaunch
	for _, l := range c.launches {
		if l.pass == pass {
			out = append(out, l)
		}
	}
	return out
}

func (c *mcCloud) launchesUpTo(pass int) []mcLaunch {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]mcLaunch, 0, len(c.launches))
	for _, l := range c.launches {
		if l.pass <= pass {
			out = append(out, l)
		}
	}
	return out
}

// owned groups the scaler's instances by pool.
func owned(insts []awsctl.Instance) map[string][]awsctl.Instance {
	out := map[string][]awsctl.Instance{}
	for _, inst := range insts {
		if inst.Tags[pool.TagOwner] == mcIdentity {
			out[inst.Tags[pool.TagPool]] = append(out[inst.Tags[pool.TagPool]], inst)
		}
	}
	return out
}

// checkMax: the capacity of a pool's pending and running instances, the
// ones interrupted but not yet reclaimed included, is at most Max.
func (r *mcRun) checkMax(insts []awsctl.Instance) {
	byPool := owned(insts)
	for _, ps := range r.sc.pools {
		units := 0
		var ids []string
		for _, inst := range byPool[ps.name] {
			if working(inst.State) {
				units += ps.weight(inst.Type)
				ids = append(ids, fmt.Sprintf("%s:%s", inst.ID, inst.Type))
			}
		}
		if units > ps.max {
			r.violate("max", "pool %s holds %d units above its Max %d: %v", ps.name, units, ps.max, ids)
		}
	}
}

// lost reports whether a replacement is lost to its server: gone,
// stopped, interrupted, failed to provision, or being wound down.
func (r *mcRun) lost(inst awsctl.Instance) bool {
	_, winding := inst.Tags[pool.TagWindDownStart]
	return !working(inst.State) || r.noticed[inst.ID] || r.srv.provisionFailed(inst.ID) || (winding && !r.restoring(inst.ID))
}

// checkReplacements: at most one replacement on its way per replaced
// server (lost ones aside).
func (r *mcRun) checkReplacements(insts []awsctl.Instance) {
	by := map[string][]string{}
	for _, inst := range insts {
		if x := inst.Tags[pool.TagReplaces]; x != "" && inst.Tags[pool.TagOwner] == mcIdentity && !r.lost(inst) {
			by[x] = append(by[x], inst.ID)
		}
	}
	for x, ids := range by {
		if len(ids) > 1 {
			r.violate("replaced-twice", "%s has %d replacements on their way: %v", x, len(ids), ids)
		}
	}
}

// checkLaunchWhileWinding: no launch for new capacity in a pass that ends
// with a server of the same pool still winding down for spare capacity,
// which the same need could have used by cancelling its wind-down. Servers
// winding down for another reason (interrupted, stopped, failed, replaced
// by spot, retiring, sick), already drained, past their deadline, with a hook hung, heavier
// than what was launched or in another zone than a zone minimum needs are
// left out. On-demand capacity launched for long jobs that lack it (see
// longShortOnDemand; rounded up to a weight) is no need a spot server could
// meet: a spot server winding down counts only against the rest of the
// launch.
func (r *mcRun) checkLaunchWhileWinding(events []autoscale.Event, insts []awsctl.Instance) {
	passStart := r.start.Add(time.Duration(r.pass) * mcInterval)
	restored := map[string]bool{}
	for _, e := range events {
		if e.Kind == pool.EventRestore || e.Kind == pool.EventHandOver {
			restored[e.Instance] = true
		}
	}
	byPool := owned(insts)
	for _, ps := range r.sc.pools {
		launched, launchedOD, odSlack := 0, 0, 0
		var zones []string
		windingAtLaunch := map[string]bool{}
		for _, l := range r.cloud.launchesOf(r.pass) {
			if l.pool != ps.name || l.replaces != "" {
				continue
			}
			for id := range l.winding {
				windingAtLaunch[id] = true
			}
			launched += l.capacity
			if l.market == awsctl.MarketOnDemand {
				launchedOD += l.capacity
				odSlack = max(odSlack, l.minWeight-1)
			}
			for _, inst := range l.insts {
				zones = append(zones, inst.Zone)
			}
			if len(l.insts) == 0 && len(l.zones) > 0 {
				zones = append(zones, l.zones[0])
			}
		}
		if launched == 0 {
			continue
		}
		forSpot := launched
		if short := r.longShortOnDemand(ps, insts); short > 0 {
			forSpot -= min(launchedOD, short+odSlack)
		}
		zoneMin := map[string]bool{}
		for _, m := range ps.managers {
			for z, n := range m.zoneMinimums {
				if n > 0 {
					zoneMin[z] = true
				}
			}
		}
		for _, s := range byPool[ps.name] {
			start, winding := s.Tags[pool.TagWindDownStart]
			if !winding || !windingAtLaunch[s.ID] || !working(s.State) || restored[s.ID] {
				continue
			}
			if _, ok := r.lastWind[s.ID]; !ok || r.restoring(s.ID) {
				continue // no wind-down seen, or its restore is under way
			}
			if r.noticed[s.ID] || r.replaced[s.ID] || r.srv.provisionFailed(s.ID) || r.srv.isHanging(s.ID) || r.srv.tearingDown(s.ID) ||
				s.Tags[pool.TagRetire] != "" { // retiring: never put back to work
				continue
			}
			if _, sick := r.srv.sick(s.ID, passStart); sick { // sick: not put back to work either
				continue
			}
			if r.srv.drainDone(s.ID, passStart) || ps.weight(s.Type) > launched {
				continue
			}
			if s.Market == awsctl.MarketSpot && ps.weight(s.Type) > forSpot {
				continue // the launch is on-demand for long jobs
			}
			if dl, err := time.Parse(time.RFC3339, s.Tags[pool.TagWindDownDeadline]); err != nil || !passStart.Before(dl) {
				continue
			}
			if len(zoneMin) > 0 && !slices.Contains(zones, s.Zone) && slices.ContainsFunc(zones, func(z string) bool { return zoneMin[z] }) {
				continue
			}
			r.violate("launch-while-winding-down", "pool %s launched %d units (zones %v) while %s (%s, %s, wind-down since %s: %q) winds down",
				ps.name, launched, zones, s.ID, s.Type, s.Zone, start, r.windWhy[s.ID])
		}
	}
}

// longShortOnDemand is the on-demand capacity the long jobs of a pool's
// managers lack at the end of the pass: for each, its long units (within
// the target the pool gives it) less the on-demand capacity it holds.
func (r *mcRun) longShortOnDemand(ps *mcPoolSpec, insts []awsctl.Instance) int {
	p := r.scaler.Pool(ps.name)
	if p == nil {
		return 0
	}
	status := p.Status().Managers
	held := r.heldNow(ps, insts)
	short := 0
	for _, m := range ps.managers {
		if m.longPct > 0 {
			short += max(0, m.longUnits(r.pass, status[m.name].Target)-sumOnDemand(held[m.name]))
		}
	}
	return short
}

// restoring reports whether the latest wind-down of id was followed by a
// restore (whose hook may still run while the wind-down tags stay).
func (r *mcRun) restoring(id string) bool {
	rest, ok := r.lastRest[id]
	return ok && rest >= r.lastWind[id]
}

// checkLaunchWithoutDemand: once every manager of a pool has wanted
// nothing for a few passes (the drain phase), a pool without Min launches
// nothing, replacements included.
func (r *mcRun) checkLaunchWithoutDemand() {
	if r.pass < mcChaosPasses+mcSettlePasses+4 {
		return // the Queue and TargetTracking delays
	}
	for _, l := range r.cloud.launchesOf(r.pass) {
		if ps := r.poolSpec(l.pool); ps.min == 0 {
			// The managers' own delays (a TargetTracking scales in a step
			// at a time, a cooldown apart) are theirs: only a launch while
			// every manager of the pool wants nothing is the pool's.
			wanted := 0
			if p := r.scaler.Pool(ps.name); p != nil {
				for _, m := range p.Status().Managers {
					wanted += m.Target
				}
			}
			if wanted > 0 {
				continue
			}
			var ids []string
			for _, inst := range l.insts {
				ids = append(ids, inst.ID)
			}
			r.violate("launch-without-demand", "pool %s launched %d units %v (replacing %q) with no demand for %d passes",
				ps.name, l.capacity, ids, l.replaces, r.pass-mcChaosPasses-mcSettlePasses)
		}
	}
}

// checkHostView: a host that keeps each manager's servers from the
// notices alone holds, after every pass, what EC2 holds: the pool's
// instances that run or may run with the manager's grant tag (a stopped
// one is already revoked; it waits for its termination).
func (r *mcRun) checkHostView(insts []awsctl.Instance) {
	if r.crashed && r.pass == r.crashPass {
		return // the new process (and its host) has not passed yet
	}
	for i, ps := range r.sc.pools {
		if i >= len(r.managers) {
			break
		}
		for _, m := range r.managers[i] {
			var ec2 []string
			for _, inst := range insts {
				if inst.Tags[pool.TagOwner] == mcIdentity && inst.Tags[pool.TagPool] == ps.name &&
					inst.Tags[pool.TagManager] == m.Name() && working(inst.State) {
					ec2 = append(ec2, inst.ID)
				}
			}
			slices.Sort(ec2)
			if host := m.view(); !slices.Equal(ec2, host) {
				r.violate("host-view", "pool %s manager %s: the host holds %v from its notices, EC2 holds %v", ps.name, m.Name(), host, ec2)
			}
		}
	}
}

// checkForeign: instances of other owners keep their tags and state.
func (r *mcRun) checkForeign() {
	for id, was := range r.foreign {
		now, _ := r.sim.Instance(id)
		if !maps.Equal(now.Tags, was.Tags) || !working(now.State) {
			r.violate("foreign-touched", "instance %s of owner %q changed: state %s, tags %v (were %v)", id, was.Tags[pool.TagOwner], now.State, now.Tags, was.Tags)
		}
	}
}

// expectedTargets returns what each manager of a pool should hold once
// demand settles: its final demand, clamped to Max and shared fairly.
func (ps *mcPoolSpec) expectedTargets() []int {
	want := make([]int, len(ps.managers))
	for i, m := range ps.managers {
		want[i] = m.final
	}
	return fairShare(want, ps.max)
}

// mcHeld is one server a manager holds: its weight, zone and market.
type mcHeld struct {
	weight int
	zone   string
	od     bool
}

// heldNow is what each manager of a pool holds on EC2: granted servers not
// winding down (or whose wind-down is being cancelled), running and not
// interrupted.
func (r *mcRun) heldNow(ps *mcPoolSpec, insts []awsctl.Instance) map[string][]mcHeld {
	out := map[string][]mcHeld{}
	for _, inst := range owned(insts)[ps.name] {
		m := inst.Tags[pool.TagManager]
		_, winding := inst.Tags[pool.TagWindDownStart]
		if winding && r.restoring(inst.ID) {
			winding = false // its wind-down is being cancelled: the pool counts it as held
		}
		if m == "" || winding || inst.State != awsctl.StateRunning || r.noticed[inst.ID] {
			continue
		}
		out[m] = append(out[m], mcHeld{weight: ps.weight(inst.Type), zone: inst.Zone, od: inst.Market == awsctl.MarketOnDemand})
	}
	return out
}

func sumHeld(hs []mcHeld, zone string) int {
	n := 0
	for _, h := range hs {
		if zone == "" || h.zone == zone {
			n += h.weight
		}
	}
	return n
}

func sumOnDemand(hs []mcHeld) int {
	n := 0
	for _, h := range hs {
		if h.od {
			n += h.weight
		}
	}
	return n
}

// room is what a pool could still launch under Max: Max less the capacity
// of its pending and running instances.
func (r *mcRun) room(ps *mcPoolSpec, insts []awsctl.Instance) int {
	units := 0
	for _, inst := range owned(insts)[ps.name] {
		if working(inst.State) {
			units += ps.weight(inst.Type)
		}
	}
	return ps.max - units
}

func (ps *mcPoolSpec) minWeight() int {
	w := ps.types[0].Weight
	for _, t := range ps.types {
		w = min(w, t.Weight)
	}
	return w
}

// checkConverged: mcConvergeBound passes after the last demand change,
// every manager holds at least its target (fair share within Max), its
// zone minimums and its long jobs' units on demand, unless the pool is full
// (weights can make targets that add up to Max unreachable without going
// below one); and at the end of the settle phase, a per-second pool keeps
// no server it could remove without going below a target, a zone minimum
// or the on-demand capacity long jobs want.
func (r *mcRun) checkConverged(insts []awsctl.Instance, last bool) {
	for _, ps := range r.sc.pools {
		held := r.heldNow(ps, insts)
		targets := ps.expectedTargets()
		// Room the pass itself made (a server it terminated) is the next
		// pass's to fill: a pool is held to a shortfall only when it had
		// room under Max for its lightest type both before and after the pass.
		before, seen := r.roomBefore[ps.name]
		full := r.room(ps, insts) < ps.minWeight() || seen && before < ps.minWeight()
		for i, m := range ps.managers {
			t := targets[i]
			mine := held[m.name]
			if n := sumHeld(mine, ""); n < t && !full {
				r.violateOnce(ps.name+"/"+m.name, "convergence", "pool %s manager %s holds %d, target %d, %d passes after demand settled, with room for more",
					ps.name, m.name, n, t, r.pass-mcChaosPasses)
			}
			// Long jobs cost more on spot than on demand: the part of the
			// target they want is held on demand.
			long := m.longUnits(r.pass, t)
			if n := sumOnDemand(mine); n < long && !full {
				r.violateOnce(ps.name+"/"+m.name, "work-on-demand", "pool %s manager %s holds %d on demand, its long jobs want %d (target %d), %d passes after demand settled, with room for more",
					ps.name, m.name, n, long, t, r.pass-mcChaosPasses)
			}
			for z, n := range m.zoneMinimums {
				if want := min(n, t); sumHeld(mine, z) < want && !full {
					r.violateOnce(ps.name+"/"+m.name+"/"+z, "zone-minimums", "pool %s manager %s holds %d in %s, zone minimum %d (target %d), %d passes after demand settled, with room for more",
						ps.name, m.name, sumHeld(mine, z), z, n, t, r.pass-mcChaosPasses)
				}
			}
			if !last || ps.billing != pool.PerSecond {
				continue
			}
			// An on-demand server its long jobs need is no surplus, even
			// above the target: spot servers cover the rest.
			total, od := sumHeld(mine, ""), sumOnDemand(mine)
			for _, h := range mine {
				if total-h.weight >= t && sumHeld(mine, h.zone)-h.weight >= min(m.zoneMinimums[h.zone], t) && (!h.od || od-h.weight >= long) {
					r.violate("convergence", "pool %s manager %s holds %d, target %d: a %d-unit server in %s is surplus %d passes after demand settled",
						ps.name, m.name, total, t, h.weight, h.zone, r.pass-mcChaosPasses)
					break
				}
			}
		}
		if last {
			if r.held == nil {
				r.held, r.full = map[string]map[string]int{}, map[string]bool{}
			}
			r.full[ps.name] = full
			r.held[ps.name] = map[string]int{}
			for m, hs := range held {
				r.held[ps.name][m] = sumHeld(hs, "")
			}
		}
	}
}

// checkDrained: with demand at zero long enough, nothing owned is left
// beyond the pools' Min (a server weighing more than Min is no surplus when
// it is the only one). An hourly pool removes a spare server only in the
// last part of its paid hour, so there a server is left over only if a
// paid hour of it ended with a pass in its removal window after the pool
// last needed capacity it holds: one that became spare just after its
// window is paid for until its next hour's end, which a late release (a
// manager letting go well into the drain) can put past the run's end.
func (r *mcRun) checkDrained(insts []awsctl.Instance) {
	byPool := owned(insts)
	now := time.Now()
	for _, ps := range r.sc.pools {
		units := 0
		var live []awsctl.Instance
		var ids []string
		for _, inst := range byPool[ps.name] {
			if !inst.State.Live() {
				continue
			}
			units += ps.weight(inst.Type)
			live = append(live, inst)
			ids = append(ids, fmt.Sprintf("%s(%s)", inst.ID, inst.State))
		}
		for _, inst := range live {
			if units-ps.weight(inst.Type) < ps.min {
				continue // needed for Min
			}
			if ps.billing == pool.Hourly && !r.keptPastPaidHour(ps.name, inst, now) {
				continue
			}
			r.violate("no-leak", "pool %s holds %d units %v with no demand for %d passes (Min %d)", ps.name, units, ids, r.pass-mcChaosPasses-mcSettlePasses, ps.min)
			break
		}
	}
}

// keptPastPaidHour reports whether an hourly server's latest paid hour
// ended, by now, with at least one pass inside its removal window (more
// than HourlyMargin and at most the wind-down timeout and HourlyMargin of
// the hour left) since its pool last needed capacity it holds.
func (r *mcRun) keptPastPaidHour(poolName string, inst awsctl.Instance, now time.Time) bool {
	hours := now.Sub(inst.LaunchTime) / time.Hour
	if hours == 0 {
		return false
	}
	windowEnd := inst.LaunchTime.Add(hours*time.Hour - pool.HourlyMargin)
	return windowEnd.Sub(r.lastNeed[poolName]) >= mcInterval
}

// restoreForNeed tells, for each reason the pool gives a restore, whether
// the server was taken back because its pool needed it (not only because
// its wind-down ran late or its hour was paid). The reasons are the pool's
// prose: a reason missing here is reported, so a reworded one cannot turn
// the no-leak rule silently.
var restoreForNeed = map[string]bool{
	"capacity needed; cheaper than a launch":                       true,
	"demand returned":                                              true,
	"wound down; handed back to the pool":                          true,
	"wind-down passed its deadline":                                false,
	"wound down early in its paid hour; kept until the hour's end": false,
}

// needEvent says whether e shows its pool needed capacity it holds at its
// pass: a launch or grant, a server a manager held until its wind-down,
// one kept for a hand-over, or one taken back because it was needed.
func (r *mcRun) needEvent(e autoscale.Event) bool {
	switch e.Kind {
	case pool.EventLaunch, pool.EventGrant, pool.EventHandOver:
		return true
	case pool.EventWindDown:
		return e.Manager != ""
	case pool.EventRestore:
		needed, known := restoreForNeed[e.Reason]
		if !known {
			r.violateOnce(e.Reason, "model-check", "restore reason %q is not in restoreForNeed", e.Reason)
		}
		return needed
	}
	return false
}

// launchedUnits is the capacity of every owned instance launched.
func (r *mcRun) launchedUnits() int {
	n := 0
	for _, inst := range r.sim.Instances() {
		if inst.Tags[pool.TagOwner] == mcIdentity {
			n += r.poolSpec(inst.Tags[pool.TagPool]).weight(inst.Type)
		}
	}
	return n
}

// mcPoolsCrashed and mcPoolsCompared count the pools of crashed runs, and
// those whose launches compareRuns could compare with a reference's.
var mcPoolsCrashed, mcPoolsCompared atomic.Int64

// mcAsk names what one manager asked at one pass.
type mcAsk struct {
	pool, manager string
	pass          int
}

// demandOf is what of a manager's request decides how much a pool
// launches: not the servers it names (Idle, Release), which differ between
// runs whenever their instances do.
func demandOf(req manager.Request) string {
	return fmt.Sprintf("%d %v %v %v", req.Target, req.ZoneMinimums, req.Market, req.Work)
}

// askedAlike reports whether every manager of the pool asked the same in
// both runs at every pass after the crash's.
func askedAlike(ps *mcPoolSpec, ref, crashed *mcRun) bool {
	for _, m := range ps.managers {
		for pass := crashed.crashPass + 1; pass < crashed.sc.passes(); pass++ {
			k := mcAsk{ps.name, m.name, pass}
			if ref.asked[k] != crashed.asked[k] {
				return false
			}
		}
	}
	return true
}

// mcLaunched is what a run launched into one pool, and what it lost there
// to causes the scaler does not decide.
type mcLaunched struct {
	units    int // every instance launched
	lost     int // hit from outside, failed to provision or fell sick: each calls for a new server
	inFlight int // launched by a dead process and not listed when it died
	reprov   int // provisioning when the process died, provisioned again
}

func (r *mcRun) launchedInto(ps *mcPoolSpec) mcLaunched {
	var l mcLaunched
	for _, inst := range r.sim.Instances() {
		if inst.Tags[pool.TagOwner] != mcIdentity || inst.Tags[pool.TagPool] != ps.name {
			continue
		}
		w := ps.weight(inst.Type)
		l.units += w
		if r.hit[inst.ID] || r.provFailed[inst.ID] || inst.Tags[pool.TagRetire] == pool.RetireUnhealthy {
			l.lost += w // once, whatever hit it: a stop landing on a server failing anyway costs nothing more
		}
		if r.inFlight[inst.ID] {
			l.inFlight += w
		}
		if r.reprovision[inst.ID] {
			l.reprov += w
		}
	}
	return l
}

// compareRuns checks the crashed run against the uncrashed references (two
// runs of the same scenario, which may differ where the scaler's choices
// between equals are not deterministic): the holdings of one reference once
// demand settled (in per-second pools of one weight that are not full,
// where holdings are determined), and, pool by pool, no more launches than
// a reference plus the rounding of a weight, what the crash lost in flight,
// the servers it left half provisioned, and what the crashed run lost
// beyond that reference to the outside, failed provisioning and sickness.
// A server whose Provision the crash cut short is provisioned again from
// the start (hook progress is memory), so it is ready later than in the
// reference, and what its readiness decided (a grant, a spare wound down
// before demand returned) may cost a launch of its size. Which servers the
// outside, failures and sickness hit is drawn per instance, and the
// instances differ once the runs do; each server lost calls for another.
//
// Launches are compared only in pools whose managers asked the same at
// every pass after the crash: managers restart with the host and forget
// (a TargetTracking's cooldown, a Queue's scale-down delay start again), so
// a restarted manager may ask for more than the reference's did, and the
// reference bounds nothing then. A pool left out keeps every other check
// (max, replaced-twice, launch-while-winding-down, convergence).
func compareRuns(refs []*mcRun, crashed *mcRun) {
	if !crashed.crashed {
		return
	}
	for _, ps := range crashed.sc.pools {
		if !ps.uniformWeights() || ps.billing != pool.PerSecond || crashed.full[ps.name] {
			continue
		}
		match := false
		var seen []map[string]int
		for _, ref := range refs {
			if ref.full[ps.name] {
				match = true
			}
			match = match || maps.Equal(ref.held[ps.name], crashed.held[ps.name])
			seen = append(seen, ref.held[ps.name])
		}
		if !match {
			crashed.violate("crash-convergence", "pool %s: held %v after the crash at pass %d, %v without it", ps.name, crashed.held[ps.name], crashed.crashPass, seen)
		}
	}
	for _, ps := range crashed.sc.pools {
		got := crashed.launchedInto(ps)
		compared, best := false, mcLaunched{}
		allowed := -1
		for _, ref := range refs {
			if !askedAlike(ps, ref, crashed) {
				continue
			}
			compared = true
			want := ref.launchedInto(ps)
			if a := want.units + got.inFlight + got.reprov + max(0, got.lost-want.lost) + ps.maxWeight() - 1; a > allowed {
				allowed, best = a, want
			}
		}
		mcPoolsCrashed.Add(1)
		if compared {
			mcPoolsCompared.Add(1)
		}
		if compared && got.units > allowed {
			crashed.violate("crash-launches", "pool %s: launched %d units after a crash at pass %d, %d more than a reference allows: it launched %d and lost %d; the crash lost %d in flight, left %d half provisioned, lost %d",
				ps.name, got.units, crashed.crashPass, got.units-allowed, best.units, best.lost, got.inFlight, got.reprov, got.lost)
		}
	}
}

// summary is a short account of the run for a failure report.
func (r *mcRun) summary() string {
	byState := map[string]int{}
	for _, inst := range r.sim.Instances() {
		if inst.Tags[pool.TagOwner] == mcIdentity {
			byState[string(inst.State)]++
		}
	}
	keys := slices.Sorted(maps.Keys(byState))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, byState[k]))
	}
	s := fmt.Sprintf("%s run: launched %d units (%s)", r.label, r.launchedUnits(), strings.Join(parts, ", "))
	if r.crashed {
		s += fmt.Sprintf(", crashed at pass %d (lost %d units in flight)", r.crashPass, r.lostUnits)
	}
	return s
}

func sortViolations(vs []mcViolation) {
	sort.SliceStable(vs, func(i, j int) bool {
		if vs[i].run != vs[j].run {
			return vs[i].run > vs[j].run // "ref" before "crash"
		}
		return vs[i].pass < vs[j].pass
	})
}

// trace logs the pass's events and the owned instances as EC2 holds them.
func (r *mcRun) trace(events []autoscale.Event, insts []awsctl.Instance) {
	r.logf("--- %s pass %d at +%v", r.label, r.pass, time.Since(r.start).Round(time.Second))
	for _, e := range events {
		if e.Kind == pool.EventProvisioned {
			continue
		}
		r.logf("  event %s pool=%s inst=%s mgr=%s cap=%d %s %s err=%v", e.Kind, e.Pool, e.Instance, e.Manager, e.Capacity, e.Market, e.Reason, e.Err)
	}
	for _, l := range r.cloud.launchesOf(r.pass) {
		var got []string
		for _, inst := range l.insts {
			got = append(got, inst.ID+":"+inst.Type+":"+inst.Zone)
		}
		r.logf("  launch pool=%s cap=%d replaces=%q -> %v", l.pool, l.capacity, l.replaces, got)
	}
	for _, inst := range insts {
		if inst.Tags[pool.TagOwner] != mcIdentity || inst.State == awsctl.StateTerminated {
			continue
		}
		r.logf("  %s %s %s %s %s %s mgr=%q wind=%q repl=%q int=%q", inst.ID, inst.Tags[pool.TagPool], inst.Type, inst.Zone, inst.Market, inst.State,
			inst.Tags[pool.TagManager], inst.Tags[pool.TagWindDownStart], inst.Tags[pool.TagReplaces], inst.Tags[pool.TagInterrupted])
	}
}
