package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// mixedJobs writes two days of jobs: every two hours a six-hour job on 24
// units, and every five minutes a ten-minute job on one.
func mixedJobs(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("submit_s,wait_s,run_s,procs\n")
	for s := 0; s < 48*3600; s += 300 {
		if s%7200 == 0 {
			fmt.Fprintf(&b, "%d,0,%d,24\n", s, 6*3600)
		}
		fmt.Fprintf(&b, "%d,0,600,1\n", s)
	}
	path := filepath.Join(t.TempDir(), "mixed.csv")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func jobRun(t *testing.T, rate float64) config {
	cfg := defaultConfig()
	cfg.demand = mixedJobs(t)
	cfg.length = 48 * time.Hour
	cfg.policies = "recommended,job-aware"
	cfg.parallel = 1
	cfg.interruptionRate = rate
	cfg.interruptionShare = 0 // the model's independent interruptions
	return cfg
}

func TestJobAwareCutsWorkLostUnderStress(t *testing.T) {
	rep, err := simulateAll(context.Background(), jobRun(t, 0.04))
	require.NoError(t, err)
	rec, ja := byName(t, rep, "recommended"), byName(t, rep, "job-aware")
	t.Logf("recommended: $%.2f ($%.2f with unmet), %.1f unit-h lost; job-aware: $%.2f ($%.2f with unmet; on-demand $%.2f), %.1f unit-h lost",
		rec.cost(), rep.costWithUnmet(rec), rec.workLost/3600, ja.cost(), rep.costWithUnmet(ja), ja.costOf(awsctl.MarketOnDemand), ja.workLost/3600)
	assert.Zero(t, rec.costOf(awsctl.MarketOnDemand), "spot is cheap enough for the recommended policy throughout")
	assert.Positive(t, ja.costOf(awsctl.MarketOnDemand), "the long, wide jobs go on-demand")
	assert.Positive(t, ja.costOf(awsctl.MarketSpot), "the short jobs stay on spot")
	assert.Less(t, ja.workLost, rec.workLost/4, "work lost to interruptions")
	// Work run again keeps demand up and capacity short: counting unmet
	// demand at the on-demand price, the recommended policy pays more.
	assert.Less(t, rep.costWithUnmet(ja), rep.costWithUnmet(rec))
	assert.Contains(t, strings.Join(ja.settings, "\n"), "manager.QueueConfig.Classes")
}

func TestJobAwareIsRecommendedAtTheAdvisorRates(t *testing.T) {
	rep, err := simulateAll(context.Background(), jobRun(t, 0))
	require.NoError(t, err)
	rec, ja := byName(t, rep, "recommended"), byName(t, rep, "job-aware")
	// At the buckets' rates interruptions add under 1% to any of these
	// jobs: every class stays on spot, and nothing changes.
	assert.Equal(t, rec.bill.Total, ja.bill.Total)
	assert.Equal(t, rec.launches, ja.launches)
}

func TestRunEstimateFlag(t *testing.T) {
	for _, bad := range []string{"lognormal", "lognormal:0", "lognormal:x", "guess"} {
		_, err := parseRunEstimate(bad)
		assert.Error(t, err, bad)
	}
	e, err := parseRunEstimate("lognormal:1")
	require.NoError(t, err)
	assert.Equal(t, 1.0, e.sigma)
	cfg := jobRun(t, 0.2)
	_, err = simulateAll(context.Background(), cfg)
	assert.ErrorContains(t, err, "-interruption-rate")
}

// A class is described by the longest run and the widest job it admits, so
// that the pool prices no job of it as shorter or narrower than it is.
func TestJobClassesBoundTheirJobs(t *testing.T) {
	classes := jobClasses()
	last := runBins[len(runBins)-2].upTo // the open bin's jobs run up to the site's limit
	for _, run := range []time.Duration{time.Second, 10 * time.Minute, 11 * time.Minute, 59 * time.Minute, time.Hour,
		3 * time.Hour, 4*time.Hour + time.Second, 12 * time.Hour, 23 * time.Hour, last + time.Hour, 60 * time.Hour} {
		for _, procs := range []int{1, 2, 4, 5, 16, 17, 63, 64, 65, 100} {
			c := classes[classOf(run, procs)]
			assert.GreaterOrEqual(t, c.Run, run, "%v x%d in %q", run, procs, c.Name)
			assert.GreaterOrEqual(t, c.Width, procs, "%v x%d in %q", run, procs, c.Name)
		}
	}
}
