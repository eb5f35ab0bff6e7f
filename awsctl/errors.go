package awsctl

import (
	"errors"
	"fmt"
)

// Error kinds a CloudClient returns, wrapped, so that callers can decide with
// errors.Is without knowing any provider's error codes.
var (
	// ErrInsufficientCapacity: EC2 has no capacity for this offering now.
	// Another zone, type or market may work; the same one may work later.
	ErrInsufficientCapacity = errors.New("insufficient capacity")
	// ErrThrottled: the request rate is too high; retry later.
	ErrThrottled = errors.New("request throttled")
	// ErrNotFound: the resource does not exist (or is not visible yet).
	ErrNotFound = errors.New("not found")
	// ErrLimitExceeded: an account-wide limit (instances) stops the call.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrQuotaExceeded: a quota of one bucket of offerings is used up: the
	// vCPU quota of an instance family's bucket in one market
	// (VcpuLimitExceeded), or the spot instance count
	// (MaxSpotInstanceCountExceeded). Other families and the other market
	// have quotas of their own and may still launch.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrTokenMismatch: the idempotency token was already used for a
	// request with other parameters (IdempotentParameterMismatch). The
	// request itself may be fine: send it again under a new token.
	ErrTokenMismatch = errors.New("idempotency token reused with other parameters")
	// ErrInvalidRequest: the request is wrong or not permitted; retrying
	// the same request will not help.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnavailable: a transient server-side or transport failure.
	ErrUnavailable = errors.New("service unavailable")
)

// APIError is a failed cloud call. It unwraps to one of the Err* kinds.
type APIError struct {
	Op      string // operation, e.g. "RunInstances"
	Code    string // provider error code, e.g. "InsufficientInstanceCapacity"
	Message string // provider message
	Kind    error  // one of the Err* values
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: %s: %v", e.Op, e.Code, e.Kind)
	}
	return fmt.Sprintf("%s: %s: %s", e.Op, e.Code, e.Message)
}

// Unwrap returns the error kind.
func (e *APIError) Unwrap() error { return e.Kind }

// LaunchError reports that one offering of a launch could not be filled.
type LaunchError struct {
	Offering Offering
	Market   Market
	Err      error
}

func (e *LaunchError) Error() string {
	return fmt.Sprintf("launch %s %s in %s: %v", e.Market, e.Offering.InstanceType, e.Offering.Zone, e.Err)
}

func (e *LaunchError) Unwrap() error { return e.Err }
