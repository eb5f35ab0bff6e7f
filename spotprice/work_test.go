package spotprice_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

func TestHourlyRateRoundTrip(t *testing.T) {
	for _, p := range []float64{0.025, 0.25, 0.9, 0.999999} {
		assert.InDelta(t, p, spotprice.MonthlyProbability(spotprice.HourlyRate(p)), 1e-12, "p=%v", p)
	}
	// p = 1 - e^(-720 λ): a 25% month is about 0.0004 an hour.
	assert.InDelta(t, 0.0003996, spotprice.HourlyRate(0.25), 1e-7)
	assert.Zero(t, spotprice.HourlyRate(0))
	assert.Zero(t, spotprice.HourlyRate(math.NaN()))
	assert.True(t, math.IsInf(spotprice.HourlyRate(1), 1))
}

func TestSpotWorkCost(t *testing.T) {
	const spot, od = 0.03, 0.1
	// No interruptions: the spot price, nothing more.
	c := spotprice.SpotWorkCost(spotprice.Work{Run: 10 * time.Hour}, spot, od, 0)
	assert.Equal(t, spot, c.Spot)
	assert.Equal(t, 1.0, c.Billed)

	// At rate 0.1/h, a 10-hour job without checkpoints: e^1 - 1 = 1.718
	// interruptions, (e - 1)/1 = 1.718 hours billed per hour of work.
	w := spotprice.Work{Run: 10 * time.Hour, Wait: 6 * time.Minute}
	c = spotprice.SpotWorkCost(w, spot, od, 0.1)
	assert.InDelta(t, math.E-1, c.Interruptions, 1e-9)
	assert.InDelta(t, math.E-1, c.Billed, 1e-9)
	assert.InDelta(t, (math.E-1)*0.1/10, c.Waited, 1e-9)
	assert.InDelta(t, spot*(math.E-1)+od*c.Waited, c.Spot, 1e-12)
	assert.InDelta(t, c.Spot-spot, c.Interruption, 1e-12)

	// Checkpoints every 30 minutes lose far less.
	w.Checkpoint = 30 * time.Minute
	ck := spotprice.SpotWorkCost(w, spot, od, 0.1)
	assert.Less(t, ck.Billed, 1.03)
	assert.InDelta(t, 20*math.Expm1(0.05), ck.Interruptions, 1e-9)

	// Four instances: four times the rate.
	w = spotprice.Work{Run: 10 * time.Hour, Instances: 4}
	assert.InDelta(t, spotprice.SpotWorkCost(spotprice.Work{Run: 10 * time.Hour}, spot, od, 0.4).Spot,
		spotprice.SpotWorkCost(w, spot, od, 0.1).Spot, 1e-12)

	// Short work at a low rate: about the chance of an interruption times
	// half the work lost.
	w = spotprice.Work{Run: 10 * time.Minute}
	rate := spotprice.HourlyRate(0.25)
	c = spotprice.SpotWorkCost(w, spot, od, rate)
	assert.InDelta(t, rate*(10.0/60)/2, c.Billed-1, 1e-9)
}

// A ten-hour job that restarts from scratch, against ten-minute jobs, on
// spot at a third of the on-demand price.
func ExampleSpotWorkCost() {
	const spot, od = 0.032, 0.096
	wait := 3 * time.Minute
	for _, rate := range []float64{spotprice.HourlyRate(0.25), 0.2} {
		long := spotprice.SpotWorkCost(spotprice.Work{Run: 10 * time.Hour, Wait: wait}, spot, od, rate)
		short := spotprice.SpotWorkCost(spotprice.Work{Run: 10 * time.Minute, Wait: wait}, spot, od, rate)
		fmt.Printf("rate %.4f/h: 10 h job $%.4f/h (on-demand %v), 10 min jobs $%.4f/h\n", rate, long.Spot, long.Spot > od, short.Spot)
	}
	// Output:
	// rate 0.0004/h: 10 h job $0.0321/h (on-demand false), 10 min jobs $0.0320/h
	// rate 0.2000/h: 10 h job $0.1053/h (on-demand true), 10 min jobs $0.0335/h
}
