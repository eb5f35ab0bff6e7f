package ec2sim

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Spot interruptions. A spot instance of a type with an interruption rate
// gets its fate drawn at launch: when EC2 will send the interruption notice
// and whether a rebalance recommendation comes first. The plan waits in a
// min-heap keyed by its next event; every API call starts by playing the
// events that are due (begin), so the cost is per event, never per
// instance, and notices appear however the clock moves.

// InterruptionNoticeLead is the time from an interruption notice to EC2
// reclaiming the instance (awsctl.InterruptionNoticeLead).
const InterruptionNoticeLead = awsctl.InterruptionNoticeLead

// interruptionMonth is the period of Config.InterruptionRates: the 30 days
// of the Spot Instance Advisor's frequency buckets, as spotprice.Month. The
// sim does not import spotprice: the cloud it plays must not share the
// library's reading of prices and rates.
const interruptionMonth = 30 * 24 * time.Hour

// The range of a rebalance recommendation's lead over the interruption
// notice.
const (
	minRebalanceLead = 5 * time.Minute
	maxRebalanceLead = 30 * time.Minute
)

// interruptionStage is the next event of an interruption plan.
type interruptionStage int

const (
	stageRebalance interruptionStage = iota + 1
	stageNotice
	stageReclaim
)

type interruptionPlan struct {
	stage    interruptionStage
	next     time.Time // when the stage is due
	noticeAt time.Time
	index    int // in Sim.spotEvents; -1 when not queued
}

// planInterruption draws when EC2 will interrupt spot instance r, launched
// at now, and queues the plan. Every draw is made whatever its outcome, so
// that one launch's fate never shifts the next one's.
func (s *Sim) planInterruption(r *instance, now time.Time) {
	s.trackSpot(r, now)
	rate := s.cfg.InterruptionRates[r.view.Type]
	if rate <= 0 || s.cfg.InterruptionShare > 0 { // correlated: the pool's events (pools.go)
		return
	}
	exp := s.interruptRand.ExpFloat64()
	rebalance := s.interruptRand.Float64() < s.cfg.RebalanceShare
	lead := sample(Uniform(minRebalanceLead, maxRebalanceLead), s.interruptRand)

	// P(T < month) = rate for T exponential with rate -ln(1-rate)/month.
	mean := float64(interruptionMonth) / -math.Log1p(-rate)
	wait := exp * mean
	if wait >= float64(math.MaxInt64/2) { // centuries away: never in practice
		return
	}
	p := &interruptionPlan{stage: stageNotice, noticeAt: now.Add(time.Duration(wait)), index: -1}
	p.next = p.noticeAt
	if rebalance {
		p.stage = stageRebalance
		// A notice due within the lead of launch gets its recommendation
		// at launch.
		p.next = p.noticeAt.Add(-lead)
		if p.next.Before(now) {
			p.next = now
		}
	}
	r.interruption = p
	heap.Push(&s.spotEvents, r)
}

// cancelInterruption drops r's pending interruption events; terminate calls
// it, so an instance its owner terminates is never interrupted after.
func (s *Sim) cancelInterruption(r *instance) {
	if p := r.interruption; p != nil && p.index >= 0 {
		heap.Remove(&s.spotEvents, p.index)
	}
}

// interruptUntil plays the interruption events due by now, in time order:
// each instance's own, and the pools' (pools.go), a pool's first at equal
// times.
func (s *Sim) interruptUntil(now time.Time) {
	for {
		at, ok := s.nextPoolEvent()
		if ok && !at.After(now) && (len(s.spotEvents) == 0 || !s.spotEvents[0].interruption.next.Before(at)) {
			s.playPoolEvent()
			continue
		}
		if len(s.spotEvents) == 0 {
			return
		}
		r := s.spotEvents[0]
		p := r.interruption
		if p.next.After(now) {
			return
		}
		switch p.stage {
		case stageRebalance:
			s.notices = append(s.notices, awsctl.SpotNotice{InstanceID: r.view.ID, Kind: awsctl.Rebalance, Time: p.next})
			p.stage, p.next = stageNotice, p.noticeAt
			heap.Fix(&s.spotEvents, 0)
		case stageNotice:
			s.issueNotice(r, p.next)
			heap.Fix(&s.spotEvents, 0)
		case stageReclaim:
			heap.Pop(&s.spotEvents)
			r.interrupted = true
			s.terminate(r, p.next)
			s.log.Debug("ec2sim: spot interruption", "instance", r.view.ID, "at", p.next)
		}
	}
}

// issueNotice records an interruption notice for r at t and moves its plan
// to the reclaim stage, InterruptionNoticeLead later. The caller queues or
// fixes the plan in the heap.
func (s *Sim) issueNotice(r *instance, t time.Time) {
	deadline := t.Add(InterruptionNoticeLead)
	s.notices = append(s.notices, awsctl.SpotNotice{InstanceID: r.view.ID, Kind: awsctl.Interruption, Time: t,
		Deadline: deadline, Action: "terminate"})
	s.interruptions++
	p := r.interruption
	p.stage, p.noticeAt, p.next = stageReclaim, t, deadline
}

// SpotNotices returns the rebalance recommendations and interruption
// notices issued for any instance since the previous call, in the order
// they were issued, each once. It implements [awsctl.SpotNoticeSource].
// Notices not yet collected are kept.
func (s *Sim) SpotNotices(ctx context.Context) ([]awsctl.SpotNotice, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: SpotNotices: %w", err)
	}
	s.begin()
	defer s.mu.Unlock()
	out := s.notices
	s.notices = nil
	return out, nil
}

// Interrupt makes EC2 issue an interruption notice for spot instance id
// now, and terminate it InterruptionNoticeLead later; it counts in
// Interruptions, and the instance is billed as one EC2 interrupted. An
// instance that already has a notice keeps it. It fails with
// awsctl.ErrNotFound for an unknown id and awsctl.ErrInvalidRequest for an
// on-demand instance or one already shutting down.
func (s *Sim) Interrupt(id string) error {
	const op = "Interrupt"
	now := s.begin()
	defer s.mu.Unlock()
	r := s.known(id)
	switch {
	case r == nil:
		return instancesNotFound(op, []string{id})
	case r.view.Market != awsctl.MarketSpot:
		return invalidParameter(op, fmt.Sprintf("instance %s is not a spot instance", id))
	case r.terminating:
		return invalidParameter(op, fmt.Sprintf("instance %s is already %s", id, r.state(now)))
	case r.interruption != nil && r.interruption.stage == stageReclaim:
		return nil
	}
	s.cancelInterruption(r)
	r.interruption = &interruptionPlan{index: -1}
	s.issueNotice(r, now)
	heap.Push(&s.spotEvents, r)
	return nil
}

// Interruptions returns the number of interruption notices EC2 has issued
// so far, drawn from Config.InterruptionRates or forced by Interrupt. An
// instance its owner terminates between notice and deadline still counts.
func (s *Sim) Interruptions() int {
	s.begin()
	defer s.mu.Unlock()
	return s.interruptions
}

// spotQueue is a min-heap of instances by the time of their next
// interruption event, ties in launch order.
type spotQueue []*instance

func (q spotQueue) Len() int { return len(q) }
func (q spotQueue) Less(i, j int) bool {
	if c := q[i].interruption.next.Compare(q[j].interruption.next); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q spotQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].interruption.index = i
	q[j].interruption.index = j
}
func (q *spotQueue) Push(x any) {
	r := x.(*instance)
	r.interruption.index = len(*q)
	*q = append(*q, r)
}
func (q *spotQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	r.interruption.index = -1
	return r
}
