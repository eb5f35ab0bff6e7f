package manager_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// A web tier that holds each server at 100 requests per second: it scales
// out as soon as the load rises, and in only once the load has stayed lower
// for the five-minute window, towards what the busiest moment of that window
// needed, by a tenth of the fleet at most and once per window, as EC2 Auto
// Scaling removes capacity more slowly than it adds it.
func ExampleTargetTracking() {
	web, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{
		TargetPerServer: 100, // requests per second per server
		Min:             2,
		Max:             50,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fleet := []manager.Server{{ID: "i-0a1", Weight: 1}} // servers in service
	pass := func(after time.Duration, requestsPerSecond float64) {
		now := t0.Add(after)
		web.Observe(now, requestsPerSecond) // the load balancer's request rate
		req, _ := web.Demand(context.Background(), manager.State{Now: now, Servers: fleet})
		fmt.Printf("%-5v %5.0f req/s -> %d servers\n", after, requestsPerSecond, req.Target)
	}
	pass(0, 640)
	pass(time.Minute, 1450)   // a rise: at once
	pass(2*time.Minute, 1500) // within 10% of what 15 servers carry: no change
	pass(3*time.Minute, 900)  // a fall: wait
	pass(7*time.Minute, 800)  // 1500 was in force four minutes ago
	pass(8*time.Minute, 800)  // 900 was the highest of the last five minutes: one server less
	pass(10*time.Minute, 800) // the next scale-in waits five minutes
	pass(13*time.Minute, 800)
	pass(14*time.Minute, 0) // 0 from a fleet in service: missing data, not idle
	pass(19*time.Minute, 0)
	// Output:
	// 0s      640 req/s -> 7 servers
	// 1m0s   1450 req/s -> 15 servers
	// 2m0s   1500 req/s -> 15 servers
	// 3m0s    900 req/s -> 15 servers
	// 7m0s    800 req/s -> 15 servers
	// 8m0s    800 req/s -> 14 servers
	// 10m0s   800 req/s -> 14 servers
	// 13m0s   800 req/s -> 13 servers
	// 14m0s     0 req/s -> 13 servers
	// 19m0s     0 req/s -> 13 servers
}

// A cap on removals spreads a large fall over several scale-ins, so a
// sudden drop of the metric (a broken client, a lost region) cannot take
// most of the fleet away at once. 0 caps each at a tenth of the target, a
// negative value removes the cap.
func ExampleTargetTrackingConfig_maxScaleInPerPass() {
	web, _ := manager.NewTargetTracking("web", manager.TargetTrackingConfig{
		TargetPerServer:   100,
		ScaleInCooldown:   time.Minute,
		MaxScaleInPerPass: 3,
	})
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	web.Observe(t0, 2000)
	var targets []int
	for i := range 5 {
		now := t0.Add(time.Duration(i) * time.Minute)
		if i > 0 {
			web.Observe(now, 500) // the load drops to a quarter
		}
		req, _ := web.Demand(context.Background(), manager.State{Now: now})
		targets = append(targets, req.Target)
	}
	fmt.Println(targets)
	// Output: [20 20 17 14 11]
}
