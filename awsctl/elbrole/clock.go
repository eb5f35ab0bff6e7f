package elbrole

import (
	"context"
	"time"
)

// Clock is where a Role reads the time and waits between two looks at the
// load balancer. The default is the wall clock; a simulation on virtual time
// supplies its own, whose Sleep returns when the virtual time has moved on by
// d.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx is done, and returns ctx's error in
	// that case.
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
