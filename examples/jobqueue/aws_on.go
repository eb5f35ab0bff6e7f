//go:build aws

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// loadAWSConfig reads the shared AWS configuration; tests replace it.
var loadAWSConfig = func(ctx context.Context, region string) (aws.Config, error) {
	return awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
}

// awsWorld connects to a real AWS account. It refuses to start unless every
// flag needed to say what it launches is given, and prints what that is.
func awsWorld(ctx context.Context, out io.Writer, cfg config) (*world, error) {
	f := cfg.aws
	var missing []string
	if f.region == "" {
		missing = append(missing, "-region")
	}
	if f.image == "" {
		missing = append(missing, "-image")
	}
	if len(f.subnets) == 0 {
		missing = append(missing, "-subnet")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("real AWS mode needs %s", strings.Join(missing, ", "))
	}
	spec := awsctl.LaunchSpec{ImageID: f.image, SecurityGroupIDs: f.groups}
	var zones []string
	for _, s := range f.subnets {
		id, zone, ok := strings.Cut(s, "=")
		if !ok || id == "" || zone == "" {
			return nil, fmt.Errorf("-subnet %q: want id=zone, such as subnet-0abc=us-east-1a", s)
		}
		spec.Subnets = append(spec.Subnets, awsctl.Subnet{ID: id, Zone: zone})
		zones = append(zones, zone)
	}
	var types []pool.InstanceType
	for _, t := range strings.Split(f.types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, pool.InstanceType{Name: t})
		}
	}
	if len(types) == 0 {
		return nil, errors.New("-types: at least one instance type")
	}
	awsCfg, err := loadAWSConfig(ctx, f.region)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	client, err := ec2client.New(awsCfg, ec2client.Options{Endpoint: f.endpoint})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Real AWS: up to %d on-demand instances of %s from %s in %s (%s),\n",
		cfg.max, f.types, f.image, f.region, strings.Join(f.subnets, ", "))
	fmt.Fprintf(out, "tagged %s=%s. They are terminated when demand falls and on exit (Ctrl-C),\n"+
		"once their running jobs are done.\n\n",
		pool.TagOwner, f.identity)
	return &world{
		cloud: client,
		spec:  spec,
		types: types,
		zones: zones,
		id:    f.identity,
		now:   time.Now,
		wait: func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		},
		winddown: true,
	}, nil
}
