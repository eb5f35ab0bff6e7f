package ec2sim

import (
	"container/heap"
	"fmt"
	"math"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Spot pools. EC2 reclaims spot capacity by pool (an instance type in a
// zone): when it needs a pool's capacity back it interrupts many of the
// pool's instances at once, and a capacity shortage both stops launches and
// takes running instances. Two things here model that:
//
//   - With Config.InterruptionShare, a pool with an interruption rate has
//     interruption events (instead of each instance drawing its own time),
//     each taking about that share of the pool's running spot instances.
//   - [Sim.ScheduleReclaim] takes a share of a pool's running spot
//     instances at a given time, such as the start of a capacity outage
//     ([Sim.AddCapacityOutage] only refuses launches).
//
// Either way each instance hit gets an interruption notice and is
// reclaimed InterruptionNoticeLead later, exactly as an instance that drew
// its own interruption.

// spotPools holds the spot instances of each pool and the pool events not
// yet played.
type spotPools struct {
	members map[seriesKey][]*instance // spot instances launched into the pool; terminated ones pruned as met
	started map[seriesKey]bool        // pools whose interruption events are drawn
	events  poolEventQueue
	seq     uint64 // events ever queued, for a stable order at equal times
}

type poolEventKind int

const (
	// poolRebalance sends rebalance recommendations to the pool's running
	// spot instances; the interruption event follows at noticeAt.
	poolRebalance poolEventKind = iota + 1
	// poolInterrupt is an interruption event of the pool
	// (Config.InterruptionShare).
	poolInterrupt
	// poolReclaim is a reclaim of ScheduleReclaim.
	poolReclaim
)

type poolEvent struct {
	pool     seriesKey
	kind     poolEventKind
	at       time.Time
	noticeAt time.Time // of a poolRebalance: when its interruption event comes
	share    float64   // of a poolReclaim
	seq      uint64
}

// trackSpot records a new spot instance in its pool and, with correlated
// interruptions, starts drawing the pool's interruption events at its
// first instance.
func (s *Sim) trackSpot(r *instance, now time.Time) {
	p := &s.pools
	if p.members == nil {
		p.members = map[seriesKey][]*instance{}
		p.started = map[seriesKey]bool{}
	}
	k := seriesKey{r.view.Type, r.view.Zone}
	p.members[k] = append(p.members[k], r)
	if s.cfg.InterruptionShare > 0 && !p.started[k] && s.cfg.InterruptionRates[r.view.Type] > 0 {
		p.started[k] = true
		s.drawPoolEvent(k, now)
	}
}

// drawPoolEvent queues the next interruption event of pool k after from,
// preceded by a rebalance recommendation with probability RebalanceShare.
// The three draws are made whatever their outcome.
func (s *Sim) drawPoolEvent(k seriesKey, from time.Time) {
	rate := s.cfg.InterruptionRates[k.instanceType]
	exp := s.poolRand.ExpFloat64()
	rebalance := s.poolRand.Float64() < s.cfg.RebalanceShare
	lead := sample(Uniform(minRebalanceLead, maxRebalanceLead), s.poolRand)
	// Each running instance is hit by an event with probability share, so
	// events at rate -ln(1-rate)/(share*month) give each instance the
	// monthly interruption probability rate.
	mean := float64(interruptionMonth) * s.cfg.InterruptionShare / -math.Log1p(-rate)
	wait := exp * mean
	if wait >= float64(math.MaxInt64/2) {
		return
	}
	at := from.Add(time.Duration(wait))
	if !rebalance {
		s.pushPoolEvent(poolEvent{pool: k, kind: poolInterrupt, at: at})
		return
	}
	first := at.Add(-lead)
	if first.Before(from) {
		first = from
	}
	s.pushPoolEvent(poolEvent{pool: k, kind: poolRebalance, at: first, noticeAt: at})
}

func (s *Sim) pushPoolEvent(e poolEvent) {
	s.pools.seq++
	e.seq = s.pools.seq
	heap.Push(&s.pools.events, e)
}

// nextPoolEvent returns the time of the earliest pool event queued.
func (s *Sim) nextPoolEvent() (time.Time, bool) {
	if len(s.pools.events) == 0 {
		return time.Time{}, false
	}
	return s.pools.events[0].at, true
}

// playPoolEvent plays the earliest pool event.
func (s *Sim) playPoolEvent() {
	e := heap.Pop(&s.pools.events).(poolEvent)
	switch e.kind {
	case poolRebalance:
		for _, r := range s.runningSpot(e.pool, e.at) {
			s.notices = append(s.notices, awsctl.SpotNotice{InstanceID: r.view.ID, Kind: awsctl.Rebalance, Time: e.at})
		}
		s.pushPoolEvent(poolEvent{pool: e.pool, kind: poolInterrupt, at: e.noticeAt})
	case poolInterrupt:
		s.reclaim(e.pool, e.at, s.cfg.InterruptionShare, s.poolRand)
		s.drawPoolEvent(e.pool, e.at)
	case poolReclaim:
		s.reclaim(e.pool, e.at, e.share, s.reclaimRand)
	}
}

// reclaim sends an interruption notice at t to each running spot instance
// of pool k with probability share (one draw per instance, in launch
// order).
func (s *Sim) reclaim(k seriesKey, t time.Time, share float64, rng interface{ Float64() float64 }) {
	for _, r := range s.runningSpot(k, t) {
		if rng.Float64() >= share {
			continue
		}
		s.cancelInterruption(r) // an independent plan gives way to the pool's
		r.interruption = &interruptionPlan{index: -1}
		s.issueNotice(r, t)
		heap.Push(&s.spotEvents, r)
	}
	s.log.Debug("ec2sim: spot pool interruption", "type", k.instanceType, "zone", k.zone, "at", t, "share", share)
}

// runningSpot returns the spot instances of pool k running at t without an
// interruption notice, in launch order, pruning the pool's terminated
// ones.
func (s *Sim) runningSpot(k seriesKey, t time.Time) []*instance {
	members := s.pools.members[k]
	kept := members[:0]
	var out []*instance
	for _, r := range members {
		if r.terminating {
			continue
		}
		kept = append(kept, r)
		if t.Before(r.runningAt) || r.stopping || (r.interruption != nil && r.interruption.stage == stageReclaim) {
			continue
		}
		out = append(out, r)
	}
	clear(members[len(kept):])
	s.pools.members[k] = kept
	return out
}

// ScheduleReclaim makes EC2 reclaim, at time at, a share of the spot
// instances of instanceType in zone that are running then: each gets an
// interruption notice at that time with probability share and is
// terminated InterruptionNoticeLead later, as an interruption. Pair it with
// AddCapacityOutage to model a capacity shortage that both refuses launches
// and takes running instances. A time already past is played at the next
// call. It fails for a share outside (0, 1] or a zone the sim does not
// have.
func (s *Sim) ScheduleReclaim(instanceType, zone string, at time.Time, share float64) error {
	if !(share > 0 && share <= 1) {
		return fmt.Errorf("ec2sim: ScheduleReclaim: share %v is not in (0, 1]", share)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.zones[zone] {
		return fmt.Errorf("ec2sim: ScheduleReclaim: %q is not a zone of the sim", zone)
	}
	if s.pools.members == nil {
		s.pools.members = map[seriesKey][]*instance{}
		s.pools.started = map[seriesKey]bool{}
	}
	s.pushPoolEvent(poolEvent{pool: seriesKey{instanceType, zone}, kind: poolReclaim, at: at, share: share})
	return nil
}

// poolEventQueue is a min-heap of pool events by time, then queue order.
type poolEventQueue []poolEvent

func (q poolEventQueue) Len() int { return len(q) }
func (q poolEventQueue) Less(i, j int) bool {
	if c := q[i].at.Compare(q[j].at); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q poolEventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *poolEventQueue) Push(x any)   { *q = append(*q, x.(poolEvent)) }
func (q *poolEventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
