package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// shortRun is a small run on the shipped us-east-1 trace: bursty jobs for
// eight hours.
func shortRun() config {
	cfg := defaultConfig()
	cfg.servers = 60
	cfg.length = 8 * time.Hour
	cfg.seed = 3
	cfg.parallel = 2
	return cfg
}

func byName(t *testing.T, rep *report, name string) *result {
	t.Helper()
	for _, r := range rep.results {
		if r.policy.name == name {
			return r
		}
	}
	t.Fatalf("no result for %s", name)
	return nil
}

func TestReportIsSaneAndRepeatsForASeed(t *testing.T) {
	ctx := context.Background()
	rep, err := simulateAll(ctx, shortRun())
	require.NoError(t, err)
	require.Len(t, rep.results, len(allPolicies))
	lower := rep.sc.lowerBound
	require.Positive(t, lower)
	for _, r := range rep.results {
		assert.LessOrEqual(t, lower, r.cost(), "%s costs less than the lower bound", r.policy.name)
		assert.Positive(t, r.launches, r.policy.name)
		assert.Less(t, rep.unmetShare(r), 0.2, "%s leaves most demand unserved", r.policy.name)
		assert.Len(t, r.samples, len(rep.sc.lowerCurve), r.policy.name)
		assert.InDelta(t, r.cost(), r.samples[len(r.samples)-1].cost, 1e-6, "%s: the cost curve ends at the bill", r.policy.name)
	}
	od := byName(t, rep, "on-demand")
	assert.Zero(t, od.costOf(awsctl.MarketSpot), "on-demand only bought spot")
	assert.Positive(t, od.costOf(awsctl.MarketOnDemand))
	spot := byName(t, rep, "spot-only")
	assert.Zero(t, spot.costOf(awsctl.MarketOnDemand), "spot only bought on-demand")
	assert.Positive(t, spot.costOf(awsctl.MarketSpot))
	rec := byName(t, rep, "recommended")
	assert.Less(t, rec.cost(), 0.6*od.cost(), "the recommended configuration saves little over on-demand")

	requireRepeats(t, rep, shortRun())

	var table bytes.Buffer
	rep.writeTable(&table)
	for _, want := range []string{"recommended", "on-demand", "spot-only", "2016-rules", "lower bound", "time to capacity p50", "throttled"} {
		assert.Contains(t, table.String(), want)
	}
	var buf bytes.Buffer
	require.NoError(t, rep.writeCSV(&buf))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+len(allPolicies)+1, "header, one row per policy, the lower bound")
	assert.Equal(t, "policy", rows[0][4])
	assert.Equal(t, "lower-bound", rows[len(rows)-1][4])
	buf.Reset()
	require.NoError(t, rep.writeSVG(&buf))
	requireWellFormed(t, buf.Bytes())
}

func requireWellFormed(t *testing.T, doc []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
	}
}

func TestRecommendedFallsBackToOnDemandWhileSpotIsOut(t *testing.T) {
	cfg := shortRun()
	cfg.policies = "recommended,spot-only"
	cfg.outagesPerDay = 4 // every zone out of spot for 2 hours, four times a day on average
	rep, err := simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	require.NotEmpty(t, rep.sc.outages)
	rec, spot := byName(t, rep, "recommended"), byName(t, rep, "spot-only")
	assert.Positive(t, rec.costOf(awsctl.MarketOnDemand), "no on-demand bought while spot was out")
	assert.Less(t, rep.unmetShare(rec), rep.unmetShare(spot), "falling back served no more demand than waiting for spot")
	assert.Less(t, percentile(rec.ttc, 0.95), percentile(spot.ttc, 0.95))

	// A Step that finds no capacity runs a second pass at once; hooks the
	// first pass started must not reach it by the Go scheduler's whim, so
	// a run with outages repeats for its seed too.
	requireRepeats(t, rep, cfg)
}

// requireRepeats runs cfg again and checks that every policy's figures are
// those of rep, as a seed promises.
func requireRepeats(t *testing.T, rep *report, cfg config) {
	t.Helper()
	again, err := simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	for i, r := range rep.results {
		a := again.results[i]
		assert.Equal(t, r.bill.Total, a.bill.Total, "%s: cost differs between runs of one seed", r.policy.name)
		assert.Equal(t, r.unmet, a.unmet, r.policy.name)
		assert.Equal(t, r.ttc, a.ttc, r.policy.name)
		assert.Equal(t, r.launches, a.launches, r.policy.name)
		assert.Equal(t, r.calls, a.calls, r.policy.name)
		assert.Equal(t, r.interruptions, a.interruptions, r.policy.name)
	}
}

func TestRunWritesTableCSVAndPlotFromACSVDemand(t *testing.T) {
	dir := t.TempDir()
	jobs := filepath.Join(dir, "jobs.csv")
	require.NoError(t, os.WriteFile(jobs, []byte("submit_s,wait_s,run_s,procs\n0,0,3600,4\n600,0,1800,8\n2400,0,600,2\n"), 0o644))
	cfg := shortRun()
	cfg.demand = jobs
	cfg.policies = "recommended,on-demand"
	cfg.csvPath = filepath.Join(dir, "out.csv")
	cfg.svgDir = filepath.Join(dir, "plots")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, cfg))
	assert.Contains(t, out.String(), "demand   jobs.csv: ")
	assert.Contains(t, out.String(), "peak 12")
	data, err := os.ReadFile(cfg.csvPath)
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	require.NoError(t, err)
	assert.Len(t, rows, 4)
	svg, err := os.ReadFile(filepath.Join(cfg.svgDir, "us-east-1_jobs.svg"))
	require.NoError(t, err)
	requireWellFormed(t, svg)
}

func TestBadFlagsAreNamed(t *testing.T) {
	for flagName, mutate := range map[string]func(*config){
		"-policies": func(c *config) { c.policies = "cheapest" },
		"-types":    func(c *config) { c.types = "c5.large:0" },
		"-prices":   func(c *config) { c.prices = filepath.Join(t.TempDir(), "missing.csv") },
		"-zones":    func(c *config) { c.zones = "us-east-1z" },
		"-demand":   func(c *config) { c.demand = filepath.Join(t.TempDir(), "missing.csv") },
	} {
		cfg := shortRun()
		mutate(&cfg)
		_, err := simulateAll(context.Background(), cfg)
		assert.ErrorContains(t, err, flagName)
	}
}

// steadyRun is ten units all along for two hours, with boots of exactly
// their medians, on-demand only.
func steadyRun() config {
	cfg := shortRun()
	cfg.demand, cfg.servers, cfg.length = "steady", 10, 2*time.Hour
	cfg.bootSigma = 0
	cfg.policies = "on-demand"
	return cfg
}

// EC2 bills from running: the pending phase is free, the boot to ready is
// paid. Ten units launched at 0 run from 10 s and are ready at 45 s.
func TestBillStartsAtRunningAndCapacityAtReady(t *testing.T) {
	rep, err := simulateAll(context.Background(), steadyRun())
	require.NoError(t, err)
	r := rep.results[0]
	assert.InDelta(t, 10*rep.sc.odUnitPrice*(7200-10)/3600, r.cost(), 1e-6, "ten units billed from 10 s to the end")
	assert.Equal(t, []time.Duration{45 * time.Second}, r.ttc, "Run passes as the Provision hooks end, at 45 s")
	assert.InDelta(t, 10*45, r.unmet, 1e-6)

	cfg := steadyRun()
	cfg.timing = "loop"
	rep, err = simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	r = rep.results[0]
	assert.Equal(t, []time.Duration{2 * time.Minute}, r.ttc,
		"one-minute passes: running at the second pass, whose Provision is read by the third")
}

func TestSettingsThatDifferFromTheLibrarysDefaultsAreListed(t *testing.T) {
	cfg := shortRun()
	cfg.length = time.Hour
	cfg.scaleDownDelay = time.Nanosecond
	rep, err := simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"manager.QueueConfig.ScaleDownDelay: 1ns (default: 0s)"}, byName(t, rep, "on-demand").settings)
	rec := byName(t, rep, "recommended").settings
	assert.Contains(t, rec, "pool.Config.MaxSpotShare: 0.25 (default: 0)")
	assert.Contains(t, rec, "pool.Config.Market: Spot (default: OnDemand)")
	assert.Contains(t, strings.Join(byName(t, rep, "2016-rules").settings, "\n"), "pool.Config.Replace.MaxPerPass: 1048576 (default: 10)")
	var out bytes.Buffer
	rep.writeTable(&out)
	assert.Contains(t, out.String(), "settings that differ from the library's defaults:")
	assert.Contains(t, out.String(), "Run's timing: every 30s, every 10s while capacity is on its way, 1s after")
}

// Spot failing: outages refuse spot launches and take running spot
// instances; jobs cut short run again; charging unserved demand at the
// on-demand price keeps every policy at or above the lower bound.
func TestOutagesReclaimSpotAndCutJobsRunAgain(t *testing.T) {
	dir := t.TempDir()
	jobs := filepath.Join(dir, "jobs.csv")
	require.NoError(t, os.WriteFile(jobs, []byte("submit_s,wait_s,run_s,procs\n0,0,14400,8\n600,0,10800,6\n1200,0,3600,4\n"), 0o644))
	cfg := shortRun()
	cfg.demand = jobs
	cfg.length = 4 * time.Hour
	cfg.policies = "spot-only,recommended"
	cfg.outagesPerDay, cfg.outageFor, cfg.outageReclaim = 12, 30*time.Minute, 1
	rep, err := simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	require.NotEmpty(t, rep.sc.outages)
	spot := byName(t, rep, "spot-only")
	assert.Positive(t, spot.interruptions, "outages reclaim running spot")
	assert.Positive(t, spot.jobsCut)
	assert.Positive(t, spot.workLost)
	assert.Greater(t, spot.demanded, rep.sc.demanded, "work cut short is demanded again")
	for _, r := range rep.results {
		assert.GreaterOrEqual(t, rep.costWithUnmet(r), rep.sc.lowerBound, r.policy.name)
	}

	cfg.requeue = false
	again, err := simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	assert.InDelta(t, again.sc.demanded, byName(t, again, "spot-only").demanded, 1e-6, "-requeue=false replays demand as recorded")
}

func TestOnDemandReplacedCountsSwapsDone(t *testing.T) {
	cfg := shortRun()
	cfg.policies = "2016-rules"
	rep, err := simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	r := rep.results[0]
	assert.Positive(t, r.swapped)
	assert.LessOrEqual(t, r.swapped, r.swapLaunches, "a swap needs a replacement launched")
	assert.LessOrEqual(t, r.swapped, r.terminations, "a swap ends with the replaced server terminated")
}
