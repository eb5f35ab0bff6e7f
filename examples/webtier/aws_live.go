//go:build aws

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// liveRun runs the controller against real AWS. It is built only with the
// aws build tag, so the default example does not compile the EC2 SDK.
func liveRun(ctx context.Context, out io.Writer, cfg config, spec awsctl.LaunchSpec) error {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.aws.region))
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cloud, err := ec2client.New(awsCfg, ec2client.Options{Logger: logger})
	if err != nil {
		return err
	}
	app, err := role.New("web", spec, role.Hooks{})
	if err != nil {
		return err
	}
	web, err := elbrole.New(app, elbv2.NewFromConfig(awsCfg), elbrole.Config{
		TargetGroups: []elbrole.TargetGroup{{ARN: cfg.aws.targetGroup, Port: int32(cfg.aws.port)}},
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	tracker, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{TargetPerServer: cfg.target, Min: 2, Max: cfg.max})
	if err != nil {
		return err
	}
	zones := make([]string, len(spec.Subnets))
	for i, s := range spec.Subnets {
		zones[i] = s.Zone
	}
	scaler, err := autoscale.New(cloud, []pool.Config{{
		Name:             "web",
		Role:             web,
		Managers:         []manager.Manager{tracker},
		Types:            []pool.InstanceType{{Name: cfg.aws.instanceType}},
		Zones:            zones,
		Max:              cfg.max,
		WindDownTimeout:  20 * time.Minute, // above ELB's default 300 s deregistration delay
		ProvisionTimeout: 10 * time.Minute,
	}}, autoscale.Options{Identity: "webtier-example", Interval: cfg.interval, Logger: logger})
	if err != nil {
		return err
	}

	// The request rate is the simulated day's, compressed into the run: a
	// real controller observes its load balancer's metrics instead.
	runCtx, cancel := context.WithTimeout(ctx, cfg.length)
	defer cancel()
	start := time.Now()
	day := newLoad(start, cfg.seed)
	speed := float64(24*time.Hour) / float64(cfg.length)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			now := time.Now()
			tracker.Observe(now, day.at(start.Add(time.Duration(float64(now.Sub(start))*speed))))
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	if err := scaler.Run(runCtx); err != nil {
		return err
	}
	fmt.Fprintln(out, "winding every server down before exiting")
	stopCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer stop()
	if err := scaler.Shutdown(stopCtx, autoscale.ShutdownOptions{WindDown: true}); err != nil {
		return errors.Join(err, errors.New("some servers may still run: look for the tag "+pool.TagOwner+"=webtier-example"))
	}
	return nil
}
