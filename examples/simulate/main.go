// Command simulate replays real spot price history and a demand trace
// against the library's Scaler on a simulated EC2, once per policy, and
// reports what each policy cost, how much demand it left unserved, how
// fast capacity arrived, what spot interruptions cut short and which cloud
// calls it made.
//
// The policies of one run face the same prices, demand, boot times,
// interruption rates and capacity outages, and run with the library's
// defaults except for what the policy is about (the report lists every
// setting that differs from a default):
//
//   - recommended: the library's recommended configuration (spot first,
//     on-demand fallback, replacement of on-demand by spot when it pays,
//     diversification across spot offerings, interruption notices);
//   - on-demand: on-demand only;
//   - spot-only: spot only, no fallback;
//   - 2016-rules: the rules of PiCloud's 2016 autoscaler (on-demand first,
//     replaced by spot when spot costs less than 0.8 of on-demand);
//   - job-aware (only when named in -policies): recommended, with a host
//     that reports its jobs to its Queue by class of estimated run time and
//     width, so the pool puts classes whose expected cost on spot, counting
//     the work interruptions lose, is above on-demand on on-demand servers,
//     where the host runs them (jobaware.go). -run-estimate says what the
//     host knows of a job's run time: the recorded one (exact, which no
//     scheduler knows in advance) or one with a log-normal error;
//   - the lower bound: demand times the cheapest spot price of the pool at
//     each instant, with no boot time and no interruptions, computed
//     directly. No policy can beat it once unserved demand is charged at
//     the on-demand price (the "cost incl. unmet demand" row).
//
// Two price traces are shipped (a month of us-east-1 and of eu-west-1 spot
// prices, see testdata/README.md); -prices also takes a CSV file in the
// DescribeSpotPriceHistory export format. Demand comes from seeded
// generators (steady, diurnal, bursty job arrivals) or a CSV file, either
// time_s,servers or a job log (submit_s,wait_s,run_s,procs), fed to the
// library's Queue manager as it changes.
//
// The simulated EC2 is meant to be no kinder than EC2. An instance is
// pending (not billed) for -pending, then running, and billed, while its
// operating system boots and it starts up for -ready, before the role's
// Provision hook returns. Spot interruptions follow the Spot Instance
// Advisor buckets compiled into package spotprice, as events of a spot
// pool (a type in a zone) that each take -interruption-share of its
// running instances, with two minutes' notice; -outages empties zones of
// spot capacity for hours at a time and reclaims -outage-reclaim of their
// running spot instances as it starts; a job cut short by an interruption
// runs again from the start; EC2's default API request limits are
// enforced on every call. -interruption-rate replaces the Advisor
// buckets by one hourly rate for every type, told to the pool too: a
// stress setting, labelled as such in the report, since at the buckets'
// rates interruptions are too rare in a month to tell policies apart.
//
// Passes are timed as Scaler.Run times them (-timing run, the default: its
// interval, its busy interval while capacity is on its way, and a pass
// within MinPassGap of a role hook finishing or a rise of demand), or by a
// host that calls Step every -interval (-timing loop). Run itself cannot
// run on the simulation's clock outside a testing/synctest bubble; the
// simulation replays its timing, and run_test.go checks the replay against
// Run on a bubble's clock.
//
// With -goal (say 2m, and -goal-quantile, 0.95 by default) the report also
// gives the share of rises served within the goal's wait and the cost per
// point of it, and three more policies can be named in -policies to compare
// ways of meeting it on the recommended configuration: forecast
// (manager.Forecast sized to the goal), forecast-flat (the same without a
// daily shape) and buffer-N (a fixed idle buffer of N units); see goal.go.
//
// For each policy the report gives the cost (by market, against the lower
// bound, with unserved demand charged at the on-demand price, and against
// on-demand only), the demand left unserved (and how much of it boot time,
// or boot time and the wait for the next pass, make unavoidable), the time
// from each rise of demand until it is served, spot interruptions and the
// work they cut short, launches, terminations and the on-demand servers
// replaced by spot, and EC2 requests by API (throttled ones counted apart).
// It prints a table, and with -csv and -svg writes the figures as CSV and a
// plot of demand against working capacity by market, and of cumulative
// cost.
//
// Usage:
//
//	go run ./examples/simulate                              # us-east-1, bursty jobs, 4 days
//	go run ./examples/simulate -length 720h -prices eu-west-1 -demand diurnal -svg docs/plots
//	go run ./examples/simulate -demand jobs.csv -csv out.csv
//	go run ./examples/simulate -demand diurnal -outages 1   # spot out everywhere ~2 h a day
//	go run ./examples/simulate -timing loop -interval 1m    # a host calling Step once a minute
//
// The run is virtual time on ec2sim: a month of a 500-server pool takes a
// minute or a few. With -parallel above 1 each policy runs in a process of
// its own. Progress goes to stderr, the report to stdout. BENCHMARKS.md at
// the root of the repository records the figures of the shipped traces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/demand"
)

type config struct {
	prices            string
	types             string
	zones             string
	demand            string
	servers           int
	scale             float64
	offset            time.Duration
	length            time.Duration
	timing            string
	interval          time.Duration
	busyInterval      time.Duration
	passGap           time.Duration
	scaleDownDelay    time.Duration
	workKeep          time.Duration
	pending, ready    time.Duration
	bootSigma         float64
	typeDelays        map[string]ec2sim.TypeDelays
	seed              uint64
	policies          string
	interruptionShare float64
	outagesPerDay     float64
	outageFor         time.Duration
	outageZones       int
	outageReclaim     float64
	requeue           bool
	goalWait          time.Duration
	goalQuantile      float64
	runEstimate       string
	interruptionRate  float64
	csvPath           string
	svgDir            string
	parallel          int
	progress          io.Writer
	// args are the program's flags, for running policies in processes of
	// their own (worker.go); nil runs them in this process.
	args []string
}

// defaultConfig is the flags' defaults.
func defaultConfig() config {
	return config{
		prices:            "us-east-1",
		types:             defaultTypes,
		demand:            "bursty",
		servers:           500,
		scale:             1,
		length:            defaultLength,
		timing:            "run",
		pending:           defaultPending,
		ready:             defaultReady,
		bootSigma:         0.25,
		seed:              1,
		policies:          "all",
		interruptionShare: defaultInterruptionShare,
		outageFor:         2 * time.Hour,
		outageReclaim:     defaultOutageReclaim,
		requeue:           true,
		goalQuantile:      0.95,
		parallel:          runtime.GOMAXPROCS(0),
	}
}

// Defaults of the simulated world (not of the library).
const (
	// defaultLength keeps a run with the default flags within a minute;
	// the benchmarks run 30 days (-length 720h).
	defaultLength = 4 * 24 * time.Hour
	// defaultPending and defaultReady split a launch into EC2's pending
	// phase (not billed) and the boot and start-up that follow (billed):
	// 45 s from launch to ready in all, as before the split. For scale:
	// Colin Percival's ec2-boot-bench measured about 5 s from pending to
	// running and 23 s more until SSH answers on a c5.xlarge (2021), and
	// brevdev's ec2-coldboot-research 16.4-16.6 s of pending for every
	// family it tried; a worker's own start-up comes on top.
	defaultPending = 10 * time.Second
	defaultReady   = 35 * time.Second
	// defaultInterruptionShare is the share of a spot pool's running
	// instances one interruption event takes (ec2sim's
	// Config.InterruptionShare). AWS publishes no figure; capacity is
	// reclaimed by pool, so many go at once.
	defaultInterruptionShare = 0.5
	// defaultOutageReclaim is the share of an out pool's running spot
	// instances reclaimed, with the two-minute notice, as the outage starts.
	defaultOutageReclaim = 0.5
)

func main() {
	cfg := defaultConfig()
	cfg.progress = os.Stderr
	flag.StringVar(&cfg.prices, "prices", cfg.prices, "spot prices: a shipped trace (us-east-1, eu-west-1) or a CSV file")
	flag.StringVar(&cfg.types, "types", cfg.types, "the pool's instance types, each with :weight if not 1")
	flag.StringVar(&cfg.zones, "zones", "", "the pool's zones, comma-separated (default: every zone of the prices)")
	flag.StringVar(&cfg.demand, "demand", cfg.demand, "demand: steady, diurnal, bursty, or a CSV file (time_s,servers or submit_s,wait_s,run_s,procs)")
	flag.IntVar(&cfg.servers, "servers", cfg.servers, "scale of a generated demand: steady level, diurnal peak, bursty twice the mean")
	flag.Float64Var(&cfg.scale, "scale", cfg.scale, "multiply the demand by this")
	flag.DurationVar(&cfg.offset, "offset", 0, "skip this much of a CSV demand trace")
	flag.DurationVar(&cfg.length, "length", cfg.length, "simulated time (at most what prices and demand cover)")
	flag.StringVar(&cfg.timing, "timing", cfg.timing, "how passes are timed: run (as Scaler.Run does, library defaults) or loop (the host calls Step every -interval)")
	flag.DurationVar(&cfg.interval, "interval", 0, "time between passes: Options.Interval with -timing run (default: the library's, 30s), the host's loop with -timing loop (default 1m)")
	flag.DurationVar(&cfg.busyInterval, "busy-interval", 0, "Options.BusyInterval (default: the library's)")
	flag.DurationVar(&cfg.passGap, "min-pass-gap", 0, "Options.MinPassGap (default: the library's)")
	flag.DurationVar(&cfg.scaleDownDelay, "scale-down-delay", 0, "manager.QueueConfig.ScaleDownDelay (default: the library's)")
	flag.DurationVar(&cfg.workKeep, "work-keep", 0, "pool.Config.WorkKeep, for job-aware markets (default: the library's; negative: none)")
	flag.DurationVar(&cfg.pending, "pending", cfg.pending, "median time from launch to running (EC2's pending phase, not billed; log-normal)")
	flag.DurationVar(&cfg.ready, "ready", cfg.ready, "median time from running to ready (OS boot and start-up, billed; log-normal)")
	flag.Float64Var(&cfg.bootSigma, "boot-sigma", cfg.bootSigma, "spread of both boot phases (sigma of the log)")
	typeDelays := flag.String("type-delays", "", "per-type medians of the two phases, type=pending/ready,... (e.g. r5.large=12s/40s)")
	flag.Uint64Var(&cfg.seed, "seed", cfg.seed, "seed of demand, boot times, interruptions and outages")
	flag.StringVar(&cfg.policies, "policies", cfg.policies, "policies to run, comma-separated: recommended, on-demand, spot-only, 2016-rules, job-aware (not in all); with -goal also forecast, forecast-flat, buffer-N")
	flag.Float64Var(&cfg.interruptionShare, "interruption-share", cfg.interruptionShare, "share of a spot pool's running instances one interruption event takes (0: each instance on its own)")
	flag.Float64Var(&cfg.outagesPerDay, "outages", 0, "spot capacity outages per day (0: none)")
	flag.DurationVar(&cfg.outageFor, "outage-length", cfg.outageFor, "length of each spot capacity outage")
	flag.IntVar(&cfg.outageZones, "outage-zones", 0, "zones each outage empties of spot capacity (0: all)")
	flag.Float64Var(&cfg.outageReclaim, "outage-reclaim", cfg.outageReclaim, "share of an out pool's running spot instances reclaimed (two minutes' notice) as an outage starts")
	flag.BoolVar(&cfg.requeue, "requeue", cfg.requeue, "run a job cut short again from the start (job demand)")
	flag.DurationVar(&cfg.goalWait, "goal", 0, "wait-time goal: report the share of rises served within this, and size the forecast policy to it (0: no goal)")
	flag.Float64Var(&cfg.goalQuantile, "goal-quantile", cfg.goalQuantile, "share of rises the -goal is for")
	flag.StringVar(&cfg.runEstimate, "run-estimate", "exact", "what the job-aware host knows of a job's run time: exact (the recorded one) or lognormal:SIGMA")
	flag.Float64Var(&cfg.interruptionRate, "interruption-rate", 0, "stress: every spot instance is interrupted at this rate per hour, and the pool is told so, instead of the Advisor buckets (0: the buckets)")
	flag.StringVar(&cfg.csvPath, "csv", "", "also write the report as CSV to this file")
	flag.StringVar(&cfg.svgDir, "svg", "", "also write the run's plot as SVG into this directory")
	flag.IntVar(&cfg.parallel, "parallel", cfg.parallel, "policies simulated at once")
	quiet := flag.Bool("q", false, "no progress on stderr")
	gcPercent := flag.Int("gc", 200, "garbage collection target percentage (debug.SetGCPercent); the GOGC environment variable overrides it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (of the program; with -parallel above 1 the policies run in processes of their own)")
	worker := flag.String("worker-policy", "", "internal: simulate this one policy and write its result for the parent process")
	flag.Parse()
	var err error
	if cfg.typeDelays, err = parseTypeDelays(*typeDelays, cfg.bootSigma); err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(2)
	}
	if *quiet {
		cfg.progress = nil
	}
	if os.Getenv("GOGC") == "" {
		// A pass allocates a little per instance and keeps almost none of
		// it, while the simulator keeps every instance ever launched for
		// its bill: collecting less often trades memory for time.
		debug.SetGCPercent(*gcPercent)
	}
	if *worker != "" {
		// A child of runWorkers: one policy, its result on stdout.
		cfg.policies, cfg.parallel = *worker, 1
		rep, err := simulateAll(context.Background(), cfg)
		if err == nil {
			err = writeWorkerResult(os.Stdout, rep.results[0])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "simulate:", err)
			os.Exit(1)
		}
		return
	}
	cfg.args = os.Args[1:]
	if err := profiled(*cpuProfile, func() error { return run(context.Background(), os.Stdout, cfg) }); err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(1)
	}
}

// profiled runs f, writing a CPU profile to path unless it is empty.
func profiled(path string, f func() error) error {
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return f()
}

// report is a whole run: the scenario and each policy's result.
type report struct {
	sc      *scenario
	results []*result
	wall    time.Duration
}

func run(ctx context.Context, out io.Writer, cfg config) error {
	rep, err := simulateAll(ctx, cfg)
	if err != nil {
		return err
	}
	rep.writeTable(out)
	if cfg.csvPath != "" {
		if err := writeFile(cfg.csvPath, rep.writeCSV); err != nil {
			return err
		}
	}
	if cfg.svgDir != "" {
		if err := os.MkdirAll(cfg.svgDir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(cfg.svgDir, rep.plotName()+".svg")
		if err := writeFile(path, rep.writeSVG); err != nil {
			return err
		}
		fmt.Fprintln(out, "plot:", path)
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// simulateAll builds the scenario and runs every policy through it.
func simulateAll(ctx context.Context, cfg config) (*report, error) {
	began := time.Now()
	switch {
	case cfg.timing != "run" && cfg.timing != "loop":
		return nil, fmt.Errorf("-timing %q: want run or loop", cfg.timing)
	case cfg.interval < 0 || cfg.busyInterval < 0 || cfg.passGap < 0 || cfg.scaleDownDelay < 0:
		return nil, errors.New("-interval, -busy-interval, -min-pass-gap and -scale-down-delay must not be negative")
	case cfg.pending <= 0 || cfg.ready <= 0 || cfg.bootSigma < 0:
		return nil, errors.New("-pending and -ready must be positive, -boot-sigma not negative")
	case cfg.scale <= 0 || cfg.servers <= 0:
		return nil, errors.New("-scale and -servers must be positive")
	case cfg.goalWait < 0 || !(cfg.goalQuantile > 0 && cfg.goalQuantile < 1):
		return nil, errors.New("-goal must not be negative, -goal-quantile must lie strictly between 0 and 1")
	case !(cfg.interruptionShare >= 0 && cfg.interruptionShare <= 1) || !(cfg.outageReclaim >= 0 && cfg.outageReclaim <= 1):
		return nil, errors.New("-interruption-share and -outage-reclaim must lie in [0, 1]")
	case !(cfg.interruptionRate >= 0 && cfg.interruptionRate <= maxStressRate):
		return nil, fmt.Errorf("-interruption-rate must lie in [0, %v]", maxStressRate)
	}
	if _, err := parseRunEstimate(cfg.runEstimate); err != nil {
		return nil, err
	}
	policies, err := choosePolicies(cfg.policies)
	if err != nil {
		return nil, err
	}
	types, err := parseTypes(cfg.types)
	if err != nil {
		return nil, err
	}
	var zones []string
	if cfg.zones != "" {
		zones = strings.Split(cfg.zones, ",")
	}
	pt, err := loadPrices(cfg.prices, types, zones)
	if err != nil {
		return nil, err
	}
	trace, err := loadDemand(cfg, pt.start)
	if err != nil {
		return nil, err
	}
	sc, err := newScenario(pt, types, trace, cfg)
	if err != nil {
		return nil, err
	}
	rep := &report{sc: sc, results: make([]*result, len(policies))}
	if cfg.args != nil && cfg.parallel > 1 && len(policies) > 1 {
		if rep.results, err = runWorkers(ctx, cfg.args, policies, cfg.parallel, cfg.progress); err != nil {
			return nil, err
		}
	} else {
		// One after another: see worker.go.
		for i, p := range policies {
			if rep.results[i], err = sc.simulate(ctx, p); err != nil {
				return nil, fmt.Errorf("policy %s: %w", p.name, err)
			}
		}
	}
	rep.wall = time.Since(began)
	return rep, nil
}

// loadDemand builds the demand trace cfg names.
func loadDemand(cfg config, start time.Time) (*demand.Trace, error) {
	var t *demand.Trace
	var err error
	switch cfg.demand {
	case "steady":
		t, err = demand.Steady(cfg.servers, cfg.length)
	case "diurnal":
		t, err = demand.Diurnal(cfg.servers, start, cfg.length, cfg.seed)
	case "bursty":
		t, err = demand.Bursty(cfg.servers/2, cfg.length, cfg.seed)
	default:
		f, ferr := os.Open(cfg.demand)
		if ferr != nil {
			return nil, fmt.Errorf("-demand: %w", ferr)
		}
		defer f.Close()
		t, err = demand.ReadCSV(filepath.Base(cfg.demand), f)
		if err == nil && cfg.offset > 0 {
			if cfg.offset >= t.Length {
				return nil, fmt.Errorf("-offset %v: the trace lasts %v", cfg.offset, t.Length)
			}
			t = t.Window(cfg.offset, t.Length-cfg.offset)
		}
	}
	if err != nil {
		return nil, err
	}
	return t.Scale(cfg.scale), nil
}

// parseTypeDelays reads -type-delays: type=pending/ready,... as medians of
// log-normal delays with spread sigma.
func parseTypeDelays(s string, sigma float64) (map[string]ec2sim.TypeDelays, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]ec2sim.TypeDelays{}
	for _, part := range strings.Split(s, ",") {
		typ, phases, ok := strings.Cut(strings.TrimSpace(part), "=")
		p, r, ok2 := strings.Cut(phases, "/")
		if !ok || !ok2 || typ == "" {
			return nil, fmt.Errorf("-type-delays: %q: want type=pending/ready", part)
		}
		pending, err1 := time.ParseDuration(p)
		ready, err2 := time.ParseDuration(r)
		if err1 != nil || err2 != nil || pending <= 0 || ready <= 0 {
			return nil, fmt.Errorf("-type-delays: %q: want two positive durations", part)
		}
		out[typ] = ec2sim.TypeDelays{Pending: ec2sim.LogNormal(pending, sigma), Ready: ec2sim.LogNormal(ready, sigma)}
	}
	return out, nil
}
