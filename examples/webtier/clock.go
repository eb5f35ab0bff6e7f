package main

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// virtualClock is the simulation's time: the simulated EC2's manual clock,
// plus the goroutines that sleep on it (a Provision waiting for its health
// checks). Moving it wakes the sleepers whose time has come, then waits
// until the simulation is quiet again: every goroutine started since the
// clock was made is asleep on it or gone. Each step of the simulation thus
// sees the effects of the previous one, however the goroutines happen to be
// scheduled.
type virtualClock struct {
	sim *ec2sim.Sim
	// baseline is the number of goroutines that run for good (the main
	// one, the test runner's): none of them sleeps on the clock.
	baseline int

	mu       sync.Mutex
	sleepers map[*sleeper]bool
}

type sleeper struct {
	wake time.Time
	done chan struct{}
}

func newVirtualClock(sim *ec2sim.Sim) *virtualClock {
	return &virtualClock{sim: sim, baseline: runtime.NumGoroutine(), sleepers: map[*sleeper]bool{}}
}

// Now returns the simulated time.
func (c *virtualClock) Now() time.Time { return c.sim.Now() }

// Sleep returns once the simulated time has moved on by d, or ctx is done.
func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	s := &sleeper{wake: c.Now().Add(d), done: make(chan struct{})}
	c.mu.Lock()
	c.sleepers[s] = true
	c.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.sleepers, s)
		c.mu.Unlock()
		return ctx.Err()
	}
}

// advance moves the simulated time on by d and lets the goroutines it wakes
// run until the simulation is quiet again.
func (c *virtualClock) advance(d time.Duration) error {
	if err := c.sim.Advance(d); err != nil {
		return err
	}
	now := c.Now()
	c.mu.Lock()
	for s := range c.sleepers {
		if !s.wake.After(now) {
			delete(c.sleepers, s) // running from here on
			close(s.done)
		}
	}
	c.mu.Unlock()
	c.settle()
	return nil
}

// settle waits until every goroutine started since the clock was made
// sleeps on it or has ended: the hooks a pass started, and the calls they
// wait for.
func (c *virtualClock) settle() {
	for spins := 0; ; spins++ {
		c.mu.Lock()
		asleep := len(c.sleepers)
		c.mu.Unlock()
		if runtime.NumGoroutine() <= c.baseline+asleep {
			return
		}
		if spins < 100 {
			runtime.Gosched()
		} else {
			// The others need a CPU: step aside for a moment. This
			// waits for real work, never for simulated time.
			time.Sleep(20 * time.Microsecond)
		}
	}
}
