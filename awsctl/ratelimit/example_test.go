package ratelimit_test

import (
	"context"
	"fmt"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

// A bucket shaped like EC2's RunInstances request limit: five calls at
// once, then two a second.
func ExampleBucket_Wait() {
	runInstances, err := ratelimit.NewBucket(ratelimit.Limit{Burst: 5, PerSecond: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for range 5 {
		// The burst goes through without waiting.
		if err := runInstances.Wait(ctx, 1); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println("five launches sent; the sixth would wait half a second")
	// Output: five launches sent; the sixth would wait half a second
}
