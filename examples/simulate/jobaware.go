package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/demand"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// The job-aware policy: the recommended configuration, with a host that
// tells its Queue how long its jobs are expected to run (job classes,
// manager.QueueConfig.Classes and Queue.ObserveClasses), so that the pool
// chooses a market per class (pool's job-aware markets), and places the
// jobs of classes the pool put on on-demand on on-demand servers only
// (they wait for one rather than risk spot), the others on spot servers
// first.
//
// What the host knows of a job's run time is -run-estimate: "exact" uses
// the run time the trace recorded, which no scheduler knows in advance;
// "lognormal:S" multiplies it by e^(S x a standard normal draw), an
// estimate off by a factor e^S (S = 1: 2.7) one time in three.
//
// Classes bin jobs by estimated run time and by width (their units), as a
// scheduler's queues would, and each class is described by its limits:
// the longest run and the widest job it admits. The limits, not a typical
// job, because what a restart loses grows faster than the run time and the
// width (spotprice.SpotWorkCost): a class described by a typical job
// understates what its longest, widest jobs lose, and the pool may then
// put on spot a class whose jobs lose more there than on-demand would
// cost (BENCHMARKS.md, section 6).

// runBins are the upper ends of the run-time bins and the run time that
// describes each: the upper end, and for the last, open bin the site's
// wall-time limit (the KTH SP2 ended jobs at 60 hours, the run time most
// of its longest jobs record).
var runBins = []struct{ upTo, run time.Duration }{
	{10 * time.Minute, 10 * time.Minute},
	{time.Hour, time.Hour},
	{4 * time.Hour, 4 * time.Hour},
	{12 * time.Hour, 12 * time.Hour},
	{24 * time.Hour, 24 * time.Hour},
	{math.MaxInt64, 60 * time.Hour},
}

// widthBins are the upper ends of the width bins (units) and the width
// that describes each: the upper end, and for the last the machine's 100
// nodes.
var widthBins = []struct{ upTo, width int }{{1, 1}, {4, 4}, {16, 16}, {64, 64}, {math.MaxInt, 100}}

// jobClasses returns the classes of the job-aware host: one per run-time
// and width bin, without checkpoints (the simulated jobs restart from
// scratch).
func jobClasses() []manager.JobClass {
	var out []manager.JobClass
	for _, r := range runBins {
		for _, w := range widthBins {
			out = append(out, manager.JobClass{Name: fmt.Sprintf("%v x%d", r.run, w.width), Run: r.run, Width: w.width})
		}
	}
	return out
}

// classOf returns the index in jobClasses of a job of estimated run time
// est and width procs.
func classOf(est time.Duration, procs int) int {
	r := 0
	for r < len(runBins)-1 && est > runBins[r].upTo {
		r++
	}
	w := 0
	for w < len(widthBins)-1 && procs > widthBins[w].upTo {
		w++
	}
	return r*len(widthBins) + w
}

// runEstimate is how the host estimates a job's run time.
type runEstimate struct {
	sigma float64 // 0: exact
}

func parseRunEstimate(s string) (runEstimate, error) {
	if s == "" || s == "exact" {
		return runEstimate{}, nil
	}
	v, ok := strings.CutPrefix(s, "lognormal:")
	sigma, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil || !(sigma > 0) || math.IsInf(sigma, 0) {
		return runEstimate{}, fmt.Errorf("-run-estimate %q: want exact or lognormal:SIGMA with SIGMA > 0", s)
	}
	return runEstimate{sigma: sigma}, nil
}

func (e runEstimate) String() string {
	if e.sigma == 0 {
		return "exact (the run time the trace recorded, which no scheduler knows in advance)"
	}
	return fmt.Sprintf("the recorded run time times e^(%g N(0,1)), a factor %.1f off one time in three", e.sigma, math.Exp(e.sigma))
}

// classes returns each job's class under the estimate, drawn from seed.
func (e runEstimate) classes(jobs []demand.Job, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0x0e))
	out := make([]int, len(jobs))
	for i, j := range jobs {
		est := j.Run
		if e.sigma > 0 {
			est = time.Duration(float64(j.Run) * math.Exp(e.sigma*rng.NormFloat64()))
		}
		out[i] = classOf(est, j.Procs)
	}
	return out
}

// ratedBook is the price book under -interruption-rate: it tells the pool
// the stress rate, which no monthly Advisor probability can express.
type ratedBook struct {
	*spotprice.Book
	rate float64
}

func (b ratedBook) InterruptionRate(string, string, time.Time) (float64, bool) { return b.rate, true }

var _ spotprice.InterruptionRater = ratedBook{}

// maxStressRate is the highest -interruption-rate: above it, the monthly
// probability ec2sim takes rounds to 1.
const maxStressRate = 0.05

// useClasses makes the workload report its jobs by class (classOf[i] is
// job i's) and place them by the market the pool chose for their class.
func (w *workload) useClasses(classes []manager.JobClass, classOf []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.classes, w.jobClass = classes, classOf
	w.classUnits = make([]int, len(classes))
	w.classMarket = make(map[string]awsctl.Market, len(classes))
}

// setClassMarket records the market the pool chose for a class (from its
// EventWorkMarket).
func (w *workload) setClassMarket(class string, mk awsctl.Market) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.classMarket != nil {
		w.classMarket[class] = mk
	}
}

// classCounts returns the units of running jobs by class. The caller holds
// w.mu.
func (w *workload) classCounts() map[string]manager.JobCount {
	out := make(map[string]manager.JobCount, len(w.classes))
	for i, u := range w.classUnits {
		if u > 0 {
			out[w.classes[i].Name] = manager.JobCount{Queued: u}
		}
	}
	return out
}

// jobStarted and jobEnded keep the units by class. The caller holds w.mu.
func (w *workload) jobStarted(j int) {
	if w.classes != nil {
		w.classUnits[w.jobClass[j]] += w.jobs[j].job.Procs
	}
}

func (w *workload) jobEnded(j int) {
	if w.classes != nil {
		w.classUnits[w.jobClass[j]] -= w.jobs[j].job.Procs
	}
}

// marketFor is the market whose servers job j goes to: only on-demand for
// a class the pool put there (it waits for on-demand capacity rather than
// risk spot), else spot first; none without classes. The caller holds
// w.mu.
func (w *workload) marketFor(j int) (mk awsctl.Market, only bool) {
	if w.classes == nil {
		return "", false
	}
	if w.classMarket[w.classes[w.jobClass[j]].Name] == awsctl.MarketOnDemand {
		return awsctl.MarketOnDemand, true
	}
	return awsctl.MarketSpot, false
}
