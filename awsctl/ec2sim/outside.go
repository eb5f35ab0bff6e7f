package ec2sim

import (
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Things a person, or AWS itself, does to instances outside the client that
// manages them. They are not part of awsctl.CloudClient and do not count in
// Calls. Sim.Terminate and Sim.Interrupt cover terminations and spot
// reclaims from outside; Stop covers the console's "Stop instance".

// Stop stops instance id as EC2's StopInstances does: the instance goes to
// stopping and, after a shutdown delay (Config.ShutdownDelay), to stopped.
// A stopped instance keeps its id, zone and tags and is still listed (in
// state stopped, which awsctl.State.Live counts as existing), but it does
// no work: its compute capacity is released (it no longer counts against
// SetCapacity limits or Config.MaxInstances) and, as EC2 bills, its usage
// is no longer charged from the moment the stop is requested (EBS storage,
// which the sim does not bill, would still be). It can still be tagged and
// terminated; a stopped instance is never started again by the sim.
//
// As on EC2 ("Stop and start Amazon EC2 instances" in the EC2 user guide,
// and the StopInstances API reference), only a running instance can be
// stopped: a pending one, or one shutting down or terminated, fails with
// IncorrectInstanceState (awsctl.ErrInvalidRequest), and a spot instance
// fails with UnsupportedOperation, since the instances the scaler launches
// come from one-time spot requests, which EC2 does not let you stop. A
// stopping or stopped instance is accepted again without change. An
// unknown id fails with awsctl.ErrNotFound.
func (s *Sim) Stop(id string) error {
	const op = "StopInstances"
	now := s.begin()
	defer s.mu.Unlock()
	r := s.known(id)
	if r == nil {
		return instancesNotFound(op, []string{id})
	}
	state := r.state(now)
	switch {
	case r.stopping:
		return nil
	case r.view.Market == awsctl.MarketSpot:
		return &awsctl.APIError{Op: op, Code: "UnsupportedOperation", Kind: awsctl.ErrInvalidRequest,
			Message: fmt.Sprintf("instance %s is a one-time spot instance, which cannot be stopped", id)}
	case state != awsctl.StateRunning:
		return &awsctl.APIError{Op: op, Code: "IncorrectInstanceState", Kind: awsctl.ErrInvalidRequest,
			Message: fmt.Sprintf("instance %s is %s, not running", id, state)}
	}
	s.stop(r, now)
	s.log.Debug("ec2sim: stop", "instance", id)
	return nil
}

// stop starts r's stop at now: whoever asks (Stop, or EC2 carrying out a
// scheduled event), the instance releases its capacity, stops being billed
// and drops its scheduled events, which a stopped instance has no use for
// (the sim never starts it again).
func (s *Sim) stop(r *instance, now time.Time) {
	if r.stopping || r.terminating {
		return
	}
	r.stopping = true
	r.stopAt = now
	r.stoppedAt = now.Add(sample(s.cfg.ShutdownDelay, s.shutdownRand))
	s.live--
	s.liveBy[offeringKeyOf(r)]--
	s.cancelEvents(r)
}

// billedUntil is when r's usage stops being charged, as of now: now, or
// earlier when its termination or stop was requested before.
func (r *instance) billedUntil(now time.Time) time.Time {
	end := now
	if r.terminating && r.terminateAt.Before(end) {
		end = r.terminateAt
	}
	if r.stopping && r.stopAt.Before(end) {
		end = r.stopAt
	}
	return end
}
