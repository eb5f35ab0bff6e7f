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
	if kind, ok := knownKind(code); ok {
		return kind
	}
	if status >= 500 {
		return awsctl.ErrUnavailable
	}
	return awsctl.ErrInvalidRequest
}

// knownKind returns the kind of the codes the client knows, and false for
// the others.
func knownKind(code string) (error, bool) {
	switch code {
	case "InsufficientInstanceCapacity", "InsufficientCapacity", "UnfulfillableCapacity",
		"Unsupported", "InsufficientFreeAddressesInSubnet",
		// The spot price is above the maximum price: this offering is
		// out of reach for now, another may not be.
		"SpotMaxPriceTooLow":
		return awsctl.ErrInsufficientCapacity, true
	case "InstanceLimitExceeded":
		return awsctl.ErrLimitExceeded, true
	case "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded":
		// The vCPU quota of one bucket of families in one market (or the
		// spot instance count) is used up: other buckets and the other
		// market have quotas of their own.
		return awsctl.ErrQuotaExceeded, true
	case "IdempotentParameterMismatch":
		return awsctl.ErrTokenMismatch, true
	case "RequestLimitExceeded":
		return awsctl.ErrThrottled, true
	case "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
		// The request took too long to arrive, or expired on the way: a
		// new attempt, signed anew, may well succeed.
		"RequestTimeout", "RequestExpired":
		return awsctl.ErrUnavailable, true
	case "UnauthorizedOperation", "InvalidParameterValue", "InvalidParameterCombination",
		"InvalidParameter", "MissingParameter", "OptInRequired", "OperationNotPermitted",
		"Blocked", "PendingVerification", "SignatureDoesNotMatch", "InvalidClientTokenId":
		return awsctl.ErrInvalidRequest, true
	}
	switch {
	// InvalidInstanceID.NotFound, InvalidSpotInstanceRequestID.NotFound,
	// InvalidLaunchTemplateName.NotFoundException, ... Just after a
	// launch, InvalidInstanceID.NotFound means "not visible yet" rather
	// than "gone"; callers that can tell the two apart wait (see Tag).
	case strings.HasSuffix(code, ".NotFound"), strings.HasSuffix(code, ".NotFoundException"):
		return awsctl.ErrNotFound, true
	case strings.HasPrefix(code, "AuthFailure"), strings.HasPrefix(code, "Invalid"):
		return awsctl.ErrInvalidRequest, true
	}
	return nil, false
}

// classify turns an error from an SDK call into an *awsctl.APIError for op,
// with EC2's codes (see kindOf).
func classify(op string, err error) error { return awserr.Classify(op, err, kindOf) }

// fleetError is the error of one CreateFleet override, which EC2 reports
// in the answer rather than as a failed call.
func fleetError(code, message string) error {
	return &awsctl.APIError{Op: "CreateFleet", Code: code, Message: message, Kind: kindOf(code, 0)}
}

// sdkDecides are codes of kinds the client calls final that another attempt
// can nevertheless cure, which the SDK's standard retryer recognises by
// more than the code: AuthFailure and SignatureDoesNotMatch are retried when
// the answer's Date header shows the client's clock to be off (the retry is
// then signed with the corrected time); other AuthFailure answers stay
// final.
var sdkDecides = map[string]bool{"AuthFailure": true, "SignatureDoesNotMatch": true}

// sdkRetryable tells the SDK retryer which answers another attempt cannot
// change, and answers "unknown" for every other, so that the SDK's standard
// rules (throttling, 5xx, RequestTimeout, connection errors, clock skew)
// decide. EC2 sends capacity errors with HTTP 500, which the SDK would
// otherwise retry; a launch retried into the same empty pool only delays
// trying another offering.
func sdkRetryable(err error) aws.Ternary {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return aws.UnknownTernary
	}
	code := apiErr.ErrorCode()
	if code == "RequestExpired" {
		// AWS's common errors: the request arrived more than 15 minutes
		// after the time it was signed at, or was signed more than 15
		// minutes ahead. Each attempt is signed anew, at the clock skew
		// the SDK measured from the last answer's Date header, so another
		// attempt can succeed; the SDK's own lists leave this code out.
		return aws.TrueTernary
	}
	kind, known := knownKind(code)
	if !known || sdkDecides[code] {
		return aws.UnknownTernary
	}
	switch kind {
	case awsctl.ErrInsufficientCapacity, awsctl.ErrLimitExceeded, awsctl.ErrQuotaExceeded,
		awsctl.ErrTokenMismatch, awsctl.ErrInvalidRequest, awsctl.ErrNotFound:
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// isCode reports whether err is an *awsctl.APIError with code.
func isCode(err error, code string) bool {
	var apiErr *awsctl.APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}

const (
	codeInstanceNotFound = "InvalidInstanceID.NotFound"
	// codeNotPermitted answers, among others, a TerminateInstances call
	// that names an instance under termination protection.
	codeNotPermitted = "OperationNotPermitted"
)

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
