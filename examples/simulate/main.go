// Command simulate replays real spot price history and a demand trace
// against the library's Scaler on a simulated EC2, once per policy, and
// reports what each policy cost, how much demand it left unserved, how
// fast capacity arrived, what spot interruptions cut short and which cloud
// calls it made.
//
// The policies of one run face the same prices, demand, boot times,
// interruption rates and capacity outages:
//
//   - recommended: the library's recommended configuration (spot first,
//     on-demand fallback, replacement of on-demand by spot when it pays,
//     diversification across spot offerings, interruption notices);
//   - on-demand: on-demand only;
//   - spot-only: spot only, no fallback;
//   - 2016-rules: the rules of PiCloud's 2016 autoscaler (on-demand first,
//     replaced by spot when spot costs less than 0.8 of on-demand);
//   - the lower bound: demand times the cheapest spot price of the pool at
//     each instant, with no boot time and no interruptions, computed
//     directly. No policy can beat it.
//
// Two price traces are shipped (a month of us-east-1 and of eu-west-1 spot
// prices, see testdata/README.md); -prices also takes a CSV file in the
// DescribeSpotPriceHistory export format. Demand comes from seeded
// generators (steady, diurnal, bursty job arrivals) or a CSV file, either
// time_s,servers or a job log (submit_s,wait_s,run_s,procs). Spot
// interruptions follow the Spot Instance Advisor buckets compiled into
// package spotprice; -outages empties zones of spot capacity for hours at
// a time; EC2's default API request limits are enforced on every call.
//
// For each policy the report gives the cost (by market, against the lower
// bound and against on-demand only), the demand left unserved (and how
// much of it boot time, or boot time and the wait for the next pass, make
// unavoidable), the time from each rise of demand until it is served, spot
// interruptions and the work they cut short, launches and terminations,
// and EC2 requests by API (throttled ones counted apart). It prints a
// table, and with -csv and -svg writes the figures as CSV and a plot of
// demand against working capacity by market, and of cumulative cost.
//
// Usage:
//
//	go run ./examples/simulate                              # us-east-1, bursty jobs, 30 days
//	go run ./examples/simulate -prices eu-west-1 -demand diurnal -svg docs/plots
//	go run ./examples/simulate -demand jobs.csv -csv out.csv
//	go run ./examples/simulate -demand diurnal -outages 1   # spot out everywhere ~2 h a day
//
// The run is virtual time on ec2sim: a month of a 500-server pool takes
// seconds. Progress goes to stderr, the report to stdout. BENCHMARKS.md at
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
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/demand"
)

type config struct {
	prices         string
	types          string
	zones          string
	demand         string
	servers        int
	scale          float64
	offset         time.Duration
	length         time.Duration
	interval       time.Duration
	scaleDownDelay time.Duration
	regrant        bool
	runTiming      bool
	boot           time.Duration
	bootSigma      float64
	seed           uint64
	policies       string
	outagesPerDay  float64
	outageFor      time.Duration
	outageZones    int
	csvPath        string
	svgDir         string
	parallel       int
	progress       io.Writer
}

func main() {
	cfg := config{progress: os.Stderr}
	flag.StringVar(&cfg.prices, "prices", "us-east-1", "spot prices: a shipped trace (us-east-1, eu-west-1) or a CSV file")
	flag.StringVar(&cfg.types, "types", defaultTypes, "the pool's instance types, each with :weight if not 1")
	flag.StringVar(&cfg.zones, "zones", "", "the pool's zones, comma-separated (default: every zone of the prices)")
	flag.StringVar(&cfg.demand, "demand", "bursty", "demand: steady, diurnal, bursty, or a CSV file (time_s,servers or submit_s,wait_s,run_s,procs)")
	flag.IntVar(&cfg.servers, "servers", 500, "scale of a generated demand: steady level, diurnal peak, bursty twice the mean")
	flag.Float64Var(&cfg.scale, "scale", 1, "multiply the demand by this")
	flag.DurationVar(&cfg.offset, "offset", 0, "skip this much of a CSV demand trace")
	flag.DurationVar(&cfg.length, "length", 30*24*time.Hour, "simulated time (at most what prices and demand cover)")
	flag.DurationVar(&cfg.interval, "interval", time.Minute, "time between two reconcile passes")
	flag.DurationVar(&cfg.scaleDownDelay, "scale-down-delay", 0, "the host lowers its demand only once it has stayed lower this long (0: at the next pass)")
	flag.BoolVar(&cfg.regrant, "regrant", false, "after a pass that provisioned servers, run another at once so they are granted without waiting an interval")
	flag.BoolVar(&cfg.runTiming, "run-timing", false, "time passes as Scaler.Run does: every interval, every autoscale.DefaultBusyInterval while capacity is on its way, and again as soon as provisioning hooks finish (implies -regrant)")
	flag.DurationVar(&cfg.boot, "boot", 45*time.Second, "median boot time (log-normal)")
	flag.Float64Var(&cfg.bootSigma, "boot-sigma", 0.25, "spread of boot times (sigma of the log)")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of demand, boot times, interruptions and outages")
	flag.StringVar(&cfg.policies, "policies", "all", "policies to run, comma-separated: recommended, on-demand, spot-only, 2016-rules")
	flag.Float64Var(&cfg.outagesPerDay, "outages", 0, "spot capacity outages per day (0: none)")
	flag.DurationVar(&cfg.outageFor, "outage-length", 2*time.Hour, "length of each spot capacity outage")
	flag.IntVar(&cfg.outageZones, "outage-zones", 0, "zones each outage empties of spot capacity (0: all)")
	flag.StringVar(&cfg.csvPath, "csv", "", "also write the report as CSV to this file")
	flag.StringVar(&cfg.svgDir, "svg", "", "also write the run's plot as SVG into this directory")
	flag.IntVar(&cfg.parallel, "parallel", runtime.GOMAXPROCS(0), "policies simulated at once")
	quiet := flag.Bool("q", false, "no progress on stderr")
	gcPercent := flag.Int("gc", 200, "garbage collection target percentage (debug.SetGCPercent); the GOGC environment variable overrides it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *quiet {
		cfg.progress = nil
	}
	if os.Getenv("GOGC") == "" {
		// A pass allocates a little per instance and keeps almost none of
		// it, while the simulator keeps every instance ever launched for
		// its bill: collecting less often trades memory for time.
		debug.SetGCPercent(*gcPercent)
	}
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
	if cfg.interval <= 0 || cfg.boot <= 0 || cfg.bootSigma < 0 || cfg.scale <= 0 || cfg.servers <= 0 || cfg.scaleDownDelay < 0 {
		return nil, errors.New("-interval, -boot, -scale and -servers must be positive, -boot-sigma and -scale-down-delay not negative")
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
	errs := make([]error, len(policies))
	sem := make(chan struct{}, max(1, cfg.parallel))
	var wg sync.WaitGroup
	for i, p := range policies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.results[i], errs[i] = sc.simulate(ctx, p)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("policy %s: %w", p.name, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
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
