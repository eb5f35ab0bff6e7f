package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLimitValidateNamesTheField(t *testing.T) {
	_, err := NewBucket(Limit{Burst: 0, PerSecond: 1})
	require.ErrorContains(t, err, "Burst")
	_, err = NewBucket(Limit{Burst: 1, PerSecond: 0})
	require.ErrorContains(t, err, "PerSecond")
}

func TestBurstIsImmediateThenRefillPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBucket(Limit{Burst: 5, PerSecond: 2})
		require.NoError(t, err)
		ctx := context.Background()
		start := time.Now()
		for range 5 {
			require.NoError(t, b.Wait(ctx, 1))
		}
		assert.Equal(t, time.Duration(0), time.Since(start), "a full bucket lets the burst through at once")

		require.NoError(t, b.Wait(ctx, 1))
		assert.Equal(t, 500*time.Millisecond, time.Since(start), "the sixth call waits for one token at 2/s")
		require.NoError(t, b.Wait(ctx, 1))
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestWaitForSeveralTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBucket(Limit{Burst: 1000, PerSecond: 20})
		require.NoError(t, err)
		ctx := context.Background()
		start := time.Now()
		require.NoError(t, b.Wait(ctx, 1000))
		require.NoError(t, b.Wait(ctx, 100))
		assert.Equal(t, 5*time.Second, time.Since(start), "100 tokens at 20/s take 5s")
		// More than the burst is capped at the burst, so it cannot wait forever.
		require.NoError(t, b.Wait(ctx, 5000))
		assert.Equal(t, 5*time.Second+50*time.Second, time.Since(start))
	})
}

func TestIdleBucketRefillsOnlyToBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBucket(Limit{Burst: 2, PerSecond: 1})
		require.NoError(t, err)
		ctx := context.Background()
		time.Sleep(time.Hour)
		start := time.Now()
		require.NoError(t, b.Wait(ctx, 1))
		require.NoError(t, b.Wait(ctx, 1))
		require.NoError(t, b.Wait(ctx, 1))
		assert.Equal(t, time.Second, time.Since(start), "an hour idle stores only the burst")
	})
}

func TestWaitersAreServedInArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBucket(Limit{Burst: 1, PerSecond: 1})
		require.NoError(t, err)
		ctx := context.Background()
		require.NoError(t, b.Wait(ctx, 1))
		start := time.Now()
		var mu sync.Mutex
		var done []time.Duration
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, b.Wait(ctx, 1))
				mu.Lock()
				done = append(done, time.Since(start))
				mu.Unlock()
			}()
			synctest.Wait()
		}
		wg.Wait()
		assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, done)
	})
}

func TestCancelledWaitReturnsItsTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBucket(Limit{Burst: 1, PerSecond: 1})
		require.NoError(t, err)
		require.NoError(t, b.Wait(context.Background(), 1))

		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() { errc <- b.Wait(ctx, 1) }()
		synctest.Wait()
		cancel()
		err = <-errc
		require.ErrorIs(t, err, context.Canceled)

		// The cancelled waiter's token went back: the next call waits one
		// refill, not two.
		start := time.Now()
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestDeadlineTooCloseFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBucket(Limit{Burst: 1, PerSecond: 0.1})
		require.NoError(t, err)
		require.NoError(t, b.Wait(context.Background(), 1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err = b.Wait(ctx, 1)
		require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
		assert.Equal(t, time.Duration(0), time.Since(start), "no point sleeping until a deadline that comes first")
	})
}

func TestDoneContextTakesNothing(t *testing.T) {
	b, err := NewBucket(Limit{Burst: 1, PerSecond: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, b.Wait(ctx, 1), context.Canceled)
	require.NoError(t, b.Wait(context.Background(), 1), "the token is still there")
}

// A deadline reached at the very moment the tokens arrive must stop the
// caller, whichever timer the runtime fires first: a scaler bounds its
// calls by deadlines, and a call that goes on after one may act for a
// replica that no longer leads.
func TestContextEndingAsTheTokensArriveStopsTheCaller(t *testing.T) {
	for range 40 {
		synctest.Test(t, func(t *testing.T) {
			b, err := NewBucket(Limit{Burst: 1, PerSecond: 1})
			require.NoError(t, err)
			require.NoError(t, b.Wait(context.Background(), 1))
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second) // ends as the next token comes
			defer cancel()
			err = b.Wait(ctx, 1)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, time.Second, time.Since(start), "it waited for the token, then found the deadline reached")
		})
	}
}
