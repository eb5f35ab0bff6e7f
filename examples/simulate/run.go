package main

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim/ec2limits"
	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/demand"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// scenario is what every policy of a run faces: the same prices, demand,
// boot times, interruption rates and capacity outages.
type scenario struct {
	prices *priceTrace
	types  []instanceType
	trace  *demand.Trace
	start  time.Time
	length time.Duration
	timing timing
	// Library settings the flags changed (zero: the library's default).
	scaleDownDelay                  time.Duration
	workKeep                        time.Duration
	interval, busyInterval, passGap time.Duration
	// Boot: pending (not billed), then running until ready (billed).
	pending, ready       ec2sim.Delay
	typeDelays           map[string]ec2sim.TypeDelays
	pendingMed, readyMed time.Duration
	bootSigma            float64
	seed                 uint64
	interruptionShare    float64
	outages              []outage
	outageReclaim        float64
	requeue              bool
	goal                 goal
	runEstimate          runEstimate
	interruptionRate     float64 // stress: per hour, for every spot type (0: the Advisor buckets)
	max                  int     // the pool's Max
	// Figures that do not depend on the policy.
	demanded    float64 // unit-seconds of the trace (no work run again)
	bootLimited float64 // unit-seconds no reactive policy can serve
	passLimited float64 // same, for a policy that reads demand at its passes
	lowerBound  float64 // dollars
	lowerCurve  []float64
	cheapest    []pricePoint
	odUnitPrice float64 // the cheapest on-demand price per unit-hour of the pool
	plotEvery   time.Duration
	progress    io.Writer
	// clock, when set, is the simulated EC2's clock (a testing/synctest
	// bubble's time.Now), and role hooks wait on it: for running the
	// library's own Run on virtual time in tests (run_test.go).
	clock func() time.Time
}

// timing is how passes are timed.
type timing struct {
	// run: as Scaler.Run times them (every interval, every busy interval
	// while capacity is on its way, and a gap after a hook finishes or
	// demand rises); otherwise the host calls Step every interval.
	run                 bool
	interval, busy, gap time.Duration
}

func (tm timing) String() string {
	if !tm.run {
		return fmt.Sprintf("the host calls Step every %v (no Run)", tm.interval)
	}
	return fmt.Sprintf("Run's timing: every %v, every %v while capacity is on its way, %v after a role hook finishes or demand rises",
		tm.interval, tm.busy, tm.gap)
}

// next returns when the pass after the one at now comes, before demand
// rises are taken into account: Run's nextPass, or a hook's end wakes it
// (at least gap after this pass).
func (tm timing) next(now time.Duration, st pool.Status, hookEnd time.Duration, hook bool) time.Duration {
	if !tm.run {
		return now + tm.interval
	}
	wait := tm.interval
	if st.Booting+st.Provisioning+st.WindingDown+st.Replacing > 0 {
		wait = tm.busy
	}
	next := now + wait
	if hook {
		next = min(next, max(hookEnd, now+tm.gap))
	}
	return next
}

// sample is one point of a run's timeline, averaged over a plot step.
type sample struct {
	at             time.Duration // end of the step
	demand         float64       // mean units demanded
	spot, onDemand float64       // mean units working, by market
	cost           float64       // cumulative dollars at the end
}

// result is what one policy did.
type result struct {
	policy    policy
	settings  []string // settings that differ from the library's defaults
	bill      ec2sim.Bill
	demanded  float64         // unit-seconds demanded, work run again included
	unmet     float64         // unit-seconds demanded but not served
	ttc       []time.Duration // every rise's time to capacity (0 for those covered when they came)
	ttcWaited []time.Duration // of the rises that waited
	unsettled int             // rises still not served at the end (counted in ttc up to the end)
	waited    int             // rises the capacity working when they came did not cover
	// Interruptions: notices EC2 issued, and what they hit.
	interruptions    int
	interruptedUnits int
	jobsCut          int
	jobsMoved        int
	workLost         float64 // unit-seconds
	launches         int
	terminations     int
	swapped          int // on-demand servers replaced by spot: swapped out once their replacement worked
	swapLaunches     int // replacements launched
	calls, throttled map[string]int
	alarms           map[string]int // alarms raised, by kind
	samples          []sample
	passes           int
	// Checks of the hook replay (see hooks.go): all zero in a sound run.
	lateResults, lateStarts, otherHooks int
	wall                                time.Duration
	forecast                            *manager.ForecastStatus // the host's Forecast's report, if it has one
}

// newScenario computes what every policy shares.
func newScenario(pt *priceTrace, types []instanceType, trace *demand.Trace, cfg config) (*scenario, error) {
	tm := timing{run: cfg.timing == "run", interval: cfg.interval, busy: cfg.busyInterval, gap: cfg.passGap}
	if tm.run {
		if tm.interval == 0 {
			tm.interval = autoscale.DefaultInterval
		}
		if tm.busy == 0 {
			tm.busy = autoscale.DefaultBusyInterval
		}
		tm.busy = min(tm.busy, tm.interval)
		if tm.gap == 0 {
			tm.gap = autoscale.DefaultMinPassGap
		}
	} else if tm.interval == 0 {
		tm.interval = time.Minute
	}
	sc := &scenario{
		prices:            pt,
		types:             types,
		trace:             trace,
		start:             pt.start,
		length:            min(cfg.length, trace.Length, pt.end.Sub(pt.start)),
		timing:            tm,
		scaleDownDelay:    cfg.scaleDownDelay,
		workKeep:          cfg.workKeep,
		interval:          cfg.interval,
		busyInterval:      cfg.busyInterval,
		passGap:           cfg.passGap,
		pending:           ec2sim.LogNormal(cfg.pending, cfg.bootSigma),
		ready:             ec2sim.LogNormal(cfg.ready, cfg.bootSigma),
		typeDelays:        cfg.typeDelays,
		pendingMed:        cfg.pending,
		readyMed:          cfg.ready,
		bootSigma:         cfg.bootSigma,
		seed:              cfg.seed,
		interruptionShare: cfg.interruptionShare,
		outageReclaim:     cfg.outageReclaim,
		requeue:           cfg.requeue,
		goal:              goal{quantile: cfg.goalQuantile, wait: cfg.goalWait},
		interruptionRate:  cfg.interruptionRate,
		progress:          cfg.progress,
	}
	sc.runEstimate, _ = parseRunEstimate(cfg.runEstimate) // checked by simulateAll
	if sc.length < tm.interval {
		return nil, fmt.Errorf("nothing to simulate: the prices cover %v from their start and the demand %v",
			pt.end.Sub(pt.start).Round(time.Minute), trace.Length)
	}
	peak := trace.Peak(sc.length)
	maxWeight := 1
	for _, t := range types {
		maxWeight = max(maxWeight, t.weight)
	}
	// Headroom over the peak, so that Max never clamps demand and weighted
	// launches can overshoot by an instance.
	sc.max = peak + peak/10 + maxWeight
	sc.outages = makeOutages(pt.zones, sc.start, sc.length, cfg)
	sc.cheapest = pt.cheapestPerUnit(types)
	for _, t := range types {
		od, _ := spotprice.OnDemandPrice(pt.region, t.name)
		if u := od / float64(t.weight); sc.odUnitPrice == 0 || u < sc.odUnitPrice {
			sc.odUnitPrice = u
		}
	}
	sc.demanded = trace.UnitSeconds(0, sc.length)
	boot := sc.launchToReady()
	sc.bootLimited = trace.BootLimited(boot, sc.length)
	if tm.run {
		sc.passLimited = trace.ReactionLimited(boot, tm.gap, sc.length)
	} else {
		sc.passLimited = trace.ReactionLimited(boot, tm.interval, sc.length)
	}
	sc.plotEvery = max(time.Minute, (sc.length / 360).Truncate(time.Minute))
	sc.lowerBound, sc.lowerCurve = sc.lower()
	return sc, nil
}

// launchToReady is the median time from launch to ready.
func (sc *scenario) launchToReady() time.Duration { return sc.pendingMed + sc.readyMed }

// makeOutages draws the spot capacity outages of a run: windows of
// cfg.outageFor in which every spot offering of cfg.outageZones zones (all
// of them when 0) has no capacity, cfg.outagesPerDay a day on average.
func makeOutages(zones []string, start time.Time, length time.Duration, cfg config) []outage {
	if cfg.outagesPerDay <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 0x0a))
	n := cfg.outageZones
	if n <= 0 || n > len(zones) {
		n = len(zones)
	}
	var out []outage
	for at := 0.0; ; {
		at += rng.ExpFloat64() * 24 / cfg.outagesPerDay
		from := start.Add(time.Duration(at * float64(time.Hour)))
		if from.Sub(start) >= length {
			return out
		}
		for _, i := range rng.Perm(len(zones))[:n] {
			out = append(out, outage{zone: zones[i], from: from, to: from.Add(cfg.outageFor)})
		}
	}
}

// lower returns the lower bound: demand times the cheapest price per unit
// at each instant, with no boot time and no interruptions; and its
// cumulative value at the end of each plot step.
func (sc *scenario) lower() (float64, []float64) {
	cuts := []time.Duration{sc.length}
	for _, s := range sc.trace.Steps {
		if s.At < sc.length {
			cuts = append(cuts, s.At)
		}
	}
	for _, p := range sc.cheapest {
		if d := p.at.Sub(sc.start); d > 0 && d < sc.length {
			cuts = append(cuts, d)
		}
	}
	for at := sc.plotEvery; at < sc.length; at += sc.plotEvery {
		cuts = append(cuts, at)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	total := 0.0
	var curve []float64
	from := time.Duration(0)
	for _, to := range cuts {
		if to <= from {
			continue
		}
		total += float64(sc.trace.At(from)) * (to - from).Hours() * priceAt(sc.cheapest, sc.start.Add(from))
		from = to
		if to%sc.plotEvery == 0 || to == sc.length {
			curve = append(curve, total)
		}
	}
	return total, curve
}

// events counts the scaler's decisions of interest and notes when each
// instance left: terminated by the scaler, or reclaimed by EC2.
type events struct {
	terminations int
	terminated   map[string]time.Time // by the scaler
	ended        map[string]time.Time // by the scaler or EC2
	provisioned  map[string]bool      // Provision results read by the current pass
	alarms       map[string]int       // alarms raised, by kind
	// workMarket hears the pool's market choices by work class.
	workMarket func(class string, mk awsctl.Market)
}

func (e *events) Observe(ev autoscale.Event) {
	switch ev.Kind {
	case pool.EventTerminate:
		e.terminations++
		e.terminated[ev.Instance] = ev.Time
		e.ended[ev.Instance] = ev.Time
	case pool.EventInterrupted:
		for _, a := range ev.Inputs {
			if a.Key == "deadline" {
				e.ended[ev.Instance] = a.Value.Time()
			}
		}
	case pool.EventProvisioned, pool.EventProvisionFailed:
		e.provisioned[ev.Instance] = true
	case pool.EventAlarm:
		// The reason starts with the alarm's kind: "flapping: ...".
		kind, _, _ := strings.Cut(ev.Reason, ":")
		e.alarms[kind]++
	case pool.EventWorkMarket:
		if e.workMarket != nil && len(ev.Inputs) > 0 && ev.Inputs[0].Key == "class" {
			e.workMarket(ev.Inputs[0].Value.String(), ev.Market)
		}
	}
}

// costCurve returns the cumulative cost at the end of each sample. Asking
// the sim for its bill at every sample would cost time in proportion to
// every instance ever launched; instead each instance's billed cost is
// spread evenly over its life, from launch to the time it was terminated
// or reclaimed, which is exact at the end and close in between.
func costCurve(insts []awsctl.Instance, bill ec2sim.Bill, ended map[string]time.Time, start time.Time, samples []sample) []float64 {
	// delta[k] is the cost accrued within sample k.
	delta := make([]float64, len(samples)+1)
	bound := func(t time.Time) int {
		d := t.Sub(start)
		i, _ := slices.BinarySearchFunc(samples, d, func(s sample, d time.Duration) int { return cmp.Compare(s.at, d) })
		return i
	}
	end := start
	if len(samples) > 0 {
		end = start.Add(samples[len(samples)-1].at)
	}
	for _, inst := range insts {
		c := bill.ByInstance[inst.ID]
		if c == 0 {
			continue
		}
		from := inst.LaunchTime
		to, ok := ended[inst.ID]
		if !ok || to.After(end) {
			to = end
		}
		life := to.Sub(from).Seconds()
		if life <= 0 {
			delta[bound(from)] += c
			continue
		}
		for k := bound(from); k < len(samples); k++ {
			lo := start
			if k > 0 {
				lo = start.Add(samples[k-1].at)
			}
			hi := start.Add(samples[k].at)
			overlap := minTime(hi, to).Sub(maxTime(lo, from)).Seconds()
			if overlap > 0 {
				delta[k] += c * overlap / life
			}
			if !hi.Before(to) {
				break
			}
		}
	}
	out := make([]float64, len(samples))
	total := 0.0
	for k := range samples {
		total += delta[k]
		out[k] = total
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// world is one policy's simulated cloud, host and scaler.
type world struct {
	sim      *ec2sim.Sim
	cloud    *listing
	role     *provisioner
	work     *workload
	scaler   *autoscale.Scaler
	counted  *events
	settings []string
	baseline int // goroutines of the process besides the scaler's hooks
}

// build sets up a simulated EC2 with the scenario's prices, boot times,
// interruption rates and outages, behind EC2's request limits, and a scaler
// of one pool configured by p, with the library's defaults elsewhere.
func (sc *scenario) build(p policy) (*world, error) {
	region := sc.prices.region
	onDemand := map[string]float64{}
	rates := map[string]float64{}
	var types []pool.InstanceType
	for _, t := range sc.types {
		onDemand[t.name], _ = spotprice.OnDemandPrice(region, t.name)
		if r, ok := spotprice.Risk(region, t.name); ok {
			rates[t.name] = r
		}
		if sc.interruptionRate > 0 {
			rates[t.name] = spotprice.MonthlyProbability(sc.interruptionRate)
		}
		types = append(types, pool.InstanceType{Name: t.name, Weight: t.weight})
	}
	sim, err := ec2sim.New(ec2sim.Config{
		Start:             sc.start,
		Region:            region,
		Zones:             sc.prices.zones,
		BootDelay:         sc.pending,
		ReadyDelay:        sc.ready,
		TypeDelays:        sc.typeDelays,
		ListDelay:         ec2sim.Uniform(0, 5*time.Second),
		OnDemandPrices:    onDemand,
		SpotPrices:        sc.prices.records,
		InterruptionRates: rates,
		InterruptionShare: sc.interruptionShare,
		Seed:              int64(sc.seed),
		Clock:             sc.clock,
	})
	if err != nil {
		return nil, err
	}
	for _, o := range sc.outages {
		for _, t := range sc.types {
			sim.AddCapacityOutage(awsctl.MarketSpot, t.name, o.zone, o.from, o.to)
			if sc.outageReclaim > 0 {
				if err := sim.ScheduleReclaim(t.name, o.zone, o.from, sc.outageReclaim); err != nil {
					return nil, err
				}
			}
		}
	}
	limited, err := ec2limits.New(sim, sim.Now, ec2limits.Default())
	if err != nil {
		return nil, err
	}
	cloud := &listing{Client: limited, replaces: map[string]string{}}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: region, Spot: cloud})
	if err != nil {
		return nil, err
	}
	var prices spotprice.Prices = book
	if sc.interruptionRate > 0 {
		prices = ratedBook{book, sc.interruptionRate}
	}
	qc := manager.QueueConfig{Market: p.market, ScaleDownDelay: sc.scaleDownDelay}
	jobAware := p.jobAware && sc.trace.Jobs != nil
	if jobAware {
		qc.Classes = jobClasses()
	}
	work, err := newWorkload("host", qc, sc.trace, sc.start, sc.requeue)
	if err != nil {
		return nil, err
	}
	var hostSettings []string
	if p.host != nil {
		if work.Queue, hostSettings, err = p.host(sc, qc); err != nil {
			return nil, err
		}
	}
	if jobAware {
		work.useClasses(qc.Classes, sc.runEstimate.classes(sc.trace.Jobs, sc.seed))
	}
	worker := newProvisioner(sim, awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"})
	worker.sleep = sc.clock != nil
	base := pool.Config{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{work},
		Types:    types,
		Zones:    sc.prices.zones,
		Max:      sc.max,
		Prices:   prices,
	}
	cfg := base
	cfg.WorkKeep = sc.workKeep // a setting of its own: listed when it differs
	p.configure(&cfg)
	counted := &events{terminated: map[string]time.Time{}, ended: map[string]time.Time{}, provisioned: map[string]bool{}, alarms: map[string]int{},
		workMarket: work.setClassMarket}
	opts := autoscale.Options{
		Identity:     "simulate-" + p.name,
		Clock:        sim.Now,
		Observer:     counted,
		Interval:     sc.interval,
		BusyInterval: sc.busyInterval,
		MinPassGap:   sc.passGap,
	}
	if p.notices {
		opts.SpotNotices = cloud
	}
	plainQC := qc
	plainQC.Classes = nil
	settings, err := settingsOf(base, cfg, opts, plainQC)
	if err != nil {
		return nil, err
	}
	settings = append(settings, hostSettings...)
	if jobAware {
		settings = append(settings, fmt.Sprintf("manager.QueueConfig.Classes: %d job classes by estimated run time and width, no checkpoints (default: none)",
			len(qc.Classes)))
	}
	scaler, err := autoscale.New(cloud, []pool.Config{cfg}, opts)
	if err != nil {
		return nil, err
	}
	baseline, ok := stillGoroutines()
	if !ok {
		return nil, fmt.Errorf("simulate: goroutines still running %v before the run (%d in all)", quiesceBudget, baseline)
	}
	return &world{sim: sim, cloud: cloud, role: worker, work: work, scaler: scaler, counted: counted, settings: settings,
		baseline: baseline}, nil
}

// close shuts the scaler down and waits until the process runs no more
// goroutines than before the world was built (before): Shutdown returns
// once the hooks have returned, and their goroutines end a moment later.
// A world that leaves goroutines behind is an error.
func (w *world) close(before int) error {
	_ = w.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{})
	if !settle(before) {
		return fmt.Errorf("simulate: %d goroutines still running %v after the scaler shut down (%d before it started)",
			runtime.NumGoroutine(), quiesceBudget, before)
	}
	return nil
}

// simulate runs one policy through the scenario. Between passes the
// simulation moves from event to event (a change of demand, the end of a
// plot step, the next pass), measuring exactly the demand served in
// between; passes are timed by sc.timing, and with Run's timing a rise of
// demand the Queue reports, or a role hook finishing, brings the next pass
// forward as it wakes Run.
func (sc *scenario) simulate(ctx context.Context, p policy) (_ *result, err error) {
	began := time.Now()
	before := runtime.NumGoroutine()
	w, err := sc.build(p)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := w.close(before); cerr != nil && err == nil {
			err = cerr
		}
	}()
	res := &result{policy: p, settings: w.settings}
	rises := &riseTracker{}
	var acc sample
	nextReport := sc.length / 10
	nextPlot := sc.plotEvery
	at := func(d time.Duration) time.Time { return sc.start.Add(d) }

	now := time.Duration(0)
	_, level := w.work.advance(0)
	rises.arrive(0, level, 0)
	nextPass := time.Duration(0)
	var pass time.Duration // time of the latest pass
	otherHooks, hookNow := 0, false
	for {
		// Until the next pass: changes of demand and plot steps.
		for now < nextPass && now < sc.length {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			next := min(nextPass, nextPlot, sc.length)
			if change, ok := w.work.nextChange(); ok && change < next {
				next = max(change, now)
			}
			spot, od := w.work.working()
			d := w.work.demandNow()
			dt := (next - now).Seconds()
			served := min(d, spot+od)
			res.demanded += float64(d) * dt
			res.unmet += float64(d-served) * dt
			acc.demand += float64(d) * dt
			acc.spot += float64(spot) * dt
			acc.onDemand += float64(od) * dt
			if err := w.sim.Advance(next - now); err != nil {
				return nil, err
			}
			now = next
			if now == nextPlot || now == sc.length {
				span := (now - acc.at).Seconds()
				res.samples = append(res.samples, sample{at: now, demand: acc.demand / span, spot: acc.spot / span,
					onDemand: acc.onDemand / span})
				acc = sample{at: now}
				nextPlot += sc.plotEvery
			}
			if change, ok := w.work.nextChange(); ok && change <= now {
				before, after := w.work.advance(now)
				w.work.place()
				spot, od = w.work.working()
				if after > before {
					rises.arrive(now, after, spot+od)
				}
				rises.settle(now, spot+od, after)
				if w.work.takeWake() && sc.timing.run {
					nextPass = min(nextPass, max(now, pass+sc.timing.gap))
				}
			}
			if sc.progress != nil && now >= nextReport {
				fmt.Fprintf(sc.progress, "simulate: %-12s %3.0f%% (day %.1f of %.1f) in %v\n", p.name,
					100*float64(now)/float64(sc.length), now.Hours()/24, sc.length.Hours()/24, time.Since(began).Round(10*time.Millisecond))
				nextReport += sc.length / 10
			}
		}
		if now >= sc.length {
			break
		}
		// A pass: hooks that ended by now reach the pool first.
		pass = now
		released := w.role.release(at(now))
		if len(released) > 0 && !w.role.quiesce(w.baseline) {
			res.lateResults++
		}
		w.role.startPass(at(now))
		clear(w.counted.provisioned)
		// A pass's errors are single actions the scaler retries next pass
		// (throttled calls, capacity shortages); they show in the figures.
		_ = w.scaler.Step(ctx)
		w.role.endPass()
		res.passes++
		for _, id := range released {
			if !w.counted.provisioned[id] {
				if inst, ok := w.sim.Instance(id); ok && inst.State.Live() {
					res.lateResults++
				}
			}
		}
		w.work.takeWake() // this pass read the demand
		w.work.place()
		spot, od := w.work.working()
		rises.settle(now, spot+od, w.work.demandNow())
		if !w.role.quiesce(w.baseline) {
			res.lateStarts++
		}
		if others := w.role.otherHooks(); others > otherHooks {
			// Hooks that return at once (WindDown, as a server is let
			// go) wake Run too.
			otherHooks = others
			hookNow = true
		}
		st := w.scaler.Pool("workers").Status()
		end, hook := w.role.nextEnd()
		if hookNow && (!hook || end.After(at(now))) {
			end, hook = at(now), true
		}
		hookNow = false
		nextPass = sc.timing.next(now, st, end.Sub(sc.start), hook)
	}
	res.ttc, res.unsettled = rises.finish(sc.length)
	res.ttcWaited = rises.slow
	res.waited = rises.waited
	res.bill = w.sim.Bill()
	insts := w.sim.Instances()
	for k, c := range costCurve(insts, res.bill, w.counted.ended, sc.start, res.samples) {
		res.samples[k].cost = c
	}
	res.interruptions = w.sim.Interruptions()
	res.interruptedUnits, res.jobsCut, res.jobsMoved, res.workLost = w.work.interruptedUnits, w.work.jobsCut,
		w.work.jobsMoved, w.work.workLost
	res.launches = len(insts)
	res.terminations = w.counted.terminations
	res.alarms = w.counted.alarms
	res.swapLaunches, res.swapped = countSwaps(insts, w.cloud.replaces, w.counted.terminated, w.work.grantedAt, sc.start)
	res.calls, res.throttled = w.cloud.Calls(), w.cloud.Throttled()
	res.otherHooks = w.role.otherHooks()
	res.forecast = forecastStatus(w.work.Queue)
	res.wall = time.Since(began)
	return res, nil
}

// countSwaps counts the replacements launched and the on-demand servers
// actually swapped out: ones the scaler terminated after their replacement
// had been granted to the host.
func countSwaps(insts []awsctl.Instance, replaces map[string]string, terminated map[string]time.Time, grantedAt map[string]time.Duration, start time.Time) (launched, swapped int) {
	market := make(map[string]awsctl.Market, len(insts))
	for _, inst := range insts {
		market[inst.ID] = inst.Market
	}
	done := map[string]bool{}
	for repl, old := range replaces {
		launched++
		end, gone := terminated[old]
		granted, worked := grantedAt[repl]
		if gone && worked && market[old] == awsctl.MarketOnDemand && !done[old] && !start.Add(granted).After(end) {
			done[old] = true
			swapped++
		}
	}
	return launched, swapped
}

// riseTracker measures the time from each rise of demand until the working
// capacity covers it (or demand has fallen back to what is working).
type riseTracker struct {
	pending riseHeap
	got     []time.Duration
	slow    []time.Duration // of the rises not covered when they came
	waited  int             // rises not covered when they came
}

// arrive takes in a rise to level at now; one the capacity working covers
// takes no time.
func (r *riseTracker) arrive(now time.Duration, level, working int) {
	if level <= working {
		r.got = append(r.got, 0)
		return
	}
	heap.Push(&r.pending, demand.Step{At: now, Units: level})
	r.waited++
}

// settle records the rises covered at now.
func (r *riseTracker) settle(now time.Duration, working, demandNow int) {
	for r.pending.Len() > 0 && (working >= demandNow || r.pending[0].Units <= working) {
		s := heap.Pop(&r.pending).(demand.Step)
		r.got = append(r.got, now-s.At)
		r.slow = append(r.slow, now-s.At)
	}
}

// finish returns every rise's time to capacity, counting the ones never
// covered up to the end, and how many those are.
func (r *riseTracker) finish(end time.Duration) ([]time.Duration, int) {
	n := r.pending.Len()
	for _, s := range r.pending {
		r.got = append(r.got, end-s.At)
		r.slow = append(r.slow, end-s.At)
	}
	r.pending = nil
	return r.got, n
}

// riseHeap orders pending rises by level, lowest first.
type riseHeap []demand.Step

func (h riseHeap) Len() int           { return len(h) }
func (h riseHeap) Less(a, b int) bool { return h[a].Units < h[b].Units }
func (h riseHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *riseHeap) Push(x any)        { *h = append(*h, x.(demand.Step)) }
func (h *riseHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
