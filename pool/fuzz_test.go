package pool_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// fuzzPrices answers whatever prices the fuzzer chose, valid or not.
type fuzzPrices struct {
	od   map[string]float64
	spot map[string]float64
}

func (f fuzzPrices) OnDemand(t string) (float64, bool) { p, ok := f.od[t]; return p, ok }
func (f fuzzPrices) SpotStatus(t, z string, now time.Time) (float64, spotprice.PriceStatus) {
	p, ok := f.spot[t+"/"+z]
	switch {
	case !ok:
		return 0, spotprice.PriceMissing
	case !(p > 0) || math.IsInf(p, 0):
		return p, spotprice.PriceInvalid
	}
	return p, spotprice.PriceOK
}
func (f fuzzPrices) Effective(_ string, _ awsctl.Market, p float64) float64 { return p }
func (f fuzzPrices) Reservations() []awsctl.Reservation                     { return nil }
func (f fuzzPrices) Risk(string) (float64, bool)                            { return 0.05, true }

// fuzzWorld is a few passes of one pool over instances the fuzzer made up,
// with the pool's own actions applied between passes.
type fuzzWorld struct {
	t       *testing.T
	rng     *rand.Rand
	now     time.Time
	insts   map[string]*awsctl.Instance
	nextID  int
	max     int
	weights map[string]int
}

var fuzzTypes = []string{"m5.large", "c5.xlarge", "x9.unknown"}
var fuzzZones = []string{"z1", "z2", "z3", "z9"}
var fuzzManagers = []string{"a", "b", "", "ghost"}

func (w *fuzzWorld) pick(xs []string) string { return xs[w.rng.IntN(len(xs))] }

func (w *fuzzWorld) randomInstance() *awsctl.Instance {
	w.nextID++
	inst := &awsctl.Instance{
		ID:         fmt.Sprintf("i-%04d", w.nextID),
		Type:       w.pick(fuzzTypes),
		Zone:       w.pick(fuzzZones),
		Market:     []awsctl.Market{awsctl.MarketOnDemand, awsctl.MarketSpot}[w.rng.IntN(2)],
		State:      []awsctl.State{awsctl.StatePending, awsctl.StateRunning, awsctl.StateRunning, awsctl.StateShuttingDown, awsctl.StateStopped}[w.rng.IntN(5)],
		LaunchTime: w.now.Add(-time.Duration(w.rng.IntN(7200)) * time.Second),
		Tags:       map[string]string{pool.TagPool: "p"},
	}
	if m := w.pick(fuzzManagers); m != "" {
		inst.Tags[pool.TagManager] = m
	}
	switch w.rng.IntN(4) {
	case 0:
		inst.Tags[pool.TagWindDownStart] = w.now.Add(-time.Minute).Format(time.RFC3339)
		inst.Tags[pool.TagWindDownDeadline] = w.now.Add(time.Duration(w.rng.IntN(1200)-600) * time.Second).Format(time.RFC3339)
	case 1:
		inst.Tags[pool.TagWindDownStart] = "yesterday"
		inst.Tags[pool.TagWindDownDeadline] = "not a time"
	}
	if w.rng.IntN(6) == 0 {
		inst.Tags[pool.TagReplaces] = fmt.Sprintf("i-%04d", 1+w.rng.IntN(w.nextID))
	}
	return inst
}

func (w *fuzzWorld) snapshot() []awsctl.Instance {
	out := make([]awsctl.Instance, 0, len(w.insts))
	for _, inst := range w.insts {
		out = append(out, *inst)
	}
	slices.SortFunc(out, func(a, b awsctl.Instance) int {
		if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (w *fuzzWorld) weight(t string) int {
	if n, ok := w.weights[t]; ok {
		return n
	}
	return 1
}

// check asserts the plan's invariants against the snapshot it came from.
func (w *fuzzWorld) check(pl *pool.Plan, snap []awsctl.Instance, interrupted map[string]time.Time) {
	byID := map[string]awsctl.Instance{}
	live := 0
	for _, inst := range snap {
		byID[inst.ID] = inst
		_, tagged := inst.Tags[pool.TagInterrupted] // an interruption recorded in an earlier pass
		if inst.State.Live() && interrupted[inst.ID].IsZero() && !tagged {
			live += w.weight(inst.Type)
		}
	}
	for _, e := range pl.Events {
		if strings.HasPrefix(e.Reason, "lifecycle transition outside the table") {
			w.t.Fatalf("%s", e.Reason)
		}
	}
	for _, ch := range pl.Changes {
		if _, ok := byID[ch.Instance.ID]; !ok {
			w.t.Fatalf("change names %s, not in the snapshot", ch.Instance.ID)
		}
	}
	for _, id := range pl.Terminate {
		inst, ok := byID[id]
		if !ok {
			w.t.Fatalf("terminate names %s, not in the snapshot", id)
		}
		if _, winding := inst.Tags[pool.TagWindDownStart]; !winding {
			w.t.Fatalf("terminate %s, which was never wound down (tags %v)", id, inst.Tags)
		}
	}
	launched := 0
	for _, l := range pl.Launches {
		if l.Capacity <= 0 || len(l.Offerings) == 0 || !l.Market.Valid() {
			w.t.Fatalf("malformed launch %+v", l)
		}
		launched += l.Capacity
	}
	if launched > 0 && live+launched > w.max {
		for _, l := range pl.Launches {
			w.t.Logf("launch %d %s %v", l.Capacity, l.Market, l.Offerings)
		}
		w.t.Fatalf("launching %d on top of %d live: beyond max %d", launched, live, w.max)
	}
}

// apply carries a plan out on the made-up instances.
func (w *fuzzWorld) apply(pl *pool.Plan) pool.Outcome {
	var out pool.Outcome
	for _, ch := range pl.Changes {
		inst := w.insts[ch.Instance.ID]
		if len(ch.Set) == 0 && len(ch.Remove) == 0 {
			continue
		}
		// A new map, as a CloudClient shows changed tags: a map it returned
		// never changes.
		tags := maps.Clone(inst.Tags)
		for k, v := range ch.Set {
			tags[k] = v
		}
		for _, k := range ch.Remove {
			delete(tags, k)
		}
		inst.Tags = tags
	}
	for _, l := range pl.Launches {
		var got []awsctl.Instance
		for have := 0; have < l.Capacity; {
			o := l.Offerings[0]
			w.nextID++
			inst := &awsctl.Instance{ID: fmt.Sprintf("i-%04d", w.nextID), Type: o.InstanceType, Zone: o.Zone,
				Market: l.Market, State: awsctl.StatePending, LaunchTime: w.now, Tags: map[string]string{}}
			for k, v := range l.Tags {
				inst.Tags[k] = v
			}
			w.insts[inst.ID] = inst
			got = append(got, *inst)
			have += max(1, o.Weight)
		}
		out.Launched = append(out.Launched, got)
		out.LaunchErr = append(out.LaunchErr, nil)
	}
	for _, id := range pl.Terminate {
		w.insts[id].State = awsctl.StateShuttingDown
		out.Terminated = append(out.Terminated, id)
	}
	return out
}

func FuzzPlan(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(seed, uint8(10), int8(3), int8(5), uint8(20))
	}
	f.Add(uint64(7), uint8(0), int8(-4), int8(100), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, n uint8, targetA, targetB int8, maxSize uint8) {
		rng := rand.New(rand.NewPCG(seed, uint64(n)))
		w := &fuzzWorld{t: t, rng: rng, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
			insts: map[string]*awsctl.Instance{}, max: max(1, int(maxSize)),
			weights: map[string]int{"m5.large": 1, "c5.xlarge": 2}}
		for range int(n) % 40 {
			inst := w.randomInstance()
			w.insts[inst.ID] = inst
		}
		prices := fuzzPrices{od: map[string]float64{}, spot: map[string]float64{}}
		for _, ty := range fuzzTypes[:2] {
			prices.od[ty] = []float64{0.1, 0, -1, math.NaN(), 0.2}[rng.IntN(5)]
			for _, z := range fuzzZones {
				if rng.IntN(3) > 0 {
					prices.spot[ty+"/"+z] = []float64{0.01, 0.05, 0.09, 0, -0.5, math.Inf(1)}[rng.IntN(6)]
				}
			}
		}
		a := &want{name: "a", req: manager.Request{Target: int(targetA), Idle: []string{"i-0001", "i-0003"}}}
		b := &want{name: "b", req: manager.Request{Target: int(targetB), Market: manager.MarketPreference(rng.IntN(4) - 1),
			ZoneMinimums: map[string]int{"z2": rng.IntN(4), "z9": 1}}}
		strategy := pool.MarketStrategy(rng.IntN(3))
		p, err := pool.New(pool.Config{
			Name: "p", Role: stub{}, Managers: []manager.Manager{a, b},
			Types:        []pool.InstanceType{{Name: "m5.large"}, {Name: "c5.xlarge", Weight: 2}},
			Zones:        fuzzZones[:3],
			Max:          w.max,
			Min:          rng.IntN(w.max + 1),
			Market:       strategy,
			Prices:       prices,
			Billing:      pool.Billing(rng.IntN(2)),
			MaxSpotShare: []float64{0, 0.3, 1}[rng.IntN(3)],
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for range 4 {
			interrupted := map[string]time.Time{}
			snap := w.snapshot()
			for _, inst := range snap {
				if rng.IntN(10) == 0 {
					interrupted[inst.ID] = w.now.Add(2 * time.Minute)
				}
			}
			pl := p.Plan(ctx, pool.Snapshot{Now: w.now, Instances: snap, Interrupted: interrupted})
			w.check(pl, snap, interrupted)
			p.Commit(ctx, pl, w.apply(pl))
			if err := p.WaitHooks(ctx); err != nil {
				t.Fatal(err)
			}
			for _, inst := range w.insts {
				if inst.State == awsctl.StatePending {
					inst.State = awsctl.StateRunning
				}
			}
			w.now = w.now.Add(30 * time.Second)
		}
	})
}
