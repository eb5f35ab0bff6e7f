package awserr_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/awserr"
)

func kinds(code string, status int) error {
	if code == "Slow" {
		return awsctl.ErrThrottled
	}
	return awsctl.ErrInvalidRequest
}

func TestClassify(t *testing.T) {
	assert.NoError(t, awserr.Classify("Op", nil, kinds))

	err := awserr.Classify("Op", &smithy.GenericAPIError{Code: "Slow", Message: "calm down"}, kinds)
	var api *awsctl.APIError
	if assert.ErrorAs(t, err, &api) {
		assert.Equal(t, "Slow", api.Code)
		assert.Equal(t, "calm down", api.Message)
		assert.Equal(t, "Op", api.Op)
	}
	assert.ErrorIs(t, err, awsctl.ErrThrottled)

	err = awserr.Classify("Op", context.Canceled, kinds)
	assert.ErrorIs(t, err, context.Canceled, "the caller's cancellation, not a cloud failure")
	assert.NotErrorAs(t, err, &api)

	assert.ErrorIs(t, awserr.Classify("Op", errors.New("connection reset"), kinds), awsctl.ErrUnavailable)
	var invalid smithy.InvalidParamsError
	invalid.Add(smithy.NewErrParamRequired("Name"))
	assert.ErrorIs(t, awserr.Classify("Op", invalid, kinds), awsctl.ErrInvalidRequest)
}
