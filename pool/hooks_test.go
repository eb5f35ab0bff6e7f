package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// calls counts the hooks a test role ran.
type calls struct {
	mu sync.Mutex
	n  int
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func checkRole(t *testing.T, c *calls, check func(context.Context) error) role.Role {
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{
		Check: func(ctx context.Context, _ awsctl.Instance) (role.Status, error) {
			c.mu.Lock()
			c.n++
			c.mu.Unlock()
			return role.Status{Idle: true}, check(ctx)
		},
	})
	require.NoError(t, err)
	return r
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// A hook that has returned is not "still running" while its goroutine is
// recording the result: a shutdown out of time reports only host code.
func TestCloseOutOfTimeDoesNotCountAHookThatHasReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c calls
		h := newHookRunner(checkRole(t, &c, func(context.Context) error { return nil }))
		release := make(chan struct{})
		h.onDone = func() { <-release } // holds the goroutine after the hook returned
		h.start(context.Background(), time.Now(), HookCheck, awsctl.Instance{ID: "i-1"}, time.Minute)
		synctest.Wait()
		require.Equal(t, 1, c.count(), "the hook has run and returned")

		res := make(chan error, 1)
		go func() { res <- h.wait(cancelled()) }()
		synctest.Wait()
		close(release)
		assert.NoError(t, <-res)
	})
}

// A hook still inside host code when time runs out is reported.
func TestCloseOutOfTimeReportsAHookStillRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c calls
		release := make(chan struct{})
		h := newHookRunner(checkRole(t, &c, func(context.Context) error {
			<-release // ignores its context
			return nil
		}))
		h.start(context.Background(), time.Now(), HookCheck, awsctl.Instance{ID: "i-1"}, time.Minute)
		synctest.Wait()
		err := h.wait(cancelled())
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "1 role hooks still running")
		close(release)
		require.NoError(t, h.wait(context.Background()))
	})
}

// Once the pool is closed, a hook whose goroutine had not begun it never
// begins: no host code starts after Shutdown stopped the hooks.
func TestNoHookBeginsOnceThePoolIsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c calls
		h := newHookRunner(checkRole(t, &c, func(ctx context.Context) error { return ctx.Err() }))
		require.NoError(t, h.wait(cancelled()))
		h.start(context.Background(), time.Now(), HookCheck, awsctl.Instance{ID: "i-1"}, time.Minute)
		require.NoError(t, h.wait(context.Background()))
		assert.Zero(t, c.count(), "the hook was not called")
		res := h.collect(time.Now())["i-1"]
		assert.Error(t, res.err)
		assert.False(t, errors.Is(res.err, ErrHookTimeout))
	})
}
