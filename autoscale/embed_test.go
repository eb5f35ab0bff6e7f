package autoscale_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// host is a job scheduler as an embedder writes one: it keeps its own list
// of the servers each queue holds, from the notices alone, and runs jobs on
// them.
type host struct {
	mu      sync.Mutex
	held    map[string]map[string]bool      // queue -> servers it holds
	winding map[string]bool                 // servers asked to wind down
	jobs    map[string]time.Time            // server -> end of the job it runs
	cut     []string                        // servers terminated with a job running
	queues  map[string]*hostQueue           // by name
	notices map[string][]manager.NoticeKind // by server, for failure messages
}

// hostQueue is a manager.Queue whose notices the host reads.
type hostQueue struct {
	*manager.Queue
	h *host
}

func (q *hostQueue) Notify(n manager.Notice) {
	q.Queue.Notify(n)
	q.h.notify(q.Name(), n)
}

func newHost(t *testing.T, names ...string) *host {
	h := &host{held: map[string]map[string]bool{}, winding: map[string]bool{}, jobs: map[string]time.Time{},
		queues: map[string]*hostQueue{}, notices: map[string][]manager.NoticeKind{}}
	for _, name := range names {
		q, err := manager.NewQueue(name, manager.QueueConfig{ScaleDownDelay: time.Minute})
		require.NoError(t, err)
		h.queues[name] = &hostQueue{Queue: q, h: h}
		h.held[name] = map[string]bool{}
	}
	return h
}

func (h *host) notify(queue string, n manager.Notice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := n.Server.ID
	h.notices[id] = append(h.notices[id], n.Kind)
	switch n.Kind {
	case manager.Granted, manager.Restored:
		h.held[queue][id] = true
		delete(h.winding, id)
	case manager.WindDown, manager.Interrupted:
		h.held[queue][id] = true
		h.winding[id] = true
	case manager.Revoked:
		delete(h.held[queue], id)
		delete(h.winding, id)
	}
}

// run gives every idle server the host holds (and has not been asked to
// wind down) a job of length d, and reports the queue to its manager.
func (h *host) run(now time.Time, demand map[string]int, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, q := range h.queues {
		running := 0
		for id := range h.held[name] {
			if end, ok := h.jobs[id]; ok && end.After(now) {
				running++
				continue
			}
			delete(h.jobs, id)
			if !h.winding[id] && running < demand[name] {
				h.jobs[id] = now.Add(d)
				running++
			}
		}
		q.Observe(now, max(0, demand[name]-running), running)
	}
}

// busy reports whether a job runs on id at now.
func (h *host) busy(id string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	end, ok := h.jobs[id]
	return ok && end.After(now)
}

func (h *host) view(queue string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.held[queue]))
}

// forget is a restart of the host: its bookkeeping is gone, its queues new.
func (h *host) forget(t *testing.T) {
	h.mu.Lock()
	names := slices.Collect(maps.Keys(h.queues))
	h.mu.Unlock()
	fresh := newHost(t, names...)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held, h.winding, h.queues = fresh.held, fresh.winding, fresh.queues
	for _, q := range h.queues {
		q.h = h
	}
}

// cutWatch records the servers terminated while the host runs a job on
// them.
type cutWatch struct {
	awsctl.CloudClient
	h   *host
	now func() time.Time
}

func (c *cutWatch) Terminate(ctx context.Context, ids []string) ([]string, error) {
	for _, id := range ids {
		if c.h.busy(id, c.now()) {
			c.h.mu.Lock()
			c.h.cut = append(c.h.cut, id)
			c.h.mu.Unlock()
		}
	}
	return c.CloudClient.Terminate(ctx, ids)
}

func TestEmbedderAlwaysKnowsItsServers(t *testing.T) {
	sim := newSim(t)
	h := newHost(t, "batch", "render")
	workerRole := func(name string) role.Role {
		r, err := role.New(name, awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
			Check: func(_ context.Context, inst awsctl.Instance) (role.Status, error) {
				busy := h.busy(inst.ID, sim.Now())
				return role.Status{Idle: !busy, WoundDown: !busy}, nil
			},
		})
		require.NoError(t, err)
		return r
	}
	configs := func() []pool.Config {
		batch := poolConfig(workerRole("batch"), h.queues["batch"])
		batch.Name = "batch"
		render := poolConfig(workerRole("render"), h.queues["render"])
		render.Name = "render"
		return []pool.Config{batch, render}
	}
	w := newWorld(t, sim, configs()...)
	w.cloud = &cutWatch{CloudClient: sim, h: h, now: sim.Now}
	w.opts.Wait = func(ctx context.Context, d time.Duration) error { return sim.Advance(d) }
	w.restart()

	// The pool's view: live instances whose grant tag names the queue.
	poolView := func(queue string) []string {
		var ids []string
		for _, inst := range w.live() {
			if inst.Tags[pool.TagManager] == queue {
				ids = append(ids, inst.ID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	check := func(when string) {
		t.Helper()
		for _, q := range []string{"batch", "render"} {
			require.Equal(t, poolView(q), h.view(q), "%s: queue %s: the host's servers are the pool's", when, q)
		}
	}
	demand := map[string]int{"batch": 4, "render": 2}
	pass := func(n int, when string) {
		t.Helper()
		for i := range n {
			h.run(sim.Now(), demand, 3*time.Minute)
			w.step()
			check(fmt.Sprintf("%s, pass %d", when, i))
		}
	}
	pass(12, "scale up")

	// The scaler and the host restart: the first pass re-announces what
	// each queue holds.
	h.forget(t)
	w.pools = configs()
	w.restart()
	pass(3, "after the restart")
	require.Len(t, h.view("batch"), 4)

	// A server is terminated from outside: its queue is told.
	victim := h.view("render")[0]
	_, err := sim.Terminate(context.Background(), []string{victim})
	require.NoError(t, err)
	pass(10, "after a termination from outside")
	assert.Contains(t, h.notices[victim], manager.Revoked)

	// A pause raises no alarm.
	w.scaler.Pause(autoscale.PauseOptions{})
	demand["batch"] = 8
	pass(10, "paused")
	assert.Empty(t, w.scaler.Alarms(), "pausing is not failing")
	w.scaler.Resume()
	pass(10, "resumed")

	// Shutdown with wind-down on the simulator's clock: every server ends
	// terminated, none with a job running.
	demand = map[string]int{}
	h.mu.Lock()
	for id := range h.jobs {
		h.jobs[id] = sim.Now().Add(2 * time.Minute) // jobs still running when shutdown starts
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.scaler.Shutdown(ctx, autoscale.ShutdownOptions{WindDown: true}))
	assert.Empty(t, w.live(), "every instance terminated")
	assert.Empty(t, h.cut, "no server terminated with a job running")
}
