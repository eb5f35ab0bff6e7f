package ec2sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Delay is a distribution of durations, such as how long an instance takes
// to boot. Sample draws one duration using r (math/rand/v2), which the sim
// seeds from [Config.Seed] so that runs repeat exactly. The sim treats a
// negative sample as zero.
//
// Fixed, Uniform and LogNormal cover the common cases; any type with a
// Sample method can be used.
type Delay interface {
	Sample(r *rand.Rand) time.Duration
}

// validator is implemented by the package's own delays so that New can
// reject nonsensical parameters instead of sampling them.
type validator interface {
	validate() error
}

// Fixed returns a Delay that is always d.
func Fixed(d time.Duration) Delay { return fixedDelay(d) }

type fixedDelay time.Duration

func (f fixedDelay) Sample(*rand.Rand) time.Duration { return time.Duration(f) }

func (f fixedDelay) String() string { return fmt.Sprintf("Fixed(%v)", time.Duration(f)) }

func (f fixedDelay) validate() error {
	if f < 0 {
		return fmt.Errorf("negative duration %v", time.Duration(f))
	}
	return nil
}

// Uniform returns a Delay uniformly distributed over [min, max].
func Uniform(min, max time.Duration) Delay { return uniformDelay{min: min, max: max} }

type uniformDelay struct{ min, max time.Duration }

func (u uniformDelay) Sample(r *rand.Rand) time.Duration {
	lo, hi := u.min, u.max
	if hi < lo {
		lo, hi = hi, lo
	}
	// Unsigned arithmetic keeps the span exact even when it does not fit
	// in an int64.
	span := uint64(hi) - uint64(lo)
	if span == 0 {
		return lo
	}
	var x uint64
	if span == math.MaxUint64 {
		x = r.Uint64()
	} else {
		x = r.Uint64N(span + 1)
	}
	return time.Duration(uint64(lo) + x)
}

func (u uniformDelay) String() string { return fmt.Sprintf("Uniform(%v, %v)", u.min, u.max) }

func (u uniformDelay) validate() error {
	if u.min < 0 {
		return fmt.Errorf("negative minimum %v", u.min)
	}
	if u.max < u.min {
		return fmt.Errorf("maximum %v below minimum %v", u.max, u.min)
	}
	return nil
}

// LogNormal returns a Delay whose logarithm is normally distributed: half
// the samples fall below median, and sigma (the standard deviation of the
// logarithm) sets the spread; with sigma 0.25, 95% of samples lie between
// 0.61 and 1.63 times the median. Boot times look like this: never
// negative, occasionally much slower than usual.
func LogNormal(median time.Duration, sigma float64) Delay {
	return logNormalDelay{median: median, sigma: sigma}
}

type logNormalDelay struct {
	median time.Duration
	sigma  float64
}

func (l logNormalDelay) Sample(r *rand.Rand) time.Duration {
	d := float64(l.median) * math.Exp(l.sigma*r.NormFloat64())
	if d >= math.MaxInt64 || math.IsNaN(d) {
		return math.MaxInt64
	}
	return time.Duration(d)
}

func (l logNormalDelay) String() string { return fmt.Sprintf("LogNormal(%v, %g)", l.median, l.sigma) }

func (l logNormalDelay) validate() error {
	if l.median <= 0 {
		return fmt.Errorf("median %v is not positive", l.median)
	}
	if l.sigma < 0 || math.IsNaN(l.sigma) || math.IsInf(l.sigma, 0) {
		return errors.New("sigma must be a finite number >= 0")
	}
	return nil
}

// sample draws from d and clamps negative results, so that a user-supplied
// Delay can never move an instance's state backwards in time.
func sample(d Delay, r *rand.Rand) time.Duration {
	return max(d.Sample(r), 0)
}
