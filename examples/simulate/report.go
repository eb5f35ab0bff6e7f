package main

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/svgplot"
)

// Derived figures of a result, as the report shows them.

func (r *result) cost() float64                  { return r.bill.Total }
func (r *result) costOf(m awsctl.Market) float64 { return r.bill.ByMarket[m] }

// unmetShare is the share of demanded capacity-seconds not served (the
// policy's demand: work cut short and run again included).
func (rep *report) unmetShare(r *result) float64 { return ratio(r.unmet, r.demanded) }

// unmetBeyond is the unmet share beyond what is unavoidable (limit
// unit-seconds).
func (rep *report) unmetBeyond(r *result, limit float64) float64 {
	return ratio(max(0, r.unmet-limit), r.demanded)
}

// costWithUnmet is the cost plus every unserved unit-hour at the pool's
// cheapest on-demand price per unit: what serving it would have cost at
// least, were capacity there at once.
func (rep *report) costWithUnmet(r *result) float64 {
	return r.cost() + r.unmet/3600*rep.sc.odUnitPrice
}

// onDemandOnly returns the on-demand-only policy's cost, or 0 if it did not
// run.
func (rep *report) onDemandOnly() float64 {
	for _, r := range rep.results {
		if r.policy.name == "on-demand" {
			return r.cost()
		}
	}
	return 0
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// percentile returns the nearest-rank percentile q (0..1) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (r *result) totalCalls() (calls, throttled int) {
	for _, n := range r.calls {
		calls += n
	}
	for _, n := range r.throttled {
		throttled += n
	}
	return calls, throttled
}

// callOps returns every API name any result called, sorted.
func (rep *report) callOps() []string {
	seen := map[string]bool{}
	for _, r := range rep.results {
		for op := range r.calls {
			seen[op] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// throttledOps returns every API name any result saw throttled, sorted.
func (rep *report) throttledOps() []string {
	seen := map[string]bool{}
	for _, r := range rep.results {
		for op, n := range r.throttled {
			if n > 0 {
				seen[op] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// writeTable prints the report for a terminal: one column per policy.
func (rep *report) writeTable(out io.Writer) {
	sc := rep.sc
	fmt.Fprintf(out, "prices   %s (%s, zones %s), from %s for %s\n", sc.prices.name, sc.prices.region,
		strings.Join(sc.prices.zones, " "), sc.start.Format("2006-01-02 15:04 UTC"), days(sc.length))
	fmt.Fprintf(out, "pool     %s; Max %d units\n", typeList(sc.types), sc.max)
	fmt.Fprintf(out, "demand   %s: mean %.1f units, peak %d; %d rises\n", sc.trace.Name,
		sc.demanded/sc.length.Seconds(), sc.trace.Peak(sc.length), len(sc.trace.Rises(sc.length)))
	fmt.Fprintf(out, "boot     pending median %v (not billed), then running to ready median %v (billed); log-normal, sigma %g%s; launch to ready %v\n",
		sc.pendingMed, sc.readyMed, sc.bootSigma, typeDelayList(sc.typeDelays), sc.launchToReady())
	fmt.Fprintf(out, "passes   %s\n", sc.timing)
	if sc.goal.wait > 0 {
		fmt.Fprintf(out, "goal     %s\n", sc.goal)
	}
	fmt.Fprintf(out, "spot     interruption events take %.0f%% of a pool's running spot instances", 100*sc.interruptionShare)
	if len(sc.outages) > 0 {
		fmt.Fprintf(out, "; %d zone-outages of spot capacity, each reclaiming %.0f%% of its pools' running spot instances",
			len(sc.outages), 100*sc.outageReclaim)
	}
	fmt.Fprintln(out)
	if sc.interruptionRate > 0 {
		fmt.Fprintf(out, "STRESS   every spot instance is interrupted at %g an hour (-interruption-rate), not at its Advisor bucket's rate, and the pool is told so\n",
			sc.interruptionRate)
	}
	if sc.trace.Jobs != nil {
		if sc.requeue {
			fmt.Fprintln(out, "jobs     a job cut short is run again from the start")
		} else {
			fmt.Fprintln(out, "jobs     a job cut short carries on as recorded (-requeue=false)")
		}
		fmt.Fprintln(out, "         the job-aware host's run-time estimate:", sc.runEstimate)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, cell func(r *result) string, lower string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, r := range rep.results {
			fmt.Fprintf(tw, "%s\t", cell(r))
		}
		fmt.Fprintf(tw, "%s\t\n", lower)
	}
	row("", func(r *result) string { return r.policy.name }, "lower bound")
	dollars := func(v float64) string { return fmt.Sprintf("$%.2f", v) }
	row("cost", func(r *result) string { return dollars(r.cost()) }, dollars(sc.lowerBound))
	row("  on-demand", func(r *result) string { return dollars(r.costOf(awsctl.MarketOnDemand)) }, "")
	row("  spot", func(r *result) string { return dollars(r.costOf(awsctl.MarketSpot)) }, "")
	row("cost / lower bound", func(r *result) string { return fmt.Sprintf("%.3f", ratio(r.cost(), sc.lowerBound)) }, "1")
	row("cost incl. unmet demand", func(r *result) string { return dollars(rep.costWithUnmet(r)) }, dollars(sc.lowerBound))
	row("  / lower bound", func(r *result) string { return fmt.Sprintf("%.3f", ratio(rep.costWithUnmet(r), sc.lowerBound)) }, "1")
	if od := rep.onDemandOnly(); od > 0 {
		row("cost / on-demand only", func(r *result) string { return fmt.Sprintf("%.3f", r.cost()/od) },
			fmt.Sprintf("%.3f", sc.lowerBound/od))
	}
	pct := func(v float64) string { return fmt.Sprintf("%.3f%%", 100*v) }
	row("unmet demand", func(r *result) string { return pct(rep.unmetShare(r)) }, pct(0))
	row("  beyond boot-limited", func(r *result) string { return pct(rep.unmetBeyond(r, sc.bootLimited)) }, pct(ratio(sc.bootLimited, sc.demanded)))
	row("  beyond pass-limited", func(r *result) string { return pct(rep.unmetBeyond(r, sc.passLimited)) }, pct(ratio(sc.passLimited, sc.demanded)))
	dur := func(d time.Duration) string { return d.Round(time.Second).String() }
	row("time to capacity p50", func(r *result) string { return dur(percentile(r.ttc, 0.50)) }, "0s")
	row("  p95", func(r *result) string { return dur(percentile(r.ttc, 0.95)) }, "0s")
	row("  max", func(r *result) string { return dur(percentile(r.ttc, 1)) }, "0s")
	row("  rises that waited", func(r *result) string { return fmt.Sprintf("%d of %d", r.waited, len(r.ttc)) }, "0")
	row("  p50 / p95 of those", func(r *result) string {
		return dur(percentile(r.ttcWaited, 0.5)) + " / " + dur(percentile(r.ttcWaited, 0.95))
	}, "")
	row("  rises never covered", func(r *result) string { return strconv.Itoa(r.unsettled) }, "0")
	rep.goalRows(row)
	row("interruption notices", func(r *result) string { return strconv.Itoa(r.interruptions) }, "0")
	row("  working units hit", func(r *result) string { return strconv.Itoa(r.interruptedUnits) }, "")
	if sc.trace.Jobs != nil {
		row("jobs cut by interruptions", func(r *result) string { return strconv.Itoa(r.jobsCut) }, "")
		row("jobs moved by scale-down", func(r *result) string { return strconv.Itoa(r.jobsMoved) }, "")
		row("  work lost (unit-h)", func(r *result) string { return fmt.Sprintf("%.1f", r.workLost/3600) }, "")
	}
	row("instances launched", func(r *result) string { return strconv.Itoa(r.launches) }, "")
	row("terminated by scaler", func(r *result) string { return strconv.Itoa(r.terminations) }, "")
	row("replacements launched", func(r *result) string { return strconv.Itoa(r.swapLaunches) }, "")
	row("on-demand replaced", func(r *result) string { return strconv.Itoa(r.swapped) }, "")
	row("alarms raised", func(r *result) string { return alarmList(r.alarms) }, "")
	row("cloud calls", func(r *result) string { c, _ := r.totalCalls(); return strconv.Itoa(c) }, "")
	for _, op := range rep.callOps() {
		row("  "+op, func(r *result) string { return strconv.Itoa(r.calls[op]) }, "")
	}
	row("  throttled", func(r *result) string { _, t := r.totalCalls(); return strconv.Itoa(t) }, "")
	for _, op := range rep.throttledOps() {
		row("    "+op, func(r *result) string { return strconv.Itoa(r.throttled[op]) }, "")
	}
	row("passes", func(r *result) string { return strconv.Itoa(r.passes) }, "")
	row("wall time", func(r *result) string { return r.wall.Round(10 * time.Millisecond).String() }, "")
	tw.Flush()
	fmt.Fprintf(out, "\nwhole run: %v wall\n", rep.wall.Round(10*time.Millisecond))
	for _, r := range rep.results {
		fmt.Fprintf(out, "%-12s %s\n", r.policy.name, r.policy.about)
	}
	fmt.Fprintln(out, "\nsettings that differ from the library's defaults:")
	for _, r := range rep.results {
		if len(r.settings) == 0 {
			fmt.Fprintf(out, "  %-12s none\n", r.policy.name)
		}
		for i, s := range r.settings {
			name := ""
			if i == 0 {
				name = r.policy.name
			}
			fmt.Fprintf(out, "  %-12s %s\n", name, s)
		}
	}
	for _, r := range rep.results {
		if r.lateResults+r.lateStarts > 0 {
			fmt.Fprintf(out, "\nwarning: %s: the scaler's hooks did not come quiet %d times before a pass and %d times after one: this run may not repeat exactly (see hooks.go)\n",
				r.policy.name, r.lateResults, r.lateStarts)
		}
	}
}

func typeDelayList(m map[string]ec2sim.TypeDelays) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, typ := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %v/%v", typ, m[typ].Pending, m[typ].Ready))
	}
	return "; per type: " + strings.Join(parts, ", ")
}

func days(d time.Duration) string { return fmt.Sprintf("%.1f days", d.Hours()/24) }

func typeList(types []instanceType) string {
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = t.name
		if t.weight != 1 {
			parts[i] += fmt.Sprintf(" (x%d)", t.weight)
		}
	}
	return strings.Join(parts, ", ")
}

// writeCSV writes one row per policy, and one for the lower bound.
func (rep *report) writeCSV(w io.Writer) error {
	sc := rep.sc
	ops := rep.callOps()
	header := []string{"prices", "demand", "days", "timing", "policy", "cost_usd", "cost_ondemand_usd", "cost_spot_usd",
		"cost_vs_lower_bound", "cost_incl_unmet_usd", "cost_incl_unmet_vs_lower_bound", "cost_vs_ondemand_only",
		"unmet_share", "unmet_beyond_boot_share", "unmet_beyond_pass_share", "boot_limited_share", "pass_limited_share",
		"ttc_p50_s", "ttc_p95_s", "ttc_max_s", "rises", "rises_waited", "rises_never_covered", "ttc_waited_p50_s", "ttc_waited_p95_s",
		"interruptions", "interrupted_units", "jobs_cut", "jobs_moved_scale_down", "work_lost_unit_hours",
		"launches", "terminations", "replacements_launched", "ondemand_replaced", "alarms", "calls", "throttled"}
	for _, op := range ops {
		header = append(header, "calls_"+op)
	}
	header = append(header, "passes", "wall_s")
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	secs := func(d time.Duration) string { return f(d.Seconds()) }
	timingName := "loop"
	if sc.timing.run {
		timingName = "run"
	}
	base := []string{sc.prices.name, sc.trace.Name, f(sc.length.Hours() / 24), timingName}
	od := rep.onDemandOnly()
	for _, r := range rep.results {
		calls, throttled := r.totalCalls()
		vsOD := ""
		if od > 0 {
			vsOD = f(r.cost() / od)
		}
		rec := append(slices.Clone(base), r.policy.name, f(r.cost()), f(r.costOf(awsctl.MarketOnDemand)), f(r.costOf(awsctl.MarketSpot)),
			f(ratio(r.cost(), sc.lowerBound)), f(rep.costWithUnmet(r)), f(ratio(rep.costWithUnmet(r), sc.lowerBound)), vsOD,
			f(rep.unmetShare(r)), f(rep.unmetBeyond(r, sc.bootLimited)), f(rep.unmetBeyond(r, sc.passLimited)),
			f(ratio(sc.bootLimited, sc.demanded)), f(ratio(sc.passLimited, sc.demanded)),
			secs(percentile(r.ttc, 0.5)), secs(percentile(r.ttc, 0.95)), secs(percentile(r.ttc, 1)), strconv.Itoa(len(r.ttc)), strconv.Itoa(r.waited), strconv.Itoa(r.unsettled),
			secs(percentile(r.ttcWaited, 0.5)), secs(percentile(r.ttcWaited, 0.95)),
			strconv.Itoa(r.interruptions), strconv.Itoa(r.interruptedUnits), strconv.Itoa(r.jobsCut), strconv.Itoa(r.jobsMoved), f(r.workLost/3600),
			strconv.Itoa(r.launches), strconv.Itoa(r.terminations), strconv.Itoa(r.swapLaunches), strconv.Itoa(r.swapped), alarmList(r.alarms), strconv.Itoa(calls), strconv.Itoa(throttled))
		for _, op := range ops {
			rec = append(rec, strconv.Itoa(r.calls[op]))
		}
		rec = append(rec, strconv.Itoa(r.passes), secs(r.wall))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	vsOD := ""
	if od > 0 {
		vsOD = f(sc.lowerBound / od)
	}
	lower := append(slices.Clone(base), "lower-bound", f(sc.lowerBound), "0", f(sc.lowerBound), "1", f(sc.lowerBound), "1", vsOD,
		"0", "0", "0", f(ratio(sc.bootLimited, sc.demanded)), f(ratio(sc.passLimited, sc.demanded)))
	lower = append(lower, make([]string, len(header)-len(lower))...)
	if err := cw.Write(lower); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// plotName names the run's SVG after its prices and demand.
func (rep *report) plotName() string {
	prices := strings.TrimSuffix(filepath.Base(rep.sc.prices.name), filepath.Ext(rep.sc.prices.name))
	d := strings.Fields(rep.sc.trace.Name)[0]
	d = strings.TrimSuffix(filepath.Base(d), filepath.Ext(d))
	name := prices + "_" + d
	if len(rep.sc.outages) > 0 {
		name += "_outages"
	}
	return name
}

// Colors of the plot.
const (
	colorDemand   = "#222222"
	colorSpot     = "#f28e2b"
	colorOnDemand = "#4e79a7"
	colorLower    = "#59a14f"
)

var policyColors = []string{"#e15759", "#4e79a7", "#f28e2b", "#b07aa1", "#76b7b2"}

// writeSVG draws, per policy, demand against the capacity working by
// market, and in a last panel every policy's cumulative cost with the lower
// bound's.
func (rep *report) writeSVG(w io.Writer) error {
	sc := rep.sc
	fig := svgplot.Figure{
		Title:  fmt.Sprintf("%s spot prices from %s, demand %s", sc.prices.region, sc.start.Format("2006-01-02"), sc.trace.Name),
		XLabel: "days",
		XMax:   sc.length.Hours() / 24,
	}
	if len(sc.outages) > 0 {
		fig.Title += ", spot capacity outages"
		zones := 0
		for _, o := range sc.outages {
			if o.from.Equal(sc.outages[0].from) {
				zones++
			}
		}
		fig.ShadeLabel = fmt.Sprintf("no spot capacity in %d of %d zones", zones, len(sc.prices.zones))
		for _, o := range sc.outages {
			sp := svgplot.Span{From: o.from.Sub(sc.start).Hours() / 24, To: o.to.Sub(sc.start).Hours() / 24}
			if n := len(fig.Shade); n == 0 || fig.Shade[n-1] != sp { // one span for all zones of an outage
				fig.Shade = append(fig.Shade, sp)
			}
		}
	}
	// Means are drawn at the middle of their step; cumulative costs at its
	// end, from 0 at the start.
	mid := func(r *result) []float64 {
		out := make([]float64, len(r.samples))
		from := time.Duration(0)
		for i, s := range r.samples {
			out[i] = (from + s.at).Hours() / 48
			from = s.at
		}
		return out
	}
	ends := func(r *result) []float64 {
		out := []float64{0}
		for _, s := range r.samples {
			out = append(out, s.at.Hours()/24)
		}
		return out
	}
	ymax := 0.0
	for _, r := range rep.results {
		for _, s := range r.samples {
			ymax = max(ymax, s.demand, s.spot+s.onDemand)
		}
	}
	for _, r := range rep.results {
		xs := mid(r)
		spot := make([]float64, len(r.samples))
		total := make([]float64, len(r.samples))
		dem := make([]float64, len(r.samples))
		for i, s := range r.samples {
			spot[i], total[i], dem[i] = s.spot, s.spot+s.onDemand, s.demand
		}
		fig.Panels = append(fig.Panels, svgplot.Panel{
			Title:  fmt.Sprintf("%s: demand and working capacity (mean per %v)", r.policy.name, sc.plotEvery),
			YLabel: "capacity units",
			YMax:   ymax,
			Series: []svgplot.Series{
				{Name: "spot", Color: colorSpot, X: xs, Y: spot, Fill: true},
				{Name: "on-demand", Color: colorOnDemand, X: xs, Y: total, Base: spot, Fill: true},
				{Name: "demand", Color: colorDemand, X: xs, Y: dem},
			},
		})
	}
	costs := svgplot.Panel{Title: "cumulative cost", YLabel: "US dollars"}
	for i, r := range rep.results {
		ys := []float64{0}
		for _, s := range r.samples {
			ys = append(ys, s.cost)
		}
		costs.Series = append(costs.Series, svgplot.Series{Name: r.policy.name, Color: policyColors[i%len(policyColors)], X: ends(r), Y: ys})
	}
	if len(rep.results) > 0 && len(sc.lowerCurve) == len(rep.results[0].samples) {
		costs.Series = append(costs.Series, svgplot.Series{Name: "lower bound", Color: colorLower,
			X: ends(rep.results[0]), Y: append([]float64{0}, sc.lowerCurve...), Dash: true})
	}
	fig.Panels = append(fig.Panels, costs)
	return fig.WriteSVG(w)
}

// alarmList says how many alarms of each kind a run raised: "0", or
// "flapping 3, no-capacity 1" (most first, then by name).
func alarmList(alarms map[string]int) string {
	kinds := slices.Collect(maps.Keys(alarms))
	if len(kinds) == 0 {
		return "0"
	}
	slices.SortFunc(kinds, func(a, b string) int {
		return cmp.Or(cmp.Compare(alarms[b], alarms[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = k + " " + strconv.Itoa(alarms[k])
	}
	return strings.Join(parts, ", ")
}
