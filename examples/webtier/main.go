// Command webtier runs a web tier whose servers sit behind a load balancer
// and are kept at the right number by an ec2autoscale Scaler.
//
// The request rate rises and falls over a simulated day, with a flash crowd
// in the afternoon. A TargetTracking manager, fed the load balancer's request
// rate, holds each server at a target number of requests per second. The
// target-group role (package elbrole) registers each new server and grants
// it only once the load balancer reports it healthy; it winds a server down
// by deregistering it and lets it be terminated only once the load balancer
// has drained its requests, so a scale-in never cuts a request off.
//
// By default everything is simulated in virtual time: EC2 (package ec2sim),
// the load balancer with its health checks and deregistration delay (package
// elbsim), and the traffic. A simulated day takes a few seconds and needs no
// AWS account. It prints a timeline and a summary.
//
// With -aws it runs against a real target group instead; see -help. It
// refuses to launch anything without -confirm, and says what it would do.
// On exit (the end of -length, or Ctrl-C) it deregisters every server, waits
// for the load balancer to drain it, and terminates it; a second Ctrl-C
// stops waiting and names the instances left running.
// The real-AWS mode needs the EC2 client, built only with the aws build tag
// so that the default example builds quickly:
//
//	go run -tags aws ./examples/webtier -aws -confirm -target-group arn:... ...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
	"github.com/ec2autoscale/ec2autoscale/examples/internal/interrupt"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

func main() {
	// The first Ctrl-C ends the run and starts the exit wind-down, the
	// second stops waiting for it.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	os.Exit(cli(context.Background(), os.Args[1:], os.Stdout, os.Stderr, interrupts))
}

// cli runs the command with the arguments args and returns its exit
// status. The first value on interrupts ends the run (and, with -aws,
// starts the exit wind-down); a second one stops waiting for the wind-down.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer, interrupts <-chan os.Signal) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "webtier:", err)
		return 2
	}
	runCtx, abortCtx, stop := interrupt.Contexts(ctx, interrupts)
	defer stop()
	if cfg.aws.enabled {
		return runAWS(runCtx, abortCtx, stdout, cfg)
	}
	if _, err := run(runCtx, stdout, cfg); err != nil {
		fmt.Fprintln(stderr, "webtier:", err)
		return 1
	}
	return 0
}

type config struct {
	length, interval, every time.Duration
	seed                    uint64
	max                     int
	target                  float64
	verbose                 bool
	// What the default run hides: servers that turn unhealthy, ALB's
	// slower default health checks, less headroom per server.
	failShare float64
	albChecks bool
	capacity  float64
	aws       awsConfig
}

func parseFlags(args []string, output io.Writer) (config, error) {
	fs := flag.NewFlagSet("webtier", flag.ContinueOnError)
	fs.SetOutput(output)
	cfg := config{}
	fs.DurationVar(&cfg.length, "length", 24*time.Hour, "time to run (simulated time, or wall time with -aws)")
	fs.DurationVar(&cfg.interval, "interval", 30*time.Second, "time between two reconcile passes")
	fs.DurationVar(&cfg.every, "every", time.Hour, "time between two timeline rows")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the traffic noise and the simulator")
	fs.IntVar(&cfg.max, "max", 40, "most servers the pool may hold")
	fs.Float64Var(&cfg.target, "target", 100, "requests per second each server should carry")
	fs.BoolVar(&cfg.verbose, "v", false, "log every scaler decision")
	fs.Float64Var(&cfg.failShare, "fail", 0, "share of servers (0 to 1) that fail their health checks half an hour after they enter service")
	fs.BoolVar(&cfg.albChecks, "alb-checks", false, "ALB's default health checks (every 30 s, healthy after 5, unhealthy after 2) instead of fast ones")
	fs.Float64Var(&cfg.capacity, "capacity", defaultCapacity, "most requests per second a server takes (headroom over -target)")
	cfg.aws.register(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.length <= 0 || cfg.interval <= 0 || cfg.every <= 0 || cfg.max < 2 || !(cfg.target > 0) || !(cfg.capacity > 0) {
		return cfg, errors.New("-length, -interval, -every, -target and -capacity must be positive, -max at least 2")
	}
	if !(cfg.failShare >= 0 && cfg.failShare <= 1) {
		return cfg, errors.New("-fail must be between 0 and 1")
	}
	return cfg, nil
}

// result is what a simulated run measured.
type result struct {
	served, refused, cut      float64 // requests
	meanLatency, worstLatency time.Duration
	peak, launched, final     int // servers
	cost                      float64
	lbCalls                   map[string]int
}

// Simulated load balancer: health checks 10 s apart, healthy after 3 passes
// (with -alb-checks, ALB's defaults: 30 s, 5, unhealthy after 2), and ALB's
// default deregistration delay (cut short once a server has no requests
// left).
const (
	healthCheckInterval = 10 * time.Second
	healthyThreshold    = 3
	albCheckInterval    = 30 * time.Second
	albHealthyThreshold = 5
	albUnhealthy        = 2
	deregistrationDelay = 5 * time.Minute
	tick                = 10 * time.Second
	// failAfter is how long a failing server serves before its checks fail.
	failAfter = 30 * time.Minute
)

func run(ctx context.Context, out io.Writer, cfg config) (result, error) {
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay: ec2sim.LogNormal(45*time.Second, 0.25),
		ListDelay: ec2sim.Uniform(0, 5*time.Second),
		Seed:      int64(cfg.seed),
	})
	if err != nil {
		return result{}, err
	}
	clock := newVirtualClock(sim)
	var tr *traffic
	interval, healthy, unhealthy := healthCheckInterval, healthyThreshold, 0
	if cfg.albChecks {
		interval, healthy, unhealthy = albCheckInterval, albHealthyThreshold, albUnhealthy
	}
	lb, err := elbsim.New(elbsim.Config{
		Clock:               sim.Now,
		Instances:           sim.Instance,
		HealthCheckInterval: interval,
		HealthyThreshold:    healthy,
		UnhealthyThreshold:  unhealthy,
		DeregistrationDelay: deregistrationDelay,
	})
	if err != nil {
		return result{}, err
	}
	arn, err := lb.CreateTargetGroup("web", 8080)
	if err != nil {
		return result{}, err
	}
	tr = newTraffic(lb, arn, sim.Instance, cfg.capacity)

	// The application needs no hooks of its own: it starts from the image
	// at boot, the load balancer's health checks say when it is ready, and
	// the load balancer's drain says when its requests are over.
	app, err := role.New("web", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	if err != nil {
		return result{}, err
	}
	// The simulated load balancer has no rate limit, and the buckets count
	// wall time, not simulated time: make them large. The simulation moves
	// in 10 s ticks, so a batch window would hold every registration for a
	// whole tick: send them at once.
	unlimited := ratelimit.Limit{Burst: 1_000_000, PerSecond: 1_000_000}
	web, err := elbrole.New(app, lb, elbrole.Config{
		TargetGroups:   []elbrole.TargetGroup{{ARN: arn}},
		HealthyTimeout: 5 * time.Minute, // ALB's checks take 150 s at least
		BatchWindow:    elbrole.NoBatchWindow,
		Limits:         elbrole.Limits{Describe: unlimited, Registration: unlimited},
		Clock:          clock,
	})
	if err != nil {
		return result{}, err
	}
	tracker, err := manager.NewTargetTracking("web", manager.TargetTrackingConfig{
		TargetPerServer: cfg.target,
		Min:             2,
		Max:             cfg.max,
	})
	if err != nil {
		return result{}, err
	}
	logger := slog.New(slog.DiscardHandler)
	if cfg.verbose {
		logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	scaler, err := autoscale.New(sim, []pool.Config{{
		Name:     "web",
		Role:     web,
		Managers: []manager.Manager{tracker},
		Types:    []pool.InstanceType{{Name: "c5.large"}},
		Zones:    []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		Max:      cfg.max,
		// Longer than the deregistration delay, so a drain is never cut
		// short; longer than the role's HealthyTimeout for a provision.
		WindDownTimeout:  deregistrationDelay + 5*time.Minute,
		ProvisionTimeout: 7 * time.Minute,
	}}, autoscale.Options{
		Identity: "webtier-example",
		Interval: cfg.interval,
		Clock:    sim.Now,
		Logger:   logger,
	})
	if err != nil {
		return result{}, err
	}
	defer scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{})

	start := sim.Now()
	day := newLoad(start, cfg.seed)
	servers := scaler.Pool("web")
	res := result{}
	// Each row shows the requests refused since the previous one (none
	// healthy, or all overloaded), so that a reader sees when refusals
	// happen; a last row at the end of the run closes the timeline, and the
	// rows add up to the summary's total.
	fmt.Fprintf(out, "%-5s %6s | %7s %8s %7s | %7s %7s | %7s | %8s\n",
		"time", "req/s", "healthy", "draining", "booting", "req/srv", "latency", "refused", "cost")
	var rate, refusedBefore float64
	var st pool.Status
	row := func(at time.Time) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		fmt.Fprintf(out, "%-5s %6.0f | %7d %8d %7d | %7.0f %5.0fms | %7.0f | %8s\n",
			clockTime(at.Sub(start)), rate, tr.healthy, tr.draining, st.Booting+st.Provisioning,
			tr.perServer, float64(tr.latency)/float64(time.Millisecond), tr.refused-refusedBefore,
			fmt.Sprintf("$%.2f", sim.Bill().Total))
		refusedBefore = tr.refused
	}
	// Servers chosen to fail, with when their health checks start failing.
	failRNG := rand.New(rand.NewPCG(cfg.seed, 17))
	seen, failAt := map[string]bool{}, map[string]time.Time{}
	var lastStep, lastRow time.Time
	for now := start; now.Sub(start) < cfg.length; now = sim.Now() {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		for _, tg := range lb.Targets(arn) {
			if tg.State == "healthy" && !seen[tg.ID] {
				seen[tg.ID] = true
				if failRNG.Float64() < cfg.failShare {
					failAt[tg.ID] = now.Add(failAfter)
				}
			}
		}
		for id, at := range failAt {
			if !now.Before(at) {
				lb.SetFailing(id, true)
				delete(failAt, id)
			}
		}
		rate = day.at(now)
		tr.serve(now, tick, rate)
		tracker.Observe(now, rate) // the load balancer's request rate
		if lastStep.IsZero() || now.Sub(lastStep) >= cfg.interval {
			if err := scaler.Step(ctx); err != nil && cfg.verbose {
				fmt.Fprintln(out, "pass:", err)
			}
			clock.settle()
			lastStep = now
		}
		st = servers.Status()
		res.peak = max(res.peak, st.Live())
		if lastRow.IsZero() || now.Sub(lastRow) >= cfg.every {
			row(now)
			lastRow = now
		}
		if err := clock.advance(tick); err != nil {
			return res, err
		}
		tr.reap()
	}
	row(sim.Now()) // the state of the last tick, the refusals since the last row

	tr.mu.Lock()
	res.served, res.refused, res.cut = tr.served, tr.refused, tr.cut
	if tr.served > 0 {
		res.meanLatency = time.Duration(tr.latencySum / tr.served * float64(time.Second))
	}
	res.worstLatency = tr.worstLatency
	res.final = tr.healthy
	tr.mu.Unlock()
	res.launched = len(sim.Instances())
	res.cost = sim.Bill().Total
	res.lbCalls = lb.Calls()
	summary(out, res, sim.Calls())
	return res, nil
}

func clockTime(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

func summary(out io.Writer, r result, calls map[string]int) {
	total := r.served + r.refused
	share := 0.0
	if total > 0 {
		share = 100 * r.refused / total
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "requests served      %.0f (%.0f cut off by a scale-in)\n", r.served, r.cut)
	fmt.Fprintf(out, "refused, overloaded  %.0f (%.3f%%)\n", r.refused, share)
	fmt.Fprintf(out, "latency              mean %v, worst %v\n", r.meanLatency.Round(time.Millisecond), r.worstLatency.Round(time.Millisecond))
	fmt.Fprintf(out, "servers              peak %d, launched %d, in service at the end %d\n", r.peak, r.launched, r.final)
	fmt.Fprintf(out, "cost                 $%.2f\n", r.cost)
	fmt.Fprintf(out, "load balancer calls  register %d, deregister %d, describe health %d\n",
		r.lbCalls[elbsim.OpRegisterTargets], r.lbCalls[elbsim.OpDeregisterTargets], r.lbCalls[elbsim.OpDescribeTargetHealth])
	fmt.Fprintf(out, "cloud calls          list %d, launch %d, tag %d, untag %d, terminate %d\n",
		calls[ec2sim.OpListInstances], calls[ec2sim.OpLaunch], calls[ec2sim.OpTag], calls[ec2sim.OpUntag], calls[ec2sim.OpTerminate])
}
