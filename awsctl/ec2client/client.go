package ec2client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

// OwnerTagKey is the tag key that marks the instances a scaler owns. It is
// the key package pool writes (pool.TagOwner) and the key docs/iam-policy.json
// conditions on; launch templates this client creates carry it too.
const OwnerTagKey = "ec2autoscale:owner"

// Defaults for [Options].
const (
	// DefaultRetryMode is the SDK retry mode used when Options.RetryMode is
	// empty.
	DefaultRetryMode = aws.RetryModeStandard
	// DefaultMaxAttempts is the SDK's own default: one call and two
	// retries.
	DefaultMaxAttempts = retry.DefaultMaxAttempts
	// DefaultSpotAllocationStrategy follows the order of a launch's
	// offerings as far as spot capacity allows: EC2 honours the override
	// priorities on a best-effort basis, after capacity.
	DefaultSpotAllocationStrategy = types.SpotAllocationStrategyCapacityOptimizedPrioritized
	// DefaultOnDemandAllocationStrategy follows the order of a launch's
	// offerings.
	DefaultOnDemandAllocationStrategy = types.FleetOnDemandAllocationStrategyPrioritized
	// DefaultConsistencyWait bounds how long Tag and Untag keep retrying an
	// instance EC2 does not know yet: EC2 is eventually consistent, and an
	// instance launched a moment ago can be invisible to other calls for a
	// few seconds.
	DefaultConsistencyWait = 30 * time.Second
)

// Batch sizes EC2 accepts in one call.
const (
	// MaxTerminateBatch is the most instance ids one TerminateInstances
	// call carries.
	MaxTerminateBatch = 1000
	// MaxTagBatch is the most resource ids one CreateTags or DeleteTags
	// call carries.
	MaxTagBatch = 1000
	// maxStatusBatch is the most instance ids one DescribeInstanceStatus
	// call carries.
	maxStatusBatch = 100
	// pageSize is MaxResults for paginated describes.
	pageSize = 1000
	// maxFilterValues is the most values the client puts in one filter.
	maxFilterValues = 200
)

// EC2API is the part of the EC2 API the client uses, in the SDK's
// signatures. *ec2.Client implements it; so can a wrapper that records or
// restricts calls.
type EC2API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	CreateFleet(context.Context, *ec2.CreateFleetInput, ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error)
	CreateLaunchTemplate(context.Context, *ec2.CreateLaunchTemplateInput, ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(context.Context, *ec2.DeleteTagsInput, ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
	DescribeSpotPriceHistory(context.Context, *ec2.DescribeSpotPriceHistoryInput, ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error)
	DescribeReservedInstances(context.Context, *ec2.DescribeReservedInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeReservedInstancesOutput, error)
	DescribeSpotInstanceRequests(context.Context, *ec2.DescribeSpotInstanceRequestsInput, ...func(*ec2.Options)) (*ec2.DescribeSpotInstanceRequestsOutput, error)
	CancelSpotInstanceRequests(context.Context, *ec2.CancelSpotInstanceRequestsInput, ...func(*ec2.Options)) (*ec2.CancelSpotInstanceRequestsOutput, error)
	DescribeInstanceStatus(context.Context, *ec2.DescribeInstanceStatusInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)

// Options configure a [Client]. The zero value is ready to use.
type Options struct {
	// Endpoint overrides the EC2 endpoint URL (the SDK's BaseEndpoint),
	// for EC2-compatible services and test servers. Empty means the
	// region's AWS endpoint.
	Endpoint string
	// RetryMode is the SDK retryer: aws.RetryModeStandard (the default)
	// or aws.RetryModeAdaptive, which also slows down after throttling.
	RetryMode aws.RetryMode
	// MaxAttempts is the most attempts the SDK retryer makes per call,
	// the first included; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Limits are the client-side request rate limits; zero fields take
	// their value from DefaultLimits.
	Limits Limits
	// SpotAllocationStrategy and OnDemandAllocationStrategy choose among
	// the offerings of a CreateFleet launch; empty means
	// DefaultSpotAllocationStrategy and DefaultOnDemandAllocationStrategy.
	// Only the prioritized strategies (prioritized, and
	// capacity-optimized-prioritized for spot) follow the order of
	// LaunchRequest.Offerings, which is how package pool spreads launches
	// over zones and prefers types. lowest-price (EC2's own default) and
	// price-capacity-optimized pick by price per capacity unit whatever
	// the order: choose them only for callers whose offering order means
	// nothing, where the cheapest (or, for spot, the cheapest among the
	// pools least likely to be interrupted) should win.
	SpotAllocationStrategy     types.SpotAllocationStrategy
	OnDemandAllocationStrategy types.FleetOnDemandAllocationStrategy
	// ConsistencyWait is how long Tag and Untag retry ids EC2 reports as
	// not found; 0 means DefaultConsistencyWait, a negative value turns
	// the retry off.
	ConsistencyWait time.Duration
	// Logger receives debug records of calls and warnings of skipped
	// data; nil discards them. Credentials and user data are never
	// logged.
	Logger *slog.Logger
}

// Client implements awsctl.CloudClient, awsctl.SpotPriceSource,
// awsctl.ReservationSource and awsctl.HealthReader on the EC2 API. It is
// safe for concurrent use; share one Client between everything that should
// share its rate limits.
type Client struct {
	api    EC2API
	opts   Options
	log    *slog.Logger
	limits buckets

	templatesMu sync.Mutex
	templates   map[string]bool // names of the launch templates known to exist
}

var (
	_ awsctl.CloudClient       = (*Client)(nil)
	_ awsctl.SpotPriceSource   = (*Client)(nil)
	_ awsctl.ReservationSource = (*Client)(nil)
	_ awsctl.HealthReader      = (*Client)(nil)
)

// New returns a Client for the region and credentials of cfg, typically
// from config.LoadDefaultConfig. The SDK client is built with the
// endpoint and retryer of opts.
func New(cfg aws.Config, opts Options) (*Client, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("ec2client: aws.Config.Region is empty")
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("ec2client: Options.Endpoint %q is not an absolute URL", opts.Endpoint)
		}
	}
	retryer, err := newRetryer(opts.RetryMode, opts.MaxAttempts)
	if err != nil {
		return nil, err
	}
	api := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.Retryer = retryer
		o.APIOptions = append(o.APIOptions, addHideWriteTo) // see body.go
	})
	return NewFromAPI(api, opts)
}

// NewFromAPI returns a Client calling api, which carries its own endpoint
// and retryer: opts.Endpoint, RetryMode and MaxAttempts are not used. New
// also gives the SDK client a middleware without which the answer to a
// request larger than 4 KiB is now and then cut short (see body.go); an
// *ec2.Client built elsewhere lacks it.
func NewFromAPI(api EC2API, opts Options) (*Client, error) {
	if api == nil {
		return nil, fmt.Errorf("ec2client: api is nil")
	}
	if opts.MaxAttempts < 0 {
		return nil, fmt.Errorf("ec2client: Options.MaxAttempts must not be negative, got %d", opts.MaxAttempts)
	}
	if opts.ConsistencyWait == 0 {
		opts.ConsistencyWait = DefaultConsistencyWait
	}
	if opts.SpotAllocationStrategy == "" {
		opts.SpotAllocationStrategy = DefaultSpotAllocationStrategy
	}
	if opts.OnDemandAllocationStrategy == "" {
		opts.OnDemandAllocationStrategy = DefaultOnDemandAllocationStrategy
	}
	limits, err := newBuckets(opts.Limits)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Client{api: api, opts: opts, log: log, limits: limits, templates: map[string]bool{}}, nil
}

// newRetryer builds the SDK retryer: the only place calls are retried,
// apart from the eventual-consistency waits the SDK does not cover.
func newRetryer(mode aws.RetryMode, maxAttempts int) (aws.Retryer, error) {
	if maxAttempts < 0 {
		return nil, fmt.Errorf("ec2client: Options.MaxAttempts must not be negative, got %d", maxAttempts)
	}
	if maxAttempts == 0 {
		maxAttempts = DefaultMaxAttempts
	}
	standard := func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		// Ours first: the first answer that is not "unknown" wins.
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(sdkRetryable)}, o.Retryables...)
	}
	switch mode {
	case "", aws.RetryModeStandard:
		return retry.NewStandard(standard), nil
	case aws.RetryModeAdaptive:
		return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, standard)
		}), nil
	}
	return nil, fmt.Errorf("ec2client: Options.RetryMode %q is neither %q nor %q", mode, aws.RetryModeStandard, aws.RetryModeAdaptive)
}

// Limits are client-side token buckets, one per EC2 rate-limit category.
// The defaults mirror EC2's documented per-account, per-region limits, so
// that a burst from the scaler is spread out instead of answered with
// RequestLimitExceeded; accounts with raised limits can raise them here.
// EC2 gives each API a bucket of its category's size; sharing one per
// category sends at most what EC2 allows, and a scaler's pass makes few
// calls of each API beside its listing.
type Limits = ratelimit.EC2Limits

// DefaultLimits returns EC2's default API rate limits.
func DefaultLimits() Limits { return ratelimit.EC2Defaults() }

type buckets struct {
	run, runInstances, terminate, terminated, mutating, tags, describe *ratelimit.Bucket
}

func newBuckets(l Limits) (buckets, error) {
	def := DefaultLimits()
	var b buckets
	for _, f := range []struct {
		name     string
		set, def ratelimit.Limit
		into     **ratelimit.Bucket
	}{
		{"RunInstances", l.RunInstances, def.RunInstances, &b.run},
		{"RunInstancesInstances", l.RunInstancesInstances, def.RunInstancesInstances, &b.runInstances},
		{"TerminateInstances", l.TerminateInstances, def.TerminateInstances, &b.terminate},
		{"TerminatedInstances", l.TerminatedInstances, def.TerminatedInstances, &b.terminated},
		{"Mutating", l.Mutating, def.Mutating, &b.mutating},
		{"Tags", l.Tags, def.Tags, &b.tags},
		{"Describe", l.Describe, def.Describe, &b.describe},
	} {
		lim := f.set
		if lim == (ratelimit.Limit{}) {
			lim = f.def
		}
		bucket, err := ratelimit.NewBucket(lim)
		if err != nil {
			return buckets{}, fmt.Errorf("ec2client: Options.Limits.%s: %w", f.name, err)
		}
		*f.into = bucket
	}
	return b, nil
}

// wait takes n tokens from bucket before op is sent.
func wait(ctx context.Context, op string, bucket *ratelimit.Bucket, n int) error {
	if err := bucket.Wait(ctx, n); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
