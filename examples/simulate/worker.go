package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// Policies run at once run in a process each. The simulation waits for
// the scaler's hook goroutines by counting the process's goroutines (see
// hooks.go), which only works with one scaler per process; so with
// -parallel above 1 the program runs itself once per policy, with the same
// flags and -worker-policy, and reads each child's result from its output.
// Tests, which cannot run the program, simulate one policy after another.

// runWorkers simulates policies in child processes, at most parallel at
// once. args are the program's flags; progress receives the children's
// progress lines.
func runWorkers(ctx context.Context, args []string, policies []policy, parallel int, progress io.Writer) ([]*result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("run policies in parallel: %w (try -parallel 1)", err)
	}
	out := make([]*result, len(policies))
	errs := make([]error, len(policies))
	sem := make(chan struct{}, max(1, parallel))
	// The 2016 rules take longest (a swap for every server): start them
	// first.
	order := make([]int, len(policies))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(b2i(policies[b].name == "2016-rules"), b2i(policies[a].name == "2016-rules"))
	})
	var wg sync.WaitGroup
	for _, i := range order {
		p := policies[i]
		wg.Add(1)
		sem <- struct{}{} // in order
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cmd := exec.CommandContext(ctx, exe, append(append([]string(nil), args...), "-worker-policy", p.name)...)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			cmd.Stderr = progress
			if progress == nil {
				cmd.Stderr = io.Discard
			}
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("policy %s: %w", p.name, err)
				return
			}
			var w wireResult
			if err := gob.NewDecoder(&stdout).Decode(&w); err != nil {
				errs[i] = fmt.Errorf("policy %s: reading its result: %w", p.name, err)
				return
			}
			out[i] = w.result(p)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeWorkerResult writes a child's result for its parent.
func writeWorkerResult(w io.Writer, r *result) error {
	return gob.NewEncoder(w).Encode(wireOf(r))
}

// wireResult is a result as a child sends it.
type wireResult struct {
	Settings                                            []string
	Bill                                                ec2sim.Bill
	Demanded, Unmet, WorkLost                           float64
	TTC, TTCWaited                                      []time.Duration
	Unsettled, Waited                                   int
	Interruptions, InterruptedUnits, JobsCut, JobsMoved int
	Launches, Terminations, Swapped, SwapLaunches       int
	Calls, Throttled, Alarms                            map[string]int
	Samples                                             []wireSample
	Passes, LateResults, LateStarts, OtherHooks         int
	Wall                                                time.Duration
	Forecast                                            *manager.ForecastStatus
}

type wireSample struct {
	At                           time.Duration
	Demand, Spot, OnDemand, Cost float64
}

func wireOf(r *result) wireResult {
	w := wireResult{Settings: r.settings, Bill: r.bill, Demanded: r.demanded, Unmet: r.unmet, WorkLost: r.workLost,
		TTC: r.ttc, TTCWaited: r.ttcWaited, Unsettled: r.unsettled, Waited: r.waited, Interruptions: r.interruptions,
		InterruptedUnits: r.interruptedUnits, JobsCut: r.jobsCut, JobsMoved: r.jobsMoved, Launches: r.launches,
		Terminations: r.terminations, Swapped: r.swapped, SwapLaunches: r.swapLaunches, Calls: r.calls,
		Throttled: r.throttled, Alarms: r.alarms, Passes: r.passes, LateResults: r.lateResults, LateStarts: r.lateStarts,
		OtherHooks: r.otherHooks, Wall: r.wall, Forecast: r.forecast}
	for _, s := range r.samples {
		w.Samples = append(w.Samples, wireSample{At: s.at, Demand: s.demand, Spot: s.spot, OnDemand: s.onDemand, Cost: s.cost})
	}
	return w
}

func (w wireResult) result(p policy) *result {
	r := &result{policy: p, settings: w.Settings, bill: w.Bill, demanded: w.Demanded, unmet: w.Unmet, workLost: w.WorkLost,
		ttc: w.TTC, ttcWaited: w.TTCWaited, unsettled: w.Unsettled, waited: w.Waited, interruptions: w.Interruptions,
		interruptedUnits: w.InterruptedUnits, jobsCut: w.JobsCut, jobsMoved: w.JobsMoved, launches: w.Launches,
		terminations: w.Terminations, swapped: w.Swapped, swapLaunches: w.SwapLaunches, calls: w.Calls,
		throttled: w.Throttled, alarms: w.Alarms, passes: w.Passes, lateResults: w.LateResults, lateStarts: w.LateStarts,
		otherHooks: w.OtherHooks, wall: w.Wall, forecast: w.Forecast}
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	if r.throttled == nil {
		r.throttled = map[string]int{}
	}
	for _, s := range w.Samples {
		r.samples = append(r.samples, sample{at: s.At, demand: s.Demand, spot: s.Spot, onDemand: s.OnDemand, cost: s.Cost})
	}
	return r
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
