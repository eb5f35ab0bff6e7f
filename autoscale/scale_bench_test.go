package autoscale_test

import (
	"context"
	"fmt"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim/ec2limits"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// The scale benchmarks and the burst test. BENCHMARKS.md at the root of the
// repository records their latest figures and the commands that produce
// them:
//
//	go test -run '^$' -bench BenchmarkScaleStep -benchmem -benchtime 50x ./autoscale
//	go test -run TestBurstWithinEC2Limits -v ./autoscale

const (
	scalePools           = 20
	scaleManagersPerPool = 5 // 100 managers in all
)

// BenchmarkScaleStep measures one steady-state pass at 1,000, 10,000 and
// 100,000 instances in 20 pools of 5 managers each, with spot prices and
// reservations read through a price book on its TTLs. Every pass the clock
// moves on by the scaler's interval, so the TTLs expire as in production.
//
// Besides time and memory it reports the cloud calls per pass, by kind:
// list-calls/op are the listing's pages (one per 1,000 instances),
// price-calls/op the spot price and reservation refreshes, and
// mutating-calls/op anything that changes instances, which must be zero in
// steady state. ns/instance shows whether the cost grows linearly, and
// cpu-ns/op the process's CPU time per pass (the collector's included),
// which varies less than ns/op on a shared machine. The timed passes carry
// the profile label phase=steady:
//
//	go test -run '^$' -bench 'BenchmarkScaleStep/instances=10000$' -benchtime 1500x -cpuprofile cpu.out -o as.test ./autoscale
//	go tool pprof -tagfocus phase=steady -top -cum as.test cpu.out
func BenchmarkScaleStep(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			benchmarkSteadyPass(b, n, scalePools, scaleManagersPerPool, pool.Spot)
		})
	}
}

// BenchmarkStep measures one steady-state pass over 1,000 and 10,000
// instances in 10 on-demand pools of 10 managers each, with no price book:
// the listing, the decisions and no action.
//
//	go test -run '^$' -bench 'BenchmarkStep$' -benchmem ./autoscale
func BenchmarkStep(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			benchmarkSteadyPass(b, n, 10, 10, pool.OnDemand)
		})
	}
}

// benchmarkSteadyPass sets up pools granting every instance, then measures
// passes that change nothing.
func benchmarkSteadyPass(b *testing.B, instances, pools, managersPerPool int, market pool.MarketStrategy) {
	const interval = 30 * time.Second
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay:  ec2sim.Fixed(10 * time.Second),
		Seed:       1,
		SpotPrices: scaleSpotPrices(),
	})
	if err != nil {
		b.Fatal(err)
	}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: sim, Reservations: sim})
	if err != nil {
		b.Fatal(err)
	}
	per := instances / pools / managersPerPool
	var cfgs []pool.Config
	for i := range pools {
		var ms []manager.Manager
		for j := range managersPerPool {
			m, err := manager.NewFixed(fmt.Sprintf("m%d", j), per)
			if err != nil {
				b.Fatal(err)
			}
			ms = append(ms, m)
		}
		cfgs = append(cfgs, pool.Config{
			Name:         fmt.Sprintf("pool-%d", i),
			Role:         instantRole(b),
			Managers:     ms,
			Types:        []pool.InstanceType{{Name: "c5.large"}, {Name: "m5.large"}},
			Zones:        []string{"us-east-1a", "us-east-1b", "us-east-1c"},
			Max:          instances,
			Market:       market,
			MaxSpotShare: 0.5,
		})
		if market != pool.OnDemand {
			cfgs[i].Prices = book
		}
	}
	s, err := autoscale.New(sim, cfgs, autoscale.Options{
		Identity: "bench",
		Interval: interval,
		Clock:    sim.Now,
		HookWait: time.Minute,
		// Setting up 100,000 instances at the default launch rails would
		// take over three simulated hours of passes.
		Rails: autoscale.Rails{MaxLaunchPerMinute: -1, MaxLaunchCallsPerPass: -1},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background(), autoscale.ShutdownOptions{})
	ctx := context.Background()
	// Eight simulated minutes: every instance launched, ready and granted,
	// and one read of EC2's health (every EC2HealthInterval, 5 minutes) done,
	// so that the timed passes find the buffers they keep already grown.
	for range 16 {
		if err := s.Step(ctx); err != nil {
			b.Fatal(err)
		}
		if err := sim.Advance(interval); err != nil {
			b.Fatal(err)
		}
	}
	held := 0
	for _, p := range s.Pools() {
		held += p.Status().Granted
	}
	if held != instances {
		b.Fatalf("setup: %d of %d servers granted", held, instances)
	}
	sim.ResetCalls()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	// Labelled, so that a CPU profile can leave the setup out:
	// go tool pprof -tagfocus phase=steady.
	pprof.Do(ctx, pprof.Labels("phase", "steady"), func(ctx context.Context) {
		for b.Loop() {
			if err := s.Step(ctx); err != nil {
				b.Fatal(err)
			}
			if err := sim.Advance(interval); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	calls := sim.Calls()
	perPass := func(ops ...string) float64 {
		n := 0
		for _, op := range ops {
			n += calls[op]
		}
		return float64(n) / float64(b.N)
	}
	b.ReportMetric(perPass(ec2sim.OpListInstances), "list-calls/op")
	b.ReportMetric(perPass(ec2sim.OpSpotPrices, ec2sim.OpReservations), "price-calls/op")
	mutating := perPass(ec2sim.OpLaunch, ec2sim.OpTerminate, ec2sim.OpTag, ec2sim.OpUntag)
	b.ReportMetric(mutating, "mutating-calls/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(instances), "ns/instance")
	if mutating > 0 {
		b.Errorf("steady state made mutating calls: %v", calls)
	}
}

// cpuTime is the CPU time the process has used, the collector's included.
// On a shared machine it varies less than a benchmark's wall time (ns/op),
// which also counts the time other processes held the processor.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scaleSpotPrices are spot prices for the benchmark's offerings, refreshed
// by the book on its TTL.
func scaleSpotPrices() []awsctl.SpotPrice {
	var out []awsctl.SpotPrice
	at := ec2sim.DefaultStart.Add(-time.Hour)
	for _, z := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		out = append(out,
			awsctl.SpotPrice{InstanceType: "c5.large", Zone: z, PricePerHour: 0.035, Time: at},
			awsctl.SpotPrice{InstanceType: "m5.large", Zone: z, PricePerHour: 0.040, Time: at})
	}
	return out
}

// instantRole is a role whose hooks all succeed at once.
func instantRole(tb testing.TB) role.Role {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestBurstWithinEC2Limits asks for 1,000 servers at once and checks that
// they all arrive without a single call refused under EC2's default request
// limits, enforced on the simulator's clock by package ec2limits. Launches with
// one offering are RunInstances requests (5 at once, 2 a second; 1,000
// instances at once, 2 a second), launches with several are CreateFleet
// requests (50 at once, 5 a second), as the SDK-backed client makes them.
func TestBurstWithinEC2Limits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		types []pool.InstanceType
		zones []string
	}{
		{"RunInstances: one type in one zone", []pool.InstanceType{{Name: "c5.large"}}, []string{"us-east-1a"}},
		{"CreateFleet: two types in three zones", []pool.InstanceType{{Name: "c5.large"}, {Name: "m5.large"}},
			[]string{"us-east-1a", "us-east-1b", "us-east-1c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := runBurst(t, tc.types, tc.zones, autoscale.Rails{})
			t.Logf("1,000 servers granted %v after the demand, in %d passes; requests %v; throttled %v",
				b.took, b.passes, b.calls, b.throttled)
			if n := sum(b.throttled); n > 0 {
				t.Errorf("%d requests throttled: %v", n, b.throttled)
			}
		})
	}
}

// TestBurstBeyondTheLaunchRailsIsThrottled documents what keeps a burst
// within EC2's RunInstances limit: the rails. At most 5 launch calls a pass
// (RunInstances' burst), and 500 units a minute in batches of LaunchBatch
// (100). Without them, the first pass makes 10 calls and EC2 refuses 5 of
// them; the scaler retries the refused capacity next pass, so the burst still
// completes, a pass later.
func TestBurstBeyondTheLaunchRailsIsThrottled(t *testing.T) {
	b := runBurst(t, []pool.InstanceType{{Name: "c5.large"}}, []string{"us-east-1a"},
		autoscale.Rails{MaxLaunchPerMinute: -1, MaxLaunchCallsPerPass: -1})
	t.Logf("without the rails: granted after %v in %d passes; requests %v; throttled %v", b.took, b.passes, b.calls, b.throttled)
	if b.throttled["RunInstances"] == 0 {
		t.Errorf("no RunInstances request throttled; the test no longer shows what the rails protect against")
	}
}

// The call cap alone keeps a burst within EC2's limits, whatever the
// launch-rate rail allows.
func TestLaunchCallCapAloneAvoidsThrottling(t *testing.T) {
	b := runBurst(t, []pool.InstanceType{{Name: "c5.large"}}, []string{"us-east-1a"}, autoscale.Rails{MaxLaunchPerMinute: -1})
	t.Logf("call cap only: granted after %v in %d passes; requests %v; throttled %v", b.took, b.passes, b.calls, b.throttled)
	if n := sum(b.throttled); n > 0 {
		t.Errorf("%d requests throttled: %v", n, b.throttled)
	}
}

type burst struct {
	took             time.Duration
	passes           int
	calls, throttled map[string]int
}

func runBurst(t *testing.T, types []pool.InstanceType, zones []string, rails autoscale.Rails) burst {
	t.Helper()
	const want = 1000
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay: ec2sim.LogNormal(45*time.Second, 0.25),
		ListDelay: ec2sim.Uniform(0, 5*time.Second),
		Seed:      1,
	})
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := ec2limits.New(sim, sim.Now, ec2limits.Default())
	require.NoError(t, err)
	m, err := manager.NewFixed("jobs", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := autoscale.New(cloud, []pool.Config{{
		Name:     "workers",
		Role:     instantRole(t),
		Managers: []manager.Manager{m},
		Types:    types,
		Zones:    zones,
		Max:      want,
	}}, autoscale.Options{Identity: "burst", Clock: sim.Now, HookWait: time.Minute, Rails: rails})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background(), autoscale.ShutdownOptions{})
	ctx := context.Background()
	step := func() {
		_ = s.Step(ctx) // refused calls are retried next pass; the counts tell
		if err := sim.Advance(autoscale.DefaultInterval); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 { // an idle pool, listed a few times
		step()
	}
	if err := m.Set(want); err != nil {
		t.Fatal(err)
	}
	began := sim.Now()
	for pass := 1; pass <= 40; pass++ {
		step()
		if got := s.Pool("workers").Status().Granted; got == want {
			return burst{took: sim.Now().Add(-autoscale.DefaultInterval).Sub(began), passes: pass,
				calls: cloud.Calls(), throttled: cloud.Throttled()}
		}
	}
	t.Fatalf("1,000 servers not granted after 40 passes: %+v; throttled %v", s.Pool("workers").Status(), cloud.Throttled())
	return burst{}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
