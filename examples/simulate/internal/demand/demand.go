package demand

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Step is a change of demand: from At on, Units capacity units are wanted.
type Step struct {
	At    time.Duration
	Units int
}

// Job is one batch job: it wants Procs capacity units from Submit for Run.
type Job struct {
	Submit, Run time.Duration
	Procs       int
}

// End is when the job is done.
func (j Job) End() time.Duration { return j.Submit + j.Run }

// Trace is demand over time, a step function of capacity units starting at
// time 0. Traces built from jobs keep them, so that a simulation can tell
// which work an interruption cuts short.
type Trace struct {
	// Name says where the trace came from, for reports.
	Name string
	// Steps are the changes of demand, sorted by At, the first at 0, no
	// two in a row with the same Units.
	Steps []Step
	// Jobs are the jobs the steps were swept from, sorted by Submit; nil
	// for a trace of levels.
	Jobs []Job
	// Length is the time the trace covers.
	Length time.Duration
}

// FromSteps returns a trace of the given levels. Steps must be sorted by At
// (equal times allowed: the last one wins), with no negative At or Units;
// before the first step demand is 0.
func FromSteps(name string, steps []Step, length time.Duration) (*Trace, error) {
	for i, s := range steps {
		if s.At < 0 || s.Units < 0 {
			return nil, fmt.Errorf("demand: step %d: negative time or units (%v, %d)", i, s.At, s.Units)
		}
		if i > 0 && s.At < steps[i-1].At {
			return nil, fmt.Errorf("demand: step %d at %v comes before step %d at %v", i, s.At, i-1, steps[i-1].At)
		}
	}
	if length <= 0 {
		return nil, fmt.Errorf("demand: length %v: must be positive", length)
	}
	return &Trace{Name: name, Steps: compact(steps), Length: length}, nil
}

// FromJobs sweeps jobs into the capacity they keep busy if every job starts
// at its submit time: the demand an unlimited, instantly scaling pool would
// have served. At equal times, ends come before starts. The trace lasts
// until the last job ends.
func FromJobs(name string, jobs []Job) (*Trace, error) {
	type event struct {
		at    time.Duration
		delta int
	}
	events := make([]event, 0, 2*len(jobs))
	var length time.Duration
	for i, j := range jobs {
		if j.Submit < 0 || j.Run <= 0 || j.Procs <= 0 {
			return nil, fmt.Errorf("demand: job %d: need submit >= 0, run > 0 and procs > 0, got %v, %v, %d", i, j.Submit, j.Run, j.Procs)
		}
		events = append(events, event{j.Submit, j.Procs}, event{j.End(), -j.Procs})
		length = max(length, j.End())
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("demand: no jobs")
	}
	slices.SortStableFunc(events, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.delta, b.delta))
	})
	steps := make([]Step, 0, len(events)+1)
	level := 0
	for _, e := range events {
		level += e.delta
		steps = append(steps, Step{At: e.at, Units: level})
	}
	sorted := slices.Clone(jobs)
	slices.SortStableFunc(sorted, func(a, b Job) int { return cmp.Compare(a.Submit, b.Submit) })
	return &Trace{Name: name, Steps: compact(steps), Jobs: sorted, Length: length}, nil
}

// compact starts the steps at 0 and merges equal times and equal levels.
func compact(steps []Step) []Step {
	out := make([]Step, 0, len(steps)+1)
	out = append(out, Step{At: 0})
	for _, s := range steps {
		last := &out[len(out)-1]
		switch {
		case s.At == last.At:
			last.Units = s.Units
			if len(out) > 1 && out[len(out)-2].Units == last.Units {
				out = out[:len(out)-1]
			}
		case s.Units != last.Units:
			out = append(out, s)
		}
	}
	return out
}

// At returns the demand at d.
func (t *Trace) At(d time.Duration) int {
	i := sort.Search(len(t.Steps), func(i int) bool { return t.Steps[i].At > d }) - 1
	if i < 0 {
		return 0
	}
	return t.Steps[i].Units
}

// Peak returns the highest demand within [0, until).
func (t *Trace) Peak(until time.Duration) int {
	peak := 0
	for _, s := range t.Steps {
		if s.At >= until {
			break
		}
		peak = max(peak, s.Units)
	}
	return peak
}

// Window returns the part of t from from for length, shifted to start at 0.
// Jobs are kept if they overlap the window, with their times shifted too (a
// job may then start before 0).
func (t *Trace) Window(from, length time.Duration) *Trace {
	out := &Trace{Name: t.Name, Length: length}
	steps := []Step{{At: 0, Units: t.At(from)}}
	for _, s := range t.Steps {
		if s.At > from && s.At < from+length {
			steps = append(steps, Step{At: s.At - from, Units: s.Units})
		}
	}
	out.Steps = compact(steps)
	for _, j := range t.Jobs {
		if j.End() > from && j.Submit < from+length {
			j.Submit -= from
			out.Jobs = append(out.Jobs, j)
		}
	}
	return out
}

// Scale returns t with every level multiplied by f and rounded, and every
// job's Procs scaled the same way (at least 1). Levels are rounded on their
// own, so a scaled job trace's steps may differ by one from a sweep of its
// scaled jobs.
func (t *Trace) Scale(f float64) *Trace {
	if f == 1 {
		return t
	}
	round := func(n int) int { return int(float64(n)*f + 0.5) }
	out := &Trace{Name: t.Name, Length: t.Length}
	steps := make([]Step, len(t.Steps))
	for i, s := range t.Steps {
		steps[i] = Step{At: s.At, Units: round(s.Units)}
	}
	out.Steps = compact(steps)
	if t.Jobs != nil {
		out.Jobs = make([]Job, len(t.Jobs))
		for i, j := range t.Jobs {
			j.Procs = max(1, round(j.Procs))
			out.Jobs[i] = j
		}
	}
	return out
}

// UnitSeconds returns the capacity-seconds demanded over [from, to).
func (t *Trace) UnitSeconds(from, to time.Duration) float64 {
	return t.Served(from, to, -1)
}

// Served returns the capacity-seconds of demand over [from, to) that
// capacity units can serve: the integral of min(demand, capacity). A
// negative capacity means unlimited.
func (t *Trace) Served(from, to time.Duration, capacity int) float64 {
	if to <= from {
		return 0
	}
	i := max(0, sort.Search(len(t.Steps), func(i int) bool { return t.Steps[i].At > from })-1)
	total := 0.0
	for at := from; at < to && i < len(t.Steps); i++ {
		next := to
		if i+1 < len(t.Steps) && t.Steps[i+1].At < to {
			next = t.Steps[i+1].At
		}
		units := t.Steps[i].Units
		if t.Steps[i].At > at {
			units = 0 // before the first step
		}
		if capacity >= 0 {
			units = min(units, capacity)
		}
		total += float64(units) * (next - at).Seconds()
		at = next
	}
	return total
}

// BootLimited returns the capacity-seconds over [0, until) that a policy
// cannot serve when new capacity takes boot to arrive and it follows demand
// exactly, boot late: at every instant, the demand above what was demanded
// boot earlier. Every rise costs its height times boot (a return after a
// dip shorter than boot costs the dip's depth times its length).
func (t *Trace) BootLimited(boot, until time.Duration) float64 {
	return t.ReactionLimited(boot, 0, until)
}

// ReactionLimited is [Trace.BootLimited] for a policy that also sees
// demand only at passes every interval (the first at 0): at every instant,
// the demand above what was demanded at the last pass at least boot
// earlier. A rise costs its height times boot plus the wait for the next
// pass. Interval 0 means demand is seen at once.
func (t *Trace) ReactionLimited(boot, interval, until time.Duration) float64 {
	if boot <= 0 && interval <= 0 {
		return 0
	}
	// seen is when the demand that capacity at at can answer was read.
	seen := func(at time.Duration) (time.Duration, bool) {
		x := at - boot
		if x < 0 {
			return 0, false
		}
		if interval > 0 {
			x -= x % interval
		}
		return x, true
	}
	// D(at) changes at the steps, D(seen(at)) at boot after the steps (or
	// after the passes following them).
	points := make([]time.Duration, 0, 2*len(t.Steps)+1)
	for _, s := range t.Steps {
		lagged := s.At + boot
		if interval > 0 && s.At%interval != 0 {
			lagged = s.At - s.At%interval + interval + boot
		}
		for _, p := range []time.Duration{s.At, lagged} {
			if p < until {
				points = append(points, p)
			}
		}
	}
	points = append(points, min(boot, until), until)
	slices.Sort(points)
	points = slices.Compact(points)
	total := 0.0
	for k := 0; k+1 < len(points); k++ {
		at := points[k]
		now, before := t.At(at), 0
		if x, ok := seen(at); ok {
			before = t.At(x)
		}
		if now > before {
			total += float64(now-before) * (points[k+1] - at).Seconds()
		}
	}
	return total
}

// Rises returns the times within [0, until) at which demand goes up, with
// the level it goes up to.
func (t *Trace) Rises(until time.Duration) []Step {
	var out []Step
	prev := 0
	for _, s := range t.Steps {
		if s.At >= until {
			break
		}
		if s.Units > prev {
			out = append(out, s)
		}
		prev = s.Units
	}
	return out
}
