package manager

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForecastMemoryStaysBoundedBetweenPasses(t *testing.T) {
	f, err := NewForecast("batch", ForecastConfig{Goal: WaitGoal{Quantile: 0.95, Wait: 2 * time.Minute}, BootTime: 5 * time.Minute})
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = f.Demand(context.Background(), State{Now: t0})
	require.NoError(t, err)
	// A climb reported every 10 ms and no pass: more rises within the
	// goal's wait and the lead time than the bounds.
	for k := range 15000 {
		f.Observe(t0.Add(time.Duration(k)*10*time.Millisecond), k+1, 0)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.LessOrEqual(t, len(f.pending), maxPending)
	assert.LessOrEqual(t, len(f.unsized), maxPending)
	assert.LessOrEqual(t, len(f.history), maxHistory)
	assert.LessOrEqual(t, len(f.sizes), maxSizes)
	assert.Equal(t, 15000-maxPending, f.rises, "the rises dropped from the list are counted as missed")
}
