package ec2sim

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Reservations returns the reservations of Config.Reservations active now
// (whose End is zero or after now), in the order configured. It implements
// [awsctl.ReservationSource] and counts as an OpReservations call.
func (s *Sim) Reservations(ctx context.Context) ([]awsctl.Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: %s: %w", OpReservations, err)
	}
	now := s.begin()
	defer s.mu.Unlock()
	s.calls[OpReservations]++
	if f := s.fault(OpReservations); f.err != nil {
		return nil, f.err
	}
	var out []awsctl.Reservation
	for _, res := range s.cfg.Reservations {
		if res.End.IsZero() || res.End.After(now) {
			out = append(out, res)
		}
	}
	return out, nil
}

// activeEnd is when reservation res stops being active as seen at now: its
// End, or now if that is earlier or it has none.
func activeEnd(res awsctl.Reservation, now time.Time) time.Time {
	if res.End.IsZero() || res.End.After(now) {
		return now
	}
	return res.End
}

// reservationFees is what the reservations have cost by now: each active
// hour started since New, at ReservedPriceRatio of the on-demand price.
func (s *Sim) reservationFees(now time.Time) float64 {
	total := 0.0
	for _, res := range s.cfg.Reservations {
		active := activeEnd(res, now).Sub(s.origin)
		if active <= 0 {
			continue
		}
		hours := math.Ceil(active.Hours())
		total += float64(res.Count) * hours * s.cfg.ReservedPriceRatio * s.onDemandPrice(res.InstanceType)
	}
	return total
}

// Applying reservations. At every moment EC2 covers, per instance type,
// min(running, reserved) instances in each zone with that zone's zonal
// reservations, and then as many of the remaining ones, in any zone, as the
// regional reservations allow. Which instance gets the benefit is EC2's
// choice; the sim keeps a reservation on an instance until it stops or the
// reservation ends, and hands a freed one to the instance that has waited
// longest for one. A zonal reservation that frees up may go to an instance
// covered regionally, whose regional reservation then passes on. That
// reaches EC2's counts at every moment with O(1) amortised work per change,
// so the bill costs O(changes log changes), whatever the length of the run.

type coverStatus int

const (
	uncovered coverStatus = iota
	zonalCover
	regionalCover
	stopped
)

type coverState struct {
	r      *instance
	status coverStatus
	since  time.Time     // when the current coverage began
	total  time.Duration // covered time before since
}

func (c *coverState) set(status coverStatus, t time.Time) {
	was := c.status == zonalCover || c.status == regionalCover
	is := status == zonalCover || status == regionalCover
	switch {
	case was && !is:
		c.total += t.Sub(c.since)
	case !was && is:
		c.since = t
	}
	c.status = status
}

// queue is a FIFO whose entries may be stale: pop skips those whose status
// is no longer one the caller wants.
type queue struct {
	items []*coverState
	head  int
}

func (q *queue) push(c *coverState) { q.items = append(q.items, c) }

func (q *queue) pop(want ...coverStatus) *coverState {
	for q.head < len(q.items) {
		c := q.items[q.head]
		q.items[q.head] = nil
		q.head++
		if slices.Contains(want, c.status) {
			return c
		}
	}
	return nil
}

// stack is a LIFO with stale entries, like queue.
type stack []*coverState

func (s *stack) push(c *coverState) { *s = append(*s, c) }

func (s *stack) pop(want coverStatus) *coverState {
	for len(*s) > 0 {
		c := (*s)[len(*s)-1]
		*s = (*s)[:len(*s)-1]
		if c.status == want {
			return c
		}
	}
	return nil
}

// coverPool is the reservation state of one instance type.
type coverPool struct {
	zonalFree    map[string]int
	regionalFree int
	waiting      map[string]*queue // per zone: running, not zonally covered
	unserved     queue             // running, not covered at all
	zonal        map[string]*stack // per zone: zonally covered
	regional     stack             // regionally covered
}

func newCoverPool() *coverPool {
	return &coverPool{zonalFree: map[string]int{}, waiting: map[string]*queue{}, zonal: map[string]*stack{}}
}

func (p *coverPool) waitingIn(zone string) *queue {
	q := p.waiting[zone]
	if q == nil {
		q = &queue{}
		p.waiting[zone] = q
	}
	return q
}

func (p *coverPool) zonalIn(zone string) *stack {
	st := p.zonal[zone]
	if st == nil {
		st = &stack{}
		p.zonal[zone] = st
	}
	return st
}

func (p *coverPool) start(c *coverState, t time.Time) {
	zone := c.r.view.Zone
	if p.zonalFree[zone] > 0 {
		p.zonalFree[zone]--
		c.set(zonalCover, t)
		p.zonalIn(zone).push(c)
		return
	}
	p.waitingIn(zone).push(c)
	p.uncover(c, t)
}

// uncover makes c, running and without a zonal reservation, regionally
// covered if a regional reservation is free, or else unserved.
func (p *coverPool) uncover(c *coverState, t time.Time) {
	if p.regionalFree > 0 {
		p.regionalFree--
		c.set(regionalCover, t)
		p.regional.push(c)
		return
	}
	c.set(uncovered, t)
	p.unserved.push(c)
}

func (p *coverPool) stop(c *coverState, t time.Time) {
	was := c.status
	c.set(stopped, t)
	switch was {
	case zonalCover:
		p.zonalFree[c.r.view.Zone]++
		p.fillZonal(c.r.view.Zone, t)
	case regionalCover:
		p.regionalFree++
		p.fillRegional(t)
	}
}

// fillZonal gives the zone's free zonal reservations to its waiting
// instances, then passes any regional reservations that frees on.
func (p *coverPool) fillZonal(zone string, t time.Time) {
	for p.zonalFree[zone] > 0 {
		c := p.waitingIn(zone).pop(uncovered, regionalCover)
		if c == nil {
			break
		}
		if c.status == regionalCover {
			p.regionalFree++
		}
		p.zonalFree[zone]--
		c.set(zonalCover, t)
		p.zonalIn(zone).push(c)
	}
	p.fillRegional(t)
}

func (p *coverPool) fillRegional(t time.Time) {
	for p.regionalFree > 0 {
		c := p.unserved.pop(uncovered)
		if c == nil {
			return
		}
		p.regionalFree--
		c.set(regionalCover, t)
		p.regional.push(c)
	}
}

// expire ends reservation res at t, taking it back from the instances it
// covered.
func (p *coverPool) expire(res awsctl.Reservation, t time.Time) {
	if res.Zone == "" {
		p.regionalFree -= res.Count
		for p.regionalFree < 0 {
			c := p.regional.pop(regionalCover)
			if c == nil {
				break
			}
			p.regionalFree++
			c.set(uncovered, t)
			p.unserved.push(c)
		}
		return
	}
	p.zonalFree[res.Zone] -= res.Count
	for p.zonalFree[res.Zone] < 0 {
		c := p.zonalIn(res.Zone).pop(zonalCover)
		if c == nil {
			break
		}
		p.zonalFree[res.Zone]++
		p.waitingIn(res.Zone).push(c)
		p.uncover(c, t)
	}
}

// coverEvent kinds, in the order they are applied at one instant: a
// reservation freed by a stopping instance goes to one starting then.
const (
	coverStop = iota
	coverExpire
	coverStart
)

type coverEvent struct {
	at    time.Time
	kind  int
	order uint64 // instance seq or reservation index
	c     *coverState
	res   awsctl.Reservation
}

// reservedCoverage returns, per on-demand instance a reservation covered,
// for how long it did so by now.
func (s *Sim) reservedCoverage(now time.Time) map[*instance]time.Duration {
	if len(s.cfg.Reservations) == 0 {
		return nil
	}
	pools := map[string]*coverPool{}
	var events []coverEvent
	for i, res := range s.cfg.Reservations {
		if !activeEnd(res, now).After(s.origin) {
			continue
		}
		p := pools[res.InstanceType]
		if p == nil {
			p = newCoverPool()
			pools[res.InstanceType] = p
		}
		if res.Zone != "" {
			p.zonalFree[res.Zone] += res.Count
		} else {
			p.regionalFree += res.Count
		}
		if !res.End.IsZero() && !res.End.After(now) {
			events = append(events, coverEvent{at: res.End, kind: coverExpire, order: uint64(i), res: res})
		}
	}
	var states []*coverState
	for _, r := range s.history {
		if r.view.Market != awsctl.MarketOnDemand || pools[r.view.Type] == nil {
			continue
		}
		end := r.billedUntil(now)
		if !r.runningAt.Before(end) {
			continue
		}
		c := &coverState{r: r}
		states = append(states, c)
		events = append(events,
			coverEvent{at: r.runningAt, kind: coverStart, order: r.seq, c: c},
			coverEvent{at: end, kind: coverStop, order: r.seq, c: c})
	}
	slices.SortFunc(events, func(a, b coverEvent) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.kind, b.kind), cmp.Compare(a.order, b.order))
	})
	for _, e := range events {
		switch e.kind {
		case coverStart:
			pools[e.c.r.view.Type].start(e.c, e.at)
		case coverStop:
			pools[e.c.r.view.Type].stop(e.c, e.at)
		case coverExpire:
			pools[e.res.InstanceType].expire(e.res, e.at)
		}
	}
	out := make(map[*instance]time.Duration, len(states))
	for _, c := range states {
		if c.total > 0 {
			out[c.r] = c.total
		}
	}
	return out
}
