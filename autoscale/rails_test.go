package autoscale_test

import (
	"context"
	"errors"
	"fmt"
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
)

func alarmKinds(s *autoscale.Scaler) []autoscale.AlarmKind {
	var out []autoscale.AlarmKind
	for _, a := range s.Alarms() {
		out = append(out, a.Kind)
	}
	return out
}

func TestLaunchRateCapHoldsAndIsReported(t *testing.T) {
	srv := newServers()
	cfg := poolConfig(srv.role(t), fixed(t, "jobs", 40))
	w := newWorld(t, newSim(t), cfg)
	w.opts.Rails = autoscale.Rails{MaxLaunchPerMinute: 10}
	w.restart()
	w.opts.Interval = 20 * time.Second
	w.step() // t=0: 10 launched
	w.step() // t=20s: budget spent
	assert.Equal(t, 10, w.launched(), "no more than 10 in the first minute")
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmLaunchRate)
	assert.NotEmpty(t, w.eventsOf(pool.EventAlarm))
	w.steps(20)
	assert.Equal(t, 40, w.launched(), "the cap slows the ramp, it does not stop it")
}

func TestSpendCapCutsLaunches(t *testing.T) {
	srv := newServers()
	cfg := poolConfig(srv.role(t), fixed(t, "jobs", 10))
	cfg.Prices = book(t)
	w := newWorld(t, newSim(t), cfg)
	// m5.large on-demand is $0.096/h: $0.50/h affords 5 servers.
	w.opts.Rails = autoscale.Rails{MaxSpendPerHour: 0.50}
	w.restart()
	w.steps(10)
	assert.Equal(t, 5, w.launched())
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmSpend)
}

func TestPauseStopsLaunchingAndOptionallyTerminating(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 2)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.scaler.Pause(autoscale.PauseOptions{StopTerminating: true})
	w.steps(5)
	assert.Zero(t, w.launched(), "paused: nothing launched")
	w.scaler.Resume()
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 2)

	w.scaler.Pause(autoscale.PauseOptions{StopTerminating: true})
	require.NoError(t, m.Set(0))
	w.steps(8)
	assert.Len(t, w.live(), 2, "terminations paused")
	w.scaler.Resume()
	w.steps(4)
	assert.Empty(t, w.live())
}

func TestNeverReadyServersRaiseAnAlarm(t *testing.T) {
	r, err := role.New("broken", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(context.Context, awsctl.Instance) error { return errors.New("agent did not start") },
	})
	require.NoError(t, err)
	w := newWorld(t, newSim(t), poolConfig(r, fixed(t, "jobs", 2)))
	w.steps(12)
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmNeverReady)
	assert.NotEmpty(t, w.eventsOf(pool.EventProvisionFailed))
	assert.Less(t, len(w.live()), 5, "failed servers are terminated, not piled up")
}

func TestRepeatedLaunchFailuresRaiseAnAlarmAndClear(t *testing.T) {
	sim := newSim(t)
	sim.SetErrorRate(ec2sim.OpLaunch, 1, ec2sim.ServerError(ec2sim.OpLaunch))
	srv := newServers()
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 2)))
	w.steps(6)
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmLaunchFailures)
	sim.SetErrorRate(ec2sim.OpLaunch, 0, nil)
	w.steps(3)
	assert.NotContains(t, alarmKinds(w.scaler), autoscale.AlarmLaunchFailures)
	assert.NotEmpty(t, w.eventsOf(pool.EventAlarmCleared))
}

// swinging is a manager whose demand alternates between two values.
type swinging struct {
	n    int
	high bool
}

func (s *swinging) Name() string { return "swing" }
func (s *swinging) Demand(context.Context, manager.State) (manager.Request, error) {
	s.high = !s.high
	if s.high {
		return manager.Request{Target: s.n}, nil
	}
	return manager.Request{Target: 0}, nil
}
func (s *swinging) Notify(manager.Notice) {}

func TestFlappingManagerRaisesAnAlarm(t *testing.T) {
	srv := newServers()
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), &swinging{n: 3}))
	w.steps(10)
	var flap *autoscale.Alarm
	for _, a := range w.scaler.Alarms() {
		if a.Kind == autoscale.AlarmFlapping {
			flap = &a
		}
	}
	require.NotNil(t, flap)
	assert.Equal(t, "swing", flap.Manager)
}

// jittering is a manager whose demand moves a few units up and down every
// pass, as a Queue following a busy job queue does.
type jittering struct{ pass int }

func (j *jittering) Name() string { return "jobs" }
func (j *jittering) Demand(context.Context, manager.State) (manager.Request, error) {
	j.pass++
	return manager.Request{Target: []int{6, 8, 5, 7, 4, 6}[j.pass%6]}, nil
}
func (j *jittering) Notify(manager.Notice) {}

func TestATargetMovingAFewUnitsBothWaysIsNotFlapping(t *testing.T) {
	// Servers without a wind-down leave at once: no wind-down is cancelled,
	// only the target's moves count.
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{})
	require.NoError(t, err)
	w := newWorld(t, newSim(t), poolConfig(r, &jittering{}))
	w.steps(20) // the target turned back 19 times, by 3 units of 8 at most
	assert.NotContains(t, alarmKinds(w.scaler), autoscale.AlarmFlapping)
}

func TestNoCapacityAnywhereRaisesAnAlarm(t *testing.T) {
	sim := newSim(t)
	for _, z := range []string{"us-east-1a", "us-east-1b"} {
		sim.SetCapacity(awsctl.MarketOnDemand, "m5.large", z, 0)
	}
	srv := newServers()
	cfg := poolConfig(srv.role(t), fixed(t, "jobs", 2))
	cfg.Prices = book(t)
	w := newWorld(t, sim, cfg)
	w.steps(8)
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmNoCapacity)
	assert.Zero(t, w.launched())
}

func TestALaunchRefusedAsInvalidAlarmsAtOnce(t *testing.T) {
	sim := newSim(t)
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678",
		Subnets: []awsctl.Subnet{{ID: "subnet-1", Zone: "eu-west-1a"}}}, role.Hooks{}) // another region's zone
	require.NoError(t, err)
	cfg := poolConfig(r, fixed(t, "jobs", 1))
	cfg.Zones = nil // the zones of the subnets
	w := newWorld(t, sim, cfg)
	w.step()
	require.NotEmpty(t, w.eventsOf(pool.EventLaunchFailed))
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmLaunchFailures, "a configuration error is said in the first pass")
}

func TestCancelledWindDownsRaiseTheFlappingAlarm(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 8)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(8)
	require.Len(t, w.grantedTo("jobs"), 8)
	for _, inst := range w.live() {
		srv.setBusy(inst.ID, true)
	}
	swing := func() {
		require.NoError(t, m.Set(2))
		w.steps(2)
		require.NoError(t, m.Set(8))
		w.steps(2)
	}
	swing() // one swing back is not flapping
	require.GreaterOrEqual(t, len(w.eventsOf(pool.EventRestore)), 6)
	assert.NotContains(t, alarmKinds(w.scaler), autoscale.AlarmFlapping)
	swing() // the target turned three times, twelve wind-downs were cancelled
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmFlapping)
}

func TestProvisioningRefusedAsAConfigurationErrorAlarmsAtOnce(t *testing.T) {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(context.Context, awsctl.Instance) error {
			return fmt.Errorf("zone us-east-1b is not served by the load balancer: %w", awsctl.ErrInvalidRequest)
		},
	})
	require.NoError(t, err)
	w := newWorld(t, newSim(t), poolConfig(r, fixed(t, "jobs", 1)))
	w.steps(8) // the first server boots and fails its provisioning
	failed := len(w.eventsOf(pool.EventProvisionFailed))
	require.NotZero(t, failed)
	require.Less(t, failed, autoscale.DefaultNotReadyLimit)
	assert.Contains(t, alarmKinds(w.scaler), autoscale.AlarmNeverReady, "said at the first failure, not the NotReadyLimit-th")
}
