package sqsnotice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Defaults of Options fields left zero.
const (
	DefaultMaxBatches = 10
	DefaultRetryDelay = time.Second
)

const (
	// maxMessages is the most messages one ReceiveMessage returns.
	maxMessages = 10
	// longPollSeconds is SQS's longest long poll, used by Run and Start.
	longPollSeconds = 20
	// passPollSeconds is the wait of each receive of SpotNotices when the
	// consumer is not started. It cannot be 0: the SDK does not send a
	// zero WaitTimeSeconds, and SQS then waits as long as the queue's
	// ReceiveMessageWaitTimeSeconds attribute says, up to 20 s. A short
	// poll would also ask only a random sample of SQS's servers, and could
	// miss notices that are there; a long poll of 1 s, the shortest,
	// asks them all (ReceiveMessage API reference; "Amazon SQS short and
	// long polling").
	passPollSeconds = 1
	// maxRetryDelay caps Run's doubling wait after failures.
	maxRetryDelay = time.Minute
	// maxPending bounds the notices a started consumer keeps for
	// SpotNotices; beyond it the oldest are dropped.
	maxPending = 10_000
)

// SQSAPI is the part of the SQS client that the Consumer uses;
// *sqs.Client implements it.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, params *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, params *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var (
	_ SQSAPI                  = (*sqs.Client)(nil)
	_ awsctl.SpotNoticeSource = (*Consumer)(nil)
)

// Options configure a Consumer. The zero value is ready to use.
type Options struct {
	// MaxBatches bounds the ReceiveMessage calls of one SpotNotices call
	// (each returns up to 10 messages), so that a flooded queue cannot
	// hold up a scaler pass; the rest waits for the next call. Default
	// DefaultMaxBatches.
	MaxBatches int
	// RetryDelay is how long Run waits after a failed call before the
	// next; it doubles with each further failure, up to a minute (or
	// RetryDelay, if longer). Default DefaultRetryDelay.
	RetryDelay time.Duration
	// Logger receives reports of skipped messages and failed calls; nil
	// discards.
	Logger *slog.Logger
}

// Consumer reads EC2 spot notices that an EventBridge rule delivers to an
// SQS queue, and deletes the messages it has read. It is safe for
// concurrent use.
type Consumer struct {
	api        SQSAPI
	queueURL   string
	maxBatches int
	retryDelay time.Duration
	log        *slog.Logger

	// Set while Start's goroutine runs, and what it received.
	mu      sync.Mutex
	running bool
	pending []awsctl.SpotNotice
	failed  error // its latest receive's error, until a receive succeeds
}

// New returns a Consumer of the queue at queueURL (as shown in the SQS
// console or returned by GetQueueUrl), called through api, normally
// sqs.NewFromConfig(cfg).
func New(api SQSAPI, queueURL string, opts Options) (*Consumer, error) {
	if api == nil {
		return nil, errors.New("sqsnotice: New: api is required")
	}
	if u, err := url.Parse(queueURL); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("sqsnotice: New: queueURL %q is not an absolute URL", queueURL)
	}
	if opts.MaxBatches < 0 {
		return nil, fmt.Errorf("sqsnotice: New: Options.MaxBatches %d is negative", opts.MaxBatches)
	}
	if opts.RetryDelay < 0 {
		return nil, fmt.Errorf("sqsnotice: New: Options.RetryDelay %v is negative", opts.RetryDelay)
	}
	if opts.MaxBatches == 0 {
		opts.MaxBatches = DefaultMaxBatches
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Consumer{api: api, queueURL: queueURL, maxBatches: opts.MaxBatches, retryDelay: opts.RetryDelay, log: opts.Logger}, nil
}

// SpotNotices returns the notices received since the last call. It
// implements [awsctl.SpotNoticeSource], for autoscale.Options.SpotNotices.
//
// Once [Consumer.Start] runs, it returns what the background consumer has
// received and makes no call: a scaler pass never waits on SQS. Otherwise
// it reads the queue itself: it receives batches, each waiting at most a
// second for messages, until one comes back short or Options.MaxBatches
// have been read; on an empty queue a call thus takes about a second,
// whatever the queue's own ReceiveMessageWaitTimeSeconds.
//
// Every message read is deleted, including unrelated events and bodies
// that cannot be parsed (which are logged), so that none comes back
// forever. A message stays on the queue only when its deletion fails; SQS
// then delivers it again after the queue's visibility timeout, which is
// harmless since a repeated notice changes nothing. Notices read before an
// error are returned with it; errors of SQS calls wrap *awsctl.APIError
// values (see awsctl.ErrThrottled and the other kinds). A started consumer
// returns the error of its latest receive, if that failed.
func (c *Consumer) SpotNotices(ctx context.Context) ([]awsctl.SpotNotice, error) {
	c.mu.Lock()
	notices, failed, running := c.pending, c.failed, c.running
	c.pending, c.failed = nil, nil
	c.mu.Unlock()
	if running {
		return notices, failed
	}
	collect := func(n awsctl.SpotNotice) { notices = append(notices, n) }
	for range c.maxBatches {
		received, err := c.poll(ctx, passPollSeconds, collect)
		if err != nil {
			return notices, err
		}
		if received < maxMessages {
			break
		}
	}
	return notices, nil
}

// Start runs the consumer in the background until ctx ends: a goroutine
// long-polls the queue, as Run does, and keeps the notices for
// [Consumer.SpotNotices], which then returns at once. Once ctx has ended
// and the goroutine returned, SpotNotices reads the queue itself again.
// Start fails if the consumer is already started.
func (c *Consumer) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return errors.New("sqsnotice: Start: already started")
	}
	c.running = true
	go func() {
		_ = c.loop(ctx, c.keep, c.setFailed)
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	return nil
}

// keep stores a notice received by Start's goroutine.
func (c *Consumer) keep(n awsctl.SpotNotice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == maxPending {
		c.log.Warn("dropping the oldest spot notice: SpotNotices is not called", "instance_id", c.pending[0].InstanceID)
		c.pending = slices.Delete(c.pending, 0, 1)
	}
	c.pending = append(c.pending, n)
}

func (c *Consumer) setFailed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = err
}

// Run long-polls the queue until ctx ends and calls fn, from Run's
// goroutine, with each notice received, for hosts that push notices with
// scaler.HandleSpotNotice. A batch's messages are deleted after fn has
// returned for all of its notices (should ctx end in between, SQS delivers
// them again later, which is harmless). Failed calls are logged and retried
// after Options.RetryDelay, doubling up to a minute while they keep
// failing. Run returns ctx's error.
func (c *Consumer) Run(ctx context.Context, fn func(awsctl.SpotNotice)) error {
	if fn == nil {
		return errors.New("sqsnotice: Run: fn is required")
	}
	return c.loop(ctx, fn, func(error) {})
}

// loop is Run, reporting the outcome of each poll to result (nil for a
// success).
func (c *Consumer) loop(ctx context.Context, fn func(awsctl.SpotNotice), result func(error)) error {
	var delay time.Duration
	for {
		_, err := c.poll(ctx, longPollSeconds, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		result(err)
		if err == nil {
			if delay > 0 {
				c.log.Info("receiving spot notices works again")
			}
			delay = 0
			continue
		}
		delay = max(min(2*delay, maxRetryDelay), c.retryDelay)
		c.log.Warn("receiving spot notices failed", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// poll receives one batch, waiting up to waitSeconds (at least 1, see
// passPollSeconds) for it, hands its notices to handle and deletes its
// messages. It returns how many messages came.
func (c *Consumer) poll(ctx context.Context, waitSeconds int32, handle func(awsctl.SpotNotice)) (int, error) {
	out, err := c.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(c.queueURL),
		MaxNumberOfMessages: maxMessages,
		WaitTimeSeconds:     waitSeconds,
	})
	if err != nil {
		return 0, classify("ReceiveMessage", err)
	}
	done := make([]types.DeleteMessageBatchRequestEntry, 0, len(out.Messages))
	for i, m := range out.Messages {
		id := aws.ToString(m.MessageId)
		n, ok, err := ParseEvent([]byte(aws.ToString(m.Body)))
		switch {
		case err != nil:
			c.log.Warn("deleting a message that is not a readable event", "message_id", id, "err", err)
		case !ok:
			c.log.Debug("deleting an event that is not a spot notice", "message_id", id)
		default:
			handle(n)
		}
		if m.ReceiptHandle != nil {
			done = append(done, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	return len(out.Messages), c.delete(ctx, done)
}

func (c *Consumer) delete(ctx context.Context, entries []types.DeleteMessageBatchRequestEntry) error {
	if len(entries) == 0 {
		return nil
	}
	out, err := c.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.queueURL), Entries: entries})
	if err != nil {
		return classify("DeleteMessageBatch", err)
	}
	if len(out.Failed) == 0 {
		return nil
	}
	errs := make([]error, 0, len(out.Failed))
	for _, f := range out.Failed {
		errs = append(errs, batchEntryError("DeleteMessageBatch", f))
	}
	return fmt.Errorf("sqsnotice: %d of %d messages not deleted; SQS will deliver them again: %w",
		len(out.Failed), len(entries), errors.Join(errs...))
}
