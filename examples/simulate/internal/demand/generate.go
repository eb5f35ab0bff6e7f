package demand

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Steady wants units all the time.
func Steady(units int, length time.Duration) (*Trace, error) {
	return FromSteps(fmt.Sprintf("steady %d", units), []Step{{At: 0, Units: units}}, length)
}

// diurnalShape is the share of the peak wanted at each hour of a weekday
// (UTC): a quiet night, a morning ramp, a working-day plateau and an
// evening decline, the shape of an office's batch load.
var diurnalShape = [24]float64{
	0.30, 0.28, 0.27, 0.26, 0.26, 0.27, 0.32, 0.45,
	0.65, 0.85, 0.95, 1.00, 0.95, 0.97, 1.00, 0.98,
	0.92, 0.80, 0.65, 0.52, 0.45, 0.40, 0.36, 0.32,
}

// weekendShare scales the shape on Saturdays and Sundays.
const weekendShare = 0.45

// Diurnal wants up to peak units following a day-and-week pattern, with
// 5% noise, changing every 5 minutes. start is the wall time of time 0,
// which places the weekends.
func Diurnal(peak int, start time.Time, length time.Duration, seed uint64) (*Trace, error) {
	if peak <= 0 {
		return nil, fmt.Errorf("demand: diurnal peak %d: must be positive", peak)
	}
	rng := rand.New(rand.NewPCG(seed, 0xd1))
	const every = 5 * time.Minute
	var steps []Step
	for at := time.Duration(0); at < length; at += every {
		t := start.Add(at).UTC()
		h := float64(t.Hour()) + float64(t.Minute())/60
		// Interpolate between hours so the ramps are smooth.
		lo := diurnalShape[int(h)%24]
		hi := diurnalShape[(int(h)+1)%24]
		share := lo + (hi-lo)*(h-math.Floor(h))
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			share *= weekendShare
		}
		share *= 1 + 0.05*rng.NormFloat64()
		steps = append(steps, Step{At: at, Units: max(0, int(math.Round(share*float64(peak))))})
	}
	return FromSteps(fmt.Sprintf("diurnal peak %d", peak), steps, length)
}

// Bursty generates a job queue: bursts of jobs arrive at random (single
// jobs most of the time, now and then one user's batch of 5 to 80), each job
// wanting 1 to 4 units for minutes to hours (log-normal, median 20 minutes,
// capped at 12 hours). The arrival rate is set so that on average mean units
// are busy.
func Bursty(mean int, length time.Duration, seed uint64) (*Trace, error) {
	if mean <= 0 {
		return nil, fmt.Errorf("demand: bursty mean %d: must be positive", mean)
	}
	rng := rand.New(rand.NewPCG(seed, 0xb5))
	const (
		median   = 20 * time.Minute
		sigma    = 1.3
		maxRun   = 12 * time.Hour
		burstP   = 0.08 // share of arrivals that are a batch
		minBatch = 5
		maxBatch = 80
	)
	// E[run] of the capped log-normal, estimated by sampling the same
	// distribution once: simpler than the closed form and exact enough.
	est := rand.New(rand.NewPCG(seed, 0xe5))
	sum := 0.0
	const samples = 20000
	for range samples {
		sum += min(median.Seconds()*math.Exp(sigma*est.NormFloat64()), maxRun.Seconds())
	}
	meanRun := sum / samples
	meanProcs := 2.5
	meanJobsPerArrival := (1 - burstP) + burstP*float64(minBatch+maxBatch)/2
	arrivalsPerSecond := float64(mean) / (meanRun * meanProcs * meanJobsPerArrival)
	var jobs []Job
	for at := 0.0; ; {
		at += rng.ExpFloat64() / arrivalsPerSecond
		submit := time.Duration(at * float64(time.Second))
		if submit >= length {
			break
		}
		n := 1
		if rng.Float64() < burstP {
			n = minBatch + rng.IntN(maxBatch-minBatch+1)
		}
		for range n {
			run := min(median.Seconds()*math.Exp(sigma*rng.NormFloat64()), maxRun.Seconds())
			jobs = append(jobs, Job{
				Submit: submit,
				Run:    max(time.Second, time.Duration(run*float64(time.Second))),
				Procs:  1 + rng.IntN(4),
			})
		}
	}
	t, err := FromJobs(fmt.Sprintf("bursty mean %d", mean), jobs)
	if err != nil {
		return nil, err
	}
	return t.Window(0, length), nil
}
