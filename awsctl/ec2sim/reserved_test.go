package ec2sim_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

func TestReservationsListsActiveOnes(t *testing.T) {
	zonal := awsctl.Reservation{InstanceType: "m5.large", Zone: "us-east-1a", Count: 2, End: t0.Add(2 * time.Hour)}
	regional := awsctl.Reservation{InstanceType: "c5.large", Count: 1}
	sim := newSim(t, ec2sim.Config{Reservations: []awsctl.Reservation{zonal, regional}})
	assert.NotContains(t, sim.Calls(), ec2sim.OpReservations)

	res, err := sim.Reservations(bgCtx)
	require.NoError(t, err)
	assert.Equal(t, []awsctl.Reservation{zonal, regional}, res)
	require.NoError(t, sim.Advance(2*time.Hour))
	res, err = sim.Reservations(bgCtx)
	require.NoError(t, err)
	assert.Equal(t, []awsctl.Reservation{regional}, res, "a reservation ends at its End")
	assert.Equal(t, 2, sim.Calls()[ec2sim.OpReservations])

	res[0].Count = 99
	res, err = sim.Reservations(bgCtx)
	require.NoError(t, err)
	assert.Equal(t, 1, res[0].Count, "the result is the caller's")

	sim.ResetCalls()
	assert.Equal(t, 0, sim.Calls()[ec2sim.OpReservations])
	sim.FailNext(ec2sim.OpReservations, nil)
	_, err = sim.Reservations(bgCtx)
	assert.ErrorIs(t, err, awsctl.ErrUnavailable)
}

// 0.36 an hour is 0.0001 a second: costs read as seconds.
var reservedPrices = map[string]float64{"m5.large": 0.36}

func TestReservationsCoverZonalFirst(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), OnDemandPrices: reservedPrices, ReservedPriceRatio: 0.5,
		Reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Count: 1},                     // regional
			{InstanceType: "m5.large", Zone: "us-east-1a", Count: 1}, // zonal
		}})
	// Applied regional first, the reservation would go to a, leaving b
	// unserved and the zonal one idle. Zonal first covers both.
	a := launch(t, sim, 1, m5a)[0]
	b := launch(t, sim, 1, m5b)[0]
	require.NoError(t, sim.Advance(time.Hour))
	bill := sim.Bill()
	assert.Zero(t, bill.ByInstance[a.ID])
	assert.Zero(t, bill.ByInstance[b.ID])
	assert.Zero(t, bill.ByMarket[onDmd])
	const fees = 2 * 0.5 * 0.36 // two reservations, one hour each
	assert.InDelta(t, fees, bill.Reserved, 1e-12)
	assert.InDelta(t, fees, bill.Total, 1e-12)
}

func TestReservationMovesWhenItsInstanceStops(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), OnDemandPrices: reservedPrices, ReservedPriceRatio: 0.5,
		Reservations: []awsctl.Reservation{
			{InstanceType: "m5.large", Zone: "us-east-1a", Count: 1},
			{InstanceType: "m5.large", Count: 1},
		}})
	a1 := launch(t, sim, 1, m5a)[0] // zonal
	a2 := launch(t, sim, 1, m5a)[0] // regional
	b := launch(t, sim, 1, m5b)[0]  // unserved
	spotA := launchSpot(t, sim, 1, m5a)[0]

	require.NoError(t, sim.Advance(time.Hour))
	// a2 moves to the zonal reservation in its zone and hands the regional
	// one to b.
	_, err := sim.Terminate(bgCtx, []string{a1.ID})
	require.NoError(t, err)
	require.NoError(t, sim.Advance(time.Hour))

	bill := sim.Bill()
	assert.Zero(t, bill.ByInstance[a1.ID])
	assert.Zero(t, bill.ByInstance[a2.ID])
	assert.InDelta(t, 0.36, bill.ByInstance[b.ID], 1e-12, "unserved for the first hour only")
	assert.InDelta(t, 0.36*2, bill.ByInstance[spotA.ID], 1e-12, "reservations never cover spot")
	assert.InDelta(t, 0.36, bill.ByMarket[onDmd], 1e-12)
	assert.InDelta(t, 2*2*0.5*0.36, bill.Reserved, 1e-12)
	assert.InDelta(t, 0.36+0.36*2+2*2*0.5*0.36, bill.Total, 1e-12)
}

func TestReservationFeesAccrueUnusedAndStopAtEnd(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0),
		Reservations: []awsctl.Reservation{{InstanceType: "m5.large", Zone: "us-east-1a", Count: 2, End: t0.Add(90 * time.Minute)}}})
	const hourly = 2 * ec2sim.DefaultReservedPriceRatio * 0.096
	assert.Zero(t, sim.Bill().Reserved, "no hour has started")
	require.NoError(t, sim.Advance(time.Second))
	assert.InDelta(t, hourly, sim.Bill().Reserved, 1e-12, "an hour is charged once started")

	require.NoError(t, sim.Advance(30*time.Minute-time.Second))
	inst := launch(t, sim, 1, m5a)[0] // covered from 30 min to the end at 90
	require.NoError(t, sim.Advance(150*time.Minute))
	bill := sim.Bill()
	assert.InDelta(t, 2*hourly, bill.Reserved, 1e-12, "90 minutes are two started hours")
	assert.InDelta(t, 0.096*(150-60)/60, bill.ByInstance[inst.ID], 1e-12, "charged once the reservation ended")
}

func TestReservationCoverageStartsWhenRunning(t *testing.T) {
	sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(time.Minute), OnDemandPrices: reservedPrices,
		Reservations: []awsctl.Reservation{{InstanceType: "m5.large", Count: 1}}})
	first := launch(t, sim, 1, m5a)[0]
	require.NoError(t, sim.Advance(30*time.Second))
	second := launch(t, sim, 1, m5a)[0] // pending until 90 s; first runs from 60 s
	_, err := sim.Terminate(bgCtx, []string{first.ID})
	require.NoError(t, err) // first never ran: the reservation waits for second
	require.NoError(t, sim.Advance(10*time.Minute))
	bill := sim.Bill()
	assert.Zero(t, bill.ByInstance[first.ID])
	assert.Zero(t, bill.ByInstance[second.ID])
}

// Random schedules against a minute-by-minute count of what EC2 covers:
// per type, min(running, zonal) in each zone, then min(regional, the rest).
func TestReservedBillingMatchesBruteForce(t *testing.T) {
	types := []string{"m5.large", "c5.large", "r5.large"} // r5.large has no reservations
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	prices := map[string]float64{"m5.large": 3.6, "c5.large": 3.6, "r5.large": 3.6} // 0.001 a second
	const horizon = 300                                                             // minutes

	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			var reservations []awsctl.Reservation
			for _, typ := range types[:2] {
				for _, zone := range append([]string{""}, zones...) {
					if n := rng.IntN(3); n > 0 {
						res := awsctl.Reservation{InstanceType: typ, Zone: zone, Count: n}
						if rng.IntN(2) == 0 {
							res.End = t0.Add(time.Duration(1+rng.IntN(horizon)) * time.Minute)
						}
						reservations = append(reservations, res)
					}
				}
			}
			type run struct {
				typ, zone  string
				start, end int // minutes; end == horizon means still running
			}
			var runs []run
			for range 60 {
				start := rng.IntN(horizon - 1)
				end := min(horizon, start+1+rng.IntN(120))
				runs = append(runs, run{types[rng.IntN(3)], zones[rng.IntN(3)], start, end})
			}

			sim := newSim(t, ec2sim.Config{BootDelay: ec2sim.Fixed(0), OnDemandPrices: prices, Reservations: reservations})
			ids := make([]string, len(runs))
			for m := range horizon {
				for i, r := range runs {
					if r.end == m {
						_, err := sim.Terminate(bgCtx, []string{ids[i]})
						require.NoError(t, err)
					}
				}
				for i, r := range runs {
					if r.start == m {
						ids[i] = launch(t, sim, 1, awsctl.Offering{InstanceType: r.typ, Zone: r.zone, Weight: 1})[0].ID
					}
				}
				require.NoError(t, sim.Advance(time.Minute))
			}

			usedMinutes, coveredMinutes := 0, 0
			for m := range horizon {
				running := map[[2]string]int{}
				for _, r := range runs {
					if r.start <= m && m < r.end {
						running[[2]string{r.typ, r.zone}]++
						usedMinutes++
					}
				}
				for _, typ := range types {
					regional, rest := 0, 0
					for _, res := range reservations {
						if res.InstanceType == typ && res.Zone == "" && (res.End.IsZero() || res.End.After(t0.Add(time.Duration(m)*time.Minute))) {
							regional += res.Count
						}
					}
					for _, zone := range zones {
						zonal := 0
						for _, res := range reservations {
							if res.InstanceType == typ && res.Zone == zone && (res.End.IsZero() || res.End.After(t0.Add(time.Duration(m)*time.Minute))) {
								zonal += res.Count
							}
						}
						n := running[[2]string{typ, zone}]
						coveredMinutes += min(n, zonal)
						rest += max(0, n-zonal)
					}
					coveredMinutes += min(regional, rest)
				}
			}
			fees := 0.0
			for _, res := range reservations {
				active := horizon * time.Minute
				if !res.End.IsZero() {
					active = res.End.Sub(t0)
				}
				fees += float64(res.Count) * math.Ceil(active.Hours()) * ec2sim.DefaultReservedPriceRatio * 3.6
			}

			bill := sim.Bill()
			assert.InDelta(t, 0.06*float64(usedMinutes-coveredMinutes), bill.ByMarket[onDmd], 1e-9,
				"%d of %d minutes covered", coveredMinutes, usedMinutes)
			assert.InDelta(t, fees, bill.Reserved, 1e-9)
		})
	}
}
