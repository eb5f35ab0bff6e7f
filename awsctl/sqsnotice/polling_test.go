package sqsnotice_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/sqsnotice"
)

// A queue created for long polling (ReceiveMessageWaitTimeSeconds 20)
// must not hold a scaler pass for 20 seconds.
func TestSpotNoticesIgnoresTheQueueDefaultWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q, c := startQueue(t, sqsnotice.Options{})
		q.waitSeconds = 20

		start := time.Now()
		got, err := c.SpotNotices(t.Context())
		require.NoError(t, err)
		assert.Empty(t, got)
		assert.LessOrEqual(t, time.Since(start), time.Second, "the pass waited for the queue's default long poll")
		for _, r := range q.receiveLog() {
			assert.NotNil(t, r.WaitTimeSeconds, "WaitTimeSeconds left to the queue's default")
		}
	})
}

// A short poll asks only some of SQS's servers; the notices on the others
// would wait for a later pass, or, with more arriving, longer.
func TestSpotNoticesReadsEveryServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q, c := startQueue(t, sqsnotice.Options{})
		var ids []string
		for i := range 8 {
			ids = append(ids, fmt.Sprintf("i-%017x", i))
			q.send(rebalanceEvent(ids[i], "2026-11-28T11:40:00Z"))
		}

		got, err := c.SpotNotices(t.Context())
		require.NoError(t, err)
		var seen []string
		for _, n := range got {
			seen = append(seen, n.InstanceID)
		}
		assert.ElementsMatch(t, ids, seen, "one call returns every notice waiting")
	})
}

func TestStartHandsNoticesOverWithoutWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q, c := startQueue(t, sqsnotice.Options{})
		q.waitSeconds = 20
		ctx, cancel := context.WithCancel(t.Context())
		require.NoError(t, c.Start(ctx))
		assert.ErrorContains(t, c.Start(ctx), "already started")

		synctest.Wait()
		receives := q.receiveLog()
		require.Len(t, receives, 1)
		assert.Equal(t, 20, receives[0].wait(), "the background long-polls")

		start := time.Now()
		got, err := c.SpotNotices(t.Context())
		require.NoError(t, err)
		assert.Empty(t, got)
		assert.Zero(t, time.Since(start), "a pass does not wait on SQS")
		assert.Len(t, q.receiveLog(), 1, "nor calls it")

		time.Sleep(5 * time.Second)
		q.send(interruptionEvent(instanceID, "terminate", "2026-11-28T11:58:00Z"), stateChangeEvent)
		synctest.Wait()
		got, err = c.SpotNotices(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []awsctl.SpotNotice{interruptionNotice(instanceID, "terminate", warnedAt.Add(2*time.Minute))}, got)
		visible, inflight := q.state()
		assert.Zero(t, visible+inflight, "its messages are deleted")
		got, _ = c.SpotNotices(t.Context())
		assert.Empty(t, got, "each notice is handed over once")

		// A failure reaches the next pass, until a receive succeeds.
		q.fail("ReceiveMessage", failure{status: http.StatusBadRequest, errType: "com.amazonaws.sqs#RequestThrottled", message: "Rate exceeded"})
		q.send(stateChangeEvent) // ends the long poll in progress
		synctest.Wait()
		_, err = c.SpotNotices(t.Context())
		assert.ErrorIs(t, err, awsctl.ErrThrottled)
		time.Sleep(time.Second) // the retry
		synctest.Wait()
		_, err = c.SpotNotices(t.Context())
		assert.NoError(t, err)

		// Once ctx ends the goroutine is gone (the bubble checks) and
		// SpotNotices reads the queue itself.
		cancel()
		synctest.Wait()
		before := len(q.receiveLog())
		q.send(rebalanceEvent(instanceID, "2026-11-28T11:40:00Z"))
		got, err = c.SpotNotices(t.Context())
		require.NoError(t, err)
		assert.Len(t, got, 1)
		assert.Len(t, q.receiveLog(), before+1)
		require.NoError(t, c.Start(t.Context()), "it can start again")
	})
}
