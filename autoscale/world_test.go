package autoscale_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// servers is a role's view of the servers: which have work, and what the
// hooks were asked to do. Check reports a server wound down once it has no
// work left.
type servers struct {
	mu         sync.Mutex
	busy       map[string]bool
	calls      map[string][]pool.HookKind
	provisions int
}

func newServers() *servers {
	return &servers{busy: map[string]bool{}, calls: map[string][]pool.HookKind{}}
}

func (s *servers) record(id string, k pool.HookKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[id] = append(s.calls[id], k)
	if k == pool.HookProvision {
		s.provisions++
	}
}

func (s *servers) setBusy(id string, busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy[id] = busy
}

func (s *servers) count(id string, k pool.HookKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls[id] {
		if c == k {
			n++
		}
	}
	return n
}

func (s *servers) role(t testing.TB) role.Role {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(ctx context.Context, inst awsctl.Instance) error {
			s.record(inst.ID, pool.HookProvision)
			return nil
		},
		WindDown: func(ctx context.Context, inst awsctl.Instance) error {
			s.record(inst.ID, pool.HookWindDown)
			return nil
		},
		Check: func(ctx context.Context, inst awsctl.Instance) (role.Status, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.calls[inst.ID] = append(s.calls[inst.ID], pool.HookCheck)
			return role.Status{Idle: !s.busy[inst.ID], WoundDown: !s.busy[inst.ID]}, nil
		},
		Restore: func(ctx context.Context, inst awsctl.Instance) error {
			s.record(inst.ID, pool.HookRestore)
			return nil
		},
		Teardown: func(ctx context.Context, inst awsctl.Instance) error {
			s.record(inst.ID, pool.HookTeardown)
			return nil
		},
	})
	require.NoError(t, err)
	return r
}

// world is a scaler over a simulated EC2 on a manual clock.
type world struct {
	t      testing.TB
	sim    *ec2sim.Sim
	cloud  awsctl.CloudClient // what the scaler talks to; the sim unless a test wraps it
	scaler *autoscale.Scaler
	pools  []pool.Config
	opts   autoscale.Options

	mu     sync.Mutex
	events []autoscale.Event
}

func newSim(t testing.TB) *ec2sim.Sim {
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay:     ec2sim.Fixed(40 * time.Second),
		ShutdownDelay: ec2sim.Fixed(20 * time.Second),
		Seed:          1,
	})
	require.NoError(t, err)
	return sim
}

func newWorld(t testing.TB, sim *ec2sim.Sim, pools ...pool.Config) *world {
	w := &world{t: t, sim: sim, pools: pools}
	w.opts = autoscale.Options{
		Identity: "test-scaler",
		Interval: 10 * time.Second,
		Clock:    sim.Now,
		HookWait: 5 * time.Second,
		Observer: autoscale.ObserverFunc(func(e autoscale.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		}),
	}
	w.restart()
	return w
}

// restart replaces the scaler with a new one over the same cloud, as after a
// crash: nothing in memory survives.
func (w *world) restart() {
	var cloud awsctl.CloudClient = w.sim
	if w.cloud != nil {
		cloud = w.cloud
	}
	s, err := autoscale.New(cloud, w.pools, w.opts)
	require.NoError(w.t, err)
	w.scaler = s
	w.t.Cleanup(func() { _ = s.Shutdown(context.Background(), autoscale.ShutdownOptions{}) })
}

// step runs one pass, then lets interval pass on the simulated clock.
func (w *world) step() {
	w.t.Helper()
	_ = w.scaler.Step(context.Background())
	require.NoError(w.t, w.sim.Advance(w.opts.Interval))
}

func (w *world) steps(n int) {
	w.t.Helper()
	for range n {
		w.step()
	}
}

// live returns the pool's instances that are not shutting down or gone.
func (w *world) live() []awsctl.Instance {
	var out []awsctl.Instance
	for _, inst := range w.sim.Instances() {
		if inst.State.Live() && inst.Tags[pool.TagOwner] == "test-scaler" {
			out = append(out, inst)
		}
	}
	return out
}

func (w *world) grantedTo(name string) []awsctl.Instance {
	var out []awsctl.Instance
	for _, inst := range w.live() {
		if inst.Tags[pool.TagManager] == name {
			if _, winding := inst.Tags[pool.TagWindDownStart]; !winding {
				out = append(out, inst)
			}
		}
	}
	return out
}

func (w *world) launched() int {
	n := 0
	for _, inst := range w.sim.Instances() {
		if inst.Tags[pool.TagOwner] == "test-scaler" {
			n++
		}
	}
	return n
}

func (w *world) terminated() int {
	n := 0
	for _, inst := range w.sim.Instances() {
		if inst.Tags[pool.TagOwner] == "test-scaler" && !inst.State.Live() {
			n++
		}
	}
	return n
}

func (w *world) eventsOf(kind pool.EventKind) []autoscale.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []autoscale.Event
	for _, e := range w.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func fixed(t testing.TB, name string, n int) *manager.Fixed {
	m, err := manager.NewFixed(name, n)
	require.NoError(t, err)
	return m
}

func poolConfig(r role.Role, managers ...manager.Manager) pool.Config {
	return pool.Config{
		Name:            "workers",
		Role:            r,
		Managers:        managers,
		Types:           []pool.InstanceType{{Name: "m5.large"}},
		Zones:           []string{"us-east-1a", "us-east-1b"},
		Max:             50,
		WindDownTimeout: 10 * time.Minute,
	}
}

// book returns a us-east-1 price book with its compiled-in on-demand
// prices and no spot prices.
func book(t testing.TB) *spotprice.Book {
	b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	require.NoError(t, err)
	return b
}

func timeTag(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }
