//go:build aws

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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

// awsConfigs read the shared AWS configuration, for the EC2 and the load
// balancer clients; tests replace it.
var awsConfigs = func(ctx context.Context, region string) (ec2Cfg, elbCfg aws.Config, err error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	return cfg, cfg, err
}

const identity = "webtier-example"

// liveRun runs the controller against real AWS until ctx ends or -length
// has passed, then winds every server down, unless abort ends first. It is
// built only with the aws build tag, so the default example does not
// compile the EC2 SDK.
func liveRun(ctx, abort context.Context, out io.Writer, cfg config, spec awsctl.LaunchSpec) error {
	ec2Cfg, elbCfg, err := awsConfigs(ctx, cfg.aws.region)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cloud, err := ec2client.New(ec2Cfg, ec2client.Options{Logger: logger})
	if err != nil {
		return err
	}
	app, err := role.New("web", spec, role.Hooks{})
	if err != nil {
		return err
	}
	web, err := elbrole.New(app, elbv2.NewFromConfig(elbCfg), elbrole.Config{
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
	const windDownTimeout = 20 * time.Minute // above ELB's default 300 s deregistration delay
	scaler, err := autoscale.New(cloud, []pool.Config{{
		Name:             "web",
		Role:             web,
		Managers:         []manager.Manager{tracker},
		Types:            []pool.InstanceType{{Name: cfg.aws.instanceType}},
		Zones:            zones,
		Max:              cfg.max,
		WindDownTimeout:  windDownTimeout,
		ProvisionTimeout: 10 * time.Minute,
	}}, autoscale.Options{Identity: identity, Interval: cfg.interval, Logger: logger})
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
	observed := make(chan struct{})
	go func() {
		defer close(observed)
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
	runErr := scaler.Run(runCtx)
	cancel()
	<-observed
	if runErr != nil {
		return runErr
	}
	fmt.Fprintln(out, "Winding every server down: deregistering, waiting for the load balancer to drain, terminating.\n"+
		"Press Ctrl-C again to stop waiting and leave the servers running.")
	// Past windDownTimeout the pool terminates a server anyway; the bound
	// here only covers a cloud that keeps failing.
	stopCtx, stop := context.WithTimeout(abort, windDownTimeout+10*time.Minute)
	defer stop()
	if err := scaler.Shutdown(stopCtx, autoscale.ShutdownOptions{WindDown: true}); err != nil {
		return leftRunning(context.WithoutCancel(abort), cloud, err)
	}
	fmt.Fprintln(out, "Every server is terminated.")
	return nil
}

// leftRunning is the error of a wind-down that did not finish: the
// instances still running, and how to find them.
func leftRunning(ctx context.Context, cloud awsctl.CloudClient, cause error) error {
	if errors.Is(cause, context.Canceled) {
		cause = errors.New("interrupted again")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	insts, err := cloud.ListInstances(ctx, awsctl.ListFilter{Tags: map[string]string{pool.TagOwner: identity}})
	if err != nil {
		return fmt.Errorf("wind-down stopped (%w); listing what is left failed (%w): look for instances tagged %s=%s",
			cause, err, pool.TagOwner, identity)
	}
	var ids []string
	for _, inst := range insts {
		if inst.State.Live() {
			ids = append(ids, inst.ID)
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("wind-down stopped (%w), but no instance is left running", cause)
	}
	return fmt.Errorf("wind-down stopped (%w): %d instances left running, tagged %s=%s: %s",
		cause, len(ids), pool.TagOwner, identity, strings.Join(ids, " "))
}
