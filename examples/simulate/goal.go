package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// A wait-time goal ("95% of rises of demand served within 2 minutes"), and
// the policies that compare ways of meeting it, all on the recommended
// market configuration:
//
//   - recommended: the plain Queue (library defaults), no buffer;
//   - buffer-N: the Queue following demand plus a constant idle buffer of
//     N units;
//   - forecast: manager.Forecast sized to the goal (-goal,
//     -goal-quantile);
//   - forecast-flat: the same with one slot (no daily shape): the goal's
//     quantile of the rises' sizes, held all day; what sharing the buffer
//     by the hour's rises and sizes adds.
//
// A fixed buffer of the forecast's average size is buffer-N with N that
// average (the forecast's "buffer: mean units" row); the smallest fixed
// buffer that meets the goal is found by running buffer-N for several N.
// These policies run only when named in -policies.

// Queue is what the host (workload) needs of its manager: a manager.Queue,
// or one of the goal's managers.
type Queue interface {
	manager.Instant
	manager.Waker
	Observe(now time.Time, queued, running int)
	MarkIdle(id string, idle bool)
}

// goal is the wait-time goal of a run.
type goal struct {
	quantile float64
	wait     time.Duration
}

func (g goal) String() string {
	return fmt.Sprintf("p%g wait for capacity under %v", 100*g.quantile, g.wait)
}

// goalPolicy returns the goal policy named name, if it is one.
func goalPolicy(name string) (policy, bool) {
	recommended := allPolicies[0]
	switch {
	case name == "forecast" || name == "forecast-flat":
		flat := name == "forecast-flat"
		p := recommended
		p.name = name
		p.about = "recommended, with manager.Forecast: the Queue following demand plus the learned buffer sized to the goal"
		if flat {
			p.about += "; no daily shape (Season = Slot = 1h: one slot)"
		}
		p.host = func(sc *scenario, qc manager.QueueConfig) (Queue, []string, error) {
			fc := manager.ForecastConfig{Queue: qc, Goal: manager.WaitGoal{Quantile: sc.goal.quantile, Wait: sc.goal.wait},
				BootTime: sc.launchToReady()}
			if flat {
				fc.Season, fc.Slot = time.Hour, time.Hour
			}
			f, err := manager.NewForecast("host", fc)
			settings := []string{fmt.Sprintf("manager.ForecastConfig.Goal: %s; BootTime: %v (the run's median launch to ready, until the pool has learnt its own)",
				sc.goal, fc.BootTime)}
			if flat {
				settings = append(settings, "manager.ForecastConfig.Season, Slot: 1h, 1h (default: 24h, 1h)")
			}
			return f, settings, err
		}
		return p, true
	case strings.HasPrefix(name, "buffer-"):
		n, err := strconv.Atoi(strings.TrimPrefix(name, "buffer-"))
		if err != nil || n < 0 {
			return policy{}, false
		}
		p := recommended
		p.name = name
		p.about = fmt.Sprintf("recommended, with a fixed idle buffer: the Queue follows demand + %d units", n)
		p.host = func(sc *scenario, qc manager.QueueConfig) (Queue, []string, error) {
			q, err := manager.NewQueue("host", qc)
			if err != nil {
				return nil, nil, err
			}
			return &fixedBuffer{Queue: q, buffer: n, jobsPerUnit: max(qc.JobsPerUnit, 1)}, []string{fmt.Sprintf("fixed buffer: %d units", n)}, nil
		}
		return p, true
	}
	return policy{}, false
}

// fixedBuffer is a Queue that observes demand plus a constant buffer: its
// target follows the Queue's rules (up at once, down after the delay)
// applied to demand + buffer.
type fixedBuffer struct {
	*manager.Queue
	buffer, jobsPerUnit int
}

// Observe reports the queue with the buffer's jobs added.
func (b *fixedBuffer) Observe(now time.Time, queued, running int) {
	b.Queue.Observe(now, max(queued, 0)+b.buffer*b.jobsPerUnit, running)
}

// forecastStatus returns the forecast's status if the host's manager is
// one.
func forecastStatus(q Queue) *manager.ForecastStatus {
	if f, ok := q.(*manager.Forecast); ok {
		st := f.Status()
		return &st
	}
	return nil
}

// attainment is the share of rises whose time to capacity met the goal's
// wait.
func (g goal) attainment(ttc []time.Duration) float64 {
	if len(ttc) == 0 {
		return 1
	}
	n := 0
	for _, d := range ttc {
		if d <= g.wait {
			n++
		}
	}
	return float64(n) / float64(len(ttc))
}

// idleMean is the mean capacity working less the mean demand, from the
// plot's samples: the idle capacity held, less the demand left unserved.
func (sc *scenario) idleMean(r *result) float64 {
	total, span := 0.0, 0.0
	from := time.Duration(0)
	for _, s := range r.samples {
		dt := (s.at - from).Seconds()
		total += (s.spot + s.onDemand - s.demand) * dt
		span += dt
		from = s.at
	}
	return ratio(total, span)
}

// goalRows adds the goal's rows to the report's table: attainment as the
// simulation measures it (every rise's time to capacity against the goal),
// the cost per point of attainment, the capacity held over demand, and
// what the forecast itself reports.
func (rep *report) goalRows(row func(name string, cell func(r *result) string, lower string)) {
	g := rep.sc.goal
	if g.wait <= 0 {
		return
	}
	row(fmt.Sprintf("goal: rises within %v", g.wait), func(r *result) string {
		a := g.attainment(r.ttc)
		mark := "missed"
		if a >= g.quantile {
			mark = "met"
		}
		return fmt.Sprintf("%.2f%% (%s)", 100*a, mark)
	}, "")
	row("  cost per point", func(r *result) string {
		if a := g.attainment(r.ttc); a > 0 {
			return fmt.Sprintf("$%.2f", r.cost()/(100*a))
		}
		return "-"
	}, "")
	row("  working less demand, mean units", func(r *result) string { return fmt.Sprintf("%.1f", rep.sc.idleMean(r)) }, "")
	// The forecast's own figures: "-" for a host without a Forecast.
	forecastRow := func(name string, cell func(st *manager.ForecastStatus) string) {
		row(name, func(r *result) string {
			if r.forecast == nil {
				return "-"
			}
			return cell(r.forecast)
		}, "")
	}
	forecastRow("  forecast buffer, mean units", func(st *manager.ForecastStatus) string {
		return fmt.Sprintf("%.1f", st.BufferUnitHours/rep.sc.length.Hours())
	})
	forecastRow("  forecast's own attainment", func(st *manager.ForecastStatus) string {
		return fmt.Sprintf("%.2f%% of %d", 100*st.Attainment, st.Rises)
	})
	forecastRow("  forecast miss budget at the end", func(st *manager.ForecastStatus) string { return fmt.Sprintf("%.2f%%", 100*st.MissBudget) })
}
