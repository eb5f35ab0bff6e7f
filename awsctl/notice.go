package awsctl

import (
	"context"
	"time"
)

// InterruptionNoticeLead is the time from a spot interruption notice to EC2
// reclaiming the instance: "two minutes before Amazon EC2 stops or
// terminates your instance" ("Spot Instance interruption notices", Amazon
// EC2 User Guide). Every piece of the library that reckons with the notice
// uses this one value.
const InterruptionNoticeLead = 2 * time.Minute

// SpotNoticeKind says what EC2 announced about a spot instance.
type SpotNoticeKind int

const (
	// Interruption: EC2 will reclaim the instance at the notice's
	// Deadline, two minutes after the notice.
	Interruption SpotNoticeKind = iota + 1
	// Rebalance: EC2 recommends moving work off the instance, which is at
	// elevated risk of interruption. It often comes well before an
	// interruption notice, or without one.
	Rebalance
)

func (k SpotNoticeKind) String() string {
	switch k {
	case Interruption:
		return "interruption"
	case Rebalance:
		return "rebalance"
	}
	return "unknown"
}

// SpotNotice is one announcement about a spot instance, as delivered by the
// instance metadata service, by EventBridge, or by a simulator.
type SpotNotice struct {
	InstanceID string
	Kind       SpotNoticeKind
	// Time the notice was issued.
	Time time.Time
	// Deadline is when EC2 acts on an interruption; zero for a rebalance
	// recommendation.
	Deadline time.Time
	// Action EC2 takes at the deadline: "terminate", "stop" or
	// "hibernate".
	Action string
}

// SpotNoticeSource is implemented by feeds of spot notices that can be
// polled: the scaler drains it at the start of every pass.
type SpotNoticeSource interface {
	// SpotNotices returns the notices received since the last call.
	SpotNotices(ctx context.Context) ([]SpotNotice, error)
}
