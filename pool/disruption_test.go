package pool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDisruptionBudgetTakesTheSmallerCapAndAtLeastOne(t *testing.T) {
	for _, c := range []struct {
		d    Disruption
		n    int
		want int
	}{
		{Disruption{}, 50, 5},                              // the default: a tenth
		{Disruption{}, 3, 1},                               // at least one
		{Disruption{MaxServers: 2}, 50, 2},                 // servers only
		{Disruption{MaxPercent: 50}, 10, 5},                // percent only
		{Disruption{MaxServers: 2, MaxPercent: 50}, 10, 2}, // both: the smaller
		{Disruption{MaxServers: 9, MaxPercent: 20}, 10, 2},
	} {
		assert.Equal(t, c.want, c.d.budget(c.n), "%+v of %d servers", c.d, c.n)
	}
}

func TestWindowsOpenOnTheirDaysAndRunOverMidnight(t *testing.T) {
	mon := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) // a Monday
	night := Window{Days: []time.Weekday{time.Monday}, From: 22 * time.Hour, To: 2 * time.Hour}
	assert.False(t, night.contains(mon.Add(21*time.Hour)))
	assert.True(t, night.contains(mon.Add(23*time.Hour)), "Monday evening")
	assert.True(t, night.contains(mon.Add(25*time.Hour)), "Tuesday 01:00 belongs to Monday's window")
	assert.False(t, night.contains(mon.Add(26*time.Hour)))
	assert.False(t, night.contains(mon.Add(1*time.Hour)), "Monday 01:00 belongs to Sunday, not in Days")
	day := Window{From: 9 * time.Hour, To: 17 * time.Hour}
	assert.True(t, day.contains(mon.Add(9*time.Hour)))
	assert.False(t, day.contains(mon.Add(17*time.Hour)))
	d := Disruption{Windows: []Window{day}}
	assert.True(t, d.open(mon.Add(12*time.Hour)))
	assert.False(t, d.open(mon.Add(20*time.Hour)))
}

func TestBadDisruptionIsRejectedByName(t *testing.T) {
	for _, d := range []Disruption{
		{MaxServers: -1},
		{MaxPercent: 101},
		{Windows: []Window{{From: time.Hour, To: time.Hour}}},
		{Windows: []Window{{From: 25 * time.Hour, To: time.Hour}}},
	} {
		require.Error(t, d.validate(), "%+v", d)
	}
	require.NoError(t, Disruption{MaxServers: 1, Windows: []Window{{From: 22 * time.Hour, To: 2 * time.Hour}}}.validate())
}
