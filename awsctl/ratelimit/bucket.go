package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Limit is a token bucket's shape: it holds at most Burst tokens and gains
// PerSecond tokens every second. A full bucket allows Burst calls at once,
// then PerSecond calls a second.
type Limit struct {
	Burst     int
	PerSecond float64
}

// Validate reports whether l can make a bucket, naming the bad field.
func (l Limit) Validate() error {
	if l.Burst < 1 {
		return fmt.Errorf("ratelimit: Limit.Burst must be at least 1, got %d", l.Burst)
	}
	if !(l.PerSecond > 0) || math.IsInf(l.PerSecond, 0) {
		return fmt.Errorf("ratelimit: Limit.PerSecond must be a positive number, got %v", l.PerSecond)
	}
	return nil
}

// Bucket is a token bucket shared by every caller holding it. It starts
// full. It is safe for concurrent use.
//
// Waiters are served in the order they arrive: a call takes its tokens at
// once, possibly driving the bucket into debt, and then sleeps until the
// refill has paid that debt. This keeps a steady stream of small calls from
// starving a large one.
type Bucket struct {
	limit Limit

	mu     sync.Mutex
	tokens float64 // may be negative: tokens promised to waiters
	last   time.Time
}

// NewBucket returns a full bucket with limit l.
func NewBucket(l Limit) (*Bucket, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Bucket{limit: l, tokens: float64(l.Burst), last: time.Now()}, nil
}

// Limit returns the bucket's limit.
func (b *Bucket) Limit() Limit { return b.limit }

// Wait takes n tokens, waiting until the bucket can give them or ctx is
// done. n is capped at the bucket's burst, since a bucket can never hold
// more. n <= 0 takes nothing. When ctx ends first, or its deadline comes
// before the tokens would, Wait takes nothing and returns an error wrapping
// ctx's error (context.DeadlineExceeded for a deadline too close).
func (b *Bucket) Wait(ctx context.Context, n int) error {
	if n <= 0 {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	take := float64(min(n, b.limit.Burst))
	delay := b.reserve(take)
	if delay <= 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
		b.refund(take)
		return fmt.Errorf("ratelimit: need to wait %v, beyond the deadline: %w", delay, context.DeadlineExceeded)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		// The timer and ctx may end together, and a select picks either:
		// check again, so a caller whose context ended (a lease lost while
		// it waited, say) never goes on to the call.
		// A deadline reached is checked on the clock, not on Err, which
		// turns only once the context's own timer has run.
		err := ctx.Err()
		if d, ok := ctx.Deadline(); ok && err == nil && !time.Now().Before(d) {
			err = context.DeadlineExceeded
		}
		if err != nil {
			b.refund(take)
			return fmt.Errorf("ratelimit: %w", err)
		}
		return nil
	case <-ctx.Done():
		b.refund(take)
		return fmt.Errorf("ratelimit: %w", ctx.Err())
	}
}

// reserve takes n tokens now and returns how long the caller must wait
// for the refill to cover them.
func (b *Bucket) reserve(n float64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.limit.PerSecond * float64(time.Second)))
}

// refund gives back tokens a cancelled waiter had reserved.
func (b *Bucket) refund(n float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	b.tokens = min(b.tokens+n, float64(b.limit.Burst))
}

func (b *Bucket) refill(now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.tokens+elapsed.Seconds()*b.limit.PerSecond, float64(b.limit.Burst))
		b.last = now
	}
}
