package demand_test

import (
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/demand"
)

func ExampleFromJobs() {
	tr, _ := demand.FromJobs("two jobs", []demand.Job{
		{Submit: 0, Run: time.Hour, Procs: 4},
		{Submit: 30 * time.Minute, Run: time.Hour, Procs: 2},
	})
	fmt.Println(tr.Steps)
	fmt.Println("peak", tr.Peak(tr.Length), "units; unit-hours", tr.UnitSeconds(0, tr.Length)/3600)
	// Output:
	// [{0s 4} {30m0s 6} {1h0m0s 2} {1h30m0s 0}]
	// peak 6 units; unit-hours 6
}
