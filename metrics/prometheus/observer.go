package ec2autoscaleprom

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// Observer turns the scaler's events into counters and times its passes.
// Give it to autoscale.Options.Observer, register it, and, to have the
// pass duration histogram, call Step through InstrumentStep.
//
// Events of a dry run (Event.DryRun) describe what would have been done,
// and nothing was: they are not counted.
//
// Observe is called synchronously by the pass: it only increments counters
// under short locks, never blocks on a scrape.
type Observer struct {
	events              *prometheus.CounterVec
	launchedInstances   *prometheus.CounterVec
	launchedUnits       *prometheus.CounterVec
	launchFailures      *prometheus.CounterVec
	launchCapped        *prometheus.CounterVec
	capacityUnavailable *prometheus.CounterVec
	terminations        *prometheus.CounterVec
	windDownsStarted    *prometheus.CounterVec
	windDownsCancelled  *prometheus.CounterVec
	windDownTimeouts    *prometheus.CounterVec
	replacements        *prometheus.CounterVec
	interruptions       *prometheus.CounterVec
	rebalances          *prometheus.CounterVec
	revocations         *prometheus.CounterVec
	cloudErrors         *prometheus.CounterVec
	passDuration        *prometheus.HistogramVec

	// leaving remembers why each server winding down leaves, so that its
	// termination, reported passes later without a reason, is counted
	// under it. Instance ids stay here and never reach a label.
	mu      sync.Mutex
	leaving map[string]leaving
}

type leaving struct {
	reason string
	since  time.Time
}

// Bounds of Observer.leaving. An entry is removed when its server is
// terminated, put back to work or lost; one whose end was never reported
// (the server vanished while this process was not watching) would stay
// forever, so beyond maxLeaving entries those older than leavingTTL go.
const (
	maxLeaving = 50_000
	leavingTTL = 24 * time.Hour
)

// NewObserver returns an Observer. Errors wrap ErrInvalidOptions and name
// the bad field.
func NewObserver(opts Options) (*Observer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: name, Help: help, ConstLabels: o.ConstLabels,
		}, labels)
	}
	ob := &Observer{
		events: counter("events_total",
			"Events reported by the scaler, by kind (the pool.EventKind names).", "pool", "kind"),
		launchedInstances: counter("launched_instances_total",
			"Instances launched, by market and reason (capacity: demand or Min; replacement: to replace a server).",
			"pool", "market", "reason"),
		launchedUnits: counter("launched_capacity_units_total",
			"Capacity units launched (instances times their type's weight), by market and reason.",
			"pool", "market", "reason"),
		launchFailures: counter("launch_failures_total",
			"Launch requests EC2 failed, in whole or in part, by market and error kind.",
			"pool", "market", "error"),
		launchCapped: counter("launch_capped_capacity_units_total",
			"Capacity units a decided launch was held back by, by the rail or pause that held it.",
			"pool", "reason"),
		capacityUnavailable: counter("capacity_unavailable_total",
			"Decisions that found no offering to launch the capacity needed, by reason.",
			"pool", "reason"),
		terminations: counter("terminations_total",
			"Instances terminated by the scaler, by market and the reason they were wound down.",
			"pool", "market", "reason"),
		windDownsStarted: counter("wind_downs_started_total",
			"Wind-downs started, by reason.", "pool", "reason"),
		windDownsCancelled: counter("wind_downs_cancelled_total",
			"Wind-downs that ended with the server kept rather than terminated, by reason.", "pool", "reason"),
		windDownTimeouts: counter("wind_down_timeouts_total",
			"Wind-downs past their deadline, by what the scaler did (wait, terminate or restore).",
			"pool", "action"),
		replacements: counter("replacements_total",
			"Server replacements (make-before-break), by reason (spot: an on-demand to spot swap) and stage.",
			"pool", "reason", "stage"),
		interruptions: counter("spot_interruptions_total",
			"Spot interruption notices acted on.", "pool"),
		rebalances: counter("spot_rebalance_recommendations_total",
			"EC2 rebalance recommendations passed on to managers.", "pool"),
		revocations: counter("revocations_total",
			"Servers taken from their manager by something other than a wind-down it asked for, by reason.",
			"pool", "reason"),
		cloudErrors: counter("cloud_errors_total",
			"Failed or refused cloud actions, by operation and error kind (throttled, insufficient-capacity, ...).",
			"pool", "operation", "error"),
		passDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "pass_duration_seconds", ConstLabels: o.ConstLabels, Buckets: o.PassBuckets,
			Help: "Wall time of Scaler.Step calls made through InstrumentStep, by result (ok, error, not-leader).",
		}, []string{"result"}),
		leaving: map[string]leaving{},
	}
	if err := validate(ob); err != nil {
		return nil, err
	}
	return ob, nil
}

func (o *Observer) vecs() []prometheus.Collector {
	return []prometheus.Collector{o.events, o.launchedInstances, o.launchedUnits, o.launchFailures, o.launchCapped,
		o.capacityUnavailable, o.terminations, o.windDownsStarted, o.windDownsCancelled, o.windDownTimeouts,
		o.replacements, o.interruptions, o.rebalances, o.revocations, o.cloudErrors, o.passDuration}
}

// Describe implements prometheus.Collector.
func (o *Observer) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range o.vecs() {
		v.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (o *Observer) Collect(ch chan<- prometheus.Metric) {
	for _, v := range o.vecs() {
		v.Collect(ch)
	}
}

// Observe implements autoscale.Observer.
func (o *Observer) Observe(e autoscale.Event) {
	if e.DryRun {
		return
	}
	p := e.Pool // a configured pool's name, or "" for the scaler as a whole
	add(o.events, 1, p, eventKind(e))
	switch e.Kind {
	case pool.EventLaunch:
		m, r := market(e.Market), launchReason(e.Reason)
		add(o.launchedInstances, float64(len(e.Instances)), p, m, r)
		add(o.launchedUnits, float64(e.Capacity), p, m, r)
	case pool.EventLaunchFailed:
		class := errorClass(e.Err)
		add(o.launchFailures, 1, p, market(e.Market), class)
		add(o.cloudErrors, 1, p, "launch", class)
	case pool.EventLaunchCapped:
		add(o.launchCapped, float64(e.Capacity), p, cappedReason(e.Reason))
	case pool.EventNoCapacity:
		add(o.capacityUnavailable, 1, p, noCapacityReason(e.Reason))
	case pool.EventCloudError:
		add(o.cloudErrors, 1, p, cloudOperation(e.Reason), errorClass(e.Err))
	case pool.EventWindDown:
		if strings.HasPrefix(e.Reason, overdue) {
			// Not a new wind-down: one past its deadline, waited for.
			add(o.windDownTimeouts, 1, p, "wait")
			return
		}
		r := windDownReason(e.Reason)
		add(o.windDownsStarted, 1, p, r)
		if strings.HasPrefix(e.Reason, "replaced by ") {
			// Its replacement took over: the replaced server goes.
			add(o.replacements, 1, p, replaceReason(e.Reason), "completed")
		}
		o.remember(e.Instance, r, e.Time)
	case pool.EventWindDownTimedOut:
		add(o.windDownTimeouts, 1, p, "terminate")
	case pool.EventRestore:
		r := restoreReason(e.Reason)
		add(o.windDownsCancelled, 1, p, r)
		if r == "deadline-passed" {
			add(o.windDownTimeouts, 1, p, "restore")
		}
		o.forget(e.Instance)
	case pool.EventTerminate:
		add(o.terminations, 1, p, market(e.Market), o.forget(e.Instance))
	case pool.EventInterrupted:
		add(o.interruptions, 1, p)
		o.remember(e.Instance, "interruption", e.Time)
	case pool.EventRebalance:
		add(o.rebalances, 1, p)
	case pool.EventReplace:
		stage := "started"
		if strings.HasSuffix(e.Reason, "; retired") {
			stage = "retired" // it served no one: it leaves, nothing launched in its place
		}
		add(o.replacements, 1, p, replaceReason(e.Reason), stage)
	case pool.EventReplaceSkipped:
		add(o.replacements, 1, p, replaceReason(e.Reason), "skipped")
	case pool.EventRevoke:
		r := revokeReason(e.Reason)
		add(o.revocations, 1, p, r)
		switch r {
		case "lost":
			o.forget(e.Instance) // gone: no termination will be reported
		case "stopped":
			o.remember(e.Instance, r, e.Time) // terminated next, with no wind-down event
		}
	}
}

// remember records why the server id is leaving.
func (o *Observer) remember(id, reason string, at time.Time) {
	if id == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.leaving[id]; !ok && len(o.leaving) >= maxLeaving {
		for k, l := range o.leaving {
			if at.Sub(l.since) > leavingTTL {
				delete(o.leaving, k)
			}
		}
		if len(o.leaving) >= maxLeaving {
			return // the termination will count as "unknown"
		}
	}
	o.leaving[id] = leaving{reason: reason, since: at}
}

// forget drops what is remembered of id and returns why it was leaving, or
// "unknown" if its wind-down was not seen (it started before this process).
func (o *Observer) forget(id string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	l, ok := o.leaving[id]
	if !ok {
		return unknown
	}
	delete(o.leaving, id)
	return l.reason
}

// errNilStep is what a step made from a nil function returns.
var errNilStep = errors.New("ec2autoscaleprom: InstrumentStep given a nil step")

// InstrumentStep returns step (usually Scaler.Step) timed into the pass
// duration histogram, labelled by its result. A host calling Step from its
// own loop gets the histogram this way:
//
//	step := observer.InstrumentStep(scaler.Step)
//	for { err := step(ctx); ... }
//
// Timing Step is the only honest measure from outside the scaler: it
// reports no event per pass, and every event of a pass carries the pass's
// start time, so events say when a pass began, not how long it took.
// Scaler.Run calls Step where no wrapper reaches, so a host using Run gets
// no pass histogram. The duration is wall time (time.Now), since the
// scaler's clock may be simulated; one Step may hold two passes (a second
// at once when a launch found no capacity anywhere).
func (o *Observer) InstrumentStep(step func(context.Context) error) func(context.Context) error {
	if step == nil {
		return func(context.Context) error { return errNilStep }
	}
	return func(ctx context.Context) error {
		start := time.Now()
		err := step(ctx)
		if h, herr := o.passDuration.GetMetricWithLabelValues(passResult(err)); herr == nil {
			h.Observe(time.Since(start).Seconds())
		}
		return err
	}
}

// add adds n to the counter of vec with these label values. It never
// panics: Observe runs inside the scaler's pass.
func add(vec *prometheus.CounterVec, n float64, labels ...string) {
	c, err := vec.GetMetricWithLabelValues(validLabels(labels)...)
	if err != nil || n < 0 {
		return // a label count this package got wrong, or a negative count: nothing to count
	}
	c.Add(n)
}
