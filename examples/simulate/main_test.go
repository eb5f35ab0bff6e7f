package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// shortRun is a small run on the shipped us-east-1 trace: bursty jobs for
// eight hours.
func shortRun() config {
	return config{
		prices:   "us-east-1",
		types:    defaultTypes,
		demand:   "bursty",
		servers:  60,
		scale:    1,
		length:   8 * time.Hour,
		interval: time.Minute,
		boot:     45 * time.Second, bootSigma: 0.25,
		seed:      3,
		policies:  "all",
		outageFor: 2 * time.Hour,
		parallel:  2,
	}
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

	again, err := simulateAll(ctx, shortRun())
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
	assert.Equal(t, "policy", rows[0][3])
	assert.Equal(t, "lower-bound", rows[len(rows)-1][3])
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
