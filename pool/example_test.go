package pool_test

import (
	"errors"
	"fmt"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
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
