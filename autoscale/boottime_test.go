package autoscale_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// The tests below run in a testing/synctest bubble whose clock the sim
// reads, so that the role's Provision hook waits, on virtual time, until
// the sim says the instance is ready (ec2sim's ReadyAt), as a real role
// waits for its server. Passes are 10 s apart; the delays are chosen off
// the passes' instants so that each boot time is exact: running is seen at
// the pass after the pending phase, and TagReady is written at the pass
// after the ready delay.

// bootRole provisions a server once the sim says it is ready.
func bootRole(t *testing.T, sim *ec2sim.Sim) role.Role {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(ctx context.Context, inst awsctl.Instance) error {
			ready, ok := sim.ReadyAt(inst.ID)
			if !ok {
				return nil
			}
			select {
			case <-time.After(time.Until(ready)):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	require.NoError(t, err)
	return r
}

// bootManager is a Fixed manager that records the boot time the pool
// tells it.
type bootManager struct {
	*manager.Fixed
	mu   sync.Mutex
	boot time.Duration
}

func (m *bootManager) Demand(ctx context.Context, s manager.State) (manager.Request, error) {
	m.mu.Lock()
	m.boot = s.BootTime
	m.mu.Unlock()
	return m.Fixed.Demand(ctx, s)
}

func (m *bootManager) seen() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boot
}

// bootScaler is a scaler over sim in the bubble, with a pool of m5.large
// then c5.large in two zones, on-demand, and a manager wanting target.
func bootScaler(t *testing.T, sim *ec2sim.Sim, m manager.Manager) *autoscale.Scaler {
	cfg := pool.Config{
		Name:     "workers",
		Role:     bootRole(t, sim),
		Managers: []manager.Manager{m},
		Types:    []pool.InstanceType{{Name: "m5.large"}, {Name: "c5.large"}},
		Zones:    []string{"us-east-1a", "us-east-1b"},
		Max:      20,
	}
	s, err := autoscale.New(sim, []pool.Config{cfg}, autoscale.Options{Identity: "test-scaler", Interval: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background(), autoscale.ShutdownOptions{}) })
	return s
}

func passes(s *autoscale.Scaler, n int) {
	for range n {
		_ = s.Step(context.Background())
		time.Sleep(10 * time.Second)
	}
}

func TestBootTimesAreLearnedPerTypeAndRestoredAfterARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// m5.large: pending 25 s, then 60 s until ready: seen ready at the
		// pass 90 s after its launch. c5.large: 55 s and 150 s: 210 s.
		sim, err := ec2sim.New(ec2sim.Config{
			Clock: time.Now,
			Seed:  1,
			TypeDelays: map[string]ec2sim.TypeDelays{
				"m5.large": {Pending: ec2sim.Fixed(25 * time.Second), Ready: ec2sim.Fixed(60 * time.Second)},
				"c5.large": {Pending: ec2sim.Fixed(55 * time.Second), Ready: ec2sim.Fixed(150 * time.Second)},
			},
		})
		require.NoError(t, err)
		fx, err := manager.NewFixed("jobs", 4)
		require.NoError(t, err)
		m := &bootManager{Fixed: fx}
		s := bootScaler(t, sim, m)
		passes(s, 15)
		st := s.Pool("workers").Status()
		require.Equal(t, 4, st.Managers["jobs"].Held)
		assert.Equal(t, 90*time.Second, st.BootTime)
		assert.Equal(t, 90*time.Second, m.seen(), "the manager is told")

		// m5.large runs out: the next servers are c5.large, slower.
		now := time.Now()
		for _, z := range []string{"us-east-1a", "us-east-1b"} {
			sim.AddCapacityOutage(awsctl.MarketOnDemand, "m5.large", z, now, now.Add(time.Hour))
		}
		require.NoError(t, fx.Set(8))
		passes(s, 30)
		st = s.Pool("workers").Status()
		require.Equal(t, 8, st.Managers["jobs"].Held)
		byType := map[string]time.Duration{}
		samples := map[string]int{}
		for _, b := range st.BootTimes {
			assert.Equal(t, awsctl.MarketOnDemand, b.Market)
			byType[b.Type] = max(byType[b.Type], b.Estimate)
			samples[b.Type] += b.Samples
		}
		assert.Equal(t, map[string]time.Duration{"m5.large": 90 * time.Second, "c5.large": 210 * time.Second}, byType)
		assert.Equal(t, map[string]int{"m5.large": 4, "c5.large": 4}, samples)
		assert.Equal(t, 150*time.Second, st.BootTime, "pool-wide: the median of the eight")

		// A new scaler over the same cloud knows the same, from the
		// launch times and TagReady alone, without a boot.
		launched := len(sim.Instances())
		fx2, err := manager.NewFixed("jobs", 8)
		require.NoError(t, err)
		m2 := &bootManager{Fixed: fx2}
		s2 := bootScaler(t, sim, m2)
		passes(s2, 1)
		st2 := s2.Pool("workers").Status()
		assert.Equal(t, st.BootTimes, st2.BootTimes)
		assert.Equal(t, st.BootTime, st2.BootTime)
		assert.Equal(t, st.BootTime, m2.seen(), "the first pass after the restart tells the manager")
		assert.Equal(t, launched, len(sim.Instances()), "nothing launched")
		synctest.Wait()
	})
}

// slowThird is a pending delay of 25 s, but an hour for the third
// instance launched.
type slowThird struct {
	mu sync.Mutex
	n  int
}

func (d *slowThird) Sample(*rand.Rand) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if d.n == 3 {
		return time.Hour
	}
	return 25 * time.Second
}

func TestBootTimeIgnoresAServerThatTookAnHour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, err := ec2sim.New(ec2sim.Config{
			Clock: time.Now, Seed: 1,
			BootDelay: &slowThird{}, ReadyDelay: ec2sim.Fixed(60 * time.Second),
		})
		require.NoError(t, err)
		fx, err := manager.NewFixed("jobs", 5)
		require.NoError(t, err)
		s := bootScaler(t, sim, fx)
		passes(s, 6*70) // past the slow server's hour
		st := s.Pool("workers").Status()
		require.Equal(t, 5, st.Managers["jobs"].Held, "the slow server is ready too")
		total := 0
		for _, b := range st.BootTimes {
			total += b.Samples
		}
		require.Equal(t, 5, total)
		assert.Equal(t, 90*time.Second, st.BootTime)
		synctest.Wait()
	})
}
