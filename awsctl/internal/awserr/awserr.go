package awserr

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// KindFunc maps a service's error code and HTTP status (0 when unknown) to
// one of the awsctl error kinds.
type KindFunc func(code string, status int) error

// Classify turns err, returned by the SDK call op, into an *awsctl.APIError
// whose kind kindOf gives. A done context is returned as such (wrapped with
// op), so that callers see their own cancellation rather than a cloud
// failure; parameters the SDK refused before sending are ErrInvalidRequest;
// no answer at all (a transport failure the retryer gave up on) is
// ErrUnavailable. A nil err is nil.
func Classify(op string, err error, kindOf KindFunc) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		status := 0
		var respErr *smithyhttp.ResponseError
		if errors.As(err, &respErr) {
			status = respErr.HTTPStatusCode()
		}
		return &awsctl.APIError{Op: op, Code: apiErr.ErrorCode(), Message: apiErr.ErrorMessage(), Kind: kindOf(apiErr.ErrorCode(), status)}
	}
	var invalid smithy.InvalidParamsError
	if errors.As(err, &invalid) {
		return &awsctl.APIError{Op: op, Message: invalid.Error(), Kind: awsctl.ErrInvalidRequest}
	}
	return &awsctl.APIError{Op: op, Message: err.Error(), Kind: awsctl.ErrUnavailable}
}
