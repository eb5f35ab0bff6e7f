package elbrole_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// skipClock is a virtual clock for one caller at a time: Sleep moves the
// time on instead of waiting, so the example runs at once.
type skipClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *skipClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *skipClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return ctx.Err()
}

// A server's life behind a load balancer: provisioned, registered and
// granted once healthy; wound down by deregistering it, and terminated only
// once its requests have drained.
func ExampleNew() {
	clock := &skipClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	lb, _ := elbsim.New(elbsim.Config{
		Clock:               clock.Now,
		HealthCheckInterval: 10 * time.Second,
		HealthyThreshold:    3,
		DeregistrationDelay: time.Minute,
	})
	arn, _ := lb.CreateTargetGroup("web", 8080)

	app, _ := role.New("web", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{
		Provision: func(context.Context, awsctl.Instance) error {
			fmt.Println("app started")
			return nil
		},
	})
	web, err := elbrole.New(app, lb, elbrole.Config{
		TargetGroups: []elbrole.TargetGroup{{ARN: arn}},
		BatchWindow:  elbrole.NoBatchWindow,
		Clock:        clock,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx, inst := context.Background(), awsctl.Instance{ID: "i-0123456789abcdef0"}
	start := clock.Now()
	if err := web.Provision(ctx, inst); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ready after", clock.Now().Sub(start), lb.Targets(arn)[0].State)

	_ = web.WindDown(ctx, inst)
	st, _ := web.Check(ctx, inst)
	fmt.Printf("%s, wound down: %t\n", lb.Targets(arn)[0].State, st.WoundDown)

	_ = clock.Sleep(ctx, time.Minute) // the requests in flight finish
	st, _ = web.Check(ctx, inst)
	fmt.Printf("a minute later, wound down: %t\n", st.WoundDown)
	// Output:
	// app started
	// ready after 30s healthy
	// draining, wound down: false
	// a minute later, wound down: true
}
