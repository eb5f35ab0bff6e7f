package ec2autoscaleprom

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// Collector reads the scaler's state when scraped: each pool's Status and
// Servers, the scaler's alarms and pause switches. It never waits for a
// pass in progress (none of those calls does), so a scrape is cheap.
//
// The per-server series (ec2autoscale_servers and
// ec2autoscale_server_capacity_units) come from Pool.Servers, which the
// pool builds only while someone reads it: the first scrape after the
// scaler starts (or after more than 30 passes without a scrape) has none,
// and the pass after it builds them for the next scrapes. The pool-level
// series, from Status, are there from the first pass on.
type Collector struct {
	scaler *autoscale.Scaler

	servers, serverUnits, poolUnits                   *prometheus.Desc
	target, max, maxUsed, due, spend, unitPrice, pass *prometheus.Desc
	mgrTarget, mgrHeld                                *prometheus.Desc
	alarms, paused                                    *prometheus.Desc
}

// NewCollector returns a Collector of s. Errors wrap ErrInvalidOptions.
func NewCollector(s *autoscale.Scaler, opts Options) (*Collector, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: scaler must not be nil", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, o.ConstLabels)
	}
	serverLabels := []string{"pool", "state", "market", "instance_type", "zone"}
	c := &Collector{
		scaler: s,
		servers: desc("servers",
			"Servers of the pool's latest pass, by lifecycle state, market, instance type and zone.", serverLabels...),
		serverUnits: desc("server_capacity_units",
			"Capacity units of the servers of the pool's latest pass, by state, market, instance type and zone.",
			serverLabels...),
		poolUnits: desc("pool_capacity_units",
			"Capacity units of the pool by state, as its latest pass counted them (launches not listed yet included).",
			"pool", "state"),
		target: desc("pool_target_capacity_units",
			"Capacity the pool aims for: its managers' targets plus the spare Min keeps.", "pool"),
		max: desc("pool_max_capacity_units",
			"The pool's Max: the capacity it never exceeds.", "pool"),
		maxUsed: desc("pool_max_used_capacity_units",
			"Capacity counted toward Max: every server that runs or may run.", "pool"),
		due: desc("pool_due_capacity_units",
			"Capacity due for replacement (drift, refresh, lifetime) that waits for the disruption budget, a window or room: a roll's progress.", "pool"),
		spend: desc("pool_spend_usd_per_hour",
			"What the pool's instances cost now, in US dollars per hour, as far as the pool knows prices.", "pool"),
		unitPrice: desc("pool_unit_price_usd_per_hour",
			"Highest on-demand price of one capacity unit among the pool's types, in US dollars per hour (0: no prices).",
			"pool"),
		pass: desc("pool_last_pass_timestamp_seconds",
			"Time of the pool's latest pass on the scaler's clock, in Unix seconds.", "pool"),
		mgrTarget: desc("manager_target_capacity_units",
			"Capacity a manager wants, as the pool's latest pass read it (clamped to the pool's limits).",
			"pool", "manager"),
		mgrHeld: desc("manager_held_capacity_units",
			"Capacity granted to a manager after the pool's latest pass.", "pool", "manager"),
		alarms: desc("alarms_active",
			"Active alarms of the safety rails, by kind; pool is empty for the scaler as a whole.", "pool", "kind"),
		paused: desc("paused",
			"1 while Scaler.Pause stops the action (launch or terminate), 0 otherwise.", "action"),
	}
	if err := validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.servers, c.serverUnits, c.poolUnits, c.target, c.max, c.maxUsed, c.due,
		c.spend, c.unitPrice, c.pass, c.mgrTarget, c.mgrHeld, c.alarms, c.paused} {
		ch <- d
	}
}

// alarmKinds are the alarms reported as 0 when not active, so that an alert
// on one has a series to read from the start.
var alarmKinds = []autoscale.AlarmKind{autoscale.AlarmNeverReady, autoscale.AlarmNoCapacity,
	autoscale.AlarmFlapping, autoscale.AlarmLaunchFailures, autoscale.AlarmLaunchRate,
	autoscale.AlarmLaunchCalls, autoscale.AlarmSpend}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- constGauge(d, v, labels...)
	}
	pools := c.scaler.Pools()
	type alarmKey struct{ pool, kind string }
	// The launch-calls cap counts calls across pools, so its alarm is the
	// scaler's (pool ""); every other alarm belongs to a pool.
	alarms := map[alarmKey]int{{"", string(autoscale.AlarmLaunchCalls)}: 0}
	for _, p := range pools {
		name := p.Name()
		for _, k := range alarmKinds {
			alarms[alarmKey{name, string(k)}] = 0
		}
		gauge(c.max, float64(p.Config().Max), name)
		if st := p.Status(); st.Observed {
			// Before the first pass an all-zero Status means "not seen yet",
			// not an empty pool: no series rather than false zeros.
			c.collectStatus(gauge, name, st)
		}
		c.collectServers(gauge, p)
	}
	for _, a := range c.scaler.Alarms() {
		alarms[alarmKey{a.Pool, string(a.Kind)}]++
	}
	for k, n := range alarms {
		gauge(c.alarms, float64(n), k.pool, k.kind)
	}
	launches, terminations := c.scaler.Paused()
	gauge(c.paused, b2f(launches), "launch")
	gauge(c.paused, b2f(terminations), "terminate")
}

func (c *Collector) collectStatus(gauge func(*prometheus.Desc, float64, ...string), name string, st pool.Status) {
	for _, s := range []struct {
		state string
		units int
	}{
		// The server states of pool's lifecycle where they match; Status
		// counts restoring, retiring and stopped servers as winding-down,
		// and replacements on their way as replacing.
		{"booting", st.Booting},
		{"provisioning", st.Provisioning},
		{"free", st.Free},
		{"granted", st.Granted},
		{"winding-down", st.WindingDown},
		{"replacing", st.Replacing},
		{"interrupted", st.Interrupted},
	} {
		gauge(c.poolUnits, float64(s.units), name, s.state)
	}
	gauge(c.target, float64(st.Target), name)
	gauge(c.maxUsed, float64(st.MaxUsed), name)
	gauge(c.due, float64(st.Due), name)
	gauge(c.spend, st.HourlySpend, name)
	gauge(c.unitPrice, st.UnitPrice, name)
	gauge(c.pass, float64(st.Time.UnixNano())/1e9, name)
	for mgr, ms := range st.Managers {
		gauge(c.mgrTarget, float64(ms.Target), name, mgr)
		gauge(c.mgrHeld, float64(ms.Held), name, mgr)
	}
}

func (c *Collector) collectServers(gauge func(*prometheus.Desc, float64, ...string), p *pool.Pool) {
	servers, asOf := p.Servers()
	if asOf.IsZero() {
		return // not built yet: this read starts it for the next pass
	}
	type key struct{ state, market, typ, zone string }
	type sum struct{ servers, units int }
	by := map[key]sum{}
	for _, s := range servers {
		// State, type and zone are bounded by the lifecycle and by what the
		// pool launches; the instance id never becomes a label.
		k := key{s.State, market(s.Market), s.Type, s.Zone}
		v := by[k]
		v.servers++
		v.units += s.Capacity
		by[k] = v
	}
	for k, v := range by {
		gauge(c.servers, float64(v.servers), p.Name(), k.state, k.market, k.typ, k.zone)
		gauge(c.serverUnits, float64(v.units), p.Name(), k.state, k.market, k.typ, k.zone)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// constGauge returns a gauge sample. Label values that are not valid UTF-8
// (a pool or manager name the host chose) are repaired rather than failing
// the whole scrape.
func constGauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, validLabels(labels)...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err) // a bug of this package: the label counts are fixed
	}
	return m
}
