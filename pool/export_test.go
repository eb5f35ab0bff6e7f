package pool

import (
	"context"
	"time"
)

// Plan and Commit let the package's external tests drive one pass by hand.
func (p *Pool) Plan(ctx context.Context, snap Snapshot) *Plan { return p.plan(ctx, snap) }

func (p *Pool) Commit(ctx context.Context, pl *Plan, out Outcome) []Event {
	return p.commit(ctx, pl, out)
}

func (p *Pool) SetDraining(on bool) { p.setDraining(on) }

func (p *Pool) WaitHooks(ctx context.Context) error { return p.waitHooks(ctx) }

func (p *Pool) Close(ctx context.Context) error { return p.close(ctx) }

// Transition reports whether the lifecycle table allows a pass to move a
// server between the named states.
func Transition(from, to string) bool {
	var f, t state = numStates, numStates
	for i, n := range stateNames {
		if n == from {
			f = state(i)
		}
		if n == to {
			t = state(i)
		}
	}
	return f != numStates && t != numStates && allowed(f, t)
}

// ExpectTags records a tag change the listing may not show yet, as commit
// does for one that succeeded; Overlays counts the changes so recorded.
func (p *Pool) ExpectTags(now time.Time, id string, set map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expectTags(now, id, Change{Set: set})
}

func (p *Pool) Overlays() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.overlay)
}
