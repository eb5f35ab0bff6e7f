//go:build !aws

package main

import (
	"context"
	"errors"
	"io"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

func liveRun(_, _ context.Context, _ io.Writer, _ config, _ awsctl.LaunchSpec) error {
	return errors.New("this build has no AWS support: run it with -tags aws (go run -tags aws ./examples/webtier -aws ...)")
}
