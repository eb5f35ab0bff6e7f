package manager_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// A fixed manager wants what it is told, here two on-demand servers, then
// five.
func ExampleFixed() {
	web, err := manager.NewFixed("web", 2, manager.WithMarket(manager.OnDemandOnly))
	if err != nil {
		fmt.Println(err)
		return
	}
	req, _ := web.Demand(context.Background(), manager.State{})
	fmt.Println(req.Target, req.Market == manager.OnDemandOnly)

	_ = web.Set(5) // e.g. from an admin endpoint, at any time
	req, _ = web.Demand(context.Background(), manager.State{})
	fmt.Println(req.Target)
	// Output:
	// 2 true
	// 5
}

// A queue manager scales up as soon as jobs pile up, and down only after the
// queue has stayed shorter for ScaleDownDelay. Its target is in capacity
// units: with four jobs per unit, 40 jobs want 10 units (ten servers of
// weight 1, or five of weight 2).
func ExampleQueue() {
	q, err := manager.NewQueue("batch", manager.QueueConfig{JobsPerUnit: 4, Max: 50, ScaleDownDelay: 5 * time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	pass := func(after time.Duration, queued, running int) {
		now := t0.Add(after)
		q.Observe(now, queued, running) // the host reports its queue
		req, _ := q.Demand(context.Background(), manager.State{Now: now})
		fmt.Printf("%-4v %3d jobs -> %d units\n", after, queued+running, req.Target)
	}
	pass(0, 30, 10)
	pass(2*time.Minute, 2, 6)
	pass(6*time.Minute, 0, 8)
	pass(7*time.Minute, 0, 8)
	// Output:
	// 0s    40 jobs -> 10 units
	// 2m0s   8 jobs -> 10 units
	// 6m0s   8 jobs -> 10 units
	// 7m0s   8 jobs -> 2 units
}

// Servers the host knows to be idle are given up first when the target
// falls.
func ExampleQueue_MarkIdle() {
	q, _ := manager.NewQueue("batch", manager.QueueConfig{})
	servers := []manager.Server{{ID: "i-0a", Weight: 1}, {ID: "i-0b", Weight: 1}, {ID: "i-0c", Weight: 1}}
	q.MarkIdle("i-0b", true)
	req, _ := q.Demand(context.Background(), manager.State{Servers: servers})
	fmt.Println(req.Idle)
	// Output:
	// [i-0b]
}
