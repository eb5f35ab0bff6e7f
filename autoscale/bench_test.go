package autoscale_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// BenchmarkStep measures one steady-state pass over n instances in 10
// pools of 10 managers each: the listing, the decisions and no action.
//
//	go test -run '^$' -bench BenchmarkStep -benchmem ./autoscale
func BenchmarkStep(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			benchmarkStep(b, n, 10, 10)
		})
	}
}

func benchmarkStep(b *testing.B, instances, pools, managersPerPool int) {
	sim, err := ec2sim.New(ec2sim.Config{BootDelay: ec2sim.Fixed(time.Second), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	r := newServers().role(b)
	var cfgs []pool.Config
	per := instances / pools / managersPerPool
	for i := range pools {
		var ms []manager.Manager
		for j := range managersPerPool {
			ms = append(ms, fixed(b, fmt.Sprintf("m%d", j), per))
		}
		cfgs = append(cfgs, pool.Config{
			Name:     fmt.Sprintf("pool-%d", i),
			Role:     r,
			Managers: ms,
			Types:    []pool.InstanceType{{Name: "c5.large"}, {Name: "m5.large"}},
			Zones:    []string{"us-east-1a", "us-east-1b", "us-east-1c"},
			Max:      instances,
		})
	}
	s, err := autoscale.New(sim, cfgs, autoscale.Options{Identity: "bench", Clock: sim.Now, HookWait: time.Minute,
		Rails: autoscale.Rails{MaxLaunchPerMinute: -1, MaxLaunchCallsPerPass: -1}}) // the setup launches everything at once
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background(), autoscale.ShutdownOptions{})
	ctx := context.Background()
	for range 20 {
		if err := s.Step(ctx); err != nil {
			b.Fatal(err)
		}
		if err := sim.Advance(30 * time.Second); err != nil {
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
	b.ResetTimer()
	for b.Loop() {
		if err := s.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	calls := 0
	for _, n := range sim.Calls() {
		calls += n
	}
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
}
