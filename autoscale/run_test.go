package autoscale_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// Run passes often while capacity is on its way and grants a server as
// soon as its provisioning hook returns, and passes only every Interval
// when nothing is moving.
func TestRunGrantsSoonAfterBootAndIdlesQuietly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, err := ec2sim.New(ec2sim.Config{Clock: time.Now, BootDelay: ec2sim.Fixed(40 * time.Second), Seed: 2})
		require.NoError(t, err)
		srv := newServers()
		m := fixed(t, "jobs", 0)
		s, err := autoscale.New(sim, []pool.Config{poolConfig(srv.role(t), m)},
			autoscale.Options{Identity: "test-scaler", Interval: time.Minute})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()

		time.Sleep(5*time.Minute + 30*time.Second) // idle: one pass a minute
		sim.ResetCalls()
		time.Sleep(5 * time.Minute)
		assert.Equal(t, 5, sim.Calls()[ec2sim.OpListInstances], "one listing per Interval when idle")

		sim.ResetCalls()
		require.NoError(t, m.Set(3))
		start := time.Now()
		time.Sleep(autoscale.DefaultMinPassGap)
		synctest.Wait()
		assert.Positive(t, sim.Calls()[ec2sim.OpLaunch], "the rise woke Run: launched within MinPassGap, not an Interval later")
		for s.Pool("workers").Status().Managers["jobs"].Held < 3 {
			time.Sleep(time.Second)
		}
		t.Logf("demand met %v after it rose", time.Since(start))
		// The rise wakes a pass that launches; the instances boot in 40 s; a
		// busy pass within 10 s starts provisioning, and the hook finishing
		// wakes the pass that grants.
		assert.LessOrEqual(t, time.Since(start), 40*time.Second+autoscale.DefaultBusyInterval+3*autoscale.DefaultMinPassGap)
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, s.Shutdown(context.Background(), autoscale.ShutdownOptions{}))
	})
}
