package ec2client

import (
	"errors"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/awserr"
)

// This file is the one place that knows EC2's error codes.

// kindOf maps an EC2 error code (and, for codes it does not know, the HTTP
// status) to an awsctl error kind.
func kindOf(code string, status int) error {
	switch code {
	case "InsufficientInstanceCapacity", "InsufficientCapacity", "UnfulfillableCapacity",
		"MaxSpotInstanceCountExceeded", "Unsupported", "InsufficientFreeAddressesInSubnet",
		// The spot price is above the maximum price: this offering is
		// out of reach for now, another may not be.
		"SpotMaxPriceTooLow":
		return awsctl.ErrInsufficientCapacity
	case "InstanceLimitExceeded", "VcpuLimitExceeded":
		return awsctl.ErrLimitExceeded
	case "RequestLimitExceeded":
		return awsctl.ErrThrottled
	case "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable":
		return awsctl.ErrUnavailable
	case "UnauthorizedOperation", "InvalidParameterValue", "InvalidParameterCombination",
		"InvalidParameter", "MissingParameter", "IdempotentParameterMismatch", "OptInRequired",
		"Blocked", "PendingVerification", "SignatureDoesNotMatch", "InvalidClientTokenId":
		return awsctl.ErrInvalidRequest
	}
	switch {
	// InvalidInstanceID.NotFound, InvalidSpotInstanceRequestID.NotFound,
	// InvalidLaunchTemplateName.NotFoundException, ... Just after a
	// launch, InvalidInstanceID.NotFound means "not visible yet" rather
	// than "gone"; callers that can tell the two apart wait (see Tag).
	case strings.HasSuffix(code, ".NotFound"), strings.HasSuffix(code, ".NotFoundException"):
		return awsctl.ErrNotFound
	case strings.HasPrefix(code, "AuthFailure"), strings.HasPrefix(code, "Invalid"):
		return awsctl.ErrInvalidRequest
	case status >= 500:
		return awsctl.ErrUnavailable
	}
	return awsctl.ErrInvalidRequest
}

// classify turns an error from an SDK call into an *awsctl.APIError for op,
// with EC2's codes (see kindOf).
func classify(op string, err error) error { return awserr.Classify(op, err, kindOf) }

// fleetError is the error of one CreateFleet override, which EC2 reports
// in the answer rather than as a failed call.
func fleetError(code, message string) error {
	return &awsctl.APIError{Op: "CreateFleet", Code: code, Message: message, Kind: kindOf(code, 0)}
}

// sdkRetryable tells the SDK retryer not to retry answers that another
// attempt cannot change. EC2 sends capacity errors with HTTP 500, which the
// SDK would otherwise retry; a launch retried into the same empty pool only
// delays trying another offering.
func sdkRetryable(err error) aws.Ternary {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return aws.UnknownTernary
	}
	switch kindOf(apiErr.ErrorCode(), 0) {
	case awsctl.ErrInsufficientCapacity, awsctl.ErrLimitExceeded, awsctl.ErrInvalidRequest, awsctl.ErrNotFound:
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// isCode reports whether err is an *awsctl.APIError with code.
func isCode(err error, code string) bool {
	var apiErr *awsctl.APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}

const codeInstanceNotFound = "InvalidInstanceID.NotFound"

var instanceIDPattern = regexp.MustCompile(`\bi-[0-9a-f]{8,17}\b`)

// notFoundIDs returns the instance ids an InvalidInstanceID.NotFound error
// names ("The instance IDs 'i-1, i-2' do not exist").
func notFoundIDs(err error) []string {
	var apiErr *awsctl.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != codeInstanceNotFound {
		return nil
	}
	return instanceIDPattern.FindAllString(apiErr.Message, -1)
}
