package manager_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

func TestQueueClassesReachWork(t *testing.T) {
	q, err := manager.NewQueue("batch", manager.QueueConfig{JobsPerUnit: 2, Max: 10, Classes: []manager.JobClass{
		{Name: "short", Run: 10 * time.Minute, Checkpoint: 0},
		{Name: "long", Run: 10 * time.Hour, Width: 2},
	}})
	require.NoError(t, err)
	ctx := context.Background()
	q.ObserveClasses(start, map[string]manager.JobCount{
		"short": {Queued: 3, Running: 2}, // 5 jobs: 3 units
		"long":  {Running: 4},            // 2 units
		"other": {Queued: 1},             // counts toward the target, in no class
	})
	req, err := q.Demand(ctx, manager.State{Now: start})
	require.NoError(t, err)
	assert.Equal(t, 5, req.Target, "ceil(10 jobs / 2)")
	assert.Equal(t, []manager.Work{
		{Class: "short", Units: 3, Run: 10 * time.Minute},
		{Class: "long", Units: 2, Run: 10 * time.Hour, Width: 2},
	}, req.Work)

	// Max holds the target down: Work never says more than the target.
	q.ObserveClasses(start.Add(time.Minute), map[string]manager.JobCount{"short": {Queued: 16}, "long": {Running: 10}})
	req, err = q.Demand(ctx, manager.State{Now: start.Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 10, req.Target)
	assert.Equal(t, []manager.Work{{Class: "short", Units: 8, Run: 10 * time.Minute}, {Class: "long", Units: 2, Run: 10 * time.Hour, Width: 2}}, req.Work)

	// A plain Observe says nothing of classes: Work is empty again, and the
	// rest behaves as before.
	q.Observe(start.Add(2*time.Minute), 30, 0)
	req, err = q.Demand(ctx, manager.State{Now: start.Add(2 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 10, req.Target)
	assert.Empty(t, req.Work)
}

func TestQueueClassesValidated(t *testing.T) {
	for _, tc := range []struct {
		classes []manager.JobClass
		field   string
	}{
		{[]manager.JobClass{{Run: time.Hour}}, "Classes[0]"},
		{[]manager.JobClass{{Name: "a", Run: time.Hour}, {Name: "a", Run: time.Hour}}, "Classes[1]"},
		{[]manager.JobClass{{Name: "a"}}, "Classes[0]"},
		{[]manager.JobClass{{Name: "a", Run: time.Hour, Checkpoint: -1}}, "Classes[0]"},
		{[]manager.JobClass{{Name: "a", Run: time.Hour, Width: -1}}, "Classes[0]"},
	} {
		_, err := manager.NewQueue("batch", manager.QueueConfig{Classes: tc.classes})
		var ce *manager.ConfigError
		require.True(t, errors.As(err, &ce), "%v", tc.classes)
		assert.Equal(t, tc.field, ce.Field)
	}
}

// A queue that knows how long its jobs run tells the pool, so that long
// jobs that cannot checkpoint can be put on on-demand capacity and short
// ones on spot.
func ExampleQueue_ObserveClasses() {
	jobs, err := manager.NewQueue("batch", manager.QueueConfig{Classes: []manager.JobClass{
		{Name: "short", Run: 10 * time.Minute},
		{Name: "long", Run: 10 * time.Hour}, // no checkpoints
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	jobs.ObserveClasses(now, map[string]manager.JobCount{"short": {Queued: 6}, "long": {Running: 2}})
	req, _ := jobs.Demand(context.Background(), manager.State{Now: now})
	fmt.Println("target", req.Target)
	for _, w := range req.Work {
		fmt.Println(w.Class, w.Units, w.Run)
	}
	// Output:
	// target 8
	// short 6 10m0s
	// long 2 10h0m0s
}
