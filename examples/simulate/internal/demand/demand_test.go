package demand

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromJobsSweepsEndsBeforeStarts(t *testing.T) {
	tr, err := FromJobs("jobs", []Job{
		{Submit: 0, Run: 10 * time.Second, Procs: 2},
		{Submit: 10 * time.Second, Run: 5 * time.Second, Procs: 3}, // starts as the first ends
		{Submit: 12 * time.Second, Run: 8 * time.Second, Procs: 1},
	})
	require.NoError(t, err)
	assert.Equal(t, []Step{{0, 2}, {10 * time.Second, 3}, {12 * time.Second, 4}, {15 * time.Second, 1}, {20 * time.Second, 0}}, tr.Steps)
	assert.Equal(t, 20*time.Second, tr.Length)
	assert.Equal(t, 4, tr.Peak(tr.Length))
	assert.Len(t, tr.Jobs, 3)
}

func TestServedIntegratesExactly(t *testing.T) {
	tr, err := FromSteps("levels", []Step{{0, 10}, {30 * time.Second, 4}, {90 * time.Second, 20}}, 2*time.Minute)
	require.NoError(t, err)
	// 10x30 + 4x60 + 20x30
	assert.Equal(t, 1140.0, tr.UnitSeconds(0, 2*time.Minute))
	// capped at 8: 8x30 + 4x60 + 8x30
	assert.Equal(t, 720.0, tr.Served(0, 2*time.Minute, 8))
	// a window inside one step
	assert.Equal(t, 40.0, tr.UnitSeconds(40*time.Second, 50*time.Second))
}

func TestBootAndPassLimited(t *testing.T) {
	// One rise of 10 units at 90 s, seen by passes every 60 s.
	tr, err := FromSteps("step", []Step{{0, 0}, {90 * time.Second, 10}}, 10*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 10*45.0, tr.BootLimited(45*time.Second, tr.Length), "each rise waits for boot")
	// The rise is read at the pass at 120 s and served 45 s later.
	assert.Equal(t, 10*(30+45.0), tr.ReactionLimited(45*time.Second, time.Minute, tr.Length))

	// The return after a 20-second dip of 3 units costs 3 units for 20 s.
	dip, err := FromSteps("dip", []Step{{0, 5}, {100 * time.Second, 2}, {120 * time.Second, 5}}, 10*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 5*45.0+3*20, dip.BootLimited(45*time.Second, dip.Length))
}

func TestWindowAndScale(t *testing.T) {
	tr, err := FromJobs("jobs", []Job{{Submit: 0, Run: time.Hour, Procs: 2}, {Submit: 2 * time.Hour, Run: time.Hour, Procs: 4}})
	require.NoError(t, err)
	w := tr.Window(30*time.Minute, 2*time.Hour)
	assert.Equal(t, []Step{{0, 2}, {30 * time.Minute, 0}, {90 * time.Minute, 4}}, w.Steps)
	assert.Equal(t, -30*time.Minute, w.Jobs[0].Submit)
	s := w.Scale(1.5)
	assert.Equal(t, []Step{{0, 3}, {30 * time.Minute, 0}, {90 * time.Minute, 6}}, s.Steps)
	assert.Equal(t, 6, s.Jobs[1].Procs)
}

func TestReadCSV(t *testing.T) {
	levels, err := ReadCSV("levels.csv", strings.NewReader("# a comment\ntime_s,servers\n0,3\n60,5\n120,0\n"))
	require.NoError(t, err)
	assert.Equal(t, []Step{{0, 3}, {time.Minute, 5}, {2 * time.Minute, 0}}, levels.Steps)
	assert.Nil(t, levels.Jobs)

	jobs, err := ReadCSV("jobs.csv", strings.NewReader("submit_s,wait_s,run_s,procs\n0,100,60,2\n30,5,60,1\n"))
	require.NoError(t, err)
	assert.Equal(t, []Step{{0, 2}, {30 * time.Second, 3}, {time.Minute, 1}, {90 * time.Second, 0}}, jobs.Steps)
	assert.Len(t, jobs.Jobs, 2)

	_, err = ReadCSV("bad.csv", strings.NewReader("time_s,servers\n0,3\n60,x\n"))
	var le *lineError
	require.True(t, errors.As(err, &le), "got %v", err)
	assert.Equal(t, 3, le.line)
	assert.ErrorContains(t, err, "servers")

	_, err = ReadCSV("back.csv", strings.NewReader("time_s,servers\n60,3\n0,1\n"))
	assert.ErrorContains(t, err, "goes back")
	_, err = ReadCSV("what.csv", strings.NewReader("a,b\n1,2\n"))
	assert.ErrorContains(t, err, "want time_s,servers")
}

func TestGeneratorsRepeatForASeedAndHitTheirScale(t *testing.T) {
	length := 7 * 24 * time.Hour
	a, err := Bursty(200, length, 7)
	require.NoError(t, err)
	b, err := Bursty(200, length, 7)
	require.NoError(t, err)
	assert.Equal(t, a.Steps, b.Steps)
	mean := a.UnitSeconds(0, length) / length.Seconds()
	assert.InDelta(t, 200, mean, 40, "mean busy units")

	start := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC) // a Monday
	d, err := Diurnal(100, start, length, 1)
	require.NoError(t, err)
	assert.Greater(t, d.At(12*time.Hour), 2*d.At(3*time.Hour), "noon is busier than the night")
	assert.Greater(t, d.At(12*time.Hour), d.At(5*24*time.Hour+12*time.Hour), "a weekday is busier than Saturday")
	assert.LessOrEqual(t, d.Peak(length), 120)

	s, err := Steady(10, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 10.0*3600, s.UnitSeconds(0, time.Hour))
}
