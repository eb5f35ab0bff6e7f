// Command jobqueue runs a job-queue service whose servers are kept at the
// right number by an ec2autoscale Scaler.
//
// Jobs arrive in bursts and each runs for a while on one server. A Queue
// manager turns the queue's length into a server count; the role's wind-down
// stops a server from taking new jobs and reports it wound down once its
// current job is done, so no job is ever cut short by a scale-down.
//
// By default it runs on the simulated EC2 (package ec2sim) in virtual time:
// eight simulated hours take a second or two, and need no AWS account. It
// prints a timeline and a summary.
//
// With -http it also serves the scaler's status page (package
// autoscale/statuspage): pools, servers by state, alarms and the latest
// decisions with their reasons, as HTML at / and /status, and as JSON with
// ?format=json. The simulation then runs at a watchable pace, -speed
// simulated seconds a real second (a minute a second by default), and the
// page stays up after the summary until Ctrl-C:
//
//	go run ./examples/jobqueue -http :8080    # then open http://localhost:8080/?refresh=2
//
// With -aws it runs the same service on a real AWS account, on the wall
// clock: the jobs are still simulated in-process, but the servers are real
// EC2 instances, launched from -image into the -subnet list. On exit (the end
// of -length, or Ctrl-C) it takes no new job, lets the running ones finish,
// and terminates every server; a second Ctrl-C stops waiting and names the
// instances left running. That mode needs the EC2 client, which is built
// only with the aws build tag, so that the default example builds in
// seconds:
//
//	go run -tags aws ./examples/jobqueue -aws -region us-east-1 \
//	    -image ami-0abc... -subnet subnet-0abc=us-east-1a -security-group sg-0abc \
//	    -types c5.large,m5.large -max 5 -length 1h
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/autoscale/statuspage"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
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
	err := run(context.Background(), os.Args[1:], os.Stdout, interrupts)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobqueue:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, output io.Writer) (config, error) {
	fs := flag.NewFlagSet("jobqueue", flag.ContinueOnError)
	fs.SetOutput(output)
	cfg := config{}
	fs.DurationVar(&cfg.length, "length", 8*time.Hour, "time to run (simulated time, or wall time with -aws)")
	fs.DurationVar(&cfg.interval, "interval", 30*time.Second, "time between two reconcile passes")
	fs.DurationVar(&cfg.every, "every", 30*time.Minute, "time between two timeline rows")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the job arrivals and the simulator")
	fs.IntVar(&cfg.max, "max", 40, "most servers the pool may hold")
	fs.BoolVar(&cfg.verbose, "v", false, "log every scaler decision")
	fs.StringVar(&cfg.http, "http", "", "serve the status page at this address, such as :8080, and keep it up until Ctrl-C")
	fs.Float64Var(&cfg.speed, "speed", defaultSpeed, "simulated seconds per real second, with -http on the simulator")
	fs.BoolVar(&cfg.aws.enabled, "aws", false, "run against real AWS (launches real instances; needs a build with -tags aws)")
	fs.StringVar(&cfg.aws.region, "region", "", "AWS region, with -aws")
	fs.StringVar(&cfg.aws.endpoint, "endpoint", "", "EC2-compatible endpoint URL, with -aws")
	fs.StringVar(&cfg.aws.image, "image", "", "AMI id of the workers, with -aws")
	fs.StringVar(&cfg.aws.types, "types", "c5.large", "comma-separated instance types, with -aws")
	fs.Var(&cfg.aws.subnets, "subnet", "subnet as id=zone (repeatable), with -aws")
	fs.Var(&cfg.aws.groups, "security-group", "security group id (repeatable), with -aws")
	fs.StringVar(&cfg.aws.identity, "identity", "jobqueue-example", "owner tag value of the scaler, with -aws")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.length <= 0 || cfg.interval <= 0 || cfg.every <= 0 || cfg.max < 1 {
		return cfg, errors.New("-length, -interval, -every and -max must be positive")
	}
	if !(cfg.speed > 0) || math.IsInf(cfg.speed, 0) {
		return cfg, errors.New("-speed must be a positive number")
	}
	return cfg, nil
}

type config struct {
	length, interval, every time.Duration
	seed                    uint64
	max                     int
	verbose                 bool
	aws                     awsFlags
	// http is the status page's address, "" for none; speed paces the
	// simulation while the page is served.
	http  string
	speed float64
}

// awsFlags configure the real-AWS mode.
type awsFlags struct {
	enabled                                  bool
	region, endpoint, image, types, identity string
	subnets, groups                          listFlag
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// world is where the servers live: the simulated EC2 on virtual time, or a
// real AWS account on the wall clock.
type world struct {
	cloud  awsctl.CloudClient
	spec   awsctl.LaunchSpec
	types  []pool.InstanceType
	zones  []string
	id     string
	now    func() time.Time
	wait   func(ctx context.Context, d time.Duration) error
	cost   func() float64 // nil when unknown
	report func(io.Writer)
	// winddown: on exit, wind every server down and terminate it.
	winddown bool
}

func simWorld(cfg config) (*world, error) {
	sim, err := ec2sim.New(ec2sim.Config{
		BootDelay: ec2sim.LogNormal(45*time.Second, 0.25),
		ListDelay: ec2sim.Uniform(0, 5*time.Second),
		Seed:      int64(cfg.seed),
	})
	if err != nil {
		return nil, err
	}
	wait := func(_ context.Context, d time.Duration) error { return sim.Advance(d) }
	if cfg.http != "" {
		wait = paced(cfg.speed, wait)
	}
	return &world{
		cloud: sim,
		spec:  awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
		types: []pool.InstanceType{{Name: "c5.large"}},
		zones: []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		id:    "jobqueue-example",
		now:   sim.Now,
		wait:  wait,
		cost:  func() float64 { return sim.Bill().Total },
		report: func(out io.Writer) {
			calls := sim.Calls()
			fmt.Fprintf(out, "servers launched   %d\n", len(sim.Instances()))
			fmt.Fprintf(out, "cost               $%.2f\n", sim.Bill().Total)
			fmt.Fprintf(out, "cloud calls        list %d, launch %d, tag %d, untag %d, terminate %d\n",
				calls[ec2sim.OpListInstances], calls[ec2sim.OpLaunch], calls[ec2sim.OpTag], calls[ec2sim.OpUntag], calls[ec2sim.OpTerminate])
		},
	}, nil
}

// job is one unit of work.
type job struct {
	arrived, started time.Time
	length           time.Duration
}

// worker is a server as the job queue sees it.
type worker struct {
	id       string
	draining bool
	job      *job
	done     time.Time
}

// cluster is the host service: a queue of jobs and the servers granted to
// it. The scaler's role hooks and manager notices update it, from the pass
// and from hook goroutines, hence the lock.
type cluster struct {
	mu      sync.Mutex
	queue   []*job
	workers map[string]*worker
	waits   []time.Duration
	done    int
	cut     int // jobs cut short by a server going away: must stay 0
}

func newCluster() *cluster { return &cluster{workers: map[string]*worker{}} }

// tick finishes the jobs that are done at now, starts queued jobs on idle
// servers, and tells mark which servers are idle, so that a scale-down picks
// them before busy ones.
func (c *cluster) tick(now time.Time, mark func(id string, idle bool)) (queued, running int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.workers))
	for id := range c.workers {
		ids = append(ids, id)
	}
	slices.Sort(ids) // deterministic assignment
	for _, id := range ids {
		w := c.workers[id]
		c.finish(w, now)
		if w.job == nil && !w.draining && len(c.queue) > 0 {
			j := c.queue[0]
			c.queue = c.queue[1:]
			j.started = now
			w.job, w.done = j, now.Add(j.length)
			c.waits = append(c.waits, now.Sub(j.arrived))
		}
		if w.job != nil {
			running++
		}
		mark(id, w.job == nil)
	}
	return len(c.queue), running
}

func (c *cluster) submit(j *job) {
	c.mu.Lock()
	c.queue = append(c.queue, j)
	c.mu.Unlock()
}

// Notify keeps the cluster's server list in step with the pool's grants.
func (c *cluster) notify(n manager.Notice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch n.Kind {
	case manager.Granted:
		c.workers[n.Server.ID] = &worker{id: n.Server.ID}
	case manager.Revoked, manager.Interrupted:
		if w, ok := c.workers[n.Server.ID]; ok {
			if w.job != nil {
				c.cut++
				c.queue = append([]*job{w.job}, c.queue...)
			}
			delete(c.workers, n.Server.ID)
		}
	}
}

func (c *cluster) setDraining(id string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.workers[id]; ok {
		w.draining = on
	}
}

// finish ends w's job if it is done at now; the caller holds c.mu.
func (c *cluster) finish(w *worker, now time.Time) {
	if w.job != nil && !now.Before(w.done) {
		w.job = nil
		c.done++
	}
}

// busy reports whether the server still runs a job at now. It finishes a
// job that is done, so that a wind-down ends with the job even when tick
// no longer runs, as on exit.
func (c *cluster) busy(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.workers[id]
	if !ok {
		return false
	}
	c.finish(w, now)
	return w.job != nil
}

// running returns how many jobs run and when the last of them ends.
func (c *cluster) running() (n int, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.workers {
		if w.job != nil {
			n++
			if w.done.After(last) {
				last = w.done
			}
		}
	}
	return n, last
}

// queueManager is the host's manager: the library's Queue manager for the
// demand, plus the cluster's bookkeeping of its servers.
type queueManager struct {
	*manager.Queue
	c *cluster
}

func (m queueManager) Notify(n manager.Notice) {
	m.Queue.Notify(n)
	m.c.notify(n)
}

// arrivals generates bursts of jobs: a burst every 40 minutes on average, of
// 5 to 60 jobs lasting from a few minutes to an hour, plus single jobs.
type arrivals struct {
	rng  *rand.Rand
	next time.Time
}

func (a *arrivals) until(now time.Time, submit func(*job)) {
	for !a.next.After(now) {
		n := 1
		if a.rng.Float64() < 0.3 {
			n = 5 + a.rng.IntN(56)
		}
		for range n {
			minutes := math.Exp(math.Log(8) + 0.9*a.rng.NormFloat64()) // median 8 min
			submit(&job{arrived: a.next, length: time.Duration(min(minutes, 90) * float64(time.Minute))})
		}
		gap := a.rng.ExpFloat64() * float64(12*time.Minute)
		a.next = a.next.Add(time.Duration(gap))
	}
}

// run runs the example with the command-line arguments args. The first
// value on interrupts ends the run and starts the exit wind-down; a second
// one stops waiting for it.
func run(ctx context.Context, args []string, out io.Writer, interrupts <-chan os.Signal) error {
	cfg, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	runCtx, abortCtx, stop := interrupt.Contexts(ctx, interrupts)
	defer stop()

	w, err := simWorld(cfg)
	if cfg.aws.enabled {
		w, err = awsWorld(runCtx, out, cfg)
	}
	if err != nil {
		return err
	}
	c := newCluster()
	queue, err := manager.NewQueue("batch", manager.QueueConfig{JobsPerUnit: 1, Max: cfg.max, ScaleDownDelay: 5 * time.Minute})
	if err != nil {
		return err
	}
	worker, err := role.New("worker", w.spec, role.Hooks{
		// Wind-down: take no new jobs; the current one runs to its end.
		WindDown: func(_ context.Context, inst awsctl.Instance) error {
			c.setDraining(inst.ID, true)
			return nil
		},
		Check: func(_ context.Context, inst awsctl.Instance) (role.Status, error) {
			idle := !c.busy(inst.ID, w.now())
			return role.Status{Idle: idle, WoundDown: idle}, nil
		},
		Restore: func(_ context.Context, inst awsctl.Instance) error {
			c.setDraining(inst.ID, false)
			return nil
		},
	})
	if err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if cfg.verbose {
		logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var (
		rec      *statuspage.Recorder
		observer autoscale.Observer
	)
	if cfg.http != "" {
		rec = statuspage.NewRecorder(0, nil) // the scaler keeps no events: the page's come from here
		observer = rec
	}
	scaler, err := autoscale.New(w.cloud, []pool.Config{{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{queueManager{queue, c}},
		Types:    w.types,
		Zones:    w.zones,
		Max:      cfg.max,
		// Jobs run up to 90 minutes: a wind-down must be allowed to last
		// that long, or a job would be cut short.
		WindDownTimeout: windDownTimeout,
	}}, autoscale.Options{
		Identity: w.id,
		Interval: cfg.interval,
		Clock:    w.now,
		HookWait: time.Second,
		Logger:   logger,
		Observer: observer,
	})
	if err != nil {
		return err
	}
	if cfg.http != "" {
		stopStatus, err := serveStatus(out, cfg.http, statusHandler(scaler, rec))
		if err != nil {
			_ = scaler.Shutdown(context.WithoutCancel(ctx), autoscale.ShutdownOptions{})
			return err
		}
		defer stopStatus()
	}

	const tick = 10 * time.Second
	start := w.now()
	gen := &arrivals{rng: rand.New(rand.NewPCG(cfg.seed, 7)), next: start}
	fmt.Fprintf(out, "%-6s %7s %7s | %7s %7s %7s | %8s\n", "time", "queued", "running", "booting", "ready", "winding", "cost")
	var lastStep, lastRow time.Time
	workers := scaler.Pool("workers")
	for now := start; now.Sub(start) < cfg.length && runCtx.Err() == nil; now = w.now() {
		gen.until(now, c.submit)
		queued, running := c.tick(now, queue.MarkIdle)
		queue.Observe(now, queued, running)
		if lastStep.IsZero() || now.Sub(lastStep) >= cfg.interval {
			if cfg.http != "" {
				// A pool lists its servers only while someone reads them:
				// read them every pass, so that the page shows them even
				// when first opened after the run.
				workers.Servers()
			}
			if err := scaler.Step(runCtx); err != nil && cfg.verbose {
				fmt.Fprintln(out, "pass:", err)
			}
			lastStep = now
		}
		if now.Sub(lastRow) >= cfg.every || lastRow.IsZero() {
			st := workers.Status()
			cost := "-"
			if w.cost != nil {
				cost = fmt.Sprintf("$%.2f", w.cost())
			}
			fmt.Fprintf(out, "%-6s %7d %7d | %7d %7d %7d | %8s\n",
				clock(now.Sub(start)), queued, running, st.Booting+st.Provisioning, st.Ready(), st.WindingDown, cost)
			lastRow = now
		}
		if err := w.wait(runCtx, tick); err != nil {
			break
		}
	}
	err = exit(abortCtx, out, w, c, scaler)
	summary(out, w, c)
	if cfg.http != "" {
		holdStatus(runCtx, out)
	}
	return err
}

// windDownTimeout bounds a server's wind-down: longer than the longest job.
const windDownTimeout = 2 * time.Hour

// exit stops the scaler. With real instances it first winds every server
// down and terminates it, waiting for the running jobs, unless ctx ends
// first: it then returns an error naming the instances left running.
func exit(ctx context.Context, out io.Writer, w *world, c *cluster, scaler *autoscale.Scaler) error {
	if !w.winddown {
		return scaler.Shutdown(context.WithoutCancel(ctx), autoscale.ShutdownOptions{})
	}
	n, last := c.running()
	due := ""
	if n > 0 {
		due = fmt.Sprintf(", the last due in %v", last.Sub(w.now()).Round(time.Second))
	}
	fmt.Fprintf(out, "\nWinding every server down: no new job starts; %d still running%s.\n"+
		"Press Ctrl-C again to stop waiting and leave the servers running.\n", n, due)
	// Past windDownTimeout the pool terminates a server anyway; the bound
	// here only covers a cloud that keeps failing.
	sctx, cancel := context.WithTimeout(ctx, windDownTimeout+10*time.Minute)
	defer cancel()
	err := scaler.Shutdown(sctx, autoscale.ShutdownOptions{WindDown: true})
	if err == nil {
		fmt.Fprintln(out, "Every server is terminated.")
		return nil
	}
	return leftRunning(context.WithoutCancel(ctx), w, err)
}

// leftRunning is the error of a wind-down that did not finish: the
// instances still running, and how to find them.
func leftRunning(ctx context.Context, w *world, cause error) error {
	if errors.Is(cause, context.Canceled) {
		cause = errors.New("interrupted again")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	insts, err := w.cloud.ListInstances(ctx, awsctl.ListFilter{Tags: map[string]string{pool.TagOwner: w.id}})
	if err != nil {
		return fmt.Errorf("wind-down stopped (%w); listing what is left failed (%w): look for instances tagged %s=%s",
			cause, err, pool.TagOwner, w.id)
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
		cause, len(ids), pool.TagOwner, w.id, strings.Join(ids, " "))
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

func summary(out io.Writer, w *world, c *cluster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	waits := slices.Clone(c.waits)
	slices.Sort(waits)
	pct := func(p float64) time.Duration {
		if len(waits) == 0 {
			return 0
		}
		return waits[min(len(waits)-1, int(p*float64(len(waits))))]
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "jobs finished      %d (%d still queued, %d cut short by a scale-down)\n", c.done, len(c.queue), c.cut)
	fmt.Fprintf(out, "wait for a server  p50 %v, p95 %v, max %v\n", pct(0.5).Round(time.Second), pct(0.95).Round(time.Second), pct(1).Round(time.Second))
	if w.report != nil {
		w.report(out)
	}
}
