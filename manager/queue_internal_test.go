package manager

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQueueHistoryStaysBoundedBetweenPasses(t *testing.T) {
	q, err := NewQueue("batch", QueueConfig{ScaleDownDelay: time.Minute})
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = q.Demand(context.Background(), State{Now: t0})
	require.NoError(t, err)
	for i := range 100000 { // a day of observations every second, no pass
		q.Observe(t0.Add(time.Duration(i)*time.Second), i%7, 0)
	}
	assert.LessOrEqual(t, len(q.hist), 62, "only the last minute of observations is kept")
}
