package autoscale_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
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
	spot bool
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
		// Demand elsewhere: the busy wind-downs are handed over to b once
		// they are wound down, instead of a launch for b.
		_ = sc.b.Set(4)
	case 14:
		_ = sc.a.Set(2)
	case 16:
		for _, inst := range w.live() {
			sc.srv.setBusy(inst.ID, false)
		}
	case 20:
		_ = sc.b.Set(1)
	case 25:
		if sc.spot { // EC2 reclaims a spot server
			for _, inst := range w.sim.Instances() {
				if inst.State.Live() && inst.Market == awsctl.MarketSpot && inst.Tags[pool.TagManager] == "a" {
					_ = w.sim.Interrupt(inst.ID)
					break
				}
			}
		}
	}
}

// settledDue reports whether a pass should find the pool settled: no
// demand change in it or the two passes before. After the interruption of
// the spot scenario, the window runs until EC2 has reclaimed the server and
// its replacement has booted: a notice consumed by a scaler that dies before
// recording it (in its next tag call) is lost with it, and the server is
// replaced only when EC2 takes it (see RELIABILITY.md).
func settledDue(pass int, spot bool) bool {
	for _, c := range []struct{ at, len int }{{0, 2}, {8, 2}, {11, 16 - 11 + 3}, {14, 2}, {20, 2}, {25, 2}} {
		if pass >= c.at && pass <= c.at+c.len {
			return false
		}
	}
	return !spot || pass < 25 || pass > 25+18
}

// settled reports whether the capacity the pool plans with (everything but
// wind-downs) equals what its managers want.
func settled(w *world) bool {
	st := w.scaler.Pool("workers").Status()
	return st.Booting+st.Provisioning+st.Free+st.Granted == st.Target
}

func newBusyWorld(t *testing.T, spot bool) (*world, *busyScenario) {
	srv := newServers()
	a, b := fixed(t, "a", 0), fixed(t, "b", 0)
	cfg := poolConfig(srv.role(t), a, b)
	cfg.LaunchBatch = 2
	cfg.Max = 12
	// This sim lists a launch at once: a restarted scaler need not wait
	// for the listing to catch up.
	cfg.ListingLag = time.Second
	sim := newSim(t)
	if spot {
		// On-demand first, replaced by spot: replacements run all along.
		var err error
		sim, err = ec2sim.New(ec2sim.Config{BootDelay: ec2sim.Fixed(40 * time.Second), Seed: 1,
			SpotPrices: spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.030)})
		require.NoError(t, err)
		b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: sim})
		require.NoError(t, err)
		cfg.Market, cfg.Prices = pool.FastStart, b
		cfg.Max = 16 // room for replacements on top of demand
	}
	w := newWorld(t, sim, cfg)
	if spot {
		w.opts.SpotNotices = sim
		w.restart()
	}
	return w, &busyScenario{a: a, b: b, srv: srv, spot: spot}
}

// TestCrashAnywhere stops the scaler between any two cloud calls of a busy
// scenario, starts a new one over the same cloud, and checks that the
// system converges as if nothing had happened: no extra launch beyond one
// batch in flight, no leaked or orphaned instance, every wind-down finished
// or restored, and no corrective action after the new scaler's second pass.
func TestCrashAnywhere(t *testing.T) {
	t.Run("on-demand", func(t *testing.T) { crashAnywhere(t, false) })
	t.Run("spot replacements and interruptions", func(t *testing.T) { crashAnywhere(t, true) })
}

func crashAnywhere(t *testing.T, spot bool) {
	// Reference run without a crash.
	ref, sc := newBusyWorld(t, spot)
	counter := &dying{CloudClient: ref.sim, left: 1 << 30}
	ref.cloud = counter
	ref.restart()
	for pass := range scenarioPasses {
		sc.at(ref, pass)
		ref.step()
		require.True(t, !settledDue(pass, spot) || settled(ref), "reference run unsettled at pass %d", pass)
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
		w, sc := newBusyWorld(t, spot)
		d := &dying{CloudClient: w.sim, left: k}
		w.cloud = d
		w.restart()
		pass := 0
		for ; pass < scenarioPasses && !d.dead(); pass++ {
			sc.at(w, pass)
			w.step()
		}
		// A new process adopts the cloud as it is.
		w.cloud = nil
		w.restart()
		for n := 0; pass < scenarioPasses+20; pass, n = pass+1, n+1 {
			sc.at(w, pass)
			w.step()
			// From its second pass on, the new scaler is where an
			// uninterrupted one would be.
			require.True(t, n < 2 || !settledDue(pass, spot) || settled(w), "crash after call %d: unsettled %d passes after the restart", k, n)
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
