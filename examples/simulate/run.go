package main

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim/ec2limits"
	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/demand"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// scenario is what every policy of a run faces: the same prices, demand,
// boot times, interruption rates and capacity outages.
type scenario struct {
	prices   *priceTrace
	types    []instanceType
	trace    *demand.Trace
	start    time.Time
	length   time.Duration
	interval time.Duration
	// scaleDownDelay is the host's: see newWorkload.
	scaleDownDelay time.Duration
	// regrant: a second pass right after any pass that provisioned servers.
	regrant bool
	// busy, when set, is the time between passes while capacity is on its
	// way, as Scaler.Run times its passes.
	busy    time.Duration
	boot    ec2sim.Delay
	bootMed time.Duration
	seed    uint64
	outages []outage
	max     int // the pool's Max
	// Figures that do not depend on the policy.
	demanded    float64 // unit-seconds
	bootLimited float64 // unit-seconds no reactive policy can serve
	passLimited float64 // same, for a policy that reads demand at its passes
	lowerBound  float64 // dollars
	lowerCurve  []float64
	cheapest    []pricePoint
	plotEvery   time.Duration
	progress    io.Writer
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
	bill      ec2sim.Bill
	unmet     float64 // unit-seconds demanded but not served
	ttc       []time.Duration
	unsettled int // rises still not served at the end (counted in ttc up to the end)
	waited    int // rises the capacity working when they came did not cover
	// Interruptions: notices EC2 issued, and what they hit.
	interruptions    int
	interruptedUnits int
	jobsCut          int
	workLost         float64 // unit-seconds
	launches         int
	terminations     int
	replacements     int
	calls, throttled map[string]int
	samples          []sample
	passes           int
	wall             time.Duration
}

// newScenario computes what every policy shares.
func newScenario(pt *priceTrace, types []instanceType, trace *demand.Trace, cfg config) (*scenario, error) {
	sc := &scenario{
		prices:         pt,
		types:          types,
		trace:          trace,
		start:          pt.start,
		length:         min(cfg.length, trace.Length, pt.end.Sub(pt.start)),
		interval:       cfg.interval,
		scaleDownDelay: cfg.scaleDownDelay,
		regrant:        cfg.regrant || cfg.runTiming,
		busy:           busyInterval(cfg),
		boot:           ec2sim.LogNormal(cfg.boot, cfg.bootSigma),
		bootMed:        cfg.boot,
		seed:           cfg.seed,
		progress:       cfg.progress,
	}
	if sc.length < sc.interval {
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
	sc.demanded = trace.UnitSeconds(0, sc.length)
	sc.bootLimited = trace.BootLimited(cfg.boot, sc.length)
	sc.passLimited = trace.ReactionLimited(cfg.boot, sc.interval, sc.length)
	sc.plotEvery = max(sc.interval, (sc.length / 360).Truncate(sc.interval))
	sc.lowerBound, sc.lowerCurve = sc.lower()
	return sc, nil
}

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
	terminations, replacements int
	ended                      map[string]time.Time
}

func (e *events) Observe(ev autoscale.Event) {
	switch ev.Kind {
	case pool.EventTerminate:
		e.terminations++
		e.ended[ev.Instance] = ev.Time
	case pool.EventInterrupted:
		for _, a := range ev.Inputs {
			if a.Key == "deadline" {
				e.ended[ev.Instance] = a.Value.Time()
			}
		}
	case pool.EventReplace:
		e.replacements++
	}
}

// costCurve returns the cumulative cost at the end of each sample. Asking
// the sim for its bill at every sample would cost time in proportion to
// every instance ever launched; instead each instance's billed cost is
// spread evenly over its life, from launch to the time it was terminated
// or reclaimed, which is exact at the end and close in between.
func costCurve(sim *ec2sim.Sim, bill ec2sim.Bill, ended map[string]time.Time, start time.Time, samples []sample) []float64 {
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
	for _, inst := range sim.Instances() {
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
	sim     *ec2sim.Sim
	cloud   *ec2limits.Client
	work    *workload
	scaler  *autoscale.Scaler
	counted *events
}

// build sets up a simulated EC2 with the scenario's prices, boot times,
// interruption rates and outages, behind EC2's request limits, and a scaler
// of one pool configured by p.
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
		types = append(types, pool.InstanceType{Name: t.name, Weight: t.weight})
	}
	sim, err := ec2sim.New(ec2sim.Config{
		Start:             sc.start,
		Region:            region,
		Zones:             sc.prices.zones,
		BootDelay:         sc.boot,
		ListDelay:         ec2sim.Uniform(0, 5*time.Second),
		OnDemandPrices:    onDemand,
		SpotPrices:        sc.prices.records,
		InterruptionRates: rates,
		Seed:              int64(sc.seed),
	})
	if err != nil {
		return nil, err
	}
	for _, o := range sc.outages {
		for _, t := range sc.types {
			sim.AddCapacityOutage(awsctl.MarketSpot, t.name, o.zone, o.from, o.to)
		}
	}
	cloud, err := ec2limits.New(sim, sim.Now, ec2limits.Default())
	if err != nil {
		return nil, err
	}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: region, Spot: cloud})
	if err != nil {
		return nil, err
	}
	work, err := newWorkload("host", p.market, sc.trace, sc.start, sc.scaleDownDelay)
	if err != nil {
		return nil, err
	}
	worker, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	if err != nil {
		return nil, err
	}
	cfg := pool.Config{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{work},
		Types:    types,
		Zones:    sc.prices.zones,
		Max:      sc.max,
		Prices:   book,
	}
	p.configure(&cfg)
	counted := &events{ended: map[string]time.Time{}}
	opts := autoscale.Options{
		Identity: "simulate-" + p.name,
		Interval: sc.interval,
		Clock:    sim.Now,
		// The role's hooks return at once; waiting for them makes every
		// pass see the previous one's hooks done, so runs repeat exactly.
		HookWait: time.Minute,
		Observer: counted,
	}
	if p.notices {
		opts.SpotNotices = cloud
	}
	scaler, err := autoscale.New(cloud, []pool.Config{cfg}, opts)
	if err != nil {
		return nil, err
	}
	return &world{sim: sim, cloud: cloud, work: work, scaler: scaler, counted: counted}, nil
}

// busyInterval is the pass interval while capacity is on its way: Run's
// default with -run-timing, otherwise none (a pass every interval).
func busyInterval(cfg config) time.Duration {
	if !cfg.runTiming {
		return 0
	}
	return min(autoscale.DefaultBusyInterval, cfg.interval)
}

// simulate runs one policy through the scenario: a pass every interval,
// the demand served in between measured exactly.
func (sc *scenario) simulate(ctx context.Context, p policy) (*result, error) {
	began := time.Now()
	w, err := sc.build(p)
	if err != nil {
		return nil, err
	}
	defer w.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{})
	res := &result{policy: p}
	rises := &riseTracker{rises: sc.trace.Rises(sc.length)}
	var acc sample
	nextReport := sc.length / 10
	for now := time.Duration(0); now < sc.length; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w.work.advance(now)
		spot, od := w.work.working()
		rises.arrive(now, spot+od)
		// A pass's errors are single actions the scaler retries next pass
		// (throttled calls, capacity shortages); they show in the figures.
		_ = w.scaler.Step(ctx)
		res.passes++
		if sc.regrant && w.scaler.Pool("workers").Status().Provisioning > 0 {
			// The pass started Provision hooks and waited for them: one
			// more pass at the same instant grants what they made ready.
			_ = w.scaler.Step(ctx)
			res.passes++
		}
		w.work.place()
		spot, od = w.work.working()
		rises.settle(now, spot+od, sc.trace.At(now))
		// Until the next pass, what works now serves what is demanded.
		wait := sc.interval
		if st := w.scaler.Pool("workers").Status(); sc.busy > 0 && st.Booting+st.Provisioning+st.WindingDown+st.Replacing > 0 {
			wait = sc.busy
		}
		next := min(now+wait, sc.length)
		demanded := sc.trace.UnitSeconds(now, next)
		res.unmet += demanded - sc.trace.Served(now, next, spot+od)
		dt := (next - now).Seconds()
		acc.demand += demanded
		acc.spot += float64(spot) * dt
		acc.onDemand += float64(od) * dt
		if err := w.sim.Advance(next - now); err != nil {
			return nil, err
		}
		crossed := next/sc.plotEvery != now/sc.plotEvery // passes may not fall on the plot's grid
		now = next
		if crossed || now == sc.length {
			span := (now - acc.at).Seconds()
			res.samples = append(res.samples, sample{at: now, demand: acc.demand / span, spot: acc.spot / span,
				onDemand: acc.onDemand / span})
			acc = sample{at: now}
		}
		if sc.progress != nil && now >= nextReport {
			fmt.Fprintf(sc.progress, "simulate: %-12s %3.0f%% (day %.1f of %.1f) in %v\n", p.name,
				100*float64(now)/float64(sc.length), now.Hours()/24, sc.length.Hours()/24, time.Since(began).Round(10*time.Millisecond))
			nextReport += sc.length / 10
		}
	}
	res.ttc, res.unsettled = rises.finish(sc.length)
	res.waited = rises.waited
	res.bill = w.sim.Bill()
	for k, c := range costCurve(w.sim, res.bill, w.counted.ended, sc.start, res.samples) {
		res.samples[k].cost = c
	}
	res.interruptions = w.sim.Interruptions()
	res.interruptedUnits, res.jobsCut, res.workLost = w.work.interruptedUnits, w.work.jobsCut, w.work.workLost
	res.launches = len(w.sim.Instances())
	res.terminations, res.replacements = w.counted.terminations, w.counted.replacements
	res.calls, res.throttled = w.cloud.Calls(), w.cloud.Throttled()
	res.wall = time.Since(began)
	return res, nil
}

// riseTracker measures the time from each rise of demand until the working
// capacity covers it (or demand has fallen back to what is working).
type riseTracker struct {
	rises   []demand.Step
	next    int
	pending riseHeap
	got     []time.Duration
	waited  int // rises not covered when they came
}

// arrive takes in the rises up to now; those the capacity working since
// the last pass already covers take no time.
func (r *riseTracker) arrive(now time.Duration, working int) {
	for ; r.next < len(r.rises) && r.rises[r.next].At <= now; r.next++ {
		s := r.rises[r.next]
		if s.Units <= working {
			r.got = append(r.got, 0)
			continue
		}
		heap.Push(&r.pending, s)
		r.waited++
	}
}

// settle records the rises covered after the pass at now.
func (r *riseTracker) settle(now time.Duration, working, demandNow int) {
	for r.pending.Len() > 0 && (working >= demandNow || r.pending[0].Units <= working) {
		s := heap.Pop(&r.pending).(demand.Step)
		r.got = append(r.got, now-s.At)
	}
}

// finish returns every rise's time to capacity, counting the ones never
// covered up to the end, and how many those are.
func (r *riseTracker) finish(end time.Duration) ([]time.Duration, int) {
	n := r.pending.Len()
	for _, s := range r.pending {
		r.got = append(r.got, end-s.At)
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
