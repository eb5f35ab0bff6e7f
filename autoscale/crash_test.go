package autoscale_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

var errCrashed = errors.New("scaler process died")

// dying is a cloud client whose process dies after a number of calls: the
// calls up to then take effect, every later one fails.
type dying struct {
	awsctl.CloudClient
	mu    sync.Mutex
	left  int
	calls int
}

func (d *dying) call() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.left <= 0 {
		return errCrashed
	}
	d.left--
	return nil
}

func (d *dying) dead() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.left <= 0
}

func (d *dying) ListInstances(ctx context.Context, f awsctl.ListFilter) ([]awsctl.Instance, error) {
	if err := d.call(); err != nil {
		return nil, err
	}
	return d.CloudClient.ListInstances(ctx, f)
}

func (d *dying) Launch(ctx context.Context, r awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	if err := d.call(); err != nil {
		return nil, err
	}
	return d.CloudClient.Launch(ctx, r)
}

func (d *dying) Terminate(ctx context.Context, ids []string) ([]string, error) {
	if err := d.call(); err != nil {
		return nil, err
	}
	return d.CloudClient.Terminate(ctx, ids)
}

func (d *dying) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	if err := d.call(); err != nil {
		return err
	}
	return d.CloudClient.Tag(ctx, ids, tags)
}

func (d *dying) Untag(ctx context.Context, ids []string, keys []string) error {
	if err := d.call(); err != nil {
		return err
	}
	return d.CloudClient.Untag(ctx, ids, keys)
}

// busyScenario drives two managers through launches, grants, wind-downs of
// busy servers, restores and a second scale-down.
type busyScenario struct {
	a, b *manager.Fixed
	srv  *servers
}

const scenarioPasses = 40

func (sc *busyScenario) at(w *world, pass int) {
	switch pass {
	case 0:
		_ = sc.a.Set(4)
		_ = sc.b.Set(2)
	case 8:
		// Every server is busy when demand drops: wind-downs wait.
		for _, inst := range w.live() {
			sc.srv.setBusy(inst.ID, true)
		}
		_ = sc.a.Set(1)
	case 11:
		_ = sc.b.Set(4) // demand elsewhere: wind-downs are restored
	case 14:
		_ = sc.a.Set(2)
	case 16:
		for _, inst := range w.live() {
			sc.srv.setBusy(inst.ID, false)
		}
	case 20:
		_ = sc.b.Set(1)
	}
}

// settledDue reports whether a pass should find the pool settled: no
// demand change in it or the two passes before.
func settledDue(pass int) bool {
	for _, c := range []int{0, 8, 11, 14, 20} {
		if pass >= c && pass <= c+2 {
			return false
		}
	}
	return true
}

// settled reports whether the capacity the pool plans with (everything but
// wind-downs) equals what its managers want.
func settled(w *world) bool {
	st := w.scaler.Pool("workers").Status()
	return st.Booting+st.Provisioning+st.Free+st.Granted == st.Target
}

func newBusyWorld(t *testing.T) (*world, *busyScenario) {
	srv := newServers()
	a, b := fixed(t, "a", 0), fixed(t, "b", 0)
	cfg := poolConfig(srv.role(t), a, b)
	cfg.LaunchBatch = 2
	cfg.Max = 12
	w := newWorld(t, newSim(t), cfg)
	return w, &busyScenario{a: a, b: b, srv: srv}
}

// TestCrashAnywhere stops the scaler between any two cloud calls of a busy
// scenario, starts a new one over the same cloud, and checks that the
// system converges as if nothing had happened: no extra launch beyond one
// batch in flight, no leaked or orphaned instance, every wind-down finished
// or restored, and no corrective action after the new scaler's second pass.
func TestCrashAnywhere(t *testing.T) {
	// Reference run without a crash.
	ref, sc := newBusyWorld(t)
	counter := &dying{CloudClient: ref.sim, left: 1 << 30}
	ref.cloud = counter
	ref.restart()
	for pass := range scenarioPasses {
		sc.at(ref, pass)
		ref.step()
		require.True(t, !settledDue(pass) || settled(ref), "reference run unsettled at pass %d", pass)
	}
	refLaunched := ref.launched()
	totalCalls := counter.calls
	require.Len(t, ref.live(), 3, "reference run converges to a(2)+b(1)")

	points := make([]int, 0, totalCalls)
	for k := 1; k < totalCalls; k++ {
		points = append(points, k)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 20 {
		points = append(points, 1+rng.IntN(totalCalls-1))
	}
	for _, k := range points {
		w, sc := newBusyWorld(t)
		d := &dying{CloudClient: w.sim, left: k}
		w.cloud = d
		w.restart()
		pass := 0
		for ; pass < scenarioPasses && !d.dead(); pass++ {
			sc.at(w, pass)
			w.step()
		}
		// A new process adopts the cloud as it is.
		w.cloud = w.sim
		w.restart()
		for n := 0; pass < scenarioPasses+10; pass, n = pass+1, n+1 {
			sc.at(w, pass)
			w.step()
			// From its second pass on, the new scaler is where an
			// uninterrupted one would be.
			require.True(t, n < 2 || !settledDue(pass) || settled(w), "crash after call %d: unsettled %d passes after the restart", k, n)
		}
		live := w.live()
		require.Len(t, live, 3, "crash after call %d: converged to demand", k)
		require.LessOrEqual(t, w.launched(), refLaunched+2, "crash after call %d: at most one batch in flight launched again", k)
		held := map[string]int{}
		for _, inst := range live {
			require.Equal(t, "test-scaler", inst.Tags[pool.TagOwner], "crash after call %d", k)
			require.Equal(t, "workers", inst.Tags[pool.TagPool], "crash after call %d", k)
			require.NotContains(t, inst.Tags, pool.TagWindDownStart, "crash after call %d: wind-down left hanging", k)
			held[inst.Tags[pool.TagManager]]++
		}
		require.Equal(t, map[string]int{"a": 2, "b": 1}, held, "crash after call %d", k)
	}
	t.Logf("crash points tried: %d (every call index 1..%d, plus 20 random)", len(points), totalCalls-1)
}
