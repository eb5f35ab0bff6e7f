package ec2autoscaleprom_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	ec2autoscaleprom "github.com/ec2autoscale/ec2autoscale/metrics/prometheus"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

var zones = []string{"us-east-1a", "us-east-1b"}

// world is a scaler over the simulated EC2 on its virtual clock, with the
// adapter registered on a fresh registry and every event recorded, so that
// a test can hold the counters to the events and the gauges to Status.
type world struct {
	t      *testing.T
	sim    *ec2sim.Sim
	scaler *autoscale.Scaler
	jobs   *manager.Fixed
	obs    *ec2autoscaleprom.Observer
	col    *ec2autoscaleprom.Collector
	reg    *prometheus.Registry
	step   func(context.Context) error
	steps  int // Step calls made

	mu     sync.Mutex
	events []autoscale.Event
}

// setup says what world to build.
type setup struct {
	target int     // units manager "jobs" wants
	spot   float64 // spot price of m5.large in $/h (on-demand is $0.096/h); 0: no spot prices
	mutate func(*pool.Config)
	rails  autoscale.Rails
}

// newWorld builds a pool "workers" of m5.large in two zones for manager
// "jobs", with a price book reading spot prices and reservations from the
// simulator.
func newWorld(t *testing.T, su setup) *world {
	t.Helper()
	cfg := ec2sim.Config{BootDelay: ec2sim.Fixed(40 * time.Second), ShutdownDelay: ec2sim.Fixed(20 * time.Second), Seed: 1}
	spot, target, mutate := su.spot, su.target, su.mutate
	if spot > 0 {
		for _, z := range zones {
			cfg.SpotPrices = append(cfg.SpotPrices, awsctl.SpotPrice{InstanceType: "m5.large", Zone: z,
				PricePerHour: spot, Time: ec2sim.DefaultStart.Add(-time.Hour)})
		}
	}
	sim, err := ec2sim.New(cfg)
	require.NoError(t, err)
	worker, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	require.NoError(t, err)
	jobs, err := manager.NewFixed("jobs", target)
	require.NoError(t, err)
	pc := pool.Config{
		Name: "workers", Role: worker, Managers: []manager.Manager{jobs},
		Types: []pool.InstanceType{{Name: "m5.large"}}, Zones: zones, Max: 20,
		WindDownTimeout: 10 * time.Minute,
	}
	books, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: sim, Reservations: sim, SpotTTL: time.Minute})
	require.NoError(t, err)
	pc.Prices = books
	if mutate != nil {
		mutate(&pc)
	}
	w := &world{t: t, sim: sim, jobs: jobs, reg: prometheus.NewPedanticRegistry()}
	w.obs, err = ec2autoscaleprom.NewObserver(ec2autoscaleprom.Options{})
	require.NoError(t, err)
	w.scaler, err = autoscale.New(sim, []pool.Config{pc}, autoscale.Options{
		Identity: "metrics-test", Interval: 10 * time.Second, Clock: sim.Now, HookWait: 5 * time.Second,
		SpotNotices: sim, Rails: su.rails,
		Observer: autoscale.ObserverFunc(func(e autoscale.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
			w.obs.Observe(e)
		}),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{}) })
	w.col, err = ec2autoscaleprom.NewCollector(w.scaler, ec2autoscaleprom.Options{})
	require.NoError(t, err)
	require.NoError(t, w.reg.Register(w.obs))
	require.NoError(t, w.reg.Register(w.col))
	w.step = w.obs.InstrumentStep(w.scaler.Step)
	return w
}

// run makes n passes, 10 s of simulated time apart, each followed by a
// scrape as Prometheus would make (which keeps the pool's server list
// built).
func (w *world) run(n int) {
	w.t.Helper()
	for range n {
		_ = w.step(context.Background())
		w.steps++
		require.NoError(w.t, w.sim.Advance(10*time.Second))
		_, err := w.reg.Gather()
		require.NoError(w.t, err)
	}
}

func (w *world) eventsOf(kinds ...pool.EventKind) []autoscale.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []autoscale.Event
	for _, e := range w.events {
		if slices.Contains(kinds, e.Kind) {
			out = append(out, e)
		}
	}
	return out
}

func (w *world) scrape() samples {
	w.t.Helper()
	return gather(w.t, w.reg)
}

// gather gathers g into samples keyed `name{label="value",...}` (labels in
// name order, as Gather sorts them); a histogram gives its _count and _sum.
func gather(t testing.TB, g prometheus.Gatherer) samples {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := samples{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := func(suffix string) string { return mf.GetName() + suffix + labelString(m.GetLabel()) }
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func labelString(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// samples are the values of one scrape.
type samples map[string]float64

// sum adds the samples of metric name whose labels include every one of
// match (`label="value"` each).
func (s samples) sum(name string, match ...string) float64 {
	total := 0.0
	for k, v := range s {
		if !strings.HasPrefix(k, name+"{") && k != name {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && (strings.Contains(k, "{"+m+",") || strings.Contains(k, ","+m+",") ||
				strings.Contains(k, ","+m+"}") || strings.Contains(k, "{"+m+"}"))
		}
		if ok {
			total += v
		}
	}
	return total
}

// has reports whether any sample of metric name exists.
func (s samples) has(name string) bool {
	for k := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

// fetch serves the registry with promhttp and returns the exposition text.
func (w *world) fetch() string {
	w.t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	require.Equal(w.t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	return string(body)
}
