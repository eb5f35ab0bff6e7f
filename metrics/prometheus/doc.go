// Package ec2autoscaleprom exports an autoscale Scaler's events and state
// as Prometheus metrics, built on github.com/prometheus/client_golang.
//
// It lives in a module of its own so that the library's go.mod does not
// pull in client_golang. It has two parts, each a prometheus.Collector:
//
//   - An [Observer], given to autoscale.Options.Observer, counts what the
//     scaler did: launches, terminations, wind-downs, replacements (spot
//     swaps among them), interruptions, capacity shortfalls and cloud
//     errors, each with a bounded reason. Its [Observer.InstrumentStep]
//     times calls to Scaler.Step into the pass duration histogram.
//   - A [Collector] reads the scaler's state when scraped: servers by pool,
//     state, market, instance type and zone; target and held capacity per
//     manager; each pool's target, Max and capacity used toward it; hourly
//     spend; active alarms; the pause switches.
//
// Wire them up with the scaler:
//
//	obs, _ := ec2autoscaleprom.NewObserver(ec2autoscaleprom.Options{})
//	scaler, err := autoscale.New(cloud, pools, autoscale.Options{Identity: "jobs", Observer: obs})
//	col, _ := ec2autoscaleprom.NewCollector(scaler, ec2autoscaleprom.Options{})
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(obs, col)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The per-server gauges come from Pool.Servers, which a pool builds only
// while it is read: the first scrape has none of them, the pass after it
// fills them in. The pool-level gauges come from Pool.Status and are there
// from the first pass on.
//
// Every metric is named ec2autoscale_*, counters end in _total, durations
// are in seconds. Labels never carry instance ids or error text: pool and
// manager come from the configuration, state from the pool's lifecycle,
// market, instance_type and zone from what the pool launches, and every
// reason, error or operation label from a fixed list (with "other" for a
// reason the library added after this package). The README in this
// directory lists every metric with its labels, and suggests alerts.
package ec2autoscaleprom
