package autoscale_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// A model-check scenario is drawn from its seed alone, so the uncrashed
// reference run and the crashed run of a seed play the same script. Time is
// cut into passes of mcInterval; a scenario has three phases:
//
//   - chaos (passes [0, chaosEnd)): demand moves (steps, ramps, drops to
//     zero; some Queues report it as long jobs, which cost less on demand,
//     and short ones), capacity is limited per offering, instances are
//     stopped, terminated and interrupted from outside, hooks take random
//     time or hang, one manager may hang, and the crashed run dies at a
//     random cloud call;
//   - settle ([chaosEnd, settleEnd)): demand holds its final values, every
//     capacity limit is lifted and nothing happens from outside: the pools
//     must converge within mcConvergeBound passes;
//   - drain ([settleEnd, end)): demand is zero; every owned instance but the
//     pools' Min must be gone by the end, and Shutdown with WindDown leaves
//     nothing at all.
const (
	mcInterval      = 30 * time.Second
	mcChaosPasses   = 40
	mcSettlePasses  = 44
	mcDrainPasses   = 30
	mcHourlyDrain   = 140 // an hourly pool winds down only near the end of a paid hour
	mcConvergeBound = 30  // passes after the last demand change
	mcIdentity      = "mc-scaler"
	// mcWindDownTimeout is every pool's WindDownTimeout.
	mcWindDownTimeout = 10 * time.Minute
	mcForeignPool     = "p0"
)

// mcTypes are the instance types scenarios draw from; the sim and the price
// book both know their on-demand prices.
var mcTypes = []string{"m5.large", "c5.large", "r5.large", "m5.xlarge", "c5.xlarge", "m5.2xlarge"}

var mcZones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

type mcManagerKind int

const (
	mcFixed mcManagerKind = iota
	mcQueue
	mcTracking
)

func (k mcManagerKind) String() string {
	return [...]string{"fixed", "queue", "target-tracking"}[k]
}

type mcManagerSpec struct {
	name string
	kind mcManagerKind
	// demand is the capacity wanted at each chaos pass; final holds from
	// the settle phase on, until the drain.
	demand []int
	final  int
	// jobsPerServer (Queue) and the scale-down delay or cooldown (Queue,
	// TargetTracking).
	jobsPerServer int
	delay         time.Duration
	zoneMinimums  map[string]int
	// hangFrom and hangTo bound the chaos passes in which Demand blocks
	// until its context ends; hangTo == 0 means never.
	hangFrom, hangTo int
	// longPct, for a Queue in a pool that buys spot, is the share (in
	// percent) of its jobs that are long (mcLongJobs[longJob], which cost
	// less on demand), the rest short (mcShortJob); the Queue then reports
	// both classes (QueueConfig.Classes, ObserveClasses). Zero means no
	// classes. finalLongPct is the share from the settle phase on.
	longPct, finalLongPct, longJob int
}

// mcInterruptionRate is the hourly interruption rate the scenario's price
// books know (spotprice.InterruptionRater): spot pools under pressure, an
// interruption every two days per instance.
const mcInterruptionRate = 0.02

// The job classes of a Queue with longPct > 0. At mcInterruptionRate, a
// long job without checkpoints costs far more on spot than on demand: a
// hundred hours on 16 units is interrupted e^8 times in expectation on the
// heaviest type, two thousand hours on 64 units more times than a float64
// holds; a short one costs 0.2% more than its spot price.
var (
	mcLongJobs = []manager.JobClass{
		{Name: "long", Run: 100 * time.Hour, Width: 16},
		{Name: "long", Run: 2000 * time.Hour, Width: 64},
	}
	mcShortJob = manager.JobClass{Name: "short", Run: 10 * time.Minute}
)

// longUnits is the part of a Queue's target its long jobs want at a pass:
// its long jobs over jobsPerServer, rounded up, within the target (the
// Queue reports the long class first).
func (m *mcManagerSpec) longUnits(pass, target int) int {
	pct := m.longPct
	if pass >= mcChaosPasses {
		pct = m.finalLongPct
	}
	long, _ := m.jobs(m.demandAt(pass), pct)
	return min(target, (long+m.jobsPerServer-1)/m.jobsPerServer)
}

// jobs splits the jobs of d units of demand into long and short ones.
func (m *mcManagerSpec) jobs(d, longPct int) (long, short int) {
	all := d * m.jobsPerServer
	long = all * longPct / 100
	return long, all - long
}

func (m *mcManagerSpec) demandAt(pass int) int {
	switch {
	case pass < mcChaosPasses:
		return m.demand[pass]
	case pass < mcChaosPasses+mcSettlePasses:
		return m.final
	}
	return 0
}

func (m *mcManagerSpec) hangs(pass int) bool { return pass >= m.hangFrom && pass < m.hangTo }

type mcPoolSpec struct {
	name     string
	types    []pool.InstanceType
	zones    []string
	min, max int
	billing  pool.Billing
	market   pool.MarketStrategy
	batch    int
	managers []*mcManagerSpec
	// Day two: the Disruption budget (servers), the chaos pass from which
	// the role launches a new image, and the pass the host asks for a
	// Refresh (-1 for never).
	budget             int
	imageAt, refreshAt int
}

func (p *mcPoolSpec) weight(instanceType string) int {
	for _, t := range p.types {
		if t.Name == instanceType {
			return t.Weight
		}
	}
	return 1
}

func (p *mcPoolSpec) maxWeight() int {
	w := 1
	for _, t := range p.types {
		w = max(w, t.Weight)
	}
	return w
}

func (p *mcPoolSpec) uniformWeights() bool {
	for _, t := range p.types {
		if t.Weight != p.types[0].Weight {
			return false
		}
	}
	return true
}

type mcOutsideKind int

const (
	mcStop mcOutsideKind = iota
	mcTerminate
	mcInterrupt
	mcRebalance
)

func (k mcOutsideKind) String() string {
	return [...]string{"stop", "terminate", "interrupt", "rebalance"}[k]
}

// mcOutside is an action from outside the scaler at a chaos pass: it picks
// the pick-th (modulo) eligible owned instance of the pool, in launch order.
type mcOutside struct {
	pass int
	kind mcOutsideKind
	pool int
	pick int
}

// mcCapacity sets a SetCapacity limit at a chaos pass (n < 0 lifts it);
// every limit is lifted when the settle phase starts.
type mcCapacity struct {
	pass   int
	market awsctl.Market
	typ    string
	zone   string
	n      int
}

type mcScenario struct {
	seed      int64
	listDelay time.Duration
	pools     []*mcPoolSpec
	outside   []mcOutside
	capacity  []mcCapacity
	// spotRatio[type][zone] is the spot price as a share of on-demand per
	// 10-minute step, from an hour before the start.
	spotRatio map[string]map[string][]float64
	// crashPoint, in [0, 1), picks the cloud call the crashed run dies
	// at among the calls the reference run made in the chaos phase.
	crashPoint float64
	hourly     bool
}

func (sc *mcScenario) passes() int {
	drain := mcDrainPasses
	if sc.hourly {
		drain = mcHourlyDrain
	}
	return mcChaosPasses + mcSettlePasses + drain
}

func drawScenario(seed int64) *mcScenario {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d63))
	sc := &mcScenario{seed: seed, crashPoint: rng.Float64()}
	sc.listDelay = []time.Duration{0, 5 * time.Second, 15 * time.Second, 30 * time.Second, 60 * time.Second}[rng.IntN(5)]
	npools := 1 + rng.IntN(3)
	usedTypes := map[string]bool{}
	for i := range npools {
		p := &mcPoolSpec{name: fmt.Sprintf("p%d", i)}
		ntypes := 1 + rng.IntN(4)
		perm := rng.Perm(len(mcTypes))
		for _, k := range perm[:ntypes] {
			p.types = append(p.types, pool.InstanceType{Name: mcTypes[k], Weight: 1 + rng.IntN(4)})
			usedTypes[mcTypes[k]] = true
		}
		if rng.IntN(3) == 0 { // often a light type: weight 1 first
			p.types[0].Weight = 1
		}
		zperm := rng.Perm(len(mcZones))
		for _, k := range zperm[:2+rng.IntN(2)] {
			p.zones = append(p.zones, mcZones[k])
		}
		slices.Sort(p.zones)
		p.max = 4 + rng.IntN(13)
		if rng.IntN(5) == 0 {
			p.min = 1 + rng.IntN(2)
		}
		if rng.IntN(4) == 0 {
			p.billing = pool.Hourly
			sc.hourly = true
		}
		p.market = []pool.MarketStrategy{pool.OnDemand, pool.Spot, pool.FastStart}[rng.IntN(3)]
		if rng.IntN(2) == 0 {
			p.batch = 1 + rng.IntN(p.max)
		}
		nmgr := 1 + rng.IntN(3)
		for j := range nmgr {
			m := &mcManagerSpec{name: fmt.Sprintf("m%d", j), kind: mcManagerKind(rng.IntN(3))}
			m.demand = drawDemand(rng, p.max)
			m.final = rng.IntN(p.max*2/3 + 1)
			m.jobsPerServer = 1 + rng.IntN(4)
			m.delay = []time.Duration{time.Nanosecond, 2 * time.Minute}[rng.IntN(2)]
			if m.kind != mcTracking && rng.IntN(4) == 0 {
				m.zoneMinimums = map[string]int{p.zones[rng.IntN(len(p.zones))]: 1 + rng.IntN(2)}
			}
			p.managers = append(p.managers, m)
		}
		sc.pools = append(sc.pools, p)
	}
	if rng.IntN(4) == 0 { // one manager hangs for a while
		p := sc.pools[rng.IntN(len(sc.pools))]
		m := p.managers[rng.IntN(len(p.managers))]
		m.hangFrom = rng.IntN(mcChaosPasses - 5)
		m.hangTo = m.hangFrom + 1 + rng.IntN(min(10, mcChaosPasses-m.hangFrom))
	}
	// From outside: people stop and terminate instances, EC2 interrupts
	// spot ones and recommends moving off others.
	for range rng.IntN(6) {
		sc.outside = append(sc.outside, mcOutside{pass: 5 + rng.IntN(mcChaosPasses-10), kind: mcOutsideKind(rng.IntN(4)),
			pool: rng.IntN(len(sc.pools)), pick: rng.IntN(1000)})
	}
	slices.SortStableFunc(sc.outside, func(a, b mcOutside) int { return a.pass - b.pass })
	// Capacity: limits per offering, often the light type of a pool in
	// every zone, so that a heavier type fills the request.
	for range rng.IntN(4) {
		p := sc.pools[rng.IntN(len(sc.pools))]
		from := rng.IntN(mcChaosPasses - 5)
		to := from + 2 + rng.IntN(mcChaosPasses-from-2)
		market := awsctl.MarketOnDemand
		if p.market != pool.OnDemand && rng.IntN(2) == 0 {
			market = awsctl.MarketSpot
		}
		typ := p.types[0].Name
		if rng.IntN(3) == 0 {
			typ = p.types[rng.IntN(len(p.types))].Name
		}
		zones := p.zones
		if rng.IntN(3) == 0 {
			zones = []string{p.zones[rng.IntN(len(p.zones))]}
		}
		n := rng.IntN(3)
		for _, z := range zones {
			sc.capacity = append(sc.capacity, mcCapacity{pass: from, market: market, typ: typ, zone: z, n: n},
				mcCapacity{pass: to, market: market, typ: typ, zone: z, n: -1})
		}
	}
	// Spot prices: a random walk per (type, zone) around 0.3 to 0.9 of
	// on-demand, sometimes above it.
	sc.spotRatio = map[string]map[string][]float64{}
	steps := (sc.passes()*int(mcInterval))/int(10*time.Minute) + 20
	for _, typ := range slices.Sorted(maps.Keys(usedTypes)) {
		sc.spotRatio[typ] = map[string][]float64{}
		for _, z := range mcZones {
			r := 0.2 + 0.6*rng.Float64()
			series := make([]float64, steps)
			for i := range series {
				r += (rng.Float64() - 0.5) * 0.3
				r = min(max(r, 0.15), 1.2)
				series[i] = r
			}
			sc.spotRatio[typ][z] = series
		}
	}
	// Day two, drawn last so that the draws above stay what they were.
	for _, p := range sc.pools {
		p.budget, p.imageAt, p.refreshAt = 1+rng.IntN(3), -1, -1
		if rng.IntN(3) == 0 {
			p.imageAt = 5 + rng.IntN(mcChaosPasses-10)
		}
		if rng.IntN(4) == 0 {
			p.refreshAt = 5 + rng.IntN(mcChaosPasses-10)
		}
	}
	// Job classes, drawn after day two: half the Queues of pools that buy
	// spot report long and short jobs; a third of those have no long jobs
	// left once demand settles, so their on-demand servers are kept for
	// WorkKeep and then swapped for spot.
	for _, p := range sc.pools {
		for _, m := range p.managers {
			if p.market == pool.OnDemand || m.kind != mcQueue || rng.IntN(2) != 0 {
				continue
			}
			m.longPct = []int{25, 50, 75, 100}[rng.IntN(4)]
			m.longJob = rng.IntN(len(mcLongJobs))
			m.finalLongPct = m.longPct
			if rng.IntN(3) == 0 {
				m.finalLongPct = 0
			}
		}
	}
	return sc
}

// drawDemand draws a chaos phase of demand: holds, steps, ramps and drops
// to zero.
func drawDemand(rng *rand.Rand, maxDemand int) []int {
	out := make([]int, mcChaosPasses)
	v := rng.IntN(maxDemand/2 + 1)
	for i := 0; i < mcChaosPasses; {
		n := 2 + rng.IntN(8)
		switch rng.IntN(4) {
		case 0: // hold
		case 1: // step
			v = rng.IntN(maxDemand + 2)
		case 2: // ramp
			to := rng.IntN(maxDemand + 2)
			for k := 0; k < n && i < mcChaosPasses; k, i = k+1, i+1 {
				if v < to {
					v++
				} else if v > to {
					v--
				}
				out[i] = v
			}
			continue
		case 3: // drop to zero
			v = 0
		}
		for k := 0; k < n && i < mcChaosPasses; k, i = k+1, i+1 {
			out[i] = v
		}
	}
	return out
}

// spotPrices turns the scenario's ratios into the sim's price history,
// starting an hour before start.
func (sc *mcScenario) spotPrices(start time.Time) []awsctl.SpotPrice {
	var out []awsctl.SpotPrice
	for typ, zones := range sc.spotRatio {
		od, _ := ec2sim.BuiltinOnDemandPrice(typ)
		for z, series := range zones {
			for i, r := range series {
				out = append(out, awsctl.SpotPrice{InstanceType: typ, Zone: z, PricePerHour: od * r,
					Time: start.Add(-time.Hour + time.Duration(i)*10*time.Minute)})
			}
		}
	}
	slices.SortFunc(out, func(a, b awsctl.SpotPrice) int {
		return strings.Compare(a.InstanceType+a.Zone, b.InstanceType+b.Zone)
	})
	return out
}

// describe is a one-paragraph summary of the scenario for failure reports.
func (sc *mcScenario) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "list delay %v; ", sc.listDelay)
	for _, p := range sc.pools {
		fmt.Fprintf(&b, "pool %s (types %v, zones %v, min %d, max %d, billing %d, market %d, batch %d; managers", p.name, p.types, p.zones, p.min, p.max, p.billing, p.market, p.batch)
		for _, m := range p.managers {
			fmt.Fprintf(&b, " %s:%s final %d", m.name, m.kind, m.final)
			if m.zoneMinimums != nil {
				fmt.Fprintf(&b, " zones %v", m.zoneMinimums)
			}
			if m.hangTo > 0 {
				fmt.Fprintf(&b, " hangs %d-%d", m.hangFrom, m.hangTo)
			}
			if m.longPct > 0 {
				fmt.Fprintf(&b, " long %d%% (%v), final %d%%", m.longPct, mcLongJobs[m.longJob].Run, m.finalLongPct)
			}
		}
		b.WriteString("); ")
	}
	fmt.Fprintf(&b, "outside %v; capacity %v", sc.outside, sc.capacity)
	return b.String()
}
