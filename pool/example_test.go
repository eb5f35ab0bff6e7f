package pool_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// A pool's configuration is validated once, and the error names the field
// that is wrong. Pools are usually built by autoscale.New, which runs the
// same validation; Status then reports each pass.
func ExampleNew() {
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	batch, _ := manager.NewFixed("batch", 3)
	_, err := pool.New(pool.Config{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{batch},
		Types:    []pool.InstanceType{{Name: "c5.large"}, {Name: "c5.xlarge", Weight: 2}},
		Zones:    []string{"us-east-1a", "us-east-1b"},
		Min:      4,
		Max:      2,
	})
	fmt.Println(errors.Is(err, pool.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// invalid pool config: pool "workers": Min: 4 is above Max 2
}

// A pool learns how long its servers take from launch to ready, per
// offering, from what it sees: EC2's launch time and the TagReady it
// writes once the role's Provision hook succeeds. Here the simulated EC2
// keeps instances pending for 40 s and passes are 30 s apart, so servers
// are seen ready at the third pass after their launch.
func ExampleBootTime() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{BootDelay: ec2sim.Fixed(40 * time.Second)})
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	jobs, _ := manager.NewFixed("jobs", 4)
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
	for _, b := range st.BootTimes {
		fmt.Printf("%s %s %s: %v over %d servers\n", b.Type, b.Zone, b.Market, b.Estimate, b.Samples)
	}
	fmt.Println("pool-wide, as managers see it:", st.BootTime)
	// Output:
	// c5.large us-east-1a on-demand: 1m30s over 2 servers
	// c5.large us-east-1b on-demand: 1m30s over 2 servers
	// pool-wide, as managers see it: 1m30s
}
