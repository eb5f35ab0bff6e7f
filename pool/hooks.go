package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// HookKind names a role hook.
type HookKind int

// Role hooks the pool runs.
const (
	HookProvision HookKind = iota + 1
	HookWindDown
	HookCheck
	HookRestore
	HookTeardown
)

var hookNames = [...]string{"", "provision", "wind-down", "check", "restore", "teardown"}

func (k HookKind) String() string {
	if k > 0 && int(k) < len(hookNames) {
		return hookNames[k]
	}
	return "unknown"
}

// ErrHookTimeout is the result of a hook that did not return within its
// timeout (it may still be running if it ignores its context).
var ErrHookTimeout = errors.New("role hook timed out")

// hookResult is a finished hook, waiting for the next pass to read it.
type hookResult struct {
	kind   HookKind
	err    error
	status role.Status
}

type hookRun struct {
	kind     HookKind
	deadline time.Time // pass time after which the run counts as timed out
	gen      uint64
}

// hookRunner runs role hooks in background goroutines, at most one per
// instance, so a slow or hung server never stalls the reconcile pass. Results
// are picked up by the next pass.
type hookRunner struct {
	role role.Role

	mu      sync.Mutex
	running map[string]hookRun
	done    map[string]hookResult
	gen     uint64
	wg      sync.WaitGroup
	// inHost counts hooks inside host code, abandoned ones (past their
	// timeout, stuck in host code) included. A goroutine is counted only
	// while it runs the hook: before it (not yet scheduled) and after it
	// (recording the result) it runs no host code, so closing never
	// reports it as a hook still running.
	inHost int
	// closed is set when the runner is closed: a hook whose goroutine had
	// not yet begun it by then never begins, so no host code starts after
	// Shutdown has stopped the hooks.
	closed bool
	// idle is signalled whenever a hook finishes, for Wait.
	idle chan struct{}
	// onDone, if set, is called whenever a hook finishes.
	onDone func()
}

func newHookRunner(r role.Role) *hookRunner {
	return &hookRunner{
		role:    r,
		running: map[string]hookRun{},
		done:    map[string]hookResult{},
		idle:    make(chan struct{}, 1),
	}
}

// busy reports whether a hook of inst is running.
func (h *hookRunner) busy(id string) bool {
	_, ok := h.runningKind(id)
	return ok
}

// snapshot returns the kind of every running hook, by instance, so a pass
// reads them without taking the lock per instance.
func (h *hookRunner) snapshot() map[string]HookKind {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]HookKind, len(h.running))
	for id, run := range h.running {
		out[id] = run.kind
	}
	return out
}

// runningKind returns the kind of the hook of inst that is running, if any.
func (h *hookRunner) runningKind(id string) (HookKind, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	run, ok := h.running[id]
	return run.kind, ok
}

// start runs one hook of kind for inst in the background. now is the pass
// time; the run is abandoned (reported as ErrHookTimeout) by the first pass
// after now+timeout even if the hook ignores its context.
func (h *hookRunner) start(base context.Context, now time.Time, kind HookKind, inst awsctl.Instance, timeout time.Duration) {
	h.mu.Lock()
	if _, ok := h.running[inst.ID]; ok {
		h.mu.Unlock()
		return
	}
	h.gen++
	gen := h.gen
	h.running[inst.ID] = hookRun{kind: kind, deadline: now.Add(timeout), gen: gen}
	h.wg.Add(1)
	h.mu.Unlock()

	go func() {
		defer h.wg.Done()
		ctx, cancel := context.WithTimeout(base, timeout)
		res := h.enter(ctx, kind, inst)
		cancel()
		if res.err != nil && errors.Is(res.err, context.DeadlineExceeded) {
			res.err = fmt.Errorf("%w: %s after %v: %w", ErrHookTimeout, kind, timeout, res.err)
		}
		h.mu.Lock()
		if run, ok := h.running[inst.ID]; ok && run.gen == gen {
			delete(h.running, inst.ID)
			h.done[inst.ID] = res
		}
		h.mu.Unlock()
		select {
		case h.idle <- struct{}{}:
		default:
		}
		if h.onDone != nil {
			h.onDone()
		}
	}()
}

// enter runs the hook unless the runner is closed, counting it in inHost
// for as long as host code runs (also if the hook ends its goroutine, as
// t.FailNow does in a test).
func (h *hookRunner) enter(ctx context.Context, kind HookKind, inst awsctl.Instance) hookResult {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return hookResult{kind: kind, err: fmt.Errorf("%s hook not started: the pool is closed", kind)}
	}
	h.inHost++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inHost--
		h.mu.Unlock()
	}()
	return h.call(ctx, kind, inst)
}

func (h *hookRunner) call(ctx context.Context, kind HookKind, inst awsctl.Instance) (res hookResult) {
	res.kind = kind
	defer func() {
		// A hook is host code: a panic in it fails this hook, not the scaler.
		if r := recover(); r != nil {
			res.err = fmt.Errorf("%s hook panicked: %v", kind, r)
		}
	}()
	switch kind {
	case HookProvision:
		res.err = h.role.Provision(ctx, inst)
	case HookWindDown:
		res.err = h.role.WindDown(ctx, inst)
	case HookCheck:
		res.status, res.err = h.role.Check(ctx, inst)
	case HookRestore:
		res.err = h.role.Restore(ctx, inst)
	case HookTeardown:
		res.err = h.role.Teardown(ctx, inst)
	}
	return res
}

// forget drops the hooks running and their results: a run that finishes
// later finds its entry gone and its result is discarded. Its goroutine
// still counts for wait, since host code may still be running.
func (h *hookRunner) forget() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = map[string]hookRun{}
	h.done = map[string]hookResult{}
}

// collect returns the hooks finished since the last call, and turns runs
// past their deadline into timeouts.
func (h *hookRunner) collect(now time.Time) map[string]hookResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, run := range h.running {
		if now.After(run.deadline) {
			delete(h.running, id)
			h.done[id] = hookResult{kind: run.kind, err: fmt.Errorf("%w: %s did not return", ErrHookTimeout, run.kind)}
		}
	}
	if len(h.done) == 0 {
		return nil
	}
	out := h.done
	h.done = map[string]hookResult{}
	return out
}

// waitIdle waits until no hook runs, or ctx ends.
func (h *hookRunner) waitIdle(ctx context.Context) error {
	for {
		h.mu.Lock()
		n := len(h.running)
		h.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-h.idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wait closes the runner, so that no hook begins any more, then waits for
// every hook goroutine to return, or ctx to end. Out of time, it reports
// the hooks still inside host code; goroutines that are only recording a
// result, or that had not begun their hook, are waited for, since they run
// no host code.
func (h *hookRunner) wait(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		n := h.inHost
		h.mu.Unlock()
		if n == 0 {
			<-done
			return nil
		}
		return fmt.Errorf("%d role hooks still running: %w", n, ctx.Err())
	}
}
