package pool

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// EventKind says what a decision or outcome was.
type EventKind int

// Event kinds.
const (
	EventLaunch EventKind = iota + 1
	EventLaunchFailed
	EventGrant
	EventWindDown
	EventRestore
	EventTerminate
	EventProvisioned
	EventProvisionFailed
	EventHookFailed
	EventManagerError
	EventDemandClamped
	EventAtMax
	EventBadTag
	EventCloudError
	EventUnknownPool
	EventRevoke
	EventNoCapacity
	EventInterrupted
	EventRebalance
	EventReplace
	EventReplaceSkipped
	EventAlarm
	EventAlarmCleared
	// EventHandOver: a winding-down server is kept, not terminated: once
	// wound down it goes back to the pool for another manager (or Min).
	EventHandOver
	// EventLaunchCapped: a launch the pool decided was held back or cut
	// by the scaler's safety rails (Scaler.Pause, or a cap of
	// autoscale.Rails); Capacity is the units held back, Reason says
	// which. It is a decision, not a failure: it never counts as a
	// failed launch.
	EventLaunchCapped
	// EventWindDownTimedOut: a wind-down passed its deadline and the
	// server is terminated though its role never reported it wound down.
	EventWindDownTimedOut
	// EventWorkMarket: the market chosen for a class of a manager's work
	// (manager.Request.Work) changed; Market is the one chosen, Capacity
	// the class's units, Reason and Inputs the figures that decided.
	EventWorkMarket
)

var eventNames = map[EventKind]string{
	EventLaunch:           "launch",
	EventLaunchFailed:     "launch-failed",
	EventGrant:            "grant",
	EventWindDown:         "wind-down",
	EventRestore:          "restore",
	EventTerminate:        "terminate",
	EventProvisioned:      "provisioned",
	EventProvisionFailed:  "provision-failed",
	EventHookFailed:       "hook-failed",
	EventManagerError:     "manager-error",
	EventDemandClamped:    "demand-clamped",
	EventAtMax:            "at-max",
	EventBadTag:           "bad-tag",
	EventCloudError:       "cloud-error",
	EventUnknownPool:      "unknown-pool",
	EventRevoke:           "revoke",
	EventNoCapacity:       "no-capacity",
	EventInterrupted:      "interrupted",
	EventRebalance:        "rebalance",
	EventReplace:          "replace",
	EventReplaceSkipped:   "replace-skipped",
	EventAlarm:            "alarm",
	EventAlarmCleared:     "alarm-cleared",
	EventHandOver:         "hand-over",
	EventLaunchCapped:     "launch-capped",
	EventWindDownTimedOut: "wind-down-timed-out",
	EventWorkMarket:       "work-market",
}

func (k EventKind) String() string {
	if s, ok := eventNames[k]; ok {
		return s
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is one decision or outcome, with the inputs that decided it. Events
// are plain data: observers may keep them.
type Event struct {
	// Time is the pass's time on the scaler's clock (Options.Clock).
	Time     time.Time
	Kind     EventKind
	Pool     string
	Instance string // empty for pool-wide events
	Manager  string
	// Capacity is the capacity units concerned (launches, clamps).
	Capacity int
	Market   awsctl.Market
	// InstanceType and Zone are the instance's, or, on a launch event,
	// those of every instance in Instances.
	InstanceType string
	Zone         string
	// Instances are the ids an EventLaunch launched. A launch that got
	// instances of several types, zones or markets is reported as one
	// event per (type, zone, market).
	Instances []string
	Reason    string
	Err       error
	// Inputs are the figures that decided, for logs and debugging. Keys
	// by kind:
	//
	//	launch           requested (units the launch asked for),
	//	                 instances (instances in EC2's whole answer)
	//	launch-capped    requested (units before the rail),
	//	                 allowed (units left to launch)
	//	grant            held (units the manager holds), target (its target)
	//	wind-down        deadline, age (time since launch), when it starts
	//	terminate        age
	//	interrupted      deadline (EC2 reclaims the server then)
	//	work-market      class, run, checkpoint, width (the work),
	//	                 spot (the best spot offering's price per unit-hour),
	//	                 interruption (the expected cost interruptions add
	//	                 to it per unit-hour of work), rate (that offering's
	//	                 interruptions per hour), on_demand (the cheapest
	//	                 on-demand price per unit-hour)
	//
	// Other kinds carry none.
	Inputs []slog.Attr
	// DryRun is set when the decision was computed but not carried out.
	DryRun bool
}

// Attrs returns the event as log attributes.
func (e Event) Attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 11+len(e.Inputs))
	attrs = append(attrs, slog.String("event", e.Kind.String()))
	if e.Pool != "" {
		attrs = append(attrs, slog.String("pool", e.Pool))
	}
	if e.Instance != "" {
		attrs = append(attrs, slog.String("instance", e.Instance))
	}
	if e.Manager != "" {
		attrs = append(attrs, slog.String("manager", e.Manager))
	}
	if e.Capacity != 0 {
		attrs = append(attrs, slog.Int("capacity", e.Capacity))
	}
	if e.Market != "" {
		attrs = append(attrs, slog.String("market", string(e.Market)))
	}
	if e.InstanceType != "" {
		attrs = append(attrs, slog.String("instance_type", e.InstanceType))
	}
	if e.Zone != "" {
		attrs = append(attrs, slog.String("zone", e.Zone))
	}
	if len(e.Instances) > 0 {
		attrs = append(attrs, slog.Any("instances", e.Instances))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	if e.DryRun {
		attrs = append(attrs, slog.Bool("dry_run", true))
	}
	return append(attrs, e.Inputs...)
}
