package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoalPoliciesRunAndReport(t *testing.T) {
	cfg := shortRun()
	cfg.demand = "diurnal"
	cfg.length = 26 * time.Hour
	cfg.pending, cfg.ready = 30*time.Second, 3*time.Minute
	cfg.goalWait = 2 * time.Minute
	cfg.policies = "recommended,forecast,buffer-6"
	cfg.parallel = 1
	rep, err := simulateAll(context.Background(), cfg)
	require.NoError(t, err)
	plain, fc, fixed := byName(t, rep, "recommended"), byName(t, rep, "forecast"), byName(t, rep, "buffer-6")
	g := rep.sc.goal

	// A boot longer than the goal's wait: following demand misses the goal,
	// a buffer serves rises at once.
	assert.Less(t, g.attainment(plain.ttc), 0.6)
	assert.Greater(t, g.attainment(fixed.ttc), g.attainment(plain.ttc)+0.2)
	assert.Greater(t, g.attainment(fc.ttc), g.attainment(plain.ttc)+0.2)
	assert.Greater(t, rep.sc.idleMean(fixed), rep.sc.idleMean(plain)+4, "buffer-6 holds about 6 units idle")

	// The forecast's own measure of attainment agrees with the simulation's.
	require.NotNil(t, fc.forecast)
	assert.Nil(t, plain.forecast)
	assert.InDelta(t, g.attainment(fc.ttc), fc.forecast.Attainment, 0.05)
	assert.Positive(t, fc.forecast.BufferUnitHours)

	var out strings.Builder
	rep.writeTable(&out)
	assert.Contains(t, out.String(), "goal     p95 wait for capacity under 2m0s")
	assert.Contains(t, out.String(), "goal: rises within 2m0s")
	assert.Contains(t, out.String(), "fixed buffer: 6 units")
	assert.Contains(t, out.String(), "forecast miss budget at the end")
}

func TestGoalPolicyNames(t *testing.T) {
	ps, err := choosePolicies("forecast, buffer-12,forecast-flat")
	require.NoError(t, err)
	require.Len(t, ps, 3)
	assert.NotNil(t, ps[0].host)
	assert.Equal(t, "buffer-12", ps[1].name)
	_, err = choosePolicies("buffer-x")
	assert.ErrorContains(t, err, "buffer-N")
}

func TestGoalAttainment(t *testing.T) {
	g := goal{quantile: 0.95, wait: 2 * time.Minute}
	assert.Equal(t, 1.0, g.attainment(nil))
	assert.InDelta(t, 0.5, g.attainment([]time.Duration{0, 2 * time.Minute, 2*time.Minute + time.Second, time.Hour}), 1e-9)
}
