package ec2sim

import "time"

// An instance boots in two phases, as on EC2. It is pending from its launch
// until EC2 reports it running (Config.BootDelay), and EC2 does not bill
// that time. Then the operating system boots and the instance starts up
// (Config.ReadyDelay): EC2 reports it running and bills it from the first
// second, although it cannot work yet. "Amazon EC2 instance state changes"
// (EC2 user guide, "Billing by instance state") lists pending as not billed
// and running as billed; "As soon as your instance transitions to the
// running state, you're billed for each second, with a one-minute minimum"
// (per-second billing of Linux instances). The sim bills from runningAt and
// reports readyAt through ReadyAt.

// bootTimes draws when an instance of instanceType launched at now will be
// running, and when ready. Each phase has its own random stream, so a
// ready delay leaves the pending delays of a seed unchanged.
func (s *Sim) bootTimes(now time.Time, instanceType string) (running, ready time.Time) {
	pending, up := s.cfg.BootDelay, s.cfg.ReadyDelay
	if td, ok := s.cfg.TypeDelays[instanceType]; ok {
		if td.Pending != nil {
			pending = td.Pending
		}
		if td.Ready != nil {
			up = td.Ready
		}
	}
	running = now.Add(sample(pending, s.bootRand))
	return running, running.Add(sample(up, s.readyRand))
}

// ReadyAt returns when instance id is, or will be, ready for work: the end
// of its ready delay after it started running (see Config.ReadyDelay). An
// instance whose owner terminates or stops it first never gets ready, but
// ReadyAt still reports the time it would have been. The second result is
// false for an id never launched.
//
// A role's Provision hook in a simulation waits until then: EC2 says
// running, and bills, well before the server can work.
func (s *Sim) ReadyAt(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	if !ok {
		return time.Time{}, false
	}
	return r.readyAt, true
}
