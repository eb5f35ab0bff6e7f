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
// library's Queue manager, told of every change of demand as it happens
// (Observe). For a trace of jobs it also places each job's units on those
// servers, marking the servers without work idle, so that a scale-down
// takes idle servers first and a server lost with work on it cuts its jobs
// short.
//
// A job cut short by an interruption is run again from the start, as a
// batch system requeues it: the work it had done is lost and its demand
// lasts that much longer. With requeue off, it carries on elsewhere as
// recorded (the work lost is still counted).
type workload struct {
	Queue
	trace   *demand.Trace
	start   time.Time
	requeue bool

	mu        sync.Mutex
	now       time.Duration // from the start
	level     int           // units demanded now
	woken     bool          // the Queue asked for a pass (its target must rise)
	servers   map[string]*granted
	units     map[awsctl.Market]int // capacity of the servers working
	grantedAt map[string]time.Duration

	// A trace of levels: the next step.
	step int

	// Jobs: the next to submit, the running ones by end time, the units of
	// running jobs without a server (one entry per unit, oldest first) and
	// the free units of servers (one entry per unit; entries of servers
	// gone since are skipped).
	jobs     []jobState
	nextJob  int
	ending   endHeap
	unplaced []int
	free     []string

	// What interruptions and scale-downs did to work.
	interruptedUnits int     // capacity of working servers interrupted
	jobsCut          int     // jobs cut short by an interruption
	jobsMoved        int     // jobs on servers a scale-down let go, carried on elsewhere
	workLost         float64 // unit-seconds of work the jobs cut short had done

	// Job classes, for the job-aware policy (jobaware.go); nil otherwise.
	classes     []manager.JobClass
	jobClass    []int                    // by job
	classUnits  []int                    // units of running jobs by class
	classMarket map[string]awsctl.Market // the pool's choice by class
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
	end     time.Duration // when it is done: restart + its run time
	servers []string      // one entry per placed unit
	running bool
}

// newWorkload replays trace from start through a Queue configured by qc.
func newWorkload(name string, qc manager.QueueConfig, trace *demand.Trace, start time.Time, requeue bool) (*workload, error) {
	q, err := manager.NewQueue(name, qc)
	if err != nil {
		return nil, err
	}
	w := &workload{Queue: q, trace: trace, start: start, requeue: requeue, servers: map[string]*granted{},
		units: map[awsctl.Market]int{}, grantedAt: map[string]time.Duration{}}
	w.jobs = make([]jobState, len(trace.Jobs))
	for i, j := range trace.Jobs {
		w.jobs[i] = jobState{job: j, restart: j.Submit, end: j.End()}
	}
	w.ending.jobs = w.jobs
	return w, nil
}

// SetWake is called by the scaler with its wake-up (manager.Waker). The
// Queue's wake-ups reach it, and are also kept as a flag for a simulation
// that times passes itself (see scenario.simulate).
func (w *workload) SetWake(wake func()) {
	w.Queue.SetWake(func() {
		w.mu.Lock()
		w.woken = true
		w.mu.Unlock()
		wake()
	})
}

// takeWake reports whether the Queue asked for a pass since the last call.
func (w *workload) takeWake() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	woken := w.woken
	w.woken = false
	return woken
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
		if _, ok := w.grantedAt[n.Server.ID]; !ok {
			w.grantedAt[n.Server.ID] = w.now
		}
		w.Queue.MarkIdle(n.Server.ID, w.trace.Jobs != nil)
		for range g.weight {
			w.free = append(w.free, n.Server.ID)
		}
	case manager.WindDown:
		w.lose(n.Server.ID, false)
	case manager.Interrupted, manager.Revoked:
		w.lose(n.Server.ID, true)
	}
}

// lose takes a server out of work. An interrupted server (or one lost
// outside the scaler) is reclaimed: its jobs are cut short and, with
// requeue, run again from the start. A server let go by a scale-down hands
// its jobs to other servers as they free up, as if the role's wind-down had
// let them finish (the simulated role has no wind-down, so this flatters
// every policy by the drain it does not pay for; jobsMoved counts them).
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
		if slices.Contains(g.jobs[:k], j) {
			continue // one per job
		}
		if !interrupted {
			w.jobsMoved++
			continue
		}
		if js.restart >= w.now {
			continue // restarted now already: nothing lost
		}
		w.jobsCut++
		w.workLost += float64(js.job.Procs) * (w.now - js.restart).Seconds()
		js.restart = w.now
		if w.requeue && js.running {
			js.end = w.now + js.job.Run
			if i := slices.Index(w.ending.idx, j); i >= 0 {
				heap.Fix(&w.ending, i)
			}
		}
	}
}

// nextChange returns when demand may next change, after the changes
// applied so far.
func (w *workload) nextChange() (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.trace.Jobs == nil {
		if w.step < len(w.trace.Steps) {
			return w.trace.Steps[w.step].At, true
		}
		return 0, false
	}
	var next time.Duration
	ok := false
	if w.nextJob < len(w.jobs) {
		next, ok = max(0, w.jobs[w.nextJob].job.Submit), true
	}
	if w.ending.Len() > 0 {
		if e := w.jobs[w.ending.idx[0]].end; !ok || e < next {
			next, ok = e, true
		}
	}
	return next, ok
}

// advance moves the workload to now (from the start of the trace): jobs
// that ended free their units, submitted jobs queue theirs, and the Queue
// observes the demand. It returns the demand before and after.
func (w *workload) advance(now time.Duration) (before, after int) {
	w.mu.Lock()
	before = w.level
	w.now = now
	if w.trace.Jobs == nil {
		for w.step < len(w.trace.Steps) && w.trace.Steps[w.step].At <= now {
			w.level = w.trace.Steps[w.step].Units
			w.step++
		}
	} else {
		w.advanceJobs(now)
	}
	after = w.level
	var counts map[string]manager.JobCount
	if w.classes != nil {
		counts = w.classCounts()
	}
	w.mu.Unlock()
	// Outside the lock: the Queue may call its wake-up, which takes it.
	if q, ok := w.Queue.(*manager.Queue); ok && counts != nil {
		q.ObserveClasses(w.start.Add(now), counts)
	} else {
		w.Queue.Observe(w.start.Add(now), after, 0)
	}
	return before, after
}

func (w *workload) advanceJobs(now time.Duration) {
	for w.ending.Len() > 0 && w.jobs[w.ending.idx[0]].end <= now {
		j := heap.Pop(&w.ending).(int)
		js := &w.jobs[j]
		js.running = false
		w.level -= js.job.Procs
		w.jobEnded(j)
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
		if js.end <= now {
			continue // began and ended between two events (before the start)
		}
		js.running = true
		w.level += js.job.Procs
		w.jobStarted(w.nextJob)
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
		mk, only := w.marketFor(j)
		id, ok := w.takeFree(mk, only)
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

// takeFree takes a free unit: of market pref first, if given (only of
// that market if only); then on a server already running jobs if there is
// one (so that idle servers stay idle for a scale-down to take), else the
// unit freed last. Entries of servers gone or full are dropped as met.
func (w *workload) takeFree(pref awsctl.Market, only bool) (string, bool) {
	best, bestScore := -1, -1
	kept := w.free[:0]
	for _, id := range w.free {
		if g, ok := w.servers[id]; ok && len(g.jobs) < g.weight {
			kept = append(kept, id)
			if only && g.market != pref {
				continue
			}
			score := 0
			if pref != "" && g.market == pref {
				score = 2
			}
			if len(g.jobs) > 0 {
				score++
			}
			if score >= bestScore {
				best, bestScore = len(kept)-1, score
			}
		}
	}
	w.free = kept
	if best < 0 {
		return "", false
	}
	id := kept[best]
	w.free = slices.Delete(kept, best, best+1)
	return id, true
}

// working returns the capacity of the servers working, by market.
func (w *workload) working() (spot, onDemand int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.units[awsctl.MarketSpot], w.units[awsctl.MarketOnDemand]
}

// demandNow returns the units demanded now.
func (w *workload) demandNow() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.level
}

// endHeap orders running jobs by end time.
type endHeap struct {
	jobs []jobState
	idx  []int
}

func (h *endHeap) Len() int { return len(h.idx) }
func (h *endHeap) Less(a, b int) bool {
	return h.jobs[h.idx[a]].end < h.jobs[h.idx[b]].end
}
func (h *endHeap) Swap(a, b int) { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *endHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *endHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

var (
	_ manager.Manager = (*workload)(nil)
	_ manager.Waker   = (*workload)(nil)
)
