package autoscale_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// A Scaler keeping three servers for one consumer, on the simulated EC2 in
// virtual time. A real host calls Run instead of stepping by hand.
func Example() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{})
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	jobs, _ := manager.NewFixed("jobs", 3)

	scaler, err := autoscale.New(sim, []pool.Config{{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{jobs},
		Types:    []pool.InstanceType{{Name: "c5.large"}},
		Zones:    []string{"us-east-1a", "us-east-1b"},
	}}, autoscale.Options{Identity: "example", Clock: sim.Now, HookWait: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer scaler.Shutdown(ctx, autoscale.ShutdownOptions{})

	for range 5 {
		_ = scaler.Step(ctx)
		_ = sim.Advance(30 * time.Second)
	}
	st := scaler.Pool("workers").Status()
	fmt.Println("granted to jobs:", st.Managers["jobs"].Held)

	// Demand drops: a server winds down, then is terminated.
	_ = jobs.Set(1)
	for range 6 {
		_ = scaler.Step(ctx)
		_ = sim.Advance(30 * time.Second)
	}
	live := 0
	for _, inst := range sim.Instances() {
		if inst.State.Live() {
			live++
		}
	}
	fmt.Println("instances left:", live)
	// Output:
	// granted to jobs: 3
	// instances left: 1
}

// An observer sees every decision with the reason for it.
func ExampleObserverFunc() {
	sim, _ := ec2sim.New(ec2sim.Config{})
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	jobs, _ := manager.NewFixed("jobs", 2)
	scaler, _ := autoscale.New(sim, []pool.Config{{
		Name: "workers", Role: worker, Managers: []manager.Manager{jobs},
		Types: []pool.InstanceType{{Name: "c5.large"}}, Zones: []string{"us-east-1a"},
	}}, autoscale.Options{
		Identity: "example",
		Clock:    sim.Now,
		DryRun:   true, // decide and report, change nothing
		Observer: autoscale.ObserverFunc(func(e autoscale.Event) {
			fmt.Println(e.Kind, e.Pool, e.Capacity, e.Market, e.DryRun)
		}),
	})
	_ = scaler.Step(context.Background())
	// Output:
	// launch workers 2 on-demand true
}

// Validation errors name the field at fault.
func ExampleNew_validation() {
	sim, _ := ec2sim.New(ec2sim.Config{})
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	jobs, _ := manager.NewFixed("jobs", 2)
	_, err := autoscale.New(sim, []pool.Config{{
		Name: "workers", Role: worker, Managers: []manager.Manager{jobs},
		Types: []pool.InstanceType{{Name: "c5.large"}}, Zones: []string{"us-east-1a"},
		Min: 10, Max: 5,
	}}, autoscale.Options{Identity: "example"})
	fmt.Println(err)
	// Output:
	// pools[0]: invalid pool config: pool "workers": Min: 10 is above Max 5
}
