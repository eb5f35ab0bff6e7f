package pool_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// BenchmarkPlanSteady measures one pool's pass over a listing that does not
// change, as a steady pass sees it: the same instances with the same Tags
// maps (a CloudClient never modifies a map it returned), every server
// granted, managers content. It is the pool's share of
// autoscale.BenchmarkStep without the listing and the scaler around it:
//
//	go test -run '^$' -bench BenchmarkPlanSteady -benchmem ./pool
func BenchmarkPlanSteady(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			const managers = 10
			var ms []manager.Manager
			for i := range managers {
				m, err := manager.NewFixed(fmt.Sprintf("m%d", i), n/managers)
				if err != nil {
					b.Fatal(err)
				}
				ms = append(ms, m)
			}
			p, err := pool.New(pool.Config{
				Name:     "p",
				Role:     stub{},
				Managers: ms,
				Types:    []pool.InstanceType{{Name: "c5.large"}, {Name: "m5.large"}},
				Zones:    []string{"z1", "z2", "z3"},
				Max:      n,
			})
			if err != nil {
				b.Fatal(err)
			}
			insts := make([]awsctl.Instance, n)
			for i := range insts {
				insts[i] = awsctl.Instance{ID: fmt.Sprintf("i-%017x", i), Type: "c5.large", Zone: []string{"z1", "z2", "z3"}[i%3],
					Market: awsctl.MarketOnDemand, State: awsctl.StateRunning, LaunchTime: t0, PrivateIP: "10.0.0.1",
					Tags: map[string]string{pool.TagOwner: "bench", pool.TagPool: "p", pool.TagRole: "worker",
						pool.TagReady: "2026-01-01T00:00:00Z", pool.TagManager: fmt.Sprintf("m%d", i%managers)}}
			}
			// As the scaler says from the second pass on: each instance
			// listed alike.
			same := make([]bool, n)
			ctx := context.Background()
			now := t0.Add(time.Hour)
			pass := func() {
				pl := p.Plan(ctx, pool.Snapshot{Now: now, Instances: insts, Same: same})
				for i := range same {
					same[i] = true
				}
				p.Commit(ctx, pl, pool.Outcome{})
				now = now.Add(30 * time.Second)
			}
			for range 3 {
				pass()
			}
			if st := p.Status(); st.Granted != n {
				b.Fatalf("setup: %d of %d granted", st.Granted, n)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				pass()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/instance")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used, the collector's included:
// on a shared machine it varies less than the wall time of a benchmark.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
