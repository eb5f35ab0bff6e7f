//go:build !aws

package main

import (
	"context"
	"errors"
	"io"
)

func awsWorld(context.Context, io.Writer, config) (*world, error) {
	return nil, errors.New("this build has no AWS support: run it with -tags aws (go run -tags aws ./examples/jobqueue -aws ...)")
}
