package autoscale_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// imageRole is a role whose image the test changes, as a weekly AMI does.
type imageRole struct {
	role.Role
	mu    sync.Mutex
	image string
}

func (r *imageRole) LaunchSpec() awsctl.LaunchSpec {
	spec := r.Role.LaunchSpec()
	r.mu.Lock()
	spec.ImageID = r.image
	r.mu.Unlock()
	return spec
}

func (r *imageRole) setImage(image string) {
	r.mu.Lock()
	r.image = image
	r.mu.Unlock()
}

// rollCheck holds what EC2 holds to the promises of a roll after a pass:
// the manager keeps its target in servers granted and not leaving, and no
// more servers than the budget are under replacement.
func rollCheck(t *testing.T, w *world, target, budget int) {
	t.Helper()
	working, disrupted := 0, 0
	for _, inst := range w.live() {
		leaving := inst.Tags[pool.TagWindDownStart] != ""
		if inst.Tags[pool.TagManager] == "jobs" && !leaving && inst.Tags[pool.TagReplaces] == "" {
			working++
		}
		if inst.Tags[pool.TagReplaces] != "" && inst.Tags[pool.TagManager] == "" ||
			inst.Tags[pool.TagRetire] == pool.RetireReplaced {
			disrupted++
		}
	}
	require.GreaterOrEqual(t, working, target, "capacity fell below the manager's target during the roll")
	require.LessOrEqual(t, disrupted, budget, "more servers under replacement than the budget allows")
}

func TestAnImageChangeRollsABusyPoolWithinItsBudgetAcrossACrash(t *testing.T) {
	srv := newServers()
	r := &imageRole{Role: srv.role(t), image: "ami-11111111"}
	m := fixed(t, "jobs", 6)
	cfg := poolConfig(r, m)
	cfg.Max = 9
	cfg.Disruption = pool.Disruption{MaxServers: 2}
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	old := ids(w.grantedTo("jobs"))
	require.Len(t, old, 6)
	for _, id := range old {
		srv.setBusy(id, true) // every server runs a job
	}

	r.setImage("ami-22222222")
	for pass := 0; pass < 120; pass++ {
		if pass == 9 {
			w.restart() // a crash in the middle of the roll
		}
		if pass%4 == 0 { // jobs finish one by one
			srv.setBusy(old[(pass/4)%len(old)], false)
		}
		w.step()
		rollCheck(t, w, 6, 2)
	}
	for _, inst := range w.live() {
		assert.NotContains(t, old, inst.ID, "a server of the old image is still there")
	}
	assert.Len(t, w.grantedTo("jobs"), 6)
	assert.Equal(t, 12, w.launched(), "one replacement per server, none twice")
	assert.Zero(t, w.scaler.Pool("workers").Status().Due)
	for _, id := range old {
		assert.Positive(t, srv.count(id, pool.HookWindDown), "%s was wound down before it went", id)
	}
}

func TestRefreshReplacesEveryServerAndSurvivesARestart(t *testing.T) {
	m := fixed(t, "jobs", 4)
	cfg := poolConfig(newServers().role(t), m)
	cfg.Disruption = pool.Disruption{MaxServers: 1}
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	old := ids(w.grantedTo("jobs"))
	require.Len(t, old, 4)
	require.ErrorIs(t, w.scaler.Refresh("nope"), autoscale.ErrUnknownPool)
	require.NoError(t, w.scaler.Refresh("workers"))
	w.step() // marks them
	for _, id := range old {
		inst, _ := w.sim.Instance(id)
		assert.NotEmpty(t, inst.Tags[pool.TagRefresh], "%s marked for the refresh", id)
	}
	st := w.scaler.Pool("workers").Status()
	assert.Equal(t, 4, st.Due+st.Replacing, "the roll's progress shows in Status")
	w.restart() // the marks, not memory, carry the roll on
	for range 80 {
		w.step()
		rollCheck(t, w, 4, 1)
	}
	for _, inst := range w.live() {
		assert.NotContains(t, old, inst.ID)
	}
	assert.Equal(t, 8, w.launched())
}

func TestLifetimesRollAPoolGradually(t *testing.T) {
	m := fixed(t, "jobs", 5)
	cfg := poolConfig(newServers().role(t), m)
	cfg.MaxLifetime = 2 * time.Hour
	cfg.Disruption = pool.Disruption{MaxServers: 1}
	w := newWorld(t, newSim(t), cfg)
	w.steps(8)
	first := ids(w.grantedTo("jobs"))
	require.Len(t, first, 5)
	require.NoError(t, w.sim.Advance(2*time.Hour))
	maxAtOnce := 0
	for range 80 {
		w.step()
		rollCheck(t, w, 5, 1)
		n := 0
		for _, inst := range w.live() {
			if inst.Tags[pool.TagReplaces] != "" {
				n++
			}
		}
		maxAtOnce = max(maxAtOnce, n)
	}
	assert.Equal(t, 1, maxAtOnce, "one server at a time")
	for _, inst := range w.live() {
		assert.NotContains(t, first, inst.ID, "older than MaxLifetime and still there")
	}
}

func TestARetirementEventIsReplacedBeforeItsDate(t *testing.T) {
	m := fixed(t, "jobs", 3)
	cfg := poolConfig(newServers().role(t), m)
	cfg.Disruption = pool.Disruption{Windows: []pool.Window{{From: 2 * time.Hour, To: 3 * time.Hour}}} // closed now: events do not wait
	w := newWorld(t, newSim(t), cfg)
	w.opts.EC2HealthInterval = time.Minute
	w.restart()
	w.steps(8)
	x := w.grantedTo("jobs")[0].ID
	notBefore := w.sim.Now().Add(2 * time.Hour)
	_, err := w.sim.ScheduleEvent(x, awsctl.EventInstanceRetirement, notBefore)
	require.NoError(t, err)
	for w.sim.Now().Before(notBefore.Add(-time.Hour)) {
		w.step()
		rollCheck(t, w, 3, 3)
	}
	inst, _ := w.sim.Instance(x)
	assert.False(t, inst.State.Live(), "replaced and terminated an hour before EC2 retires it")
	assert.Equal(t, pool.RetireReplaced, inst.Tags[pool.TagRetire])
	assert.Len(t, w.grantedTo("jobs"), 3)
}

func TestAnImpairedServerIsReplacedAfterItsGrace(t *testing.T) {
	m := fixed(t, "jobs", 3)
	cfg := poolConfig(newServers().role(t), m)
	cfg.ImpairedGrace = 5 * time.Minute
	w := newWorld(t, newSim(t), cfg)
	w.opts.EC2HealthInterval = time.Minute
	w.restart()
	w.steps(8)
	x := w.grantedTo("jobs")[0].ID
	require.NoError(t, w.sim.Impair(x, true))
	impaired := w.sim.Now()
	for w.sim.Now().Sub(impaired) < 4*time.Minute {
		w.step()
		require.Contains(t, ids(w.grantedTo("jobs")), x, "within its grace: kept")
	}
	for range 30 {
		w.step()
	}
	inst, _ := w.sim.Instance(x)
	assert.False(t, inst.State.Live(), "replaced and terminated")
	assert.Equal(t, pool.RetireUnhealthy, inst.Tags[pool.TagRetire])
	assert.Len(t, w.grantedTo("jobs"), 3)
}

func TestRefreshNeedsNoPass(t *testing.T) {
	w := newWorld(t, newSim(t), poolConfig(newServers().role(t), fixed(t, "jobs", 1)))
	require.NoError(t, w.scaler.Refresh("workers"), "Refresh only records the request")
	require.NoError(t, w.scaler.Step(context.Background()))
}
