package autoscale_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// The regression tests of the lifecycle and the ledger: each names a way
// the pool once went wrong on a realistic EC2, and checks what EC2 holds.

// liveUnits is the capacity of the pool's instances EC2 holds (pending,
// running, stopping or stopped: everything not shutting down or gone).
func liveUnits(w *world, weights map[string]int) int {
	n := 0
	for _, inst := range w.live() {
		n += max(1, weights[inst.Type])
	}
	return n
}

// replacedTwice returns the ids that more than one replacement names.
func replacedTwice(sim *ec2sim.Sim) []string {
	count := map[string]int{}
	var twice []string
	for _, inst := range sim.Instances() {
		if x := inst.Tags[pool.TagReplaces]; x != "" {
			count[x]++
			if count[x] == 2 {
				twice = append(twice, x)
			}
		}
	}
	return twice
}

func TestLaunchNotListedYetIsNeitherLaunchedNorReplacedAgain(t *testing.T) {
	cfg := ec2sim.Config{SpotPrices: spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.030), ListDelay: ec2sim.Fixed(15 * time.Second)}
	w, _, m := spotWorldM(t, cfg, pool.FastStart, 1, nil)
	for target := 1; target <= 6; target++ {
		require.NoError(t, m.Set(target))
		w.step()
	}
	w.steps(60)
	assert.Empty(t, replacedTwice(w.sim), "no on-demand server replaced twice")
	assert.LessOrEqual(t, w.launched(), 12, "6 on-demand to start, 6 spot to replace them")
	assert.Equal(t, map[awsctl.Market]int{awsctl.MarketSpot: 6}, byMarketLive(w))
}

func TestHeavyTypeFillingALaunchNeverTakesThePoolAboveMax(t *testing.T) {
	sim := newSim(t)
	weights := map[string]int{"m5.large": 1, "m5.xlarge": 2, "m5.2xlarge": 4}
	for _, z := range zones {
		sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", z, 0) // the light type has no capacity
	}
	m := fixed(t, "jobs", 23)
	cfg := poolConfig(newServers().role(t), m)
	cfg.Types = []pool.InstanceType{{Name: "m5.large"}, {Name: "m5.xlarge", Weight: 2}, {Name: "m5.2xlarge", Weight: 4}}
	cfg.Max = 24
	w := newWorld(t, sim, cfg)
	for range 20 {
		w.step()
		require.LessOrEqual(t, liveUnits(w, weights), 24, "what EC2 holds stays within Max")
	}
	require.NoError(t, m.Set(24))
	w.steps(20)
	assert.Equal(t, 24, liveUnits(w, weights))
}

func TestInterruptedServersCountTowardMaxUntilEC2TakesThem(t *testing.T) {
	w, _, _ := spotWorldM(t, ec2sim.Config{SpotPrices: spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.030)}, pool.Spot, 4,
		func(c *pool.Config) { c.Max = 4 })
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 4)
	for _, inst := range w.grantedTo("jobs")[:2] {
		require.NoError(t, w.sim.Interrupt(inst.ID))
	}
	for range 20 {
		w.step()
		require.LessOrEqual(t, len(w.live()), 4, "the replacement waits for room under Max")
	}
	assert.Len(t, w.grantedTo("jobs"), 4, "replaced once EC2 took them")
}

func TestRestartWhileLaunchesAreInvisibleLaunchesNothingAgain(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Config{ListDelay: ec2sim.Fixed(time.Minute), BootDelay: ec2sim.Fixed(40 * time.Second), Seed: 1})
	require.NoError(t, err)
	cfg := poolConfig(newServers().role(t), fixed(t, "jobs", 6))
	cfg.Max = 6
	w := newWorld(t, sim, cfg)
	w.step()
	require.Equal(t, 6, w.launched())
	w.restart() // the new process cannot see the 6 yet
	for range 12 {
		w.step()
		require.LessOrEqual(t, len(w.live()), 6)
	}
	assert.Equal(t, 6, w.launched(), "the same request under the same token returned the first launch")
	assert.Len(t, w.grantedTo("jobs"), 6)
}

func TestStoppedServerIsReplacedAndTerminated(t *testing.T) {
	rec := &recorder{}
	srv := newServers()
	m := &recordingFixed{Fixed: fixed(t, "jobs", 2), rec: rec}
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	require.NoError(t, w.sim.Stop(held[0].ID))
	w.steps(10)
	inst, _ := w.sim.Instance(held[0].ID)
	assert.False(t, inst.State.Live(), "the stopped instance is terminated")
	assert.Len(t, w.grantedTo("jobs"), 2, "and replaced")
	assert.True(t, rec.has(manager.Revoked, held[0].ID), "its manager is told")
}

func TestZoneMinimumsAreLaunchedFor(t *testing.T) {
	for _, priced := range []bool{false, true} {
		m, err := manager.NewFixed("jobs", 4, manager.WithZoneMinimums(map[string]int{"us-east-1b": 3}))
		require.NoError(t, err)
		var w *world
		if priced {
			sim, err := ec2sim.New(ec2sim.Config{SpotPrices: spotAt(ec2sim.DefaultStart.Add(-time.Hour), 0.030), Seed: 1})
			require.NoError(t, err)
			cfg := poolConfig(newServers().role(t), m)
			cfg.Market, cfg.Prices = pool.Spot, bookOver(t, sim)
			w = newWorld(t, sim, cfg)
			w.opts.SpotNotices = sim
			w.restart()
		} else {
			w = newWorld(t, newSim(t), poolConfig(newServers().role(t), m))
		}
		w.steps(10)
		inZone := 0
		for _, inst := range w.grantedTo("jobs") {
			if inst.Zone == "us-east-1b" {
				inZone++
			}
		}
		assert.GreaterOrEqual(t, inZone, 3, "priced %v: the minimum is met", priced)
		assert.Len(t, w.grantedTo("jobs"), 4, "priced %v", priced)
	}
}

func TestMinKeepsReleasedServersInsteadOfLaunching(t *testing.T) {
	m := fixed(t, "jobs", 2)
	cfg := poolConfig(newServers().role(t), m)
	cfg.Min = 2
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 2)
	require.NoError(t, m.Set(0))
	w.steps(12)
	assert.Equal(t, 2, w.launched(), "no launch: the manager's servers stay as the pool's Min")
	assert.Zero(t, w.terminated())
	assert.Equal(t, 2, w.scaler.Pool("workers").Status().Free)
}

func TestShrinkingManagerHandsItsServersToAGrowingOne(t *testing.T) {
	a, b := fixed(t, "a", 2), fixed(t, "b", 0)
	w := newWorld(t, newSim(t), poolConfig(newServers().role(t), a, b))
	w.steps(8)
	first := w.grantedTo("a")
	require.Len(t, first, 2)
	require.NoError(t, a.Set(0))
	require.NoError(t, b.Set(2))
	w.steps(12)
	assert.Equal(t, 2, w.launched(), "handed over, not launched")
	assert.Zero(t, w.terminated())
	assert.ElementsMatch(t, ids(first), ids(w.grantedTo("b")))
}

func ids(insts []awsctl.Instance) []string {
	var out []string
	for _, inst := range insts {
		out = append(out, inst.ID)
	}
	return out
}

// slowWindDown is a role whose WindDown hook blocks until released.
type slowWindDown struct {
	release chan struct{}
	once    sync.Once
}

func (s *slowWindDown) role(t *testing.T) role.Role {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		WindDown: func(ctx context.Context, inst awsctl.Instance) error {
			select {
			case <-s.release:
			case <-ctx.Done():
			}
			return nil
		},
		Check: func(context.Context, awsctl.Instance) (role.Status, error) {
			return role.Status{Idle: true, WoundDown: true}, nil
		},
	})
	require.NoError(t, err)
	return r
}

func TestDemandReturningWhileAHookRunsRestoresTheServer(t *testing.T) {
	slow := &slowWindDown{release: make(chan struct{})}
	defer slow.once.Do(func() { close(slow.release) })
	m := fixed(t, "jobs", 2)
	cfg := poolConfig(slow.role(t), m)
	cfg.HookTimeout = time.Hour
	w := newWorld(t, newSim(t), cfg)
	w.opts.HookWait = 20 * time.Millisecond
	w.restart()
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 2)
	require.NoError(t, m.Set(1))
	w.steps(2) // a wind-down starts; its hook hangs
	require.NotEmpty(t, w.eventsOf(pool.EventWindDown))
	require.NoError(t, m.Set(2))
	w.steps(2)
	slow.once.Do(func() { close(slow.release) })
	w.steps(6)
	assert.Equal(t, 2, w.launched(), "the wind-down was cancelled, nothing launched")
	assert.Zero(t, w.terminated())
	assert.Len(t, w.grantedTo("jobs"), 2)
}

// hangingManager never answers Demand (it ignores its context too).
type hangingManager struct{ block chan struct{} }

func (h *hangingManager) Name() string { return "hung" }
func (h *hangingManager) Demand(context.Context, manager.State) (manager.Request, error) {
	<-h.block
	return manager.Request{}, nil
}
func (h *hangingManager) Notify(manager.Notice) {}

// stalling is a cloud whose listing blocks while stall is set.
type stalling struct {
	awsctl.CloudClient
	mu      sync.Mutex
	stall   chan struct{}
	stalled chan struct{} // closed when a call is stuck
}

func (s *stalling) ListInstances(ctx context.Context, f awsctl.ListFilter) ([]awsctl.Instance, error) {
	s.mu.Lock()
	ch, stalled := s.stall, s.stalled
	s.stall = nil
	s.mu.Unlock()
	if ch != nil {
		close(stalled)
		<-ch
	}
	return s.CloudClient.ListInstances(ctx, f)
}

func TestHungManagerStallsNothing(t *testing.T) {
	hung := &hangingManager{block: make(chan struct{})}
	defer close(hung.block)
	jobs := fixed(t, "jobs", 2)
	cfg := poolConfig(newServers().role(t), hung, jobs)
	cfg.DemandTimeout = 20 * time.Millisecond
	sim := newSim(t)
	cloud := &stalling{CloudClient: sim}
	w := newWorld(t, sim, cfg)
	w.cloud = cloud
	w.restart()
	w.steps(8)
	assert.Len(t, w.grantedTo("jobs"), 2, "the other manager is served")
	errs := w.eventsOf(pool.EventManagerError)
	require.NotEmpty(t, errs)
	assert.True(t, errors.Is(errs[0].Err, pool.ErrDemandTimeout))

	// A pass stuck in a cloud call blocks neither Status nor Shutdown.
	stall, stalled := make(chan struct{}), make(chan struct{})
	cloud.mu.Lock()
	cloud.stall, cloud.stalled = stall, stalled
	cloud.mu.Unlock()
	done := make(chan struct{})
	go func() { _ = w.scaler.Step(context.Background()); close(done) }()
	<-stalled
	st := w.scaler.Pool("workers").Status()
	assert.Equal(t, 2, st.Granted, "the latest pass's status, without waiting")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := w.scaler.Shutdown(ctx, autoscale.ShutdownOptions{})
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Shutdown honours its context")
	close(stall)
	<-done
}

// tokens is a cloud that records launch tokens and can lose answers.
type tokens struct {
	awsctl.CloudClient
	mu   sync.Mutex
	seen []string
}

func (c *tokens) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	c.mu.Lock()
	c.seen = append(c.seen, req.Token)
	c.mu.Unlock()
	return c.CloudClient.Launch(ctx, req)
}

func TestTokensStayAcrossAmbiguousFailuresAndChangeAfterDefinitiveOnes(t *testing.T) {
	// The listing lags, so a launch whose answer was lost is invisible.
	sim, err := ec2sim.New(ec2sim.Config{ListDelay: ec2sim.Fixed(time.Minute), BootDelay: ec2sim.Fixed(40 * time.Second), Seed: 1})
	require.NoError(t, err)
	rec := &tokens{CloudClient: sim}
	m := fixed(t, "jobs", 1)
	cfg := poolConfig(newServers().role(t), m)
	cfg.Zones = []string{"us-east-1a"}
	w := newWorld(t, sim, cfg)
	w.cloud = rec
	w.restart()

	// The answer is lost after EC2 launched: the same token is sent again,
	// and EC2 answers with the same instance.
	sim.FailNextAfterEffect(ec2sim.OpLaunch, ec2sim.ServerError(ec2sim.OpLaunch))
	w.step()
	w.step()
	require.Len(t, rec.seen, 2)
	assert.Equal(t, rec.seen[0], rec.seen[1], "ambiguous failure: same token")
	assert.Equal(t, 1, w.launched())

	// A definitive failure consumes the token: the retry gets a new one.
	w.steps(6)
	require.NoError(t, m.Set(2))
	sim.FailNext(ec2sim.OpLaunch, ec2sim.InsufficientCapacity(ec2sim.OpLaunch))
	w.step()
	n := len(rec.seen)
	require.GreaterOrEqual(t, n, 4, "the capacity error is followed by a second launch in the same Step")
	assert.NotEqual(t, rec.seen[n-2], rec.seen[n-1], "definitive failure: new token")
	w.steps(12)
	assert.Equal(t, 2, w.launched())
	assert.Len(t, w.grantedTo("jobs"), 2)
}

func TestTokenCoversTheWholeRequest(t *testing.T) {
	launchToken := func(image string) string {
		sim := newSim(t)
		rec := &tokens{CloudClient: sim}
		r, err := role.New("worker", awsctl.LaunchSpec{ImageID: image}, role.Hooks{})
		require.NoError(t, err)
		cfg := poolConfig(r, fixed(t, "jobs", 1))
		cfg.Zones = []string{"us-east-1a"}
		w := newWorld(t, sim, cfg)
		w.cloud = rec
		w.restart()
		w.step()
		require.Len(t, rec.seen, 1)
		return rec.seen[0]
	}
	assert.Equal(t, launchToken("ami-11111111"), launchToken("ami-11111111"), "same request, same world: same token")
	assert.NotEqual(t, launchToken("ami-11111111"), launchToken("ami-22222222"), "another image: another token")
}

// recorder collects manager notices.
type recorder struct {
	mu      sync.Mutex
	notices []manager.Notice
}

func (r *recorder) add(n manager.Notice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notices = append(r.notices, n)
}

func (r *recorder) has(kind manager.NoticeKind, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.notices {
		if n.Kind == kind && n.Server.ID == id {
			return true
		}
	}
	return false
}

// recordingFixed is a Fixed manager that records its notices and can ask
// to release servers.
type recordingFixed struct {
	*manager.Fixed
	rec     *recorder
	mu      sync.Mutex
	release []string
}

func (f *recordingFixed) Notify(n manager.Notice) { f.rec.add(n) }

func (f *recordingFixed) Demand(ctx context.Context, s manager.State) (manager.Request, error) {
	req, err := f.Fixed.Demand(ctx, s)
	f.mu.Lock()
	req.Release = f.release
	f.mu.Unlock()
	return req, err
}

func TestServerLostOutsideTheScalerIsReportedToItsManager(t *testing.T) {
	rec := &recorder{}
	m := &recordingFixed{Fixed: fixed(t, "jobs", 2), rec: rec}
	w := newWorld(t, newSim(t), poolConfig(newServers().role(t), m))
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	_, err := w.sim.Terminate(context.Background(), []string{held[0].ID}) // a person, or EC2
	require.NoError(t, err)
	w.steps(2)
	assert.True(t, rec.has(manager.Revoked, held[0].ID))
	w.steps(8)
	assert.Len(t, w.grantedTo("jobs"), 2, "and replaced")
}

func TestReleasedServerIsReplacedAndNeverRestored(t *testing.T) {
	rec := &recorder{}
	m := &recordingFixed{Fixed: fixed(t, "jobs", 2), rec: rec}
	w := newWorld(t, newSim(t), poolConfig(newServers().role(t), m))
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	sick := held[0].ID
	m.mu.Lock()
	m.release = []string{sick}
	m.mu.Unlock()
	w.step()
	inst, _ := w.sim.Instance(sick)
	assert.Equal(t, pool.RetireReleased, inst.Tags[pool.TagRetire])
	// The manager lowers then raises its target: the released server stays
	// gone, a new one is granted.
	require.NoError(t, m.Set(1))
	w.step()
	require.NoError(t, m.Set(2))
	w.steps(10)
	inst, _ = w.sim.Instance(sick)
	assert.False(t, inst.State.Live(), "terminated")
	assert.Len(t, w.grantedTo("jobs"), 2)
	assert.NotContains(t, ids(w.grantedTo("jobs")), sick)
}

func TestRestartDoesNotProvisionAgainOrShiftGrants(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 3)
	cfg := poolConfig(srv.role(t), m)
	cfg.Min = 5 // two ready servers stay free
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	require.Equal(t, 5, srv.provisions)
	w.restart()
	w.steps(4)
	assert.Equal(t, 5, srv.provisions, "ready servers carry TagReady: no hook runs again")
	require.NoError(t, m.Set(5))
	w.step()
	assert.Len(t, w.grantedTo("jobs"), 5, "free servers are granted in the first pass after the restart")
}

func TestPoolShowsEmbeddersNoDrivingMethods(t *testing.T) {
	typ := reflect.TypeOf(&pool.Pool{})
	for _, name := range []string{"Plan", "Commit", "SetDraining", "OnHookDone", "WaitHooks", "Close"} {
		_, ok := typ.MethodByName(name)
		assert.False(t, ok, "pool.Pool.%s is exported", name)
	}
}

// bookOver is a price book reading spot prices and reservations from sim.
func bookOver(t *testing.T, sim *ec2sim.Sim) *spotprice.Book {
	b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: sim, Reservations: sim, SpotTTL: time.Minute})
	require.NoError(t, err)
	return b
}

// globbing is a cloud whose listing treats the owner filter as a pattern
// (as a third-party EC2 did): it lists every instance.
type globbing struct {
	awsctl.CloudClient
	mu      sync.Mutex
	touched []string
}

func (g *globbing) ListInstances(ctx context.Context, f awsctl.ListFilter) ([]awsctl.Instance, error) {
	f.Tags = nil
	return g.CloudClient.ListInstances(ctx, f)
}

func (g *globbing) note(ids []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.touched = append(g.touched, ids...)
}

func (g *globbing) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	g.note(ids)
	return g.CloudClient.Tag(ctx, ids, tags)
}

func (g *globbing) Terminate(ctx context.Context, ids []string) ([]string, error) {
	g.note(ids)
	return g.CloudClient.Terminate(ctx, ids)
}

func TestOwnerIsCheckedExactlyWhateverTheListingReturns(t *testing.T) {
	sim := newSim(t)
	theirs, err := sim.Launch(context.Background(), awsctl.LaunchRequest{
		Spec: awsctl.LaunchSpec{ImageID: "ami-12345678"}, Market: awsctl.MarketOnDemand, Capacity: 1,
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}},
		Tags:      map[string]string{pool.TagOwner: "team-blue", pool.TagPool: "workers", pool.TagRole: "worker"},
	})
	require.NoError(t, err)
	cloud := &globbing{CloudClient: sim}
	w := newWorld(t, sim, poolConfig(newServers().role(t), fixed(t, "jobs", 1)))
	w.opts.Identity = "team-*"
	w.cloud = cloud
	w.restart()
	w.steps(10)
	assert.NotContains(t, cloud.touched, theirs[0].ID, "team-blue's instance is never tagged or terminated")
	inst, _ := sim.Instance(theirs[0].ID)
	assert.True(t, inst.State.Live())
	assert.Len(t, w.scaler.Pool("workers").Status().Managers, 1)
	assert.Equal(t, 1, w.scaler.Pool("workers").Status().Granted, "its own server only")
}

func TestWindDownWhoseHookKeepsFailingEndsAtItsDeadline(t *testing.T) {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		WindDown: func(context.Context, awsctl.Instance) error { return errors.New("target group gone") },
	})
	require.NoError(t, err)
	m := fixed(t, "jobs", 1)
	cfg := poolConfig(r, m)
	cfg.WindDownTimeout = 2 * time.Minute
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 1)
	require.NoError(t, m.Set(0))
	w.steps(20) // 200 s: past the 2-minute deadline
	assert.Empty(t, w.live(), "terminated at its deadline, not left winding down")
	assert.NotEmpty(t, w.eventsOf(pool.EventHookFailed))
}

func TestRestartWhileLaunchesAreInvisibleWaitsForTheListing(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Config{ListDelay: ec2sim.Fixed(time.Minute), BootDelay: ec2sim.Fixed(40 * time.Second), Seed: 1})
	require.NoError(t, err)
	m := fixed(t, "jobs", 2)
	cfg := poolConfig(newServers().role(t), m)
	cfg.Max = 6
	w := newWorld(t, sim, cfg)
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 2)
	require.NoError(t, m.Set(6))
	w.step() // 4 more, not listed for a minute
	require.Equal(t, 6, w.launched())
	w.restart()
	require.NoError(t, m.Set(5)) // another request: its token cannot find the first launch
	for range 12 {
		w.step()
		require.LessOrEqual(t, len(w.live()), 6, "the restarted scaler waits for the listing instead of launching again")
	}
	assert.Equal(t, 6, w.launched())
	assert.Len(t, w.grantedTo("jobs"), 5)
}

func TestLongJobsAreNotCutShortByDefault(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 1)
	cfg := poolConfig(srv.role(t), m)
	cfg.WindDownTimeout = 2 * time.Minute
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 1)
	srv.setBusy(held[0].ID, true) // a job longer than the deadline
	require.NoError(t, m.Set(0))
	w.steps(30) // 5 minutes: well past the deadline
	inst, _ := w.sim.Instance(held[0].ID)
	require.True(t, inst.State.Live(), "the busy server is still there")
	var waiting bool
	for _, e := range w.eventsOf(pool.EventWindDown) {
		waiting = waiting || strings.Contains(e.Reason, "still busy")
	}
	assert.True(t, waiting, "passing the deadline is reported")
	srv.setBusy(held[0].ID, false) // the job ends
	w.steps(6)
	assert.Empty(t, w.live(), "terminated once wound down")
}

func TestTerminateOnTimeoutCutsAWindDownAtItsDeadline(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 1)
	cfg := poolConfig(srv.role(t), m)
	cfg.WindDownTimeout = 2 * time.Minute
	cfg.OnWindDownTimeout = pool.Terminate
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 1)
	srv.setBusy(held[0].ID, true)
	require.NoError(t, m.Set(0))
	w.steps(20)
	assert.Empty(t, w.live(), "the host asked for a hard deadline")
}

func TestOneManagerInTwoPoolsIsRejected(t *testing.T) {
	shared := fixed(t, "jobs", 3)
	a := poolConfig(newServers().role(t), shared)
	b := poolConfig(newServers().role(t), shared)
	b.Name = "other"
	_, err := autoscale.New(newSim(t), []pool.Config{a, b}, autoscale.Options{Identity: "test-scaler"})
	require.ErrorIs(t, err, pool.ErrInvalidConfig)
	assert.Contains(t, err.Error(), `manager "jobs" is already a manager of pool "workers"`)
}

func TestShutdownOutOfTimeNamesWhatIsLeftInEveryPool(t *testing.T) {
	srv := newServers()
	a := poolConfig(srv.role(t), fixed(t, "a", 1))
	b := poolConfig(srv.role(t), fixed(t, "b", 1))
	b.Name = "other"
	sim := newSim(t)
	w := newWorld(t, sim, a, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waits := 0
	w.opts.Wait = func(context.Context, time.Duration) error {
		if waits++; waits == 3 {
			cancel() // the host's patience ends
		}
		return sim.Advance(10 * time.Second)
	}
	w.restart()
	w.steps(8)
	for _, inst := range w.live() {
		srv.setBusy(inst.ID, true) // jobs that outlast the shutdown
	}
	err := w.scaler.Shutdown(ctx, autoscale.ShutdownOptions{WindDown: true})
	require.ErrorIs(t, err, context.Canceled)
	for _, inst := range w.live() {
		assert.Contains(t, err.Error(), inst.ID, "every server still there is named")
	}
	assert.Contains(t, err.Error(), `pool "workers"`)
	assert.Contains(t, err.Error(), `pool "other"`)
	// Every pass waited for its Check hooks (HookWait), so none was in host
	// code when the host's patience ended.
	assert.NotContains(t, err.Error(), "hooks still running", "the hooks returned at once")
}

// lease is a Leader the test hands from one replica to the other.
type lease struct {
	mu     sync.Mutex
	holder string
}

func (l *lease) give(to string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holder = to
}

func (l *lease) leader(name string) autoscale.Leader {
	return leaderFunc(func() bool { return l.is(name) })
}

func (l *lease) is(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder == name
}

type leaderFunc func() bool

func (f leaderFunc) IsLeader(context.Context) bool { return f() }

func TestAReplicaThatWinsTheLeaseBackActsOnTheCloudNotOnItsMemory(t *testing.T) {
	sim := newSim(t)
	srv := newServers()
	l := &lease{holder: "a"}
	replica := func(name string) (*world, *manager.Fixed) {
		m := fixed(t, "jobs", 1)
		w := newWorld(t, sim, poolConfig(srv.role(t), m))
		w.opts.Leader = l.leader(name)
		w.restart()
		return w, m
	}
	a, ma := replica("a")
	b, mb := replica("b")
	a.steps(8)
	held := a.grantedTo("jobs")
	require.Len(t, held, 1)
	x := held[0].ID

	// A starts winding x down; the Check it runs finds x idle. A loses the
	// lease before it acts on that answer.
	require.NoError(t, ma.Set(0))
	a.step()
	a.step()
	l.give("b")

	// B restores x, then winds it down again while it runs a job. A keeps
	// passing, as Run does, and finds it is not the leader.
	both := func(n int) {
		for range n {
			_ = a.scaler.Step(context.Background())
			b.step()
		}
	}
	require.NoError(t, mb.Set(1))
	both(3)
	require.Len(t, b.grantedTo("jobs"), 1, "B restored x")
	srv.setBusy(x, true)
	require.NoError(t, mb.Set(0))
	both(3)

	// A wins the lease back: its old answer ("x is idle") must not count.
	l.give("a")
	a.steps(6)
	inst, _ := sim.Instance(x)
	assert.True(t, inst.State.Live(), "x runs a job: A waits for its wind-down instead of terminating it")
	srv.setBusy(x, false)
	a.steps(6)
	inst, _ = sim.Instance(x)
	assert.False(t, inst.State.Live(), "terminated once its job is done")
}

func TestHooksOfADeposedLeaderStop(t *testing.T) {
	sim := newSim(t)
	stopped := make(chan struct{})
	var once sync.Once
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		WindDown: func(ctx context.Context, _ awsctl.Instance) error {
			<-ctx.Done() // a drain that would still be going on
			once.Do(func() { close(stopped) })
			return ctx.Err()
		},
	})
	require.NoError(t, err)
	l := &lease{holder: "a"}
	m := fixed(t, "jobs", 1)
	cfg := poolConfig(r, m)
	cfg.HookTimeout = time.Hour
	w := newWorld(t, sim, cfg)
	w.opts.Leader = l.leader("a")
	w.opts.HookWait = time.Millisecond
	w.restart()
	w.steps(8)
	require.NoError(t, m.Set(0))
	w.step() // the WindDown hook starts and keeps running
	l.give("b")
	require.ErrorIs(t, w.scaler.Step(context.Background()), autoscale.ErrNotLeader)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the deposed leader's hook is still running")
	}
}

// healthRole is a role whose Check reports the servers marked sick.
type healthRole struct {
	role.Role
	mu   sync.Mutex
	sick map[string]bool
}

func (h *healthRole) Check(ctx context.Context, inst awsctl.Instance) (role.Status, error) {
	st, err := h.Role.Check(ctx, inst)
	h.mu.Lock()
	st.Unhealthy = h.sick[inst.ID]
	h.mu.Unlock()
	return st, err
}

func (h *healthRole) ReportsHealth() bool { return true }

func TestAGrantedServerThatTurnsUnhealthyIsReplaced(t *testing.T) {
	h := &healthRole{Role: newServers().role(t), sick: map[string]bool{}}
	m := fixed(t, "jobs", 2)
	cfg := poolConfig(h, m)
	cfg.HealthInterval, cfg.HealthGrace, cfg.UnhealthyAfter = 10*time.Second, 3*time.Minute, 3
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	sick := held[0].ID
	h.mu.Lock()
	h.sick[sick] = true
	h.mu.Unlock()
	w.steps(6)
	require.Contains(t, ids(w.grantedTo("jobs")), sick, "within its grace period: kept")
	w.steps(30)
	inst, _ := w.sim.Instance(sick)
	assert.False(t, inst.State.Live(), "replaced and terminated")
	assert.Equal(t, pool.RetireUnhealthy, inst.Tags[pool.TagRetire])
	assert.Len(t, w.grantedTo("jobs"), 2, "another server works in its place")
	assert.NotContains(t, ids(w.grantedTo("jobs")), sick)
}

// A restarted scaler has none of its predecessor's health readings: the
// verdict that a winding-down server is sick must be in its tags, or the
// new process puts it back to work when demand returns.
func TestASickServerWindingDownIsNotPutBackToWorkAfterARestart(t *testing.T) {
	srv := newServers()
	h := &healthRole{Role: srv.role(t), sick: map[string]bool{}}
	m := fixed(t, "jobs", 2)
	cfg := poolConfig(h, m)
	cfg.HealthInterval, cfg.HealthGrace, cfg.UnhealthyAfter = 10*time.Second, time.Minute, 3
	w := newWorld(t, newSim(t), cfg)
	w.steps(12)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	sick := held[0].ID
	for _, inst := range held {
		srv.setBusy(inst.ID, true) // jobs to finish: both wind down for minutes
	}
	require.NoError(t, m.Set(0))
	w.steps(2)
	h.mu.Lock()
	h.sick[sick] = true
	h.mu.Unlock()
	w.steps(6) // the wind-down's Checks read it sick three times and more
	inst, _ := w.sim.Instance(sick)
	require.NotEmpty(t, inst.Tags[pool.TagWindDownStart], "still winding down")

	w.restart()
	require.NoError(t, m.Set(2))
	for range 6 {
		w.step()
		require.NotContains(t, ids(w.grantedTo("jobs")), sick, "the new process does not put the sick server back to work")
	}
	w.steps(6)
	assert.Len(t, w.grantedTo("jobs"), 2, "the healthy one is restored, another is launched")
	inst, _ = w.sim.Instance(sick)
	assert.Equal(t, pool.RetireUnhealthy, inst.Tags[pool.TagRetire])
}

func TestARoleWithNothingToWindDownIsTerminatedInThePassThatDecides(t *testing.T) {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{})
	require.NoError(t, err)
	m := fixed(t, "jobs", 3)
	w := newWorld(t, newSim(t), poolConfig(r, m))
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 3)
	require.NoError(t, m.Set(1))
	require.NoError(t, w.scaler.Step(context.Background()))
	terminated := 0
	for _, inst := range w.sim.Instances() {
		if inst.State == awsctl.StateShuttingDown || inst.State == awsctl.StateTerminated {
			terminated++
		}
	}
	assert.Equal(t, 2, terminated, "no wind-down to wait for: terminated in the same pass")
	assert.Len(t, w.grantedTo("jobs"), 1)
}
