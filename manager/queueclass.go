package manager

import (
	"fmt"
	"math"
	"time"
)

// JobClass is a kind of job a [Queue] runs, described for job-aware market
// choice (see [Request.Work]).
type JobClass struct {
	// Name identifies the class in [Queue.ObserveClasses] and in the
	// pool's events; unique within a Queue.
	Name string
	// Run is how long a job of the class is expected to run.
	Run time.Duration
	// Checkpoint is how often a job saves its progress; zero means an
	// interrupted job starts again from scratch.
	Checkpoint time.Duration
	// Width is the capacity units one job runs on at once; zero means 1.
	Width int
}

// JobCount is how many jobs of a class wait and run.
type JobCount struct {
	Queued, Running int
}

// ObserveClasses reports the queue as it was at now, by class: the jobs
// waiting and running of each class named in QueueConfig.Classes. It
// counts toward the target as [Queue.Observe] does with the totals (jobs
// of a name that is no class count too, without a class), and each
// Request's Work then gives every class its units: its jobs divided by
// JobsPerUnit, rounded up, within what the clamped target allows, in the
// order of QueueConfig.Classes.
func (q *Queue) ObserveClasses(now time.Time, counts map[string]JobCount) {
	queued, running := 0, 0
	for _, c := range counts {
		queued = addCapped(queued, max(c.Queued, 0))
		running = addCapped(running, max(c.Running, 0))
	}
	units := make([]int, len(q.cfg.Classes))
	for i, jc := range q.cfg.Classes {
		c := counts[jc.Name]
		units[i] = q.unitsFor(c.Queued, c.Running)
	}
	raw := q.unitsFor(queued, running)
	if wake := q.observeWork(now, q.clamp(raw), raw, units); wake != nil {
		wake()
	}
}

// work is the Work of a request: each class's units of the latest
// observation, none beyond the target. The caller holds q.mu.
func (q *Queue) work() []Work {
	if q.classUnits == nil {
		return nil
	}
	var out []Work
	left := q.target
	for i, jc := range q.cfg.Classes {
		u := min(q.classUnits[i], left)
		if u <= 0 {
			continue
		}
		left -= u
		out = append(out, Work{Class: jc.Name, Units: u, Run: jc.Run, Checkpoint: jc.Checkpoint, Width: jc.Width})
	}
	return out
}

// addCapped is a + b for b >= 0, capped at math.MaxInt as
// [Queue.unitsFor] caps its sum.
func addCapped(a, b int) int {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt
}

func validateClasses(name string, classes []JobClass) error {
	bad := func(i int, problem string, args ...any) error {
		return &ConfigError{Kind: "queue", Name: name, Field: fmt.Sprintf("Classes[%d]", i), Problem: fmt.Sprintf(problem, args...)}
	}
	seen := map[string]bool{}
	for i, c := range classes {
		switch {
		case c.Name == "":
			return bad(i, "has no name")
		case seen[c.Name]:
			return bad(i, "repeats the name %q", c.Name)
		case c.Run <= 0:
			return bad(i, "Run must be positive, got %v", c.Run)
		case c.Checkpoint < 0:
			return bad(i, "Checkpoint must not be negative, got %v", c.Checkpoint)
		case c.Width < 0:
			return bad(i, "Width must not be negative, got %d", c.Width)
		}
		seen[c.Name] = true
	}
	return nil
}
