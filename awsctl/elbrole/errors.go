package elbrole

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// ErrInvalidConfig is wrapped by every error New returns for bad input;
// errors.As with a *ConfigError tells which field was wrong.
var ErrInvalidConfig = errors.New("invalid elbrole config")

// ConfigError names the field of the configuration that is wrong.
type ConfigError struct {
	Field   string // e.g. "Config.TargetGroups[1].ARN"
	Problem string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("elbrole: %s %s", e.Field, e.Problem) }

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// ErrNotHealthy is wrapped by the error of a Provision whose target did not
// become healthy in time.
var ErrNotHealthy = errors.New("target not healthy")

// HealthError reports a target that did not become healthy in a target
// group within Config.HealthyTimeout. It unwraps to ErrNotHealthy.
type HealthError struct {
	Instance    string
	TargetGroup string // ARN
	// State, Reason and Description are what the load balancer last
	// reported; State is empty if it could not be read at all.
	State       types.TargetHealthStateEnum
	Reason      types.TargetHealthReasonEnum
	Description string
	Waited      time.Duration
	// Err is the last error reading the target's health, if any.
	Err error
}

func (e *HealthError) Error() string {
	msg := fmt.Sprintf("elbrole: %s not healthy in %s after %v", e.Instance, e.TargetGroup, e.Waited)
	if e.State != "" {
		msg += fmt.Sprintf(": %s", e.State)
		if e.Reason != "" {
			msg += fmt.Sprintf(" (%s)", e.Reason)
		}
		if e.Description != "" {
			msg += ": " + e.Description
		}
	}
	if e.Err != nil {
		msg += fmt.Sprintf("; last error: %v", e.Err)
	}
	return msg
}

// Unwrap returns ErrNotHealthy and the last error, if any.
func (e *HealthError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNotHealthy, e.Err}
	}
	return []error{ErrNotHealthy}
}

// ErrZoneNotServed is wrapped by the error of a target that the load
// balancer does not use because of its configuration: no load balancer uses
// the target group, or the zone of the instance (or of a subnet of the role)
// is not enabled on it. Retrying cannot help; the error also wraps
// ErrInvalidConfig.
var ErrZoneNotServed = errors.New("zone not served by the load balancer")

// ZoneError reports a zone the load balancer of a target group does not
// serve (Target.NotInUse). It unwraps to ErrZoneNotServed and
// ErrInvalidConfig.
type ZoneError struct {
	Instance    string // empty when found by the check at first use
	Zone        string // empty if unknown
	TargetGroup string // ARN
	// Description is the load balancer's, or what the check found.
	Description string
}

func (e *ZoneError) Error() string {
	msg := "elbrole: "
	if e.Instance != "" {
		msg += e.Instance + " "
	}
	if e.Zone != "" {
		msg += "in zone " + e.Zone + " "
	}
	msg += "is not served by the load balancer of target group " + e.TargetGroup +
		" (Target.NotInUse): enable the zone on the load balancer, or launch only in zones it serves"
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Unwrap returns ErrZoneNotServed, ErrInvalidConfig and
// awsctl.ErrInvalidRequest: retrying will not help, and the scaler raises
// its alarm at the first failure.
func (e *ZoneError) Unwrap() []error {
	return []error{ErrZoneNotServed, ErrInvalidConfig, awsctl.ErrInvalidRequest}
}
