package autoscale_test

import (
	"context"
	"errors"
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
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// watched is a cloud client that checks the scaler's invariants at every
// mutating call against the simulator's true state, and can make calls
// time out after they took effect.
type watched struct {
	*ec2sim.Sim
	t         *testing.T
	max       int
	batch     int
	target    func() int
	lostAfter float64 // share of successful calls whose answer is lost

	mu  sync.Mutex
	rng *rand.Rand
}

func (w *watched) lose() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.Float64() < w.lostAfter
}

func (w *watched) owned(winding bool) int {
	n := 0
	for _, inst := range w.Sim.Instances() {
		if !inst.State.Live() || inst.Tags[pool.TagOwner] != "test-scaler" {
			continue
		}
		if _, isWinding := inst.Tags[pool.TagWindDownStart]; isWinding && !winding {
			continue
		}
		n++
	}
	return n
}

var errTimeout = &awsctl.APIError{Op: "test", Code: "RequestTimeout", Kind: awsctl.ErrUnavailable}

func (w *watched) Launch(ctx context.Context, r awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	working := w.owned(false)
	if working+r.Capacity > w.target()+w.batch {
		w.t.Errorf("launching %d with %d working: beyond target %d plus one batch", r.Capacity, working, w.target())
	}
	insts, err := w.Sim.Launch(ctx, r)
	if live := w.owned(true); live > w.max {
		w.t.Errorf("pool holds %d instances, above its max %d", live, w.max)
	}
	if err == nil && w.lose() {
		return nil, errTimeout
	}
	return insts, err
}

func (w *watched) Terminate(ctx context.Context, ids []string) ([]string, error) {
	for _, id := range ids {
		inst, _ := w.Sim.Instance(id)
		_, winding := inst.Tags[pool.TagWindDownStart]
		if inst.Tags[pool.TagManager] != "" && !winding && inst.State.Live() {
			w.t.Errorf("terminating %s, granted to %s, without a wind-down", id, inst.Tags[pool.TagManager])
		}
	}
	done, err := w.Sim.Terminate(ctx, ids)
	if err == nil && w.lose() {
		return nil, errTimeout
	}
	return done, err
}

func (w *watched) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	err := w.Sim.Tag(ctx, ids, tags)
	if err == nil && w.lose() {
		return errTimeout
	}
	return err
}

func (w *watched) Untag(ctx context.Context, ids []string, keys []string) error {
	err := w.Sim.Untag(ctx, ids, keys)
	if err == nil && w.lose() {
		return errTimeout
	}
	return err
}

func TestFaultsKeepInvariantsAndConverge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, err := ec2sim.New(ec2sim.Config{
			BootDelay: ec2sim.Uniform(30*time.Second, 90*time.Second),
			ListDelay: ec2sim.Uniform(0, 25*time.Second), // new instances invisible for a while
			Seed:      11,
		})
		require.NoError(t, err)
		ops := []string{ec2sim.OpListInstances, ec2sim.OpLaunch, ec2sim.OpTerminate, ec2sim.OpTag, ec2sim.OpUntag}
		for i, op := range ops {
			fault := ec2sim.Throttled(op)
			if i%2 == 1 {
				fault = ec2sim.ServerError(op)
			}
			sim.SetErrorRate(op, 0.2, fault)
		}
		// Partial fulfilment: one zone holds only a few servers.
		sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", "us-east-1b", 3)

		srv := newServers()
		a, b := fixed(t, "a", 6), fixed(t, "b", 4)
		cfg := poolConfig(srv.role(t), a, b)
		cfg.Max, cfg.LaunchBatch = 14, 4
		cloud := &watched{Sim: sim, t: t, max: cfg.Max, batch: cfg.LaunchBatch, lostAfter: 0.2,
			rng:    rand.New(rand.NewPCG(3, 3)),
			target: func() int { return a.Target() + b.Target() }}
		w := newWorld(t, sim, cfg)
		w.cloud = cloud
		w.restart()

		script := map[int]func(){
			15: func() { _ = a.Set(2) },
			20: func() { // capacity gone everywhere for a while
				for _, z := range []string{"us-east-1a", "us-east-1b"} {
					sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", z, 0)
				}
			},
			24: func() { _ = b.Set(7) },
			35: func() {
				sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", "us-east-1a", -1)
				sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", "us-east-1b", -1)
			},
			45: func() { _ = a.Set(3) },
		}
		for pass := range 60 {
			if f := script[pass]; f != nil {
				f()
			}
			w.step()
		}
		// The faults stop; the pool converges within a bounded number of
		// passes.
		for _, op := range ops {
			sim.SetErrorRate(op, 0, nil)
		}
		cloud.lostAfter = 0
		converged := -1
		for pass := range 20 {
			w.step()
			if len(w.grantedTo("a")) == 3 && len(w.grantedTo("b")) == 7 && len(w.live()) == 10 {
				converged = pass
				break
			}
		}
		require.GreaterOrEqual(t, converged, 0, "did not converge within 20 passes after the faults stopped")
		t.Logf("converged %d passes after the faults stopped; launched %d", converged+1, w.launched())
		assert.LessOrEqual(t, converged, 10)

		require.NoError(t, w.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{}))
		// Leaving the bubble with a goroutine still blocked fails the test:
		// no goroutine outlives the scaler.
	})
}

func TestCancelledContextMutatesNothingAndLosesNothing(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 3)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 3)
	require.NoError(t, m.Set(5))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := w.scaler.Step(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "error says why: %v", err)
	assert.Equal(t, 3, w.launched())
	w.steps(8)
	assert.Len(t, w.grantedTo("jobs"), 5, "the next pass carries on")
}
