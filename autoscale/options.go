package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// Defaults of the pass timing of Run.
const (
	// DefaultInterval is the time between two passes of Run.
	DefaultInterval = 30 * time.Second
	// DefaultBusyInterval is the time between two passes while capacity is
	// on its way: a listing is cheap, and a server that came up should not
	// wait a whole Interval to be provisioned.
	DefaultBusyInterval = 10 * time.Second
	// DefaultMinPassGap is the shortest time between two passes when role
	// hooks finishing, or a manager's demand rising, wake Run early.
	DefaultMinPassGap = time.Second
	// DefaultEC2HealthInterval is how often EC2's scheduled events and
	// status checks are read. EC2 announces retirements and stops days
	// ahead ("Scheduled events for Amazon EC2 instances") and runs status
	// checks every minute: a slow timer keeps it to a few calls an hour.
	DefaultEC2HealthInterval = 5 * time.Minute
	// DefaultCallTimeout bounds one mutating cloud call: EC2 answers a
	// launch or a batch of tags in seconds, and the SDK's standard retryer
	// (3 attempts, backoff up to 20 s) fits in it.
	DefaultCallTimeout = 30 * time.Second
)

// TokenWindow is the period launch tokens are counted in. A token is
// derived from the whole request, the window and how many definitive
// answers the scaler had for that request in the window: a scaler restarted
// within the window that sends the same request sends the same first token,
// so a launch its predecessor made just before a crash (and cannot see yet)
// is returned instead of made twice.
const TokenWindow = 10 * time.Minute

// Event is a decision or outcome of a pass. See pool.Event.
type Event = pool.Event

// Observer receives every event of every pass, synchronously: it must not
// block and must not call back into the scaler.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Options configure a Scaler. Zero values take the documented defaults.
type Options struct {
	// Identity is the scaler's name, written as the owner tag of every
	// instance it launches. A scaler only ever sees and touches instances
	// carrying its own identity, so two scalers in one account never touch
	// each other's instances. Required; at most 256 characters. It is
	// matched literally: the EC2 client escapes the wildcards `*` and `?`
	// (and `\`) EC2 filters would otherwise expand, and checks the owner tag
	// of every instance listed for exact equality, so "team-*" never sees
	// team-blue's instances.
	Identity string
	// Interval between passes of Run; default DefaultInterval.
	Interval time.Duration
	// BusyInterval is the interval while instances boot, provision or
	// wind down; default DefaultBusyInterval (never more than Interval).
	BusyInterval time.Duration
	// MinPassGap is the shortest gap between passes when finished role
	// hooks, or a manager whose demand rises (manager.Waker), wake Run
	// early; default DefaultMinPassGap.
	MinPassGap time.Duration
	// Logger receives the events as log records; nil discards them.
	Logger *slog.Logger
	// Observer receives every event; may be nil.
	Observer Observer
	// DryRun computes and reports decisions but changes nothing: no
	// launches, tags, terminations, role hooks or manager notices.
	DryRun bool
	// Clock returns the current time; default time.Now. Simulations on
	// virtual time set it to the simulator's clock, and Wait with it.
	Clock func() time.Time
	// Wait waits d on the scaler's clock, or until ctx ends, between the
	// passes of Shutdown's wind-down; default a real timer. Set it with
	// Clock: on a simulator, a Wait that advances the simulated clock
	// (ec2sim's Advance) lets a shutdown wind down on simulated time, as
	// backoff/v4 takes a Timer with its Clock.
	Wait func(ctx context.Context, d time.Duration) error
	// HookWait is how long Step waits for the role hooks it started before
	// returning (default 0: never wait; hooks finish in the background and
	// the next pass reads their results). Simulations with instant hooks
	// set it so every pass sees the previous one's hooks done.
	HookWait time.Duration
	// SpotNotices, if set, is polled at the start of every pass for spot
	// interruption notices and rebalance recommendations (see
	// Scaler.HandleSpotNotice for pushing them instead).
	SpotNotices awsctl.SpotNoticeSource
	// Leader, if set, gates every pass and every mutating call: only the
	// replica holding the lease acts. Nil means this scaler always acts.
	// A Leader that also implements Lease fences the calls themselves.
	Leader Leader
	// CallTimeout bounds each mutating cloud call (launch, tag, untag,
	// terminate), the client's rate-limit waits and retries included;
	// default DefaultCallTimeout. A call that runs out is retried next
	// pass (launches under the same idempotency token). With a Lease, a
	// new leader waits the lease's TTL plus CallTimeout before its first
	// mutation.
	CallTimeout time.Duration
	// EC2HealthInterval is how often the scaler reads EC2's scheduled
	// events and status checks of the instances it owns, when the cloud
	// client reports them (awsctl.HealthReader); default
	// DefaultEC2HealthInterval, negative to never read them. Pools replace
	// servers with a scheduled event before it and servers impaired for
	// their ImpairedGrace.
	EC2HealthInterval time.Duration
	// Rails are the safety caps and runaway detectors; the zero value
	// takes the documented defaults.
	Rails Rails
}

// realWait waits d on a real timer, or until ctx ends.
func realWait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrInvalidOptions is wrapped by every validation error of New.
var ErrInvalidOptions = errors.New("invalid scaler options")

// ErrUnknownPool is returned for a pool name the scaler does not have.
var ErrUnknownPool = errors.New("no such pool")

// ErrClosed is returned by Step and Run after Shutdown.
var ErrClosed = errors.New("scaler shut down")

func (o Options) withDefaults() (Options, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidOptions, field, fmt.Sprintf(format, args...))
	}
	if o.Identity == "" {
		return o, bad("Identity", "must not be empty")
	}
	if len(o.Identity) > 256 {
		return o, bad("Identity", "longer than 256 characters")
	}
	if o.Interval < 0 {
		return o, bad("Interval", "must not be negative, got %v", o.Interval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.BusyInterval < 0 || o.MinPassGap < 0 {
		return o, bad("BusyInterval", "BusyInterval and MinPassGap must not be negative")
	}
	if o.BusyInterval == 0 {
		o.BusyInterval = DefaultBusyInterval
	}
	o.BusyInterval = min(o.BusyInterval, o.Interval)
	if o.MinPassGap == 0 {
		o.MinPassGap = DefaultMinPassGap
	}
	if o.CallTimeout < 0 {
		return o, bad("CallTimeout", "must not be negative, got %v", o.CallTimeout)
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.EC2HealthInterval == 0 {
		o.EC2HealthInterval = DefaultEC2HealthInterval
	}
	if o.HookWait < 0 {
		return o, bad("HookWait", "must not be negative, got %v", o.HookWait)
	}
	rails, err := o.Rails.withDefaults()
	if err != nil {
		return o, err
	}
	o.Rails = rails
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Wait == nil {
		o.Wait = realWait
	}
	return o, nil
}
