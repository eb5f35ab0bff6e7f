package awsctl

import (
	"context"
	"time"
)

// HealthReader is implemented by clouds that report what EC2 knows of an
// instance's health: its status checks and the maintenance EC2 has
// scheduled for it (DescribeInstanceStatus in the EC2 API reference). The
// scaler uses it to replace servers before EC2 stops, retires or reboots
// them, and servers whose status checks stay impaired.
type HealthReader interface {
	// InstanceHealth reports, of the instances ids, only those that need
	// attention: those with an upcoming scheduled event, and those running
	// with a status check other than CheckOK (initializing ones included).
	// An instance reported has every upcoming event listed, ordered by
	// NotBefore. A healthy fleet gets an empty answer.
	//
	// Ids the cloud does not know, and instances shutting down or
	// terminated, are left out without error: there is nothing to replace.
	// An empty id is an error of kind ErrInvalidRequest; duplicates count
	// once. No ids means no call and no answer. The order of the answer is
	// unspecified. Implementations ask in batches (EC2 takes at most 100
	// ids a call), so the cost grows with len(ids), not with the fleet.
	// The ids slice stays the caller's: an implementation does not keep it
	// past the call (the scaler reuses it).
	InstanceHealth(ctx context.Context, ids []string) ([]InstanceHealth, error)
}

// InstanceHealth is what EC2 reports about one instance's health.
//
// EC2's "Status checks for Amazon EC2 instances" (EC2 user guide): the
// checks run every minute on every running instance; the system check
// watches the AWS systems the instance runs on (power, network, the host:
// problems that need AWS to repair, or a stop and start to move hosts), the
// instance check watches the instance itself (its OS and network
// configuration: problems the owner repairs, or a replacement).
type InstanceHealth struct {
	// ID is the instance id.
	ID string
	// System and Instance are the results of the system and the instance
	// status checks.
	System, Instance CheckStatus
	// ImpairedSince is when the earliest of the failing checks started to
	// fail (InstanceStatusDetails.impairedSince in the EC2 API reference;
	// for an instance impaired from its launch, its launch time). Zero when
	// no check is impaired, or when EC2 did not say.
	ImpairedSince time.Time
	// Events are the upcoming scheduled events of the instance, by
	// NotBefore. Completed and cancelled events are left out.
	Events []ScheduledEvent
}

// Impaired reports whether a status check of h failed.
func (h InstanceHealth) Impaired() bool {
	return h.System == CheckImpaired || h.Instance == CheckImpaired
}

// CheckStatus is the result of one EC2 status check, as
// InstanceStatusSummary.status in the EC2 API reference names it.
type CheckStatus string

// Status check results. "Status checks for Amazon EC2 instances" (EC2 user
// guide): if all checks pass the status is ok, if one fails it is impaired.
const (
	// CheckOK: the check passes.
	CheckOK CheckStatus = "ok"
	// CheckImpaired: the check fails.
	CheckImpaired CheckStatus = "impaired"
	// CheckInsufficientData: EC2 lacks the data to decide, for now.
	CheckInsufficientData CheckStatus = "insufficient-data"
	// CheckInitializing: the instance has just started running and the
	// check has not passed yet.
	CheckInitializing CheckStatus = "initializing"
	// CheckNotApplicable: the instance is not running (pending, stopping,
	// stopped), so EC2 does not check it.
	CheckNotApplicable CheckStatus = "not-applicable"
)

// Valid reports whether c is one of the statuses above. A cloud may report
// others that EC2 adds later; callers should treat those as not ok.
func (c CheckStatus) Valid() bool {
	switch c {
	case CheckOK, CheckImpaired, CheckInsufficientData, CheckInitializing, CheckNotApplicable:
		return true
	}
	return false
}

// EventCode names the kind of maintenance EC2 has scheduled, as
// InstanceStatusEvent.code in the EC2 API reference does.
type EventCode string

// Scheduled event codes, with what EC2 does at the scheduled time ("Types
// of scheduled events" in "Scheduled events for Amazon EC2 instances", EC2
// user guide).
const (
	// EventInstanceStop: the instance is stopped; started again, it moves
	// to a new host. Only instances backed by Amazon EBS get it.
	EventInstanceStop EventCode = "instance-stop"
	// EventInstanceRetirement: the host is failing beyond repair; the
	// instance is stopped if it is backed by Amazon EBS, terminated if it
	// is backed by instance store.
	EventInstanceRetirement EventCode = "instance-retirement"
	// EventInstanceReboot: the instance is rebooted.
	EventInstanceReboot EventCode = "instance-reboot"
	// EventSystemReboot: the instance's host is rebooted.
	EventSystemReboot EventCode = "system-reboot"
	// EventSystemMaintenance: the instance may be briefly affected by
	// network or power maintenance.
	EventSystemMaintenance EventCode = "system-maintenance"
)

// EventCodes returns every event code above.
func EventCodes() []EventCode {
	return []EventCode{EventInstanceStop, EventInstanceRetirement, EventInstanceReboot, EventSystemReboot, EventSystemMaintenance}
}

// Valid reports whether c is one of the codes above. A cloud may report
// codes EC2 adds later; callers should treat those as disruptive.
func (c EventCode) Valid() bool {
	switch c {
	case EventInstanceStop, EventInstanceRetirement, EventInstanceReboot, EventSystemReboot, EventSystemMaintenance:
		return true
	}
	return false
}

// Stops reports whether EC2 takes the instance away for good at the event
// (instance-stop, instance-retirement): it stops, or is terminated, rather
// than coming back after a reboot or maintenance.
func (c EventCode) Stops() bool {
	return c == EventInstanceStop || c == EventInstanceRetirement
}

// ScheduledEvent is maintenance EC2 has scheduled for an instance
// (InstanceStatusEvent in the EC2 API reference).
type ScheduledEvent struct {
	// ID is EC2's event id ("instance-event-0d59937288b749b32"); it stays
	// the same while the event is pending, even if it is rescheduled.
	ID   string
	Code EventCode
	// Description is EC2's text, such as "The instance is running on
	// degraded hardware".
	Description string
	// NotBefore is the earliest time the event may start: a server should
	// be replaced before it. NotAfter, when set, is the latest time the
	// event ends; it may be unset.
	NotBefore, NotAfter time.Time
}
