package main

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim/ec2limits"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// The role's hooks on virtual time.
//
// EC2 reports an instance running (and bills it) while its operating system
// still boots; the simulated role's Provision hook waits until the instance
// is ready (ec2sim's ReadyAt), as a real role waits for its server. The
// scaler runs hooks in background goroutines and reads their results at its
// next pass, so a hook that waits on the simulated clock has to be released
// by the simulation as the clock passes its end, and its result has to
// reach the pool before the next pass reads the hooks.
//
// The public API has no signal for that last step (Run is woken by a hook
// finishing through an internal callback; testing/synctest's Wait would do
// it, but only in tests), so the simulation waits for the process to be
// quiet instead: after releasing hooks, and after each pass (which may
// start hooks), it waits until the process runs no goroutine but its own and
// the Provision calls still waiting for their instance. Every hook started
// has then either returned, its result recorded, or is waiting in
// Provision, and the run repeats exactly for a seed. That needs one world
// per process: runs of several policies at once use a process each (see
// simulateAll). A world counts the goroutines that are not the scaler's
// once, as it starts, when no other goroutine runs (stillGoroutines): one
// on its way out then (the previous world's, a test's that just ended)
// would leave the count one too high, and quiesce return while a hook
// still runs.
//
// The other hooks (WindDown, Check, Restore, Teardown) return at once, but
// not before the pass that started them is over: a Step that finds no
// capacity runs a second pass at once, and that pass would otherwise read
// the results of whichever of the first pass's hooks the Go scheduler had
// run by then, so runs with capacity outages would not repeat.

// provisioner is the simulated role: no wind-down (role.Immediate: a server
// let go is terminated at once), and a Provision hook that returns once the
// instance is ready, on the simulation's clock.
type provisioner struct {
	spec awsctl.LaunchSpec
	sim  *ec2sim.Sim

	mu   sync.Mutex
	pass time.Time // the pass that starts the hooks entering now
	// sleep: Provision sleeps until the instance is ready, on a clock that
	// time.Sleep follows (a testing/synctest bubble's), instead of waiting
	// to be released.
	sleep   bool
	waiting map[string]*provision // Provision calls not yet released, by instance
	others  int                   // calls of other hooks: WindDown, as the pool lets a server go
	// gate holds the other hooks until the pass that started them is over
	// (endPass); nil between passes, and always with sleep.
	gate chan struct{}
}

// provision is one Provision call waiting for its end.
type provision struct {
	id      string
	end     time.Time // when the hook returns, on the simulated clock
	release chan error
}

func newProvisioner(sim *ec2sim.Sim, spec awsctl.LaunchSpec) *provisioner {
	return &provisioner{spec: spec, sim: sim, waiting: map[string]*provision{}}
}

var (
	_ role.Role      = (*provisioner)(nil)
	_ role.Immediate = (*provisioner)(nil)
)

func (p *provisioner) Name() string                  { return "worker" }
func (p *provisioner) LaunchSpec() awsctl.LaunchSpec { return p.spec }
func (p *provisioner) WindsDownAtOnce() bool         { return true }

// Provision waits until the instance is ready: it returns at the later of
// the pass that started it and the instance's ready time.
func (p *provisioner) Provision(ctx context.Context, inst awsctl.Instance) error {
	ready, ok := p.sim.ReadyAt(inst.ID)
	if !ok {
		return errors.New("simulate: unknown instance " + inst.ID)
	}
	if p.sleep {
		t := time.NewTimer(time.Until(ready))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if got, _ := p.sim.Instance(inst.ID); got.State != awsctl.StateRunning {
			return errors.New("simulate: instance " + inst.ID + " is gone")
		}
		return nil
	}
	p.mu.Lock()
	pr := &provision{id: inst.ID, end: maxTime(p.pass, ready), release: make(chan error, 1)}
	p.waiting[inst.ID] = pr
	p.mu.Unlock()
	select {
	case err := <-pr.release:
		return err
	case <-ctx.Done():
		p.mu.Lock()
		if p.waiting[inst.ID] == pr {
			delete(p.waiting, inst.ID)
		}
		p.mu.Unlock()
		return ctx.Err()
	}
}

// other is a hook with nothing to do: it returns once its pass is over.
func (p *provisioner) other(ctx context.Context) error {
	p.mu.Lock()
	p.others++
	gate := p.gate
	p.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *provisioner) WindDown(ctx context.Context, _ awsctl.Instance) error { return p.other(ctx) }
func (p *provisioner) Restore(ctx context.Context, _ awsctl.Instance) error  { return p.other(ctx) }
func (p *provisioner) Teardown(ctx context.Context, _ awsctl.Instance) error { return p.other(ctx) }
func (p *provisioner) Check(ctx context.Context, _ awsctl.Instance) (role.Status, error) {
	return role.Status{Idle: true, WoundDown: true}, p.other(ctx)
}

// quiesce waits until every hook goroutine the scaler started has either
// returned (and so recorded its result) or is waiting in Provision: the
// process then runs baseline goroutines plus one per waiting Provision.
// It needs the world alone in its process (see worker.go). It yields to the
// hooks' goroutines, then, should they be slow to run (a loaded machine),
// naps; it reports false if the process did not come quiet within
// quiesceBudget of real time.
func (p *provisioner) quiesce(baseline int) bool {
	return waitGoroutines(func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return baseline + len(p.waiting)
	})
}

// settle waits until the process runs at most n goroutines, as quiesce
// does.
func settle(n int) bool {
	return waitGoroutines(func() int { return n })
}

// stillGoroutines waits until no goroutine but the caller runs or waits to
// run, and then returns how many goroutines the process has: a baseline for
// quiesce. A goroutine that is running now may be on its way out (a test
// that just ended, say); counted in the baseline, its exit would let
// quiesce return while one of the scaler's hooks still runs. Goroutines
// blocked (on a channel, a lock, a timer, a system call) stay. It reports
// false if the process did not come still within quiesceBudget.
func stillGoroutines() (int, bool) {
	buf := make([]byte, 64<<10)
	began := time.Now()
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if !othersRun(buf[:n]) {
			return runtime.NumGoroutine(), true
		}
		if time.Since(began) > quiesceBudget {
			return runtime.NumGoroutine(), false
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// othersRun reports whether a dump of every goroutine's stack (from
// runtime.Stack, the caller's first) shows another goroutine running or
// runnable.
func othersRun(dump []byte) bool {
	first := true
	for line := range bytes.Lines(dump) {
		if !bytes.HasPrefix(line, []byte("goroutine ")) {
			continue
		}
		if first {
			first = false
			continue
		}
		_, status, ok := bytes.Cut(line, []byte("["))
		if !ok {
			continue
		}
		status, _, _ = bytes.Cut(status, []byte("]"))
		status, _, _ = bytes.Cut(status, []byte(","))
		if s := string(status); s == "running" || s == "runnable" {
			return true
		}
	}
	return false
}

// waitGoroutines waits until the process runs at most want() goroutines.
func waitGoroutines(want func() int) bool {
	var began time.Time
	for n := 0; ; n++ {
		if runtime.NumGoroutine() <= want() {
			return true
		}
		switch {
		case n < 1000:
			runtime.Gosched()
		case began.IsZero():
			began = time.Now()
		case time.Since(began) > quiesceBudget:
			return false
		default:
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// quiesceBudget is how long quiesce waits for the scaler's hook goroutines:
// they only record a result, so anything near it means a goroutine the
// simulation does not know of.
const quiesceBudget = 10 * time.Second

// startPass marks the hooks that enter from now on as started by the pass
// at now.
func (p *provisioner) startPass(now time.Time) {
	p.mu.Lock()
	p.pass = now
	if !p.sleep {
		p.gate = make(chan struct{})
	}
	p.mu.Unlock()
}

// endPass lets the other hooks the pass started return; quiesce then waits
// until the scaler has their results.
func (p *provisioner) endPass() {
	p.mu.Lock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
	p.mu.Unlock()
}

// nextEnd returns the earliest end of a waiting hook.
func (p *provisioner) nextEnd() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first time.Time
	for _, pr := range p.waiting {
		if first.IsZero() || pr.end.Before(first) {
			first = pr.end
		}
	}
	return first, !first.IsZero()
}

// release returns the hooks whose end is due by now, and returns their
// instances; quiesce then waits until the scaler has their results.
func (p *provisioner) release(now time.Time) []string {
	p.mu.Lock()
	var due []*provision
	for id, pr := range p.waiting {
		if !pr.end.After(now) {
			due = append(due, pr)
			delete(p.waiting, id)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(due, func(a, b *provision) int { return strings.Compare(a.id, b.id) })
	ids := make([]string, len(due))
	for i, pr := range due {
		ids[i] = pr.id
		var err error
		if inst, ok := p.sim.Instance(pr.id); !ok || inst.State != awsctl.StateRunning {
			err = errors.New("simulate: instance " + pr.id + " is gone")
		}
		pr.release <- err
	}
	return ids
}

func (p *provisioner) otherHooks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.others
}

// listing is the scaler's cloud: EC2's request limits over the sim, noting
// which replacements are launched.
type listing struct {
	*ec2limits.Client
	replaces map[string]string // replacement launched -> the server it replaces
}

// Launch notes the replacements launched: the tag that says so is removed
// once the swap is done.
func (l *listing) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	insts, err := l.Client.Launch(ctx, req)
	if old := req.Tags[pool.TagReplaces]; old != "" {
		for _, inst := range insts {
			l.replaces[inst.ID] = old
		}
	}
	return insts, err
}
