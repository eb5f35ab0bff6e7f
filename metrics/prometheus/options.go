package ec2autoscaleprom

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric name.
const Namespace = "ec2autoscale"

// DefaultPassBuckets are the upper bounds, in seconds, of the pass duration
// histogram: a pass is one listing, plain code, and a few batched cloud
// calls, so it takes from tens of milliseconds to seconds; a pass past a
// minute means a cloud call is stuck.
var DefaultPassBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Options configure an Observer or a Collector. The zero value takes the
// documented defaults.
type Options struct {
	// ConstLabels are added to every metric. Several scalers registered on
	// one registry need them to tell their series apart, for example
	// prometheus.Labels{"scaler": identity}. Their names must not be one
	// of the labels the metrics have already (pool, state, ...).
	ConstLabels prometheus.Labels
	// PassBuckets are the upper bounds of the pass duration histogram, in
	// seconds, strictly increasing; default DefaultPassBuckets. Only the
	// Observer uses them.
	PassBuckets []float64
}

// ErrInvalidOptions is wrapped by every validation error of NewObserver and
// NewCollector.
var ErrInvalidOptions = errors.New("invalid metrics options")

func (o Options) withDefaults() (Options, error) {
	if len(o.PassBuckets) == 0 {
		o.PassBuckets = DefaultPassBuckets
	}
	for i, b := range o.PassBuckets {
		if i > 0 && b <= o.PassBuckets[i-1] {
			return o, fmt.Errorf("%w: PassBuckets: must be strictly increasing, got %v", ErrInvalidOptions, o.PassBuckets)
		}
	}
	// Copied: the caller may reuse its slice and map.
	o.PassBuckets = slices.Clone(o.PassBuckets)
	labels := make(prometheus.Labels, len(o.ConstLabels))
	for k, v := range o.ConstLabels {
		labels[k] = v
	}
	o.ConstLabels = labels
	return o, nil
}

// validate registers c on a throwaway registry: client_golang reports a bad
// label name or a clash between a constant and a variable label only at
// registration, and the constructors should say so instead.
func validate(c prometheus.Collector) error {
	if err := prometheus.NewPedanticRegistry().Register(c); err != nil {
		return fmt.Errorf("%w: ConstLabels: %w", ErrInvalidOptions, err)
	}
	return nil
}

// validLabels repairs label values that are not valid UTF-8, which
// client_golang refuses (its WithLabelValues panics on them): pool and
// manager names are the host's, and no name should take a pass down.
func validLabels(labels []string) []string {
	for i, l := range labels {
		if !utf8.ValidString(l) {
			labels[i] = strings.ToValidUTF8(l, "\uFFFD")
		}
	}
	return labels
}
