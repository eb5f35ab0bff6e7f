package ec2sim

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Instance health: status checks and scheduled events, as
// DescribeInstanceStatus reports them (awsctl.HealthReader).
//
// Status checks follow "Status checks for Amazon EC2 instances" (EC2 user
// guide): EC2 checks running instances only, so the checks of an instance
// that is not running are not-applicable; once it runs they report
// initializing for Config.StatusInitDelay, then ok, unless Impair made one
// fail. Scheduled events follow "Scheduled events for Amazon EC2 instances"
// (same guide): ScheduleEvent plays AWS's part, and at the event's NotBefore
// EC2 carries it out on the sim's clock. Like interruptions, due events are
// carried out by the call that finds them due (begin), so the cost is per
// event, never per instance.

// HealthBatchSize is the most instance ids one DescribeInstanceStatus call
// carries (the EC2 API reference's limit); InstanceHealth counts one
// OpInstanceHealth call per batch.
const HealthBatchSize = 100

// Status check indexes in instance.impaired.
const (
	checkSystem = iota
	checkInstance
)

// pendingEvent is a scheduled event not yet carried out.
type pendingEvent struct {
	r     *instance
	ev    awsctl.ScheduledEvent
	due   time.Time // when EC2 carries it out: NotBefore, or when it was scheduled if later
	index int       // in Sim.maintenance; -1 when not queued
}

// eventDescriptions are the descriptions EC2 gives its events, from the
// examples of "View scheduled events" in the EC2 user guide where it shows
// one, and plain words otherwise.
var eventDescriptions = map[awsctl.EventCode]string{
	awsctl.EventInstanceStop:       "The instance is running on degraded hardware",
	awsctl.EventInstanceRetirement: "The instance is running on degraded hardware",
	awsctl.EventInstanceReboot:     "The instance is scheduled for a reboot",
	awsctl.EventSystemReboot:       "The instance is scheduled for a reboot",
	awsctl.EventSystemMaintenance:  "The instance is scheduled for system maintenance",
}

// ScheduleEvent makes EC2 schedule an event of code for instance id, to
// start at notBefore, and returns it as InstanceHealth will report it (EC2
// fills in its ID and Description; NotAfter stays unset). It is AWS's part:
// owners cannot schedule events on EC2, and the call does not count in
// Calls.
//
// At notBefore EC2 carries the event out, as "Types of scheduled events"
// in the EC2 user guide describes: instance-stop and instance-retirement
// stop the instance (the sim's instances are EBS-backed, and a retirement
// stops an EBS-backed instance; it is terminated only when backed by
// instance store), with the shutdown delay, after which it stays stopped
// as one stopped with [Sim.Stop]. A one-time spot instance cannot be
// stopped, so those events terminate it instead (our reading; AWS does not
// say). instance-reboot, system-reboot and system-maintenance leave the
// instance running (the sim does not model the minutes of outage). A
// notBefore already past is carried out by the next call, as of the time
// it was scheduled. Once carried out, an event is no longer reported, and
// an instance that stops or terminates before its events drops them.
//
// It fails with awsctl.ErrInvalidRequest for a code that is not one of
// awsctl.EventCodes, a zero notBefore, or an instance that is neither
// pending nor running (IncorrectInstanceState), and with awsctl.ErrNotFound
// for an unknown id.
func (s *Sim) ScheduleEvent(id string, code awsctl.EventCode, notBefore time.Time) (awsctl.ScheduledEvent, error) {
	const op = "ScheduleEvent"
	if !code.Valid() {
		return awsctl.ScheduledEvent{}, invalidParameter(op, fmt.Sprintf("unknown event code %q; EC2's codes are %v", code, awsctl.EventCodes()))
	}
	if notBefore.IsZero() {
		return awsctl.ScheduledEvent{}, missingParameter(op, "the event needs a NotBefore time")
	}
	now := s.begin()
	defer s.mu.Unlock()
	r, err := s.liveInstance(op, id, now)
	if err != nil {
		return awsctl.ScheduledEvent{}, err
	}
	s.eventSeq++
	e := &pendingEvent{r: r, due: notBefore, index: -1, ev: awsctl.ScheduledEvent{
		ID:          fmt.Sprintf("instance-event-%017x", s.eventSeq),
		Code:        code,
		Description: eventDescriptions[code],
		NotBefore:   notBefore,
	}}
	if e.due.Before(now) {
		e.due = now // EC2 cannot act in the past
	}
	r.events = append(r.events, e)
	heap.Push(&s.maintenance, e)
	s.log.Debug("ec2sim: event scheduled", "instance", id, "code", code, "notBefore", notBefore)
	return e.ev, nil
}

// Impair makes one status check of instance id fail from now on: the
// system check if system is set (a problem of the AWS host, power or
// network), else the instance check (a problem of the instance's own
// software or configuration), as "Status checks for Amazon EC2 instances"
// (EC2 user guide) tells them apart. The check stays impaired until Repair,
// whatever the time; impairedSince is now, or the launch time for an
// instance still pending, as the DescribeInstanceStatus reference gives it
// for an instance launched impaired. A check already impaired keeps its
// time. It fails like ScheduleEvent for an unknown id or an instance that
// is neither pending nor running.
func (s *Sim) Impair(id string, system bool) error {
	const op = "Impair"
	now := s.begin()
	defer s.mu.Unlock()
	r, err := s.liveInstance(op, id, now)
	if err != nil {
		return err
	}
	c := checkOf(system)
	if !r.impaired[c].IsZero() {
		return nil
	}
	since := now
	if r.state(now) == awsctl.StatePending {
		since = r.view.LaunchTime
	}
	r.impaired[c] = since
	s.log.Debug("ec2sim: status check impaired", "instance", id, "system", system)
	return nil
}

// Repair makes the status check Impair failed pass again: the system check
// if system is set, else the instance check. Repairing a check that passes
// does nothing. It fails with awsctl.ErrNotFound for an unknown id.
func (s *Sim) Repair(id string, system bool) error {
	s.begin()
	defer s.mu.Unlock()
	r := s.known(id)
	if r == nil {
		return instancesNotFound("Repair", []string{id})
	}
	r.impaired[checkOf(system)] = time.Time{}
	return nil
}

func checkOf(system bool) int {
	if system {
		return checkSystem
	}
	return checkInstance
}

// liveInstance returns instance id if it is pending or running at now, or
// the error EC2 gives. The caller holds s.mu.
func (s *Sim) liveInstance(op, id string, now time.Time) (*instance, error) {
	if id == "" {
		return nil, malformedID(op)
	}
	r := s.known(id)
	if r == nil {
		return nil, instancesNotFound(op, []string{id})
	}
	if st := r.state(now); st != awsctl.StatePending && st != awsctl.StateRunning {
		return nil, &awsctl.APIError{Op: op, Code: "IncorrectInstanceState", Kind: awsctl.ErrInvalidRequest,
			Message: fmt.Sprintf("instance %s is %s, neither pending nor running", id, st)}
	}
	return r, nil
}

func malformedID(op string) error {
	return &awsctl.APIError{Op: op, Code: "InvalidInstanceID.Malformed", Kind: awsctl.ErrInvalidRequest,
		Message: "an instance id is empty"}
}

// InstanceHealth implements awsctl.HealthReader: it reports, of the
// instances ids, in the order of ids, those with an upcoming scheduled event
// and those running with a status check that is not ok (initializing for
// Config.StatusInitDelay after they start running, or impaired by Impair).
// Checks of instances not running are not-applicable. Unknown ids,
// instances still inside their list delay (DescribeInstanceStatus is as
// eventually consistent as DescribeInstances) and instances shutting down
// or terminated are left out. An empty id fails the call with
// InvalidInstanceID.Malformed (awsctl.ErrInvalidRequest) before it counts.
// It counts one OpInstanceHealth call per HealthBatchSize distinct ids, as
// the EC2 client makes them, and takes the faults injected into
// OpInstanceHealth.
func (s *Sim) InstanceHealth(ctx context.Context, ids []string) ([]awsctl.InstanceHealth, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: %s: %w", OpInstanceHealth, err)
	}
	for _, id := range ids {
		if id == "" {
			return nil, malformedID(OpInstanceHealth)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	now := s.begin()
	defer s.mu.Unlock()
	// Duplicates count once. Known instances are marked as they are seen
	// (a map of every id asked would cost more than the answer); ids the
	// sim does not know go in a set, needed only when there are any.
	s.healthGen++
	distinct := 0
	var unknown map[string]bool
	asked := s.healthAsked[:0] // kept between calls: a call allocates nothing per id
	for _, id := range ids {
		r := s.byID[id]
		if r == nil {
			if !unknown[id] {
				if unknown == nil {
					unknown = map[string]bool{}
				}
				unknown[id] = true
				distinct++
			}
			continue
		}
		if r.healthAsked == s.healthGen {
			continue
		}
		r.healthAsked = s.healthGen
		distinct++
		if !r.forgotten && !now.Before(r.visibleAt) {
			asked = append(asked, r)
		}
	}
	s.calls[OpInstanceHealth] += (distinct + HealthBatchSize - 1) / HealthBatchSize
	if f := s.fault(OpInstanceHealth); f.err != nil {
		clear(asked)
		s.healthAsked = asked[:0]
		return nil, f.err
	}
	var out []awsctl.InstanceHealth
	for _, r := range asked {
		if h, ok := r.health(now); ok {
			out = append(out, h)
		}
	}
	clear(asked)
	s.healthAsked = asked[:0]
	return out, nil
}

// health returns r's health at now, and whether it needs attention: an
// upcoming event, or running with a check that is not ok.
func (r *instance) health(now time.Time) (awsctl.InstanceHealth, bool) {
	state := r.state(now)
	if !state.Live() {
		return awsctl.InstanceHealth{}, false
	}
	h := awsctl.InstanceHealth{ID: r.view.ID, System: awsctl.CheckNotApplicable, Instance: awsctl.CheckNotApplicable}
	if state == awsctl.StateRunning {
		h.System, h.Instance = r.check(checkSystem, now), r.check(checkInstance, now)
		for _, since := range r.impaired {
			if !since.IsZero() && (h.ImpairedSince.IsZero() || since.Before(h.ImpairedSince)) {
				h.ImpairedSince = since
			}
		}
	}
	for _, e := range r.events {
		h.Events = append(h.Events, e.ev)
	}
	slices.SortStableFunc(h.Events, func(a, b awsctl.ScheduledEvent) int { return a.NotBefore.Compare(b.NotBefore) })
	ok := h.System == awsctl.CheckOK && h.Instance == awsctl.CheckOK
	return h, len(h.Events) > 0 || (state == awsctl.StateRunning && !ok)
}

// check is the result of status check c of running instance r at now.
func (r *instance) check(c int, now time.Time) awsctl.CheckStatus {
	switch {
	case !r.impaired[c].IsZero():
		return awsctl.CheckImpaired
	case now.Before(r.checksOKAt):
		return awsctl.CheckInitializing
	}
	return awsctl.CheckOK
}

// maintainUntil carries out the scheduled events due by now, in time
// order, each after the spot interruptions due before it.
func (s *Sim) maintainUntil(now time.Time) {
	for len(s.maintenance) > 0 && !s.maintenance[0].due.After(now) {
		e := s.maintenance[0]
		at := e.due
		s.interruptUntil(at.Add(-1))
		if e.index < 0 { // the interruptions terminated its instance
			continue
		}
		heap.Pop(&s.maintenance)
		r := e.r
		r.events = slices.DeleteFunc(r.events, func(p *pendingEvent) bool { return p == e })
		if !e.ev.Code.Stops() {
			s.log.Debug("ec2sim: scheduled event carried out", "instance", r.view.ID, "code", e.ev.Code)
			continue
		}
		if r.view.Market == awsctl.MarketSpot {
			s.terminate(r, at)
		} else {
			s.stop(r, at)
		}
		s.log.Debug("ec2sim: scheduled event carried out", "instance", r.view.ID, "code", e.ev.Code)
	}
}

// cancelEvents drops r's events, which a stopped or terminated instance
// will not see carried out.
func (s *Sim) cancelEvents(r *instance) {
	for _, e := range r.events {
		if e.index >= 0 {
			heap.Remove(&s.maintenance, e.index)
		}
	}
	r.events = nil
}

// maintenanceQueue is a min-heap of scheduled events by the time they are
// due, ties in the order they were scheduled.
type maintenanceQueue []*pendingEvent

func (q maintenanceQueue) Len() int { return len(q) }
func (q maintenanceQueue) Less(i, j int) bool {
	if c := q[i].due.Compare(q[j].due); c != 0 {
		return c < 0
	}
	return q[i].ev.ID < q[j].ev.ID
}
func (q maintenanceQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *maintenanceQueue) Push(x any) {
	e := x.(*pendingEvent)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *maintenanceQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}
