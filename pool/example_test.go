package pool_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// Plan is plain code over plain data: given what exists and what managers
// want, it says what to do. The scaler carries plans out; tests and dry
// runs read them.
func ExamplePool_Plan() {
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	batch, _ := manager.NewFixed("batch", 3)
	p, err := pool.New(pool.Config{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{batch},
		Types:    []pool.InstanceType{{Name: "c5.large"}, {Name: "c5.xlarge", Weight: 2}},
		Zones:    []string{"us-east-1a", "us-east-1b"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// One server already works for batch; two more capacity units are missing.
	running := awsctl.Instance{
		ID: "i-0aaa", Type: "c5.large", Zone: "us-east-1a", Market: awsctl.MarketOnDemand,
		State: awsctl.StateRunning, LaunchTime: now.Add(-time.Hour),
		Tags: map[string]string{pool.TagPool: "workers", pool.TagManager: "batch"},
	}
	plan := p.Plan(context.Background(), pool.Snapshot{Now: now, Instances: []awsctl.Instance{running}})
	for _, l := range plan.Launches {
		fmt.Printf("launch %d %s in %s (%s first)\n", l.Capacity, l.Market, l.Offerings[0].Zone, l.Offerings[0].InstanceType)
	}
	// Output:
	// launch 1 on-demand in us-east-1b (c5.large first)
	// launch 1 on-demand in us-east-1a (c5.large first)
}
