package ec2sim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// BenchmarkListInstances lists a scaler's n instances in a sim that also
// holds another owner's instances and a history of terminated ones, and
// lists a small owner among them, which must not pay for the big one.
func BenchmarkListInstances(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		sim := newSim(b, ec2sim.Config{})
		big := map[string]string{"owner": "big"}
		small := map[string]string{"owner": "small"}
		launchTagged := func(n int, tags map[string]string) []awsctl.Instance {
			insts, err := sim.Launch(bgCtx, awsctl.LaunchRequest{Spec: spec, Offerings: []awsctl.Offering{m5a, m5b},
				Market: awsctl.MarketOnDemand, Capacity: n, Tags: tags})
			require.NoError(b, err)
			return insts
		}
		// A day of churn: instances that came and went are forgotten.
		churn := launchTagged(n/2, big)
		_, err := sim.Terminate(bgCtx, ids(churn))
		require.NoError(b, err)
		require.NoError(b, sim.Advance(2*time.Hour))
		launchTagged(n, big)
		launchTagged(10, small)
		// Instances shutting down and wound-down tags, as a scaler leaves them.
		recent := launchTagged(n/10, big)
		_, err = sim.Terminate(bgCtx, ids(recent[:len(recent)/2]))
		require.NoError(b, err)
		require.NoError(b, sim.Tag(bgCtx, ids(recent[len(recent)/2:]), map[string]string{"wind-down": "yes"}))

		for _, c := range []struct {
			name string
			tags map[string]string
			want int
		}{
			{fmt.Sprintf("owner-of-%d", n), big, n + n/10},
			{fmt.Sprintf("owner-of-10-beside-%d", n), small, 10},
		} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					insts, err := sim.ListInstances(bgCtx, awsctl.ListFilter{Tags: c.tags})
					if err != nil || len(insts) != c.want {
						b.Fatalf("listed %d, %v; want %d", len(insts), err, c.want)
					}
				}
			})
		}
	}
}
