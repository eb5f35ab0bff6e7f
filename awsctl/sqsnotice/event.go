package sqsnotice

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// The EventBridge events the consumer understands, by their detail-type;
// both come from source "aws.ec2".
const (
	DetailTypeInterruption = "EC2 Spot Instance Interruption Warning"
	DetailTypeRebalance    = "EC2 Instance Rebalance Recommendation"
)

// InterruptionWarning is how long after the interruption warning EC2
// reclaims the instance, unless the action is "hibernate", which begins at
// once.
const InterruptionWarning = awsctl.InterruptionNoticeLead

// ErrMalformedEvent is wrapped by the errors about a message that cannot
// be read as an EventBridge event, or an EC2 event that lacks its fields.
var ErrMalformedEvent = errors.New("malformed event")

// envelope holds the fields of an EventBridge event that ParseEvent reads,
// and those of the SNS notification that wraps it when the event reaches
// the queue through an SNS topic without raw message delivery.
type envelope struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       string          `json:"time"`
	Detail     json.RawMessage `json:"detail"`

	Type    string `json:"Type"`
	Message string `json:"Message"`
}

type ec2Detail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
}

// ParseEvent reads one EventBridge event, as EventBridge delivers it to an
// SQS queue or to any other target, directly or wrapped in an SNS
// notification. It returns the notice and true for the two EC2 spot
// events, false and no error for any other event, and an error wrapping
// ErrMalformedEvent for a body that is not an event or an EC2 spot event
// without its instance id or time.
//
// The notice's Time is the event's; an interruption's Deadline is two
// minutes later ([InterruptionWarning]), or the event's time itself for
// the "hibernate" action.
func ParseEvent(body []byte) (awsctl.SpotNotice, bool, error) {
	var ev envelope
	if err := json.Unmarshal(body, &ev); err != nil {
		return awsctl.SpotNotice{}, false, fmt.Errorf("sqsnotice: %w: %v", ErrMalformedEvent, err)
	}
	if ev.DetailType == "" && ev.Type == "Notification" && ev.Message != "" {
		inner := ev.Message
		ev = envelope{}
		if err := json.Unmarshal([]byte(inner), &ev); err != nil {
			return awsctl.SpotNotice{}, false, fmt.Errorf("sqsnotice: SNS message: %w: %v", ErrMalformedEvent, err)
		}
	}
	if ev.Source != "aws.ec2" || (ev.DetailType != DetailTypeInterruption && ev.DetailType != DetailTypeRebalance) {
		return awsctl.SpotNotice{}, false, nil
	}
	at, err := time.Parse(time.RFC3339, ev.Time)
	if err != nil {
		return awsctl.SpotNotice{}, false, fmt.Errorf("sqsnotice: %s: %w: time: %v", ev.DetailType, ErrMalformedEvent, err)
	}
	var d ec2Detail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return awsctl.SpotNotice{}, false, fmt.Errorf("sqsnotice: %s: %w: detail: %v", ev.DetailType, ErrMalformedEvent, err)
	}
	if d.InstanceID == "" {
		return awsctl.SpotNotice{}, false, fmt.Errorf("sqsnotice: %s: %w: no instance-id", ev.DetailType, ErrMalformedEvent)
	}
	if ev.DetailType == DetailTypeRebalance {
		return awsctl.SpotNotice{InstanceID: d.InstanceID, Kind: awsctl.Rebalance, Time: at}, true, nil
	}
	deadline := at.Add(InterruptionWarning)
	if d.InstanceAction == "hibernate" {
		deadline = at
	}
	return awsctl.SpotNotice{
		InstanceID: d.InstanceID,
		Kind:       awsctl.Interruption,
		Time:       at,
		Deadline:   deadline,
		Action:     d.InstanceAction,
	}, true, nil
}
