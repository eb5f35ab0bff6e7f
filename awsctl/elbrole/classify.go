package elbrole

import (
	"errors"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/awserr"
)

// This file is the one place that knows Elastic Load Balancing's error
// codes. Package ec2client keeps its EC2 equivalent unexported, so the two
// services' codes are mapped separately, onto the same awsctl kinds.

// Error codes the role acts on.
const (
	codeInvalidTarget       = "InvalidTarget"
	codeTargetGroupNotFound = "TargetGroupNotFound"
)

// kindOf maps an Elastic Load Balancing error code (and, for codes it does
// not know, the HTTP status) to an awsctl error kind.
func kindOf(code string, status int) error {
	switch code {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		return awsctl.ErrThrottled
	case codeTargetGroupNotFound, "LoadBalancerNotFound", "ListenerNotFound", "ResourceNotFound":
		return awsctl.ErrNotFound
	case "TooManyTargets", "TooManyRegistrationsForTargetId":
		return awsctl.ErrLimitExceeded
	case "HealthUnavailable", "InternalFailure", "InternalError", "ServiceUnavailable", "Unavailable":
		return awsctl.ErrUnavailable
	case codeInvalidTarget, "ValidationError", "InvalidConfigurationRequest", "OperationNotPermitted",
		"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId",
		"SignatureDoesNotMatch", "IncompleteSignature", "ExpiredToken", "MissingParameter",
		"InvalidParameterValue", "InvalidAction":
		return awsctl.ErrInvalidRequest
	}
	switch {
	case strings.HasSuffix(code, "NotFound"), strings.HasSuffix(code, "NotFoundException"):
		return awsctl.ErrNotFound
	case status >= 500:
		return awsctl.ErrUnavailable
	}
	return awsctl.ErrInvalidRequest
}

// classify turns an error of an API call into an *awsctl.APIError for op,
// with the load balancer's codes (see kindOf).
func classify(op string, err error) error { return awserr.Classify(op, err, kindOf) }

// transient reports whether err may go away by itself: throttling, a
// service or transport failure. Anything else needs a change first.
func transient(err error) bool {
	return errors.Is(err, awsctl.ErrThrottled) || errors.Is(err, awsctl.ErrUnavailable)
}

// isCode reports whether err is an *awsctl.APIError with code.
func isCode(err error, code string) bool {
	var apiErr *awsctl.APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}
