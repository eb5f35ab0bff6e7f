package autoscale_test

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

var (
	mcSeeds  = flag.Int("modelcheck.seeds", mcDefaultSeeds, "number of model-check seeds TestModelCheck runs (seeds 1..n)")
	mcSeed   = flag.Int64("modelcheck.seed", 0, "run only this model-check seed, with its scenario and every violation logged")
	mcStrict = flag.Bool("modelcheck.strict", false, "fail on known violations too (see knownViolations)")
	mcTrace  = flag.Bool("modelcheck.trace", false, "with -modelcheck.seed: log every pass's events and instances")
)

// knownViolations are invariants the code breaks today, each with the
// finding of issue 10 that breaks it. The model check still runs them and
// reports their seeds in its log, but does not fail on them unless
// -modelcheck.strict is set. Delete an entry once its finding is fixed.
var knownViolations = map[string]string{
	"crash-launches": "after a crash the instances differ from the references' and so do their fates, drawn per instance (provisioning time, drain length, hook hangs): " +
		"a drain that ends sooner frees room under Max for a roll's replacement, or tears a server down before its manager's demand returns; " +
		"on 31 of 1,500 seeds a pool launches more than a reference allows, by 1 to 6 units (1 on 20 of them); none of 12 seeds looked at was a launch a successor knowing EC2's tags and listing would not make",
	"max": "rare (2 of 3,000 seeds: 1608, 2779): the scaler dies right after a launch the listing does not show yet (list delay 1m), and its successor, " +
		"seeing no launch of the pool within LaunchGrace, does not hold; its own request differs (2779: another zone) or is the same but falls in the next TokenWindow (1608), " +
		"so its token differs and it launches again, up to that launch's capacity above Max (3 and 2 units) until the surplus is wound down (the case RELIABILITY.md lists under what a crash can still cost)",
}

// TestModelCheck drives the public API (autoscale over ec2sim) through a
// random scenario per seed, once uncrashed and once with the scaler dying
// at a random cloud call and a new one taking over, and checks after every
// pass, on what EC2 holds:
//
//   - max: the capacity of a pool's pending and running instances is at
//     most Max (shutting-down ones do not count; stopped ones do no work);
//   - replaced-twice: at most one pending or running replacement per
//     replaced server, and none once a replacement took its place;
//   - launch-while-winding-down: no launch while a server of the same
//     pool winds down as spare capacity and could have been restored;
//   - foreign-touched: instances of other owners (a glob of the scaler's
//     identity, a sibling identity, another owner, none) are never named
//     in a call nor changed;
//   - granted-terminated-without-wind-down: a granted server is terminated
//     only after its wind-down started (checked at every Terminate call);
//   - host-calls-bounded: a hung manager does not hold the pass until its
//     caller's deadline;
//   - launch-without-demand: once no manager of a pool has wanted anything
//     for a few passes, a pool without Min launches nothing;
//   - convergence and zone-minimums: once demand settles, every manager
//     holds its target (fair share within Max), zone minimums included,
//     within mcConvergeBound passes, without a surplus (an on-demand
//     server its long jobs need is none);
//   - work-on-demand: once demand settles, a Queue that reports long jobs
//     (QueueConfig.Classes and ObserveClasses; half the Queues of pools
//     that buy spot, on price books that know an interruption rate) holds
//     their units (within its target) on demand, within mcConvergeBound
//     passes; launch-while-winding-down counts on-demand launched for
//     such jobs as no launch a spot server winding down could spare;
//   - no-leak: with no demand, nothing beyond Min is left (in an hourly
//     pool: nothing beyond Min is kept past the end of a paid hour that
//     ended after the pool last needed it), and Shutdown with WindDown
//     leaves nothing;
//   - crash-convergence and crash-launches: the crashed run ends holding
//     what an uncrashed reference holds and launches, pool by pool, no more
//     than the reference plus what the crash lost in flight, the servers it
//     left half provisioned, and what the outside, failed provisioning and
//     sickness took beyond the reference; launches are compared where the
//     pool's managers, restarted with the host, asked what the reference's
//     did (see compareRuns).
//
// The scaler, the sim and the role's servers run in a testing/synctest
// bubble whose clock is the sim's too: hooks take virtual time, hung ones
// wait for their context, and nothing sleeps for real. Each pass starts
// once everything due at its instant has happened, so a seed replays the
// same run (only the order of a pass's events may differ); the crashed run
// is compared with two uncrashed runs, which now replay alike.
//
// go test ./autoscale -run TestModelCheck -modelcheck.seeds=5000 runs more
// seeds; -modelcheck.seed=N runs one and logs its scenario, with
// -modelcheck.trace every pass's events and instances too, and
// -modelcheck.strict fails on known violations as well.
func TestModelCheck(t *testing.T) {
	seeds := make([]int64, 0, *mcSeeds)
	if *mcSeed != 0 {
		seeds = append(seeds, *mcSeed)
	} else {
		for s := range *mcSeeds {
			seeds = append(seeds, int64(s+1))
		}
	}
	mcPoolsCrashed.Store(0)
	mcPoolsCompared.Store(0)
	var mu sync.Mutex
	known := map[string][]int64{}
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel()
				vs, report := modelCheckSeed(t, seed)
				if len(seeds) == 1 {
					t.Log(report)
				}
				failed := false
				for _, v := range vs {
					if _, ok := knownViolations[v.invariant]; ok && !*mcStrict {
						mu.Lock()
						if l := known[v.invariant]; len(l) == 0 || l[len(l)-1] != seed {
							known[v.invariant] = append(l, seed)
						}
						mu.Unlock()
						if len(seeds) == 1 {
							t.Logf("known violation (%s): %s", knownViolations[v.invariant], v)
						}
						continue
					}
					t.Errorf("%s", v)
					failed = true
				}
				if failed {
					t.Errorf("%s\nreproduce: go test ./autoscale -run 'TestModelCheck' -modelcheck.seed=%d -v", report, seed)
				}
			})
		}
	})
	t.Logf("crash-launches compared the launches of %d of the %d pools of crashed runs (the others' managers asked otherwise after the crash)",
		mcPoolsCompared.Load(), mcPoolsCrashed.Load())
	for _, inv := range slices.Sorted(maps.Keys(known)) {
		s := known[inv]
		slices.Sort(s)
		t.Logf("known violation %q (%s) on %d of %d seeds: %v", inv, knownViolations[inv], len(s), len(seeds), head(s, 20))
	}
}

func head(s []int64, n int) string {
	if len(s) <= n {
		return fmt.Sprint(s)
	}
	return strings.TrimSuffix(fmt.Sprint(s[:n]), "]") + " ...]"
}

// modelCheckSeed plays the seed's scenario uncrashed, then crashed at the
// cloud call its crash point picks, each in its own synctest bubble, and
// returns every violation and a report of the runs.
func modelCheckSeed(t *testing.T, seed int64) ([]mcViolation, string) {
	sc := drawScenario(seed)
	var ref, ref2, crashed *mcRun
	synctest.Test(t, func(t *testing.T) {
		ref = newMCRun(sc, "ref", -1)
		if *mcTrace {
			ref.logf = t.Logf
		}
		ref.play()
	})
	synctest.Test(t, func(t *testing.T) {
		ref2 = newMCRun(sc, "ref2", -1)
		ref2.play()
	})
	crashAfter := 1 + int(sc.crashPoint*float64(max(ref.chaosCalls-1, 1)))
	synctest.Test(t, func(t *testing.T) {
		crashed = newMCRun(sc, "crash", crashAfter)
		if *mcTrace {
			crashed.logf = t.Logf
		}
		crashed.play()
	})
	compareRuns([]*mcRun{ref, ref2}, crashed)
	// The second reference only serves the comparison: its violations are
	// the first one's, or the same found by other choices between equals.
	vs := append(slices.Clone(ref.violations), crashed.violations...)
	sortViolations(vs)
	report := fmt.Sprintf("seed %d: %s\n%s\n%s\n%s (crash after cloud call %d of %d in the chaos phase)",
		seed, sc.describe(), ref.summary(), ref2.summary(), crashed.summary(), crashAfter, ref.chaosCalls)
	return vs, report
}
