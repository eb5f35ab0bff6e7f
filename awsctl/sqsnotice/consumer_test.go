package sqsnotice_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/awstest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/sqsnotice"
	"github.com/ec2autoscale/ec2autoscale/internal/pipehttp"
)

// sqsClient is the SDK's client for the queue service at endpoint. The
// SDK's retries are off so that every failure reaches the Consumer and the
// tests count calls exactly.
func sqsClient(endpoint string, httpClient sqs.HTTPClient) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
		HTTPClient:   httpClient,
		Retryer:      aws.NopRetryer{},
	})
}

// startQueue serves a queue in process, with no socket, which works inside
// a testing/synctest bubble and out of one, and returns a consumer of it.
func startQueue(t *testing.T, opts sqsnotice.Options) (*queueServer, *sqsnotice.Consumer) {
	t.Helper()
	q := newQueueServer()
	c, err := sqsnotice.New(sqsClient("http://sqs.us-east-1.amazonaws.com", awstest.InProcess(q)), queueURL, opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.Empty(t, q.refused(), "requests the real service would refuse") })
	return q, c
}

func TestNewValidates(t *testing.T) {
	api := sqsClient("http://127.0.0.1:1", nil)
	for _, tc := range []struct {
		name     string
		api      sqsnotice.SQSAPI
		queueURL string
		opts     sqsnotice.Options
		mention  string
	}{
		{name: "no api", queueURL: queueURL, mention: "api"},
		{name: "no queue", api: api, mention: "queueURL"},
		{name: "queue name instead of URL", api: api, queueURL: "spot-notices", mention: "queueURL"},
		{name: "negative batches", api: api, queueURL: queueURL, opts: sqsnotice.Options{MaxBatches: -1}, mention: "MaxBatches"},
		{name: "negative delay", api: api, queueURL: queueURL, opts: sqsnotice.Options{RetryDelay: -time.Second}, mention: "RetryDelay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sqsnotice.New(tc.api, tc.queueURL, tc.opts)
			assert.ErrorContains(t, err, tc.mention)
		})
	}
}

func TestSpotNotices(t *testing.T) {
	synctest.Test(t, testSpotNotices)
}

func testSpotNotices(t *testing.T) {
	q, c := startQueue(t, sqsnotice.Options{})
	q.send(
		interruptionEvent(instanceID, "terminate", "2026-11-28T11:58:00Z"),
		stateChangeEvent,
		"not an event",
		rebalanceEvent("i-0c1f5a1e2d3b4c5d6", "2026-11-28T11:40:00Z"),
	)

	got, err := c.SpotNotices(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []awsctl.SpotNotice{
		interruptionNotice(instanceID, "terminate", warnedAt.Add(2*time.Minute)),
		{InstanceID: "i-0c1f5a1e2d3b4c5d6", Kind: awsctl.Rebalance, Time: time.Date(2026, 11, 28, 11, 40, 0, 0, time.UTC)},
	}, got)

	receives := q.receiveLog()
	require.Len(t, receives, 1, "a short batch ends the call")
	assert.Equal(t, queueURL, receives[0].QueueUrl)
	assert.Equal(t, 10, receives[0].MaxNumberOfMessages)
	assert.Equal(t, 1, receives[0].wait(), "a scaler pass is held up by a second at most")

	deletes := q.deleteLog()
	require.Len(t, deletes, 1)
	assert.Equal(t, queueURL, deletes[0].QueueUrl)
	assert.Len(t, deletes[0].Entries, 4, "unrelated and unreadable messages are deleted too")
	visible, inflight := q.state()
	assert.Zero(t, visible)
	assert.Zero(t, inflight, "every receipt handle was deleted")

	start := time.Now()
	got, err = c.SpotNotices(t.Context())
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, time.Second, time.Since(start), "an empty queue costs a second")
	assert.Len(t, q.receiveLog(), 2)
	assert.Len(t, q.deleteLog(), 1, "nothing to delete, no call")
}

func TestSpotNoticesReadsFullBatchesUpToMax(t *testing.T) {
	q, c := startQueue(t, sqsnotice.Options{MaxBatches: 2})
	var bodies []string
	for i := range 25 {
		bodies = append(bodies, rebalanceEvent(fmt.Sprintf("i-%017x", i), "2026-11-28T11:40:00Z"))
	}
	q.send(bodies...)

	got, err := c.SpotNotices(t.Context())
	require.NoError(t, err)
	assert.Len(t, got, 20, "two full batches, then MaxBatches stops the call")
	assert.Len(t, q.receiveLog(), 2)
	visible, inflight := q.state()
	assert.Equal(t, 5, visible)
	assert.Zero(t, inflight)

	got, err = c.SpotNotices(t.Context())
	require.NoError(t, err)
	assert.Len(t, got, 5, "the rest comes with the next call")
	assert.Equal(t, fmt.Sprintf("i-%017x", 24), got[4].InstanceID)
	for _, d := range q.deleteLog() {
		assert.LessOrEqual(t, len(d.Entries), 10, "a delete batch holds at most 10 entries")
	}
}

func TestSpotNoticesDeletesTheReceivedHandles(t *testing.T) {
	q, c := startQueue(t, sqsnotice.Options{})
	q.send(rebalanceEvent(instanceID, "2026-11-28T11:40:00Z"), stateChangeEvent)
	q.fail("DeleteMessageBatch", failure{status: http.StatusBadRequest, errType: "com.amazonaws.sqs#RequestThrottled", message: "Rate exceeded"})

	got, err := c.SpotNotices(t.Context())
	assert.Len(t, got, 1, "the notice is returned although its message could not be deleted: %v", err)
	assert.ErrorIs(t, err, awsctl.ErrThrottled)
	held := q.inflightReceipts()
	require.Len(t, held, 2)

	// The deletion that failed named exactly the handles received.
	deletes := q.deleteLog()
	require.Len(t, deletes, 1)
	var named []string
	for _, e := range deletes[0].Entries {
		named = append(named, e.ReceiptHandle)
	}
	assert.ElementsMatch(t, held, named)
}

func TestSpotNoticesReportsUndeletedEntries(t *testing.T) {
	q, c := startQueue(t, sqsnotice.Options{})
	q.send(rebalanceEvent(instanceID, "2026-11-28T11:40:00Z"), rebalanceEvent("i-0c1f5a1e2d3b4c5d6", "2026-11-28T11:41:00Z"))
	// The second message's receipt handle is the server's 4th sequence
	// number: two sends, then this receive.
	q.failDelete["AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq-5fea7756-0ea4-451a-a703-a558b933e002-4"] = failure{
		status: http.StatusBadRequest, errType: "ReceiptHandleIsInvalid", message: "The input receipt handle is invalid.",
	}

	got, err := c.SpotNotices(t.Context())
	assert.Len(t, got, 2)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "DeleteMessageBatch", apiErr.Op)
	assert.Equal(t, "ReceiptHandleIsInvalid", apiErr.Code)
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.ErrorContains(t, err, "1 of 2")
	_, inflight := q.state()
	assert.Equal(t, 1, inflight)
}

func TestSpotNoticesErrors(t *testing.T) {
	tests := []struct {
		name string
		f    failure
		kind error
		code string
	}{
		{
			name: "throttled",
			f:    failure{status: http.StatusBadRequest, errType: "com.amazonaws.sqs#RequestThrottled", message: "Rate exceeded"},
			kind: awsctl.ErrThrottled, code: "RequestThrottled",
		},
		{
			name: "throttled, query-compatible code",
			f: failure{status: http.StatusBadRequest, errType: "com.amazon.coral.availability#ThrottlingException",
				queryError: "Throttling;Sender", message: "Rate exceeded"},
			kind: awsctl.ErrThrottled, code: "Throttling",
		},
		{
			name: "queue gone",
			f: failure{status: http.StatusBadRequest, errType: "com.amazonaws.sqs#QueueDoesNotExist",
				queryError: "AWS.SimpleQueueService.NonExistentQueue;Sender", message: "The specified queue does not exist."},
			kind: awsctl.ErrNotFound, code: "AWS.SimpleQueueService.NonExistentQueue",
		},
		{
			name: "access denied",
			f: failure{status: http.StatusBadRequest, errType: "com.amazon.coral.service#AccessDeniedException",
				message: "User is not authorized to perform: sqs:receivemessage"},
			kind: awsctl.ErrInvalidRequest, code: "AccessDeniedException",
		},
		{
			name: "server error",
			f:    failure{status: http.StatusInternalServerError, errType: "com.amazonaws.sqs#InternalError", message: "We encountered an internal error."},
			kind: awsctl.ErrUnavailable, code: "InternalError",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, c := startQueue(t, sqsnotice.Options{})
			q.send(rebalanceEvent(instanceID, "2026-11-28T11:40:00Z"))
			q.fail("ReceiveMessage", tc.f)

			got, err := c.SpotNotices(t.Context())
			assert.Empty(t, got)
			assert.ErrorIs(t, err, tc.kind)
			var apiErr *awsctl.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "ReceiveMessage", apiErr.Op)
			assert.Equal(t, tc.code, apiErr.Code)
			assert.Empty(t, q.deleteLog())
			visible, _ := q.state()
			assert.Equal(t, 1, visible, "the message waits for the next call")
		})
	}
}

func TestSpotNoticesKeepsWhatCameBeforeAFailure(t *testing.T) {
	q, c := startQueue(t, sqsnotice.Options{})
	var bodies []string
	for i := range 12 {
		bodies = append(bodies, rebalanceEvent(fmt.Sprintf("i-%017x", i), "2026-11-28T11:40:00Z"))
	}
	q.send(bodies...)
	// The first batch is served, the second throttled.
	q.fail("ReceiveMessage", failure{}, failure{status: http.StatusBadRequest, errType: "com.amazonaws.sqs#RequestThrottled", message: "Rate exceeded"})

	got, err := c.SpotNotices(t.Context())
	assert.Len(t, got, 10)
	assert.ErrorIs(t, err, awsctl.ErrThrottled)
	deletes := q.deleteLog()
	require.Len(t, deletes, 1)
	assert.Len(t, deletes[0].Entries, 10, "the first batch is deleted")
	visible, inflight := q.state()
	assert.Equal(t, 2, visible)
	assert.Zero(t, inflight)
}

func TestSpotNoticesCanceled(t *testing.T) {
	q, c := startQueue(t, sqsnotice.Options{})
	q.send(rebalanceEvent(instanceID, "2026-11-28T11:40:00Z"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := c.SpotNotices(ctx)
	assert.Empty(t, got)
	assert.ErrorIs(t, err, context.Canceled)
	var apiErr *awsctl.APIError
	assert.False(t, errors.As(err, &apiErr), "a cancellation is not a queue failure")
	visible, _ := q.state()
	assert.Equal(t, 1, visible)
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueServer()
		httpClient, stop := pipehttp.Serve(q)
		defer stop()
		c, err := sqsnotice.New(sqsClient("http://sqs.us-east-1.amazonaws.com", httpClient), queueURL, sqsnotice.Options{})
		require.NoError(t, err)

		var mu sync.Mutex
		var got []awsctl.SpotNotice
		reported := func() []awsctl.SpotNotice {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(got)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- c.Run(ctx, func(n awsctl.SpotNotice) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, n)
				// The message is deleted only after the notice is handed
				// over.
				_, inflight := q.state()
				assert.Equal(t, 1, inflight, "deleted before the notice was handled")
			})
		}()

		synctest.Wait()
		receives := q.receiveLog()
		require.Len(t, receives, 1)
		assert.Equal(t, 20, receives[0].wait(), "Run long-polls")
		assert.Empty(t, reported())

		time.Sleep(5 * time.Second)
		q.send(interruptionEvent(instanceID, "terminate", "2026-11-28T11:58:00Z"))
		synctest.Wait()
		assert.Equal(t, []awsctl.SpotNotice{interruptionNotice(instanceID, "terminate", warnedAt.Add(2*time.Minute))}, reported(),
			"a notice is handed over as soon as it arrives")
		visible, inflight := q.state()
		assert.Zero(t, visible+inflight, "and its message deleted")

		before := len(q.receiveLog())
		time.Sleep(60 * time.Second)
		synctest.Wait()
		assert.Equal(t, before+3, len(q.receiveLog()), "an empty queue costs one call per 20 seconds")

		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		default:
			t.Fatal("Run did not return when its context ended")
		}
		assert.Empty(t, q.refused())
	})
}

func TestRunBacksOffWhileFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueServer()
		httpClient, stop := pipehttp.Serve(q)
		defer stop()
		c, err := sqsnotice.New(sqsClient("http://sqs.us-east-1.amazonaws.com", httpClient), queueURL, sqsnotice.Options{})
		require.NoError(t, err)

		throttled := failure{status: http.StatusBadRequest, errType: "com.amazonaws.sqs#RequestThrottled", message: "Rate exceeded"}
		q.fail("ReceiveMessage", throttled, throttled, throttled)
		q.send(rebalanceEvent(instanceID, "2026-11-28T11:40:00Z"))
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		var handed atomic.Int32
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, func(awsctl.SpotNotice) { handed.Add(1) }) }()

		time.Sleep(10 * time.Second)
		synctest.Wait()
		var offsets []time.Duration
		for _, r := range q.receiveLog()[:5] {
			offsets = append(offsets, r.at.Sub(start))
		}
		assert.Equal(t, []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 7 * time.Second}, offsets,
			"retries wait 1s, 2s, 4s; success resets the wait")
		assert.Equal(t, int32(1), handed.Load())

		q.fail("ReceiveMessage", throttled)
		// Unblock the long poll in progress so that the failure is next.
		q.send(stateChangeEvent)
		synctest.Wait()
		failedAt := time.Now()
		time.Sleep(time.Second)
		synctest.Wait()
		log := q.receiveLog()
		assert.Equal(t, time.Second, log[len(log)-1].at.Sub(failedAt), "after a success the wait starts over")

		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
}

func TestRunNeedsFunc(t *testing.T) {
	_, c := startQueue(t, sqsnotice.Options{})
	assert.ErrorContains(t, c.Run(t.Context(), nil), "fn")
}
