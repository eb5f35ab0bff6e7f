package main

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/demand"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// workload is the host: it replays a demand trace as the pool's only
// manager and keeps track of the servers granted to it. Its demand is the
// library's Queue manager fed with the trace at every pass. For a trace of
// jobs it also places each job's units on those servers, marking the
// servers without work idle, so that a spot interruption cuts short the
// jobs it hits and a scale-down takes idle servers first.
//
// Demand is replayed as recorded: a job cut short is counted, with the work
// it had done since it last started, and carries on elsewhere; it is not
// run again.
type workload struct {
	*manager.Queue
	trace *demand.Trace
	start time.Time

	mu      sync.Mutex
	now     time.Duration // of the current pass, from the start
	servers map[string]*granted
	units   map[awsctl.Market]int // capacity of the servers working

	// Jobs: the next to submit, the running ones by end time, the units of
	// running jobs without a server (one entry per unit, oldest first) and
	// the free units of servers (one entry per unit; entries of servers
	// gone since are skipped).
	jobs     []jobState
	nextJob  int
	ending   endHeap
	unplaced []int
	free     []string

	// What interruptions did.
	interruptedUnits int     // capacity of working servers interrupted
	jobsCut          int     // jobs that lost a unit to an interruption
	workLost         float64 // unit-seconds of work those jobs had done
}

// granted is a server working for the workload.
type granted struct {
	market awsctl.Market
	weight int
	jobs   []int // one entry per unit in use, by job index
}

type jobState struct {
	job     demand.Job
	restart time.Duration // when its work last started from scratch
	servers []string      // one entry per placed unit
	running bool
}

// newWorkload replays trace from start. The target falls only once demand
// has stayed lower for scaleDownDelay (0 follows every fall at the next
// pass).
func newWorkload(name string, market manager.MarketPreference, trace *demand.Trace, start time.Time, scaleDownDelay time.Duration) (*workload, error) {
	q, err := manager.NewQueue(name, manager.QueueConfig{Market: market, ScaleDownDelay: max(scaleDownDelay, time.Nanosecond)})
	if err != nil {
		return nil, err
	}
	w := &workload{Queue: q, trace: trace, start: start, servers: map[string]*granted{}, units: map[awsctl.Market]int{}}
	w.jobs = make([]jobState, len(trace.Jobs))
	for i, j := range trace.Jobs {
		w.jobs[i] = jobState{job: j, restart: j.Submit}
	}
	w.ending.jobs = w.jobs
	return w, nil
}

// Demand asks for the queue's target. Servers the pool no longer lists
// (EC2 took them without a notice the scaler acted on) are dropped as
// interrupted first.
func (w *workload) Demand(ctx context.Context, s manager.State) (manager.Request, error) {
	w.mu.Lock()
	// The pool lists what it has granted, winding-down servers included;
	// fewer working ones than this workload holds means some vanished.
	working := 0
	for _, srv := range s.Servers {
		if !srv.WindingDown {
			working++
		}
	}
	if working < len(w.servers) {
		listed := make(map[string]bool, len(s.Servers))
		for _, srv := range s.Servers {
			listed[srv.ID] = true
		}
		var gone []string
		for id := range w.servers {
			if !listed[id] {
				gone = append(gone, id)
			}
		}
		slices.Sort(gone)
		for _, id := range gone {
			w.lose(id, true)
		}
	}
	w.mu.Unlock()
	return w.Queue.Demand(ctx, s)
}

// Notify keeps the working servers in step with the pool's decisions.
func (w *workload) Notify(n manager.Notice) {
	w.Queue.Notify(n)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch n.Kind {
	case manager.Granted, manager.Restored:
		if _, ok := w.servers[n.Server.ID]; ok {
			return
		}
		g := &granted{market: n.Server.Market, weight: max(1, n.Server.Weight)}
		w.servers[n.Server.ID] = g
		w.units[g.market] += g.weight
		w.Queue.MarkIdle(n.Server.ID, w.trace.Jobs != nil)
		for range g.weight {
			w.free = append(w.free, n.Server.ID)
		}
	case manager.WindDown, manager.Revoked:
		w.lose(n.Server.ID, false)
	case manager.Interrupted:
		w.lose(n.Server.ID, true)
	}
}

// lose takes a server out of work. An interruption cuts its jobs short; a
// wind-down hands them to other servers (the role's wind-down would let
// them finish; the trace replays them either way).
func (w *workload) lose(id string, interrupted bool) {
	g, ok := w.servers[id]
	if !ok {
		return
	}
	delete(w.servers, id)
	w.units[g.market] -= g.weight
	if interrupted {
		w.interruptedUnits += g.weight
	}
	for k, j := range g.jobs {
		js := &w.jobs[j]
		if i := slices.Index(js.servers, id); i >= 0 {
			js.servers = slices.Delete(js.servers, i, i+1)
		}
		w.unplaced = append(w.unplaced, j)
		if interrupted && js.restart < w.now && !slices.Contains(g.jobs[:k], j) {
			w.jobsCut++
			w.workLost += float64(js.job.Procs) * (w.now - js.restart).Seconds()
			js.restart = w.now
		}
	}
}

// advance moves the workload to now (from the start of the trace): jobs
// that ended free their units, submitted jobs queue theirs, and the target
// becomes the trace's demand.
func (w *workload) advance(now time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = now
	w.Queue.Observe(w.start.Add(now), w.trace.At(now), 0)
	for w.ending.Len() > 0 && w.jobs[w.ending.idx[0]].job.End() <= now {
		j := heap.Pop(&w.ending).(int)
		js := &w.jobs[j]
		js.running = false
		for _, id := range js.servers {
			if g, ok := w.servers[id]; ok {
				if i := slices.Index(g.jobs, j); i >= 0 {
					g.jobs = slices.Delete(g.jobs, i, i+1)
				}
				w.free = append(w.free, id)
				if len(g.jobs) == 0 {
					w.Queue.MarkIdle(id, true)
				}
			}
		}
		js.servers = nil
	}
	for ; w.nextJob < len(w.jobs) && w.jobs[w.nextJob].job.Submit <= now; w.nextJob++ {
		js := &w.jobs[w.nextJob]
		if js.job.End() <= now {
			continue // began and ended between two passes
		}
		js.running = true
		heap.Push(&w.ending, w.nextJob)
		for range js.job.Procs {
			w.unplaced = append(w.unplaced, w.nextJob)
		}
	}
}

// place puts units of running jobs on free units of working servers.
func (w *workload) place() {
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.unplaced[:0]
	for _, j := range w.unplaced {
		if !w.jobs[j].running {
			continue // ended while waiting
		}
		id, ok := w.takeFree()
		if !ok {
			kept = append(kept, j)
			continue
		}
		w.servers[id].jobs = append(w.servers[id].jobs, j)
		w.Queue.MarkIdle(id, false)
		w.jobs[j].servers = append(w.jobs[j].servers, id)
	}
	w.unplaced = kept
}

func (w *workload) takeFree() (string, bool) {
	for len(w.free) > 0 {
		id := w.free[len(w.free)-1]
		w.free = w.free[:len(w.free)-1]
		if g, ok := w.servers[id]; ok && len(g.jobs) < g.weight {
			return id, true
		}
	}
	return "", false
}

// working returns the capacity of the servers working, by market.
func (w *workload) working() (spot, onDemand int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.units[awsctl.MarketSpot], w.units[awsctl.MarketOnDemand]
}

// endHeap orders running jobs by end time.
type endHeap struct {
	jobs []jobState
	idx  []int
}

func (h *endHeap) Len() int { return len(h.idx) }
func (h *endHeap) Less(a, b int) bool {
	return h.jobs[h.idx[a]].job.End() < h.jobs[h.idx[b]].job.End()
}
func (h *endHeap) Swap(a, b int) { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *endHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *endHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

var _ manager.Manager = (*workload)(nil)
