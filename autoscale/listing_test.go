package autoscale_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// The scaler compares each listing with the previous one, to leave alone
// what did not change. A listing that fails must leave the previous one the
// one to compare with: instances that boot while it fails are seen to boot
// (they were once taken as unchanged for good, and never provisioned).
func TestAFailedListingHidesNoChange(t *testing.T) {
	for _, failAt := range []int{1, 2, 3, 4} {
		sim := newSim(t) // boots take 40 s, passes come every 10 s
		srv := newServers()
		w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 2)))
		for pass := range 12 {
			if pass == failAt {
				sim.FailNext(ec2sim.OpListInstances, ec2sim.Throttled("DescribeInstances"))
			}
			w.step()
		}
		assert.Len(t, w.grantedTo("jobs"), 2, "listing failed at pass %d", failAt)
	}
}
