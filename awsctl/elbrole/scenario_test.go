package elbrole_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// Scenario timings: instances boot in 40 s; the load balancer needs three
// passing checks 10 s apart (30 s) and drains for two minutes; passes are
// 30 s apart.
const (
	passInterval = 30 * time.Second
	healthyAfter = 30 * time.Second
	drainFor     = 2 * time.Minute
)

// webTier is a scaler keeping a pool of web servers behind a simulated load
// balancer, on the fake clock of a synctest bubble.
type webTier struct {
	t      *testing.T
	sim    *ec2sim.Sim
	lb     *elbsim.LB
	arn    string
	web    *manager.Fixed
	scaler *autoscale.Scaler

	mu      sync.Mutex
	grants  map[string]time.Time // first grant of each server
	events  []autoscale.Event
	stopped map[string]time.Time // when each server was seen shutting down
}

// recordingManager is the host's manager: a Fixed target, and a record of
// when each server was granted.
type recordingManager struct {
	*manager.Fixed
	w *webTier
}

func (m recordingManager) Notify(n manager.Notice) {
	if n.Kind == manager.Granted {
		m.w.mu.Lock()
		if _, ok := m.w.grants[n.Server.ID]; !ok {
			m.w.grants[n.Server.ID] = time.Now()
		}
		m.w.mu.Unlock()
	}
	m.Fixed.Notify(n)
}

func newWebTier(t *testing.T, servers int) *webTier {
	t.Helper()
	w := &webTier{t: t, grants: map[string]time.Time{}, stopped: map[string]time.Time{}}
	var err error
	w.sim, err = ec2sim.New(ec2sim.Config{Clock: time.Now, BootDelay: ec2sim.Fixed(40 * time.Second),
		ShutdownDelay: ec2sim.Fixed(20 * time.Second), Seed: 1})
	require.NoError(t, err)
	w.lb, err = elbsim.New(elbsim.Config{Instances: w.sim.Instance, HealthCheckInterval: 10 * time.Second,
		HealthyThreshold: int(healthyAfter / (10 * time.Second)), DeregistrationDelay: drainFor})
	require.NoError(t, err)
	w.arn, err = w.lb.CreateTargetGroup("web", 8080)
	require.NoError(t, err)
	inner, err := role.New("web", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	require.NoError(t, err)
	web, err := elbrole.New(inner, w.lb, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: w.arn}}, HealthyTimeout: 2 * time.Minute})
	require.NoError(t, err)
	w.web, err = manager.NewFixed("web", servers)
	require.NoError(t, err)
	w.scaler, err = autoscale.New(w.sim, []pool.Config{{
		Name:            "web",
		Role:            web,
		Managers:        []manager.Manager{recordingManager{w.web, w}},
		Types:           []pool.InstanceType{{Name: "m5.large"}},
		Zones:           []string{"us-east-1a", "us-east-1b"},
		Max:             20,
		WindDownTimeout: 10 * time.Minute,
		HookTimeout:     2 * time.Minute, // Restore waits for the health checks
	}}, autoscale.Options{
		Identity: "web-test",
		Interval: passInterval,
		Observer: autoscale.ObserverFunc(func(e autoscale.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		}),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{}) })
	return w
}

// pass runs one reconcile pass, lets the hooks it started run until they
// wait on the clock, checks that no server that served requests was
// terminated while the load balancer still held it, and lets the pass
// interval go by.
func (w *webTier) pass() {
	w.t.Helper()
	_ = w.scaler.Step(context.Background())
	synctest.Wait()
	targets := map[string]elbsim.Target{}
	for _, tg := range w.lb.Targets(w.arn) {
		targets[tg.ID] = tg
	}
	for _, inst := range w.sim.Instances() {
		if inst.State.Live() {
			continue
		}
		w.mu.Lock()
		if _, seen := w.stopped[inst.ID]; !seen {
			w.stopped[inst.ID] = time.Now()
		}
		_, served := w.grants[inst.ID]
		w.mu.Unlock()
		if tg, ok := targets[inst.ID]; ok && served {
			w.t.Errorf("%s is %s but still a target of the load balancer (%s)", inst.ID, inst.State, tg.State)
		}
	}
	time.Sleep(passInterval)
	synctest.Wait()
}

func (w *webTier) passes(n int) {
	w.t.Helper()
	for range n {
		w.pass()
	}
}

// states returns the load balancer's state of each target.
func (w *webTier) states() map[string]types.TargetHealthStateEnum {
	out := map[string]types.TargetHealthStateEnum{}
	for _, tg := range w.lb.Targets(w.arn) {
		out[tg.ID] = tg.State
	}
	return out
}

func (w *webTier) live() []string {
	var ids []string
	for _, inst := range w.sim.Instances() {
		if inst.State.Live() {
			ids = append(ids, inst.ID)
		}
	}
	return ids
}

func (w *webTier) granted() int { return w.scaler.Pool("web").Status().Granted }

func (w *webTier) count(kind pool.EventKind) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func TestScenarioScaleOutWaitsForHealthyTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebTier(t, 3)
		w.passes(3) // launched, running at 40 s, registered by the pass at 60 s
		assert.Equal(t, 0, w.granted(), "registered but not healthy yet")
		states := w.states()
		assert.Len(t, states, 3)
		for _, s := range states {
			assert.Equal(t, types.TargetHealthStateEnumInitial, s)
		}
		w.passes(2)
		assert.Equal(t, 3, w.granted())
		for _, tg := range w.lb.Targets(w.arn) {
			assert.Equal(t, types.TargetHealthStateEnumHealthy, tg.State)
			granted := w.grants[tg.ID]
			assert.False(t, granted.Before(tg.RegisteredAt.Add(healthyAfter)),
				"%s granted at %v, before it was healthy at %v", tg.ID, granted, tg.RegisteredAt.Add(healthyAfter))
		}
		assert.Len(t, w.live(), 3)
	})
}

func TestScenarioScaleInDrainsBeforeTerminating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebTier(t, 3)
		w.passes(5)
		require.Equal(t, 3, w.granted())

		require.NoError(t, w.web.Set(1))
		w.pass()
		w.pass()
		draining := 0
		for _, s := range w.states() {
			if s == types.TargetHealthStateEnumDraining {
				draining++
			}
		}
		assert.Equal(t, 2, draining, "two servers deregistered and draining")
		assert.Len(t, w.live(), 3, "none terminated while draining")
		wound := time.Now()

		// pass checks at every pass that no server is terminated while
		// the load balancer still holds it.
		w.passes(8)
		assert.Len(t, w.live(), 1)
		assert.Len(t, w.lb.Targets(w.arn), 1)
		assert.Len(t, w.stopped, 2)
		for id, at := range w.stopped {
			assert.False(t, at.Before(wound.Add(drainFor-passInterval)), "%s stopped at %v, within its drain", id, at)
		}
		assert.Equal(t, 1, w.granted())
		assert.Equal(t, 3, len(w.sim.Instances()), "nothing launched")
	})
}

func TestScenarioDemandReturningDuringDrainRegistersAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebTier(t, 3)
		w.passes(5)
		require.Equal(t, 3, w.granted())
		require.NoError(t, w.web.Set(1))
		w.passes(2)
		require.Equal(t, 1, w.granted())
		winding := 0
		for _, s := range w.states() {
			if s == types.TargetHealthStateEnumDraining {
				winding++
			}
		}
		require.Equal(t, 2, winding)

		require.NoError(t, w.web.Set(3))
		w.passes(4)
		assert.Equal(t, 3, w.granted())
		assert.Len(t, w.sim.Instances(), 3, "the draining servers came back; nothing was launched")
		assert.Equal(t, 2, w.count(pool.EventRestore))
		states := w.states()
		assert.Len(t, states, 3)
		for id, s := range states {
			assert.Equal(t, types.TargetHealthStateEnumHealthy, s, id)
		}
		assert.Empty(t, w.stopped)
	})
}

func TestScenarioServerThatNeverTurnsHealthyIsReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebTier(t, 1)
		w.pass()
		ids := w.live()
		require.Len(t, ids, 1)
		sick := ids[0]
		w.lb.SetFailing(sick, true) // its health checks will never pass

		w.passes(12)
		assert.Equal(t, 1, w.count(pool.EventProvisionFailed))
		assert.Equal(t, 1, w.granted())
		assert.NotContains(t, w.grants, sick, "never granted")
		assert.Contains(t, w.stopped, sick, "terminated")
		live := w.live()
		require.Len(t, live, 1)
		assert.NotEqual(t, sick, live[0])
		assert.Equal(t, map[string]types.TargetHealthStateEnum{live[0]: types.TargetHealthStateEnumHealthy}, w.states(),
			"the sick server was deregistered, its replacement serves")
		assert.Len(t, w.sim.Instances(), 2)
	})
}
