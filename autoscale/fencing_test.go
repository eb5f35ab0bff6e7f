package autoscale_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// fencedLease is a Leader with terms and a lease context, as an election
// with a known TTL provides.
type fencedLease struct {
	mu      sync.Mutex
	leading bool
	term    uint64
	ctx     context.Context
	end     context.CancelFunc
	ttl     time.Duration
}

func newFencedLease(ttl time.Duration) *fencedLease {
	l := &fencedLease{ttl: ttl}
	l.win()
	return l
}

func (l *fencedLease) win() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = true
	l.term++
	l.ctx, l.end = context.WithCancel(context.Background())
}

// lapse ends the lease's validity without anyone having checked it yet.
func (l *fencedLease) lapse() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = false
	l.end()
}

func (l *fencedLease) IsLeader(context.Context) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

func (l *fencedLease) Term() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term
}

func (l *fencedLease) LeaseContext() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx
}

func (l *fencedLease) TTL() time.Duration { return l.ttl }

// frozenTerminate stops every Terminate between the leader check and the
// wire, as a GC pause or a stopped process would, until its context ends
// or it is let go; a call whose context ended never reaches EC2, as the
// SDK's transport checks the context before it sends.
type frozenTerminate struct {
	awsctl.CloudClient
	entered chan context.Context
	release chan struct{}
}

func (f *frozenTerminate) Terminate(ctx context.Context, ids []string) ([]string, error) {
	f.entered <- ctx
	select {
	case <-ctx.Done():
	case <-f.release:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.CloudClient.Terminate(ctx, ids)
}

func TestANewLeaderWaitsOutThePreviousLeaseBeforeItsFirstChange(t *testing.T) {
	sim := newSim(t)
	m := fixed(t, "jobs", 2)
	w := newWorld(t, sim, poolConfig(newServers().role(t), m))
	w.opts.Leader = newFencedLease(10 * time.Second)
	w.opts.CallTimeout = 20 * time.Second
	w.restart()

	err := w.scaler.Step(context.Background())
	require.ErrorIs(t, err, autoscale.ErrNotLeader, "a new term makes no change at once")
	assert.Contains(t, err.Error(), "previous leader")
	require.NoError(t, sim.Advance(29*time.Second))
	require.ErrorIs(t, w.scaler.Step(context.Background()), autoscale.ErrNotLeader, "TTL + CallTimeout have not passed")
	assert.Zero(t, w.launched())
	require.NoError(t, sim.Advance(time.Second))
	require.NoError(t, w.scaler.Step(context.Background()))
	assert.Equal(t, 2, w.launched(), "TTL + CallTimeout after the term began, the leader acts")
}

func TestAFrozenLeadersCallEndsWithItsLease(t *testing.T) {
	sim := newSim(t)
	m := fixed(t, "jobs", 1)
	w := newWorld(t, sim, poolConfig(newServers().role(t), m))
	l := newFencedLease(time.Second)
	w.opts.Leader = l
	w.restart()
	w.step()                                     // the term begins
	require.NoError(t, sim.Advance(time.Minute)) // past its wait
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 1)
	x := w.grantedTo("jobs")[0].ID

	frozen := &frozenTerminate{CloudClient: sim, entered: make(chan context.Context, 1), release: make(chan struct{})}
	w.cloud = frozen
	w.restart()
	w.step()
	require.NoError(t, sim.Advance(time.Minute))
	require.NoError(t, m.Set(0))
	done := make(chan error, 1)
	go func() {
		for range 100 {
			if err := w.scaler.Step(context.Background()); err != nil || !liveIn(sim, x) {
				done <- err
				return
			}
			if err := sim.Advance(10 * time.Second); err != nil {
				done <- err
				return
			}
		}
		done <- errors.New("never terminated")
	}()
	var callCtx context.Context
	select {
	case callCtx = <-frozen.entered:
	case err := <-done:
		t.Fatalf("the pass ended before terminating: %v", err)
	}
	l.lapse() // the lease runs out while the call is frozen; no pass checks it
	select {
	case <-callCtx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the frozen call's context outlived the lease")
	}
	assert.ErrorIs(t, context.Cause(callCtx), autoscale.ErrNotLeader)
	close(frozen.release)
	err := <-done
	require.ErrorIs(t, err, autoscale.ErrNotLeader, "the pass reports the lost lease, not a cloud failure")
	assert.True(t, liveIn(sim, x), "the termination never reached EC2")
}

func TestRoleHooksEndWithTheLease(t *testing.T) {
	sim := newSim(t)
	started, stopped := make(chan struct{}), make(chan error, 1)
	var once sync.Once
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(ctx context.Context, _ awsctl.Instance) error {
			once.Do(func() { close(started) })
			<-ctx.Done() // a provisioning still going on
			stopped <- ctx.Err()
			return ctx.Err()
		},
	})
	require.NoError(t, err)
	m := fixed(t, "jobs", 1)
	cfg := poolConfig(r, m)
	cfg.ProvisionTimeout = time.Hour
	w := newWorld(t, sim, cfg)
	l := newFencedLease(time.Second)
	w.opts.Leader = l
	w.opts.HookWait = time.Millisecond
	w.restart()
	w.step()
	require.NoError(t, sim.Advance(time.Minute))
	for i := 0; ; i++ {
		require.Less(t, i, 20, "the Provision hook never started")
		w.step()
		select {
		case <-started:
		default:
			continue
		}
		break
	}
	l.lapse() // no pass runs: the hook must stop on the lease alone
	select {
	case err := <-stopped:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the hook outlived the lease")
	}
}

func liveIn(sim interface {
	Instance(string) (awsctl.Instance, bool)
}, id string) bool {
	inst, ok := sim.Instance(id)
	return ok && inst.State.Live()
}
