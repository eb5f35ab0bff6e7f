package autoscale_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

func TestTwoManagersShareAPoolAndGetExactlyN(t *testing.T) {
	srv := newServers()
	a, b := fixed(t, "a", 3), fixed(t, "b", 2)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), a, b))
	w.steps(12)

	assert.Len(t, w.live(), 5)
	assert.Len(t, w.grantedTo("a"), 3)
	assert.Len(t, w.grantedTo("b"), 2)
	assert.Equal(t, 5, w.launched(), "nothing launched twice")
	// Every server was provisioned once before it was granted.
	for _, inst := range w.live() {
		assert.Equal(t, 1, srv.count(inst.ID, pool.HookProvision), inst.ID)
	}
	// Steady state: more passes change nothing.
	w.steps(10)
	assert.Equal(t, 5, w.launched())
	assert.Zero(t, w.terminated())
}

func TestRaisingAndLoweringNAtRunTime(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 2)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(10)
	require.Len(t, w.grantedTo("jobs"), 2)

	require.NoError(t, m.Set(6))
	w.steps(10)
	assert.Len(t, w.grantedTo("jobs"), 6)
	assert.Equal(t, 6, w.launched())

	require.NoError(t, m.Set(1))
	w.steps(10)
	assert.Len(t, w.live(), 1)
	assert.Len(t, w.grantedTo("jobs"), 1)
	assert.Equal(t, 6, w.launched(), "lowering N launches nothing")
	assert.Equal(t, 5, w.terminated())
}

func TestScaleDownWaitsForWindDown(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 2)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(10)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	for _, inst := range held {
		srv.setBusy(inst.ID, true) // both run a job
	}

	require.NoError(t, m.Set(1))
	w.steps(5)
	live := w.live()
	require.Len(t, live, 2, "a busy server is not terminated")
	var victim string
	for _, inst := range live {
		if _, ok := inst.Tags[pool.TagWindDownStart]; ok {
			victim = inst.ID
		}
	}
	require.NotEmpty(t, victim, "one server is winding down")
	assert.Equal(t, 1, srv.count(victim, pool.HookWindDown))
	assert.Zero(t, srv.count(victim, pool.HookTeardown))

	srv.setBusy(victim, false) // its job ends
	w.steps(4)
	assert.Len(t, w.live(), 1)
	inst, _ := w.sim.Instance(victim)
	assert.False(t, inst.State.Live(), "wound-down server terminated")
	assert.Equal(t, 1, srv.count(victim, pool.HookTeardown))
}

func TestReturningDemandCancelsWindDown(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 3)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(10)
	for _, inst := range w.live() {
		srv.setBusy(inst.ID, true)
	}
	require.NoError(t, m.Set(1))
	w.steps(2)
	winding := 0
	for _, inst := range w.live() {
		if _, ok := inst.Tags[pool.TagWindDownStart]; ok {
			winding++
		}
	}
	require.Equal(t, 2, winding)

	require.NoError(t, m.Set(3))
	w.steps(4)
	assert.Len(t, w.grantedTo("jobs"), 3, "wind-downs cancelled")
	assert.Equal(t, 3, w.launched(), "nothing launched: wind-downs were restored instead")
	assert.Zero(t, w.terminated())
	assert.Len(t, w.eventsOf(pool.EventRestore), 2)
	for _, inst := range w.live() {
		assert.NotContains(t, inst.Tags, pool.TagWindDownStart)
	}
}

func TestRestartDuringLaunchesConverges(t *testing.T) {
	// New instances stay invisible to the listing for a while, so a
	// restarted scaler cannot see what its predecessor just launched.
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay: ec2sim.Fixed(40 * time.Second),
		ListDelay: ec2sim.Fixed(25 * time.Second),
		Seed:      1,
	})
	require.NoError(t, err)
	srv := newServers()
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 4)))
	require.NoError(t, w.scaler.Step(context.Background()))
	require.Equal(t, 4, w.launched())

	w.restart() // crash right after the launch, before anything is visible
	w.steps(12)
	assert.Equal(t, 4, w.launched(), "the restarted scaler launched nothing extra")
	assert.Len(t, w.grantedTo("jobs"), 4)
	assert.Zero(t, w.terminated())
}

func TestRestartDuringWindDownsConverges(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 4)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(10)
	for _, inst := range w.live() {
		srv.setBusy(inst.ID, true)
	}
	require.NoError(t, m.Set(2))
	w.steps(2)

	w.restart()
	w.steps(3)
	assert.Len(t, w.live(), 4, "busy servers are still winding down after the restart")
	assert.Len(t, w.grantedTo("jobs"), 2)
	for _, inst := range w.live() {
		srv.setBusy(inst.ID, false)
	}
	w.steps(5)
	assert.Len(t, w.live(), 2)
	assert.Len(t, w.grantedTo("jobs"), 2)
	assert.Equal(t, 4, w.launched(), "no extra launch")
	assert.Equal(t, 2, w.terminated(), "no extra terminate")
}

func TestInstancesOfOthersAreNeverTouched(t *testing.T) {
	sim := newSim(t)
	ctx := context.Background()
	spec := awsctl.LaunchSpec{ImageID: "ami-12345678"}
	offer := []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}}
	// Another scaler's instances in the same pool name, and untagged ones.
	others, err := sim.Launch(ctx, awsctl.LaunchRequest{Spec: spec, Offerings: offer, Market: awsctl.MarketOnDemand,
		Capacity: 3, Tags: map[string]string{pool.TagOwner: "someone-else", pool.TagPool: "workers"}})
	require.NoError(t, err)
	plain, err := sim.Launch(ctx, awsctl.LaunchRequest{Spec: spec, Offerings: offer, Market: awsctl.MarketOnDemand, Capacity: 2})
	require.NoError(t, err)
	before := map[string]awsctl.Instance{}
	for _, inst := range append(others, plain...) {
		before[inst.ID] = inst
	}

	srv := newServers()
	m := fixed(t, "jobs", 2)
	w := newWorld(t, sim, poolConfig(srv.role(t), m))
	w.steps(10)
	require.NoError(t, m.Set(0))
	w.steps(10)

	for id, was := range before {
		now, ok := sim.Instance(id)
		require.True(t, ok)
		assert.True(t, now.State.Live(), "%s not terminated", id)
		assert.Equal(t, was.Tags, now.Tags, "%s tags unchanged", id)
		assert.Empty(t, srv.calls[id], "no hook ran on %s", id)
	}
}

func TestDryRunMutatesNothing(t *testing.T) {
	sim := newSim(t)
	srv := newServers()
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 3)))
	w.opts.DryRun = true
	w.restart()
	sim.ResetCalls()
	w.steps(5)

	assert.Zero(t, w.launched())
	calls := sim.Calls()
	for op, n := range calls {
		if op != ec2sim.OpListInstances {
			assert.Zero(t, n, "dry run called %s", op)
		}
	}
	launches := w.eventsOf(pool.EventLaunch)
	require.NotEmpty(t, launches, "the decision is still reported")
	for _, e := range launches {
		assert.True(t, e.DryRun)
	}
	assert.Zero(t, srv.provisions)
}

// erring is a manager whose Demand fails or returns what it is told.
type erring struct {
	name   string
	target int
	err    error
}

func (e *erring) Name() string { return e.name }
func (e *erring) Demand(context.Context, manager.State) (manager.Request, error) {
	return manager.Request{Target: e.target}, e.err
}
func (e *erring) Notify(manager.Notice) {}

func TestBadManagerIsClampedAndReportedOthersUnaffected(t *testing.T) {
	srv := newServers()
	bad := &erring{name: "bad", target: 2}
	good := fixed(t, "good", 3)
	cfg := poolConfig(srv.role(t), bad, good)
	cfg.Max = 8
	w := newWorld(t, newSim(t), cfg)
	w.steps(10)
	require.Len(t, w.grantedTo("bad"), 2)
	require.Len(t, w.grantedTo("good"), 3)

	// An error keeps what the manager had.
	bad.err = errors.New("queue unreachable")
	w.steps(5)
	assert.Len(t, w.grantedTo("bad"), 2)
	assert.Len(t, w.grantedTo("good"), 3)
	assert.NotEmpty(t, w.eventsOf(pool.EventManagerError))

	// A negative count is zero.
	bad.err, bad.target = nil, -7
	w.steps(6)
	assert.Empty(t, w.grantedTo("bad"))
	assert.Len(t, w.grantedTo("good"), 3)

	// An absurd count is clamped to what the pool may hold, and the fair
	// share keeps the other manager whole.
	bad.target = 1 << 40
	w.steps(10)
	assert.Len(t, w.grantedTo("good"), 3)
	assert.Len(t, w.grantedTo("bad"), 5)
	assert.LessOrEqual(t, len(w.live()), 8, "the pool never exceeds its max")
	clamps := w.eventsOf(pool.EventDemandClamped)
	require.NotEmpty(t, clamps)
	assert.Equal(t, "bad", clamps[0].Manager)
}

func TestHungHookDoesNotStallStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, err := ec2sim.New(ec2sim.Config{Clock: time.Now, BootDelay: ec2sim.Fixed(30 * time.Second), Seed: 3})
		require.NoError(t, err)
		var first sync.Once
		release := make(chan struct{})
		r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
			Provision: func(ctx context.Context, inst awsctl.Instance) error {
				hang := false
				first.Do(func() { hang = true })
				if hang {
					<-release // ignores its context entirely
				}
				return nil
			},
		})
		require.NoError(t, err)
		cfg := poolConfig(r, fixed(t, "jobs", 3))
		cfg.ProvisionTimeout = 2 * time.Minute
		s, err := autoscale.New(sim, []pool.Config{cfg}, autoscale.Options{Identity: "test-scaler", Interval: 10 * time.Second})
		require.NoError(t, err)
		ctx := context.Background()
		for range 30 {
			start := time.Now()
			_ = s.Step(ctx)
			require.Zero(t, time.Since(start), "a pass takes no virtual time, whatever the hooks do")
			time.Sleep(10 * time.Second)
		}
		ready := s.Pool("workers").Status()
		assert.Equal(t, 3, ready.Managers["jobs"].Held, "the other servers and a replacement serve the demand")
		cancel, stop := context.WithTimeout(ctx, time.Second)
		defer stop()
		// The hung hook ignores its context: Shutdown reports it instead of
		// waiting forever.
		err = s.Shutdown(cancel, autoscale.ShutdownOptions{})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		close(release)
		synctest.Wait()
	})
}

func TestHourlyBillingRestoresWindDownThatWouldCrossTheHour(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 1)
	cfg := poolConfig(srv.role(t), m)
	cfg.Billing = pool.Hourly
	cfg.WindDownTimeout = 10 * time.Minute
	w := newWorld(t, newSim(t), cfg)
	w.steps(10)
	held := w.grantedTo("jobs")
	require.Len(t, held, 1)
	id := held[0].ID
	srv.setBusy(id, true) // a job that will not end in time

	require.NoError(t, m.Set(0))
	w.steps(6) // one minute later: far from the end of the paid hour
	inst, _ := w.sim.Instance(id)
	assert.NotContains(t, inst.Tags, pool.TagWindDownStart, "no wind-down early in a paid hour")

	// Walk to the end of the first hour: the wind-down starts within the
	// window before the hour ends, and is restored when it would cross it.
	for range 6 * 60 {
		w.step()
		if len(w.eventsOf(pool.EventRestore)) > 0 {
			break
		}
	}
	require.NotEmpty(t, w.eventsOf(pool.EventWindDown))
	require.NotEmpty(t, w.eventsOf(pool.EventRestore), "wind-down restored at the hour boundary")
	inst, _ = w.sim.Instance(id)
	assert.True(t, inst.State.Live(), "not terminated into a new paid hour")
	age := w.sim.Now().Sub(inst.LaunchTime)
	left := time.Hour - age%time.Hour
	assert.LessOrEqual(t, left, pool.HourlyMargin+w.opts.Interval, "restored just before the paid hour ends, not earlier")
	w.steps(3)
	inst, _ = w.sim.Instance(id)
	assert.NotContains(t, inst.Tags, pool.TagWindDownStart)

	// With the job finished, the next window ends it.
	srv.setBusy(id, false)
	for range 6 * 60 {
		w.step()
		if inst, _ := w.sim.Instance(id); !inst.State.Live() {
			break
		}
	}
	inst, _ = w.sim.Instance(id)
	assert.False(t, inst.State.Live())
	left = time.Hour - w.sim.Now().Sub(inst.LaunchTime)%time.Hour
	assert.LessOrEqual(t, left, cfg.WindDownTimeout+pool.HourlyMargin, "terminated near the end of a paid hour")
}

func TestNewValidatesAndNamesTheField(t *testing.T) {
	r := newServers().role(t)
	m := fixed(t, "m", 1)
	good := func() pool.Config { return poolConfig(r, m) }
	sim := newSim(t)
	cases := []struct {
		name  string
		pools func() []pool.Config
		opts  func(*autoscale.Options)
		want  string
	}{
		{"empty pool name", func() []pool.Config { c := good(); c.Name = ""; return []pool.Config{c} }, nil, "Name"},
		{"duplicate pool", func() []pool.Config { return []pool.Config{good(), good()} }, nil, "duplicate pool name"},
		{"no types", func() []pool.Config { c := good(); c.Types = nil; return []pool.Config{c} }, nil, "Types"},
		{"zero weight ok, negative not", func() []pool.Config {
			c := good()
			c.Types = []pool.InstanceType{{Name: "m5.large", Weight: -1}}
			return []pool.Config{c}
		}, nil, "Types[0].Weight"},
		{"min above max", func() []pool.Config { c := good(); c.Min, c.Max = 5, 3; return []pool.Config{c} }, nil, "Min"},
		{"nil role", func() []pool.Config { c := good(); c.Role = nil; return []pool.Config{c} }, nil, "Role"},
		{"nil manager", func() []pool.Config { c := good(); c.Managers = []manager.Manager{nil}; return []pool.Config{c} }, nil, "Managers[0]"},
		{"duplicate manager", func() []pool.Config {
			c := good()
			c.Managers = []manager.Manager{m, fixed(t, "m", 2)}
			return []pool.Config{c}
		}, nil, "duplicate manager name"},
		{"role tag reserved", func() []pool.Config {
			c := good()
			c.Role, _ = role.New("r", awsctl.LaunchSpec{ImageID: "ami-1", Tags: map[string]string{"aws:x": "1"}}, role.Hooks{})
			return []pool.Config{c}
		}, nil, "Role.LaunchSpec().Tags"},
		{"role tags too many", func() []pool.Config {
			c := good()
			tags := map[string]string{}
			for i := range 43 {
				tags[fmt.Sprint("k", i)] = "v"
			}
			c.Role, _ = role.New("r", awsctl.LaunchSpec{ImageID: "ami-1", Tags: tags}, role.Hooks{})
			return []pool.Config{c}
		}, nil, "at most 38"},
		{"no zones", func() []pool.Config { c := good(); c.Zones = nil; return []pool.Config{c} }, nil, "Zones"},
		{"negative interval", func() []pool.Config { return []pool.Config{good()} }, func(o *autoscale.Options) { o.Interval = -time.Second }, "Interval"},
		{"empty identity", func() []pool.Config { return []pool.Config{good()} }, func(o *autoscale.Options) { o.Identity = "" }, "Identity"},
		{"identity too long", func() []pool.Config { return []pool.Config{good()} }, func(o *autoscale.Options) { o.Identity = strings.Repeat("x", 257) }, "Identity"},
		{"negative hook wait", func() []pool.Config { return []pool.Config{good()} }, func(o *autoscale.Options) { o.HookWait = -time.Second }, "HookWait"},
		{"negative rails", func() []pool.Config { return []pool.Config{good()} }, func(o *autoscale.Options) { o.Rails.MaxSpendPerHour = -1 }, "Rails"},
		{"no pools", func() []pool.Config { return nil }, nil, "at least one pool"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := autoscale.Options{Identity: "x"}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			_, err := autoscale.New(sim, tc.pools(), opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if !errors.Is(err, pool.ErrInvalidConfig) && !errors.Is(err, autoscale.ErrInvalidOptions) {
				t.Errorf("error %q wraps neither ErrInvalidConfig nor ErrInvalidOptions", err)
			}
		})
	}
	_, err := autoscale.New(nil, []pool.Config{good()}, autoscale.Options{Identity: "x"})
	require.ErrorIs(t, err, autoscale.ErrInvalidOptions)
}

func TestShutdownWindDownTerminatesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, err := ec2sim.New(ec2sim.Config{Clock: time.Now, Seed: 5})
		require.NoError(t, err)
		srv := newServers()
		s, err := autoscale.New(sim, []pool.Config{poolConfig(srv.role(t), fixed(t, "jobs", 3))},
			autoscale.Options{Identity: "test-scaler", Interval: 10 * time.Second})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(5 * time.Minute)
		require.Equal(t, 3, s.Pool("workers").Status().Managers["jobs"].Held)

		sctx, stop := context.WithTimeout(context.Background(), 30*time.Minute)
		defer stop()
		require.NoError(t, s.Shutdown(sctx, autoscale.ShutdownOptions{WindDown: true}))
		require.NoError(t, <-done)
		cancel()
		for _, inst := range sim.Instances() {
			assert.False(t, inst.State.Live(), "%s left running", inst.ID)
		}
		assert.ErrorIs(t, s.Step(context.Background()), autoscale.ErrClosed)
		require.NoError(t, s.Shutdown(context.Background(), autoscale.ShutdownOptions{}), "idempotent")
	})
}

func TestTagsRespectEC2Limits(t *testing.T) {
	srv := newServers()
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), fixed(t, strings.Repeat("m", 256), 1)))
	w.steps(8)
	require.Len(t, w.live(), 1)
	for k, v := range w.live()[0].Tags {
		assert.LessOrEqual(t, len(k), 128, k)
		assert.LessOrEqual(t, len(v), 256, fmt.Sprint(k, "=", v))
	}
}
