package sqsnotice

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/awserr"
)

// kindOf maps an SQS error code (and, for codes it does not know, the HTTP
// status) to an awsctl error kind. SQS answers in the JSON protocol with
// codes such as "QueueDoesNotExist", and, for compatibility, may name the
// older query-protocol code ("AWS.SimpleQueueService.NonExistentQueue")
// instead.
func kindOf(code string, status int) error {
	switch code {
	case "RequestThrottled", "ThrottlingException", "Throttling", "KmsThrottled", "TooManyRequestsException":
		return awsctl.ErrThrottled
	case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "ResourceNotFoundException":
		return awsctl.ErrNotFound
	case "OverLimit":
		// Too many messages in flight: the queue's limit, not the call's.
		return awsctl.ErrLimitExceeded
	case "InternalError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException":
		return awsctl.ErrUnavailable
	}
	if status >= 500 {
		return awsctl.ErrUnavailable
	}
	// AccessDenied, InvalidAddress, InvalidSecurity, KmsAccessDenied,
	// ReceiptHandleIsInvalid, ...: the same call will fail again.
	return awsctl.ErrInvalidRequest
}

// classify turns an error from an SDK call into an *awsctl.APIError for op,
// with SQS's codes (see kindOf), naming the package.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqsnotice: %w", awserr.Classify(op, err, kindOf))
}

// batchEntryError is the error of one entry of a batch call, which SQS
// reports in the answer rather than as a failed call.
func batchEntryError(op string, f types.BatchResultErrorEntry) error {
	code := aws.ToString(f.Code)
	kind := kindOf(code, 0)
	if !f.SenderFault && kind == awsctl.ErrInvalidRequest {
		kind = awsctl.ErrUnavailable
	}
	return &awsctl.APIError{Op: op, Code: code, Message: aws.ToString(f.Message), Kind: kind}
}
