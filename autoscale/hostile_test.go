package autoscale_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

func TestPanickingHooksFailTheServerNotTheScaler(t *testing.T) {
	var provisions atomic.Int32
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Provision: func(context.Context, awsctl.Instance) error {
			if provisions.Add(1) == 1 {
				panic("host bug")
			}
			return nil
		},
		Teardown: func(context.Context, awsctl.Instance) error { panic("another host bug") },
	})
	require.NoError(t, err)
	w := newWorld(t, newSim(t), poolConfig(r, fixed(t, "jobs", 2)))
	w.steps(15)
	assert.Len(t, w.grantedTo("jobs"), 2, "the server whose hook panicked is replaced")
	failed := w.eventsOf(pool.EventProvisionFailed)
	require.Len(t, failed, 1)
	assert.Contains(t, failed[0].Err.Error(), "panicked")
	assert.Equal(t, 1, w.terminated(), "the failed server is terminated although its teardown panics too")
}

func TestFailingWindDownHookIsRetried(t *testing.T) {
	var calls atomic.Int32
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		WindDown: func(context.Context, awsctl.Instance) error {
			if calls.Add(1) <= 2 {
				return errors.New("server unreachable")
			}
			return nil
		},
	})
	require.NoError(t, err)
	m := fixed(t, "jobs", 1)
	w := newWorld(t, newSim(t), poolConfig(r, m))
	w.steps(8)
	require.NoError(t, m.Set(0))
	w.steps(8)
	assert.Empty(t, w.live())
	assert.GreaterOrEqual(t, calls.Load(), int32(3))
	assert.Len(t, w.eventsOf(pool.EventHookFailed), 2)
}

func TestTagsEditedByHandAreRepairedNotObeyed(t *testing.T) {
	srv := newServers()
	m := fixed(t, "jobs", 2)
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), m))
	w.steps(8)
	held := w.grantedTo("jobs")
	require.Len(t, held, 2)
	ctx := context.Background()
	// Someone points one grant at a manager that does not exist, and
	// writes a deadline that does not parse on the other.
	require.NoError(t, w.sim.Tag(ctx, []string{held[0].ID}, map[string]string{pool.TagManager: "nobody"}))
	require.NoError(t, w.sim.Tag(ctx, []string{held[1].ID}, map[string]string{
		pool.TagWindDownStart: "soon", pool.TagWindDownDeadline: "whenever"}))
	srv.setBusy(held[1].ID, true)
	w.steps(6)

	assert.Len(t, w.eventsOf(pool.EventBadTag), 2, "each odd tag is reported")
	assert.Len(t, w.grantedTo("jobs"), 2, "demand is still met")
	inst, _ := w.sim.Instance(held[0].ID)
	assert.True(t, inst.State.Live(), "an odd tag is no reason to terminate")
	inst, _ = w.sim.Instance(held[1].ID)
	if _, winding := inst.Tags[pool.TagWindDownStart]; winding {
		_, err := timeTag(inst.Tags[pool.TagWindDownDeadline])
		assert.NoError(t, err, "the bad deadline was rewritten")
	} else {
		assert.Equal(t, "jobs", inst.Tags[pool.TagManager], "the stray wind-down was cancelled: demand needs the server")
	}
	assert.Equal(t, 2, w.launched(), "both servers went back to work: nothing launched")
}

func TestOwnedInstanceOfUnknownPoolIsLeftAlone(t *testing.T) {
	sim := newSim(t)
	stray, err := sim.Launch(context.Background(), awsctl.LaunchRequest{
		Spec:      awsctl.LaunchSpec{ImageID: "ami-12345678"},
		Offerings: []awsctl.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}},
		Market:    awsctl.MarketOnDemand, Capacity: 1,
		Tags: map[string]string{pool.TagOwner: "test-scaler", pool.TagPool: "retired-pool"},
	})
	require.NoError(t, err)
	srv := newServers()
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 1)))
	w.steps(8)
	inst, _ := sim.Instance(stray[0].ID)
	assert.True(t, inst.State.Live())
	assert.Len(t, w.eventsOf(pool.EventUnknownPool), 1, "reported once, not every pass")
}

// unruly is a manager that panics in Demand and in Notify.
type unruly struct{ panicDemand bool }

func (u *unruly) Name() string { return "unruly" }
func (u *unruly) Demand(context.Context, manager.State) (manager.Request, error) {
	if u.panicDemand {
		panic("manager bug")
	}
	return manager.Request{Target: 1}, nil
}
func (u *unruly) Notify(manager.Notice) { panic("notify bug") }

func TestPanickingManagerIsContained(t *testing.T) {
	srv := newServers()
	u := &unruly{}
	w := newWorld(t, newSim(t), poolConfig(srv.role(t), u, fixed(t, "calm", 2)))
	w.steps(8)
	assert.Len(t, w.grantedTo("unruly"), 1, "grants land although Notify panics")
	u.panicDemand = true
	w.steps(4)
	assert.Len(t, w.grantedTo("unruly"), 1, "a panicking Demand keeps the previous target")
	assert.Len(t, w.grantedTo("calm"), 2)
	errs := w.eventsOf(pool.EventManagerError)
	require.NotEmpty(t, errs)
	assert.Contains(t, errs[0].Err.Error(), "panicked")
}

// vanishing makes one instance unknown to tag calls, as if it had been
// terminated and forgotten behind the scaler's back.
type vanishing struct {
	*ec2sim.Sim
	gone  string
	calls int
}

func (v *vanishing) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	v.calls++
	if slices.Contains(ids, v.gone) {
		return &awsctl.APIError{Op: "CreateTags", Code: "InvalidInstanceID.NotFound", Kind: awsctl.ErrNotFound}
	}
	return v.Sim.Tag(ctx, ids, tags)
}

func TestOneVanishedInstanceDoesNotBlockItsTagGroup(t *testing.T) {
	sim := newSim(t)
	srv := newServers()
	w := newWorld(t, sim, poolConfig(srv.role(t), fixed(t, "jobs", 4)))
	v := &vanishing{Sim: sim}
	w.cloud = v
	w.restart()
	w.steps(5) // launched and booting
	v.gone = w.live()[0].ID
	w.steps(5)
	assert.Len(t, w.grantedTo("jobs"), 3, "the other three are granted")
	assert.Less(t, v.calls, 20, "splitting costs a few calls, not one per instance per pass")
}
