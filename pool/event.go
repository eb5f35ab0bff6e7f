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
)

var eventNames = map[EventKind]string{
	EventLaunch:          "launch",
	EventLaunchFailed:    "launch-failed",
	EventGrant:           "grant",
	EventWindDown:        "wind-down",
	EventRestore:         "restore",
	EventTerminate:       "terminate",
	EventProvisioned:     "provisioned",
	EventProvisionFailed: "provision-failed",
	EventHookFailed:      "hook-failed",
	EventManagerError:    "manager-error",
	EventDemandClamped:   "demand-clamped",
	EventAtMax:           "at-max",
	EventBadTag:          "bad-tag",
	EventCloudError:      "cloud-error",
	EventUnknownPool:     "unknown-pool",
	EventRevoke:          "revoke",
	EventNoCapacity:      "no-capacity",
	EventInterrupted:     "interrupted",
	EventRebalance:       "rebalance",
	EventReplace:         "replace",
	EventReplaceSkipped:  "replace-skipped",
	EventAlarm:           "alarm",
	EventAlarmCleared:    "alarm-cleared",
	EventHandOver:        "hand-over",
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
	Time     time.Time
	Kind     EventKind
	Pool     string
	Instance string // empty for pool-wide events
	Manager  string
	// Capacity is the capacity units concerned (launches, clamps).
	Capacity int
	Market   awsctl.Market
	Reason   string
	Err      error
	// Inputs are the figures that decided, for logs and debugging.
	Inputs []slog.Attr
	// DryRun is set when the decision was computed but not carried out.
	DryRun bool
}

// Attrs returns the event as log attributes.
func (e Event) Attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 8+len(e.Inputs))
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
