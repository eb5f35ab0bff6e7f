package ec2limits

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

// EC2 API names, the keys of [Client.Calls] and [Client.Throttled].
const (
	DescribeInstances         = "DescribeInstances"
	RunInstances              = "RunInstances"
	CreateFleet               = "CreateFleet"
	TerminateInstances        = "TerminateInstances"
	CreateTags                = "CreateTags"
	DeleteTags                = "DeleteTags"
	DescribeSpotPriceHistory  = "DescribeSpotPriceHistory"
	DescribeReservedInstances = "DescribeReservedInstances"
)

// PageSize is the most instances one DescribeInstances page returns, and
// BatchSize the most ids one TerminateInstances, CreateTags or DeleteTags
// request takes; larger calls are split the way the SDK-backed client
// splits them.
const (
	PageSize  = 1000
	BatchSize = 1000
)

// Limits are EC2's request token buckets, one per rate-limit category.
type Limits = ratelimit.EC2Limits

// Default returns EC2's documented default limits for an account in a
// region.
func Default() Limits { return ratelimit.EC2Defaults() }

// bucket is a token bucket on the client's clock that never waits: a call
// that finds too few tokens is refused.
type bucket struct {
	limit  ratelimit.Limit
	tokens float64
	at     time.Time
}

func newBucket(l ratelimit.Limit, now time.Time) (*bucket, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &bucket{limit: l, tokens: float64(l.Burst), at: now}, nil
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.at) {
		b.tokens = min(float64(b.limit.Burst), b.tokens+now.Sub(b.at).Seconds()*b.limit.PerSecond)
		b.at = now
	}
}

// has reports whether n tokens are there (n is capped at the burst, which
// is all a bucket can ever hold).
func (b *bucket) has(now time.Time, n int) bool {
	b.refill(now)
	return b.tokens >= float64(min(n, b.limit.Burst))
}

func (b *bucket) take(n int) { b.tokens -= float64(min(n, b.limit.Burst)) }

// Client is an awsctl.CloudClient that enforces EC2's request limits on the
// client it wraps, on a clock of the caller's (a simulator's virtual
// clock): a call that would exceed a bucket fails with a RequestLimitExceeded
// error (awsctl.ErrThrottled) without reaching the wrapped client, as EC2
// answers. It maps each call to EC2 requests the way the SDK-backed client
// (package awsctl/ec2client) does: a launch with one offering is a
// RunInstances request, one with several a CreateFleet request; listings
// cost one request per page.
//
// EC2 evaluates each API on its own: every API has a request bucket of its
// own, sized by its category, and a request to one API does not take tokens
// from another's (Request throttling for the Amazon EC2 API, "Request rate
// limiting": https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
// So DescribeInstances, DescribeSpotPriceHistory and
// DescribeReservedInstances each have a bucket of Limits.Describe's size,
// CreateTags and DeleteTags each one of Limits.Tags'. RunInstances and
// TerminateInstances also draw on their resource buckets, by instance.
//
// It also passes spot prices, reservations and spot notices through when the
// wrapped client provides them. It is safe for concurrent use.
type Client struct {
	cloud  awsctl.CloudClient
	clock  func() time.Time
	limits Limits

	mu                                sync.Mutex
	runInstances, terminatedInstances *bucket
	requests                          map[string]*bucket // by API name, made at its first request
	calls, throttled                  map[string]int
}

// New wraps cloud. clock is the time the buckets refill by; limits are
// usually Default().
func New(cloud awsctl.CloudClient, clock func() time.Time, limits Limits) (*Client, error) {
	if cloud == nil || clock == nil {
		return nil, fmt.Errorf("ec2limits: cloud and clock are required")
	}
	c := &Client{cloud: cloud, clock: clock, limits: limits, requests: map[string]*bucket{},
		calls: map[string]int{}, throttled: map[string]int{}}
	now := clock()
	for _, b := range []struct {
		name string
		l    ratelimit.Limit
		into **bucket
	}{
		{"RunInstances", limits.RunInstances, nil},
		{"RunInstancesInstances", limits.RunInstancesInstances, &c.runInstances},
		{"TerminateInstances", limits.TerminateInstances, nil},
		{"TerminatedInstances", limits.TerminatedInstances, &c.terminatedInstances},
		{"Mutating", limits.Mutating, nil},
		{"Tags", limits.Tags, nil},
		{"Describe", limits.Describe, nil},
	} {
		bk, err := newBucket(b.l, now)
		if err != nil {
			return nil, fmt.Errorf("ec2limits: Limits.%s: %w", b.name, err)
		}
		if b.into != nil {
			*b.into = bk
		}
	}
	return c, nil
}

// category is the request limit of each API the client sends.
func (c *Client) category(op string) ratelimit.Limit {
	switch op {
	case RunInstances:
		return c.limits.RunInstances
	case TerminateInstances:
		return c.limits.TerminateInstances
	case CreateFleet:
		return c.limits.Mutating
	case CreateTags, DeleteTags:
		return c.limits.Tags
	default: // the Describe* requests
		return c.limits.Describe
	}
}

// draw is n tokens from one resource bucket.
type draw struct {
	b *bucket
	n int
}

// admit counts a request of op and takes one token from op's request
// bucket and its tokens from every resource bucket it draws on, or refuses
// it (taking nothing) if one of them is short.
func (c *Client) admit(op string, draws ...draw) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
	now := c.clock()
	req, ok := c.requests[op]
	if !ok {
		// Validated in New: a category's limit makes a bucket.
		req, _ = newBucket(c.category(op), now)
		c.requests[op] = req
	}
	if !req.has(now, 1) {
		c.throttled[op]++
		return ec2sim.Throttled(op)
	}
	for _, d := range draws {
		if !d.b.has(now, d.n) {
			c.throttled[op]++
			return ec2sim.Throttled(op)
		}
	}
	req.take(1)
	for _, d := range draws {
		d.b.take(d.n)
	}
	return nil
}

// Calls returns the EC2 requests made so far (throttled ones included), by
// API name.
func (c *Client) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// Throttled returns the requests refused so far, by API name.
func (c *Client) Throttled() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.throttled)
}

// ListInstances costs one DescribeInstances request per page of PageSize
// instances, since EC2 takes a token for each request, and a page is one
// (Request throttling for the Amazon EC2 API, "Request rate limiting":
// https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html);
// a listing that runs out of tokens part-way fails whole, as the SDK's
// paginator does.
func (c *Client) ListInstances(ctx context.Context, filter awsctl.ListFilter) ([]awsctl.Instance, error) {
	if err := c.admit(DescribeInstances); err != nil {
		return nil, err
	}
	insts, err := c.cloud.ListInstances(ctx, filter)
	if err := c.admitPagesAfterTheFirst(len(insts)); err != nil {
		return nil, err
	}
	return insts, err
}

// admitPagesAfterTheFirst admits the DescribeInstances requests for the
// pages after the first of a listing of n instances.
func (c *Client) admitPagesAfterTheFirst(n int) error {
	for page := PageSize; page < n; page += PageSize {
		if err := c.admit(DescribeInstances); err != nil {
			return err
		}
	}
	return nil
}

// AppendInstances is ListInstances appending to buf (see
// awsctl.InstanceAppender): the same requests and throttling. It lists into
// buf when the wrapped client can, so that a scaler's steady pass allocates
// nothing per instance through the limits either.
func (c *Client) AppendInstances(ctx context.Context, buf []awsctl.Instance, filter awsctl.ListFilter) ([]awsctl.Instance, error) {
	if err := c.admit(DescribeInstances); err != nil {
		return buf, err
	}
	var out []awsctl.Instance
	var err error
	if a, ok := c.cloud.(awsctl.InstanceAppender); ok {
		out, err = a.AppendInstances(ctx, buf, filter)
	} else {
		var insts []awsctl.Instance
		insts, err = c.cloud.ListInstances(ctx, filter)
		out = append(buf, insts...)
	}
	if err := c.admitPagesAfterTheFirst(len(out) - len(buf)); err != nil {
		return buf, err
	}
	if err != nil {
		return buf, err
	}
	return out, nil
}

// Launch is a RunInstances request for one offering (its instances count
// against the instance bucket) and a CreateFleet request for several.
func (c *Client) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	distinct := map[[2]string]bool{}
	for _, o := range req.Offerings {
		distinct[[2]string{o.InstanceType, o.Zone}] = true
	}
	var err error
	if len(distinct) == 1 {
		count := req.Capacity
		if w := req.Offerings[0].Weight; w > 1 {
			count = (req.Capacity + w - 1) / w
		}
		err = c.admit(RunInstances, draw{c.runInstances, count})
	} else {
		err = c.admit(CreateFleet)
	}
	if err != nil {
		return nil, err
	}
	return c.cloud.Launch(ctx, req)
}

// Terminate is one TerminateInstances request per BatchSize ids, each
// counting its ids against the terminated-instances bucket.
func (c *Client) Terminate(ctx context.Context, ids []string) ([]string, error) {
	var done []string
	for start := 0; start < len(ids); start += BatchSize {
		batch := ids[start:min(start+BatchSize, len(ids))]
		if err := c.admit(TerminateInstances, draw{c.terminatedInstances, len(batch)}); err != nil {
			return done, err
		}
		got, err := c.cloud.Terminate(ctx, batch)
		done = append(done, got...)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Tag is one CreateTags request per BatchSize ids.
func (c *Client) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	for start := 0; start < len(ids); start += BatchSize {
		batch := ids[start:min(start+BatchSize, len(ids))]
		if err := c.admit(CreateTags); err != nil {
			return err
		}
		if err := c.cloud.Tag(ctx, batch, tags); err != nil {
			return err
		}
	}
	return nil
}

// Untag is one DeleteTags request per BatchSize ids.
func (c *Client) Untag(ctx context.Context, ids []string, keys []string) error {
	for start := 0; start < len(ids); start += BatchSize {
		batch := ids[start:min(start+BatchSize, len(ids))]
		if err := c.admit(DeleteTags); err != nil {
			return err
		}
		if err := c.cloud.Untag(ctx, batch, keys); err != nil {
			return err
		}
	}
	return nil
}

// SpotPrices is one DescribeSpotPriceHistory request; without a wrapped
// awsctl.SpotPriceSource it reports no prices.
func (c *Client) SpotPrices(ctx context.Context, instanceTypes []string) ([]awsctl.SpotPrice, error) {
	src, ok := c.cloud.(awsctl.SpotPriceSource)
	if !ok {
		return nil, nil
	}
	if err := c.admit(DescribeSpotPriceHistory); err != nil {
		return nil, err
	}
	return src.SpotPrices(ctx, instanceTypes)
}

// Reservations is one DescribeReservedInstances request; without a wrapped
// awsctl.ReservationSource it reports none.
func (c *Client) Reservations(ctx context.Context) ([]awsctl.Reservation, error) {
	src, ok := c.cloud.(awsctl.ReservationSource)
	if !ok {
		return nil, nil
	}
	if err := c.admit(DescribeReservedInstances); err != nil {
		return nil, err
	}
	return src.Reservations(ctx)
}

// SpotNotices passes the wrapped client's notices through unlimited: they
// come from instance metadata or EventBridge, not from EC2's API.
func (c *Client) SpotNotices(ctx context.Context) ([]awsctl.SpotNotice, error) {
	src, ok := c.cloud.(awsctl.SpotNoticeSource)
	if !ok {
		return nil, nil
	}
	return src.SpotNotices(ctx)
}

var (
	_ awsctl.CloudClient       = (*Client)(nil)
	_ awsctl.InstanceAppender  = (*Client)(nil)
	_ awsctl.SpotPriceSource   = (*Client)(nil)
	_ awsctl.ReservationSource = (*Client)(nil)
	_ awsctl.SpotNoticeSource  = (*Client)(nil)
)
