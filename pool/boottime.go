package pool

import (
	"cmp"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Learned boot times: the model is described in the package documentation
// ("Boot times"). The code below keeps, per window, the latest samples by
// ready time and answers their median; observe feeds it whenever it reads a
// server's tags and finds TagReady, which is idempotent, so a sample offered
// twice (a listing read again, a restart) counts once.

const (
	// BootWindow is how many of the latest servers to become ready each
	// boot-time estimate rests on, per offering, per type and market, and
	// pool-wide.
	BootWindow = 16
	// BootMinSamples is how many samples an estimate needs before the pool
	// uses it. With fewer, the pool falls back to the wider estimate (an
	// offering's to its type and market's, then to the pool-wide one), and
	// with none of them to the constant the setting names. Three samples
	// is the fewest whose median one outlier cannot move.
	BootMinSamples = 3
)

// BootTime is what a pool learnt of the time from launch to ready of one
// offering (Status.BootTimes): EC2's LaunchTime to the TagReady the pool
// wrote once the role's Provision hook succeeded.
type BootTime struct {
	Type   string
	Zone   string
	Market awsctl.Market
	// Estimate is the median of the offering's samples. The pool uses it
	// for the offering once Samples reaches BootMinSamples.
	Estimate time.Duration
	// Samples is how many servers it rests on: the latest of the offering
	// to become ready, at most BootWindow.
	Samples int
}

// bootSample is one server's time from launch to ready.
type bootSample struct {
	ready int64 // TagReady, unix nanoseconds: which samples are the latest
	id    string
	d     time.Duration
}

// newer orders samples by ready time, then id, so that which samples a
// window keeps does not depend on the order they were offered in.
func (a bootSample) newer(b bootSample) bool {
	if a.ready != b.ready {
		return a.ready > b.ready
	}
	return a.id > b.id
}

// bootWindow holds the latest BootWindow samples and their median.
type bootWindow struct {
	s      []bootSample
	oldest int // index in s of the oldest sample
	median time.Duration
	fresh  bool // median is up to date
}

// add offers x to the window: it is kept if the window has room or x is
// newer than its oldest sample, which it then replaces. Offering a sample
// the window holds, or held and dropped, changes nothing.
func (w *bootWindow) add(x bootSample) {
	full := len(w.s) == BootWindow
	if full && !x.newer(w.s[w.oldest]) {
		return // older than all it holds: dropped, or dropped before
	}
	for _, s := range w.s {
		if s.ready == x.ready && s.id == x.id { // TagReady is written once
			return
		}
	}
	w.fresh = false
	if !full {
		w.s = append(w.s, x)
		if w.s[w.oldest].newer(x) {
			w.oldest = len(w.s) - 1
		}
		return
	}
	w.s[w.oldest] = x
	for i, s := range w.s {
		if w.s[w.oldest].newer(s) {
			w.oldest = i
		}
	}
}

// estimate returns the median of the window and whether it holds
// BootMinSamples samples.
func (w *bootWindow) estimate() (time.Duration, bool) {
	if len(w.s) == 0 {
		return 0, false
	}
	if !w.fresh {
		var buf [BootWindow]time.Duration
		d := buf[:0]
		for _, s := range w.s {
			d = append(d, s.d)
		}
		slices.Sort(d)
		n := len(d)
		w.median = d[n/2]
		if n%2 == 0 {
			w.median = d[n/2-1] + (d[n/2]-d[n/2-1])/2
		}
		w.fresh = true
	}
	return w.median, len(w.s) >= BootMinSamples
}

// bootTimes is a pool's boot-time estimates: one window per offering, per
// type and market (zone ""), and pool-wide. It lives under the pool's lock.
type bootTimes struct {
	offers     map[offeringKey]*bootWindow
	typeMarket map[offeringKey]*bootWindow
	all        bootWindow
	// list is Status.BootTimes as last built; stale: a sample came since.
	list  []BootTime
	stale bool
}

// learn records a server that is ready: launched at launch, of offering k,
// TagReady's value ready. A value that does not parse, or comes before the
// launch, is no sample: a clock far off, or an instance started again
// after a stop, since EC2's LaunchTime is "the time that the instance was
// last launched" (EC2 API Reference, Instance data type).
func (b *bootTimes) learn(id string, k offeringKey, launch time.Time, ready string) {
	t, ok := parseTime(ready)
	if !ok || launch.IsZero() || t.Before(launch) {
		return
	}
	x := bootSample{ready: t.UnixNano(), id: id, d: t.Sub(launch)}
	if b.offers == nil {
		b.offers, b.typeMarket = map[offeringKey]*bootWindow{}, map[offeringKey]*bootWindow{}
	}
	window := func(m map[offeringKey]*bootWindow, k offeringKey) *bootWindow {
		w, ok := m[k]
		if !ok {
			w = &bootWindow{}
			m[k] = w
		}
		return w
	}
	window(b.offers, k).add(x)
	window(b.typeMarket, offeringKey{instanceType: k.instanceType, market: k.market}).add(x)
	b.all.add(x)
	b.stale = true
}

// estimate returns the boot time of a new server of offering k: the
// offering's own estimate, else its type and market's, else the pool-wide
// one, the first that rests on BootMinSamples samples; false if none does.
func (b *bootTimes) estimate(k offeringKey) (time.Duration, bool) {
	if w := b.offers[k]; w != nil {
		if d, ok := w.estimate(); ok {
			return d, true
		}
	}
	if w := b.typeMarket[offeringKey{instanceType: k.instanceType, market: k.market}]; w != nil {
		if d, ok := w.estimate(); ok {
			return d, true
		}
	}
	return b.poolWide()
}

// poolWide returns the estimate over the pool's latest servers to become
// ready, whatever their offering.
func (b *bootTimes) poolWide() (time.Duration, bool) { return b.all.estimate() }

// status returns the per-offering estimates, by type, zone and market. The
// slice is rebuilt only after a new sample: a published one is never
// written to again.
func (b *bootTimes) status() []BootTime {
	if !b.stale {
		return b.list
	}
	b.stale = false
	b.list = make([]BootTime, 0, len(b.offers))
	for k, w := range b.offers {
		d, _ := w.estimate()
		b.list = append(b.list, BootTime{Type: k.instanceType, Zone: k.zone, Market: k.market, Estimate: d, Samples: len(w.s)})
	}
	slices.SortFunc(b.list, func(a, b BootTime) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.Market, b.Market))
	})
	return b.list
}

// swapOverlap is how long both servers of a swap to spot run, for a
// replacement of offering k: Config.Replace.Overlap when set, else the
// learned boot time of k, else DefaultSwapOverlap. learned says which of
// the last two.
func (p *Pool) swapOverlap(k offeringKey) (d time.Duration, learned bool) {
	if o := p.cfg.Replace.Overlap; o > 0 {
		return o, false
	}
	if d, ok := p.boot.estimate(k); ok {
		return d, true
	}
	return DefaultSwapOverlap, false
}
