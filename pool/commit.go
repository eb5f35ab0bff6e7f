package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Outcome is what happened when the scaler carried out a plan.
type Outcome struct {
	// Launched holds, per entry of Plan.Launches, the instances launched
	// and the error for what was not.
	Launched  [][]awsctl.Instance
	LaunchErr []error
	// ChangeErr holds the error for each instance whose tag change
	// failed; its hook is not started and its notices are not sent.
	ChangeErr map[string]error
	// Terminated lists the instances EC2 accepted to terminate.
	Terminated    []string
	TerminateErr  error
	TerminateSent bool
}

// commit records the outcome of carrying out pl: launches in flight, tag
// changes to expect in the next listing, hooks to start (in background
// goroutines bound to ctx, which must outlive the pass: cancel it to stop
// the hooks) and manager notices. It returns the events of the outcome.
func (p *Pool) commit(ctx context.Context, pl *Plan, out Outcome) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var events []Event
	ev := func(e Event) {
		e.Time = pl.Now
		e.Pool = p.cfg.Name
		events = append(events, e)
	}
	st := p.Status()
	for i, req := range pl.Launches {
		if req.Capacity <= 0 {
			continue // cut by the scaler's safety rails
		}
		var insts []awsctl.Instance
		var err error
		if i < len(out.Launched) {
			insts = out.Launched[i]
		}
		if i < len(out.LaunchErr) {
			err = out.LaunchErr[i]
		}
		got := 0
		var fresh []awsctl.Instance
		for _, inst := range insts {
			if p.seen(inst.ID) || !inst.State.Live() {
				continue // an earlier launch's answer, replayed for its token
			}
			if inst.Market == "" {
				inst.Market = req.Market
			}
			// The in-flight server carries the launch's tags, so that until
			// the listing shows it, it is what it will be (a replacement
			// stays one).
			if inst.Tags == nil || inst.Tags[TagPool] == "" {
				tags := cloneMap(req.Spec.Tags)
				if tags == nil {
					tags = map[string]string{}
				}
				for k, v := range req.Tags {
					tags[k] = v
				}
				inst.Tags = tags
			}
			if inst.LaunchTime.IsZero() {
				inst.LaunchTime = pl.Now
			}
			if _, ok := p.inflight[inst.ID]; !ok {
				p.inflight[inst.ID] = inflight{inst: inst, at: pl.Now}
			}
			got += p.weight(inst.Type)
			fresh = append(fresh, inst)
		}
		why := ""
		if i < len(pl.launchWhy) {
			why = pl.launchWhy[i]
		}
		if req.Tags[TagReplaces] != "" {
			st.Replacing += got
		} else {
			st.Booting += got
		}
		// One event per (type, zone, market), so that each is a field an
		// observer can read, not a guess from the reason text.
		for len(fresh) > 0 {
			g := fresh[0]
			e := Event{Kind: EventLaunch, Market: g.Market, InstanceType: g.Type, Zone: g.Zone, Reason: why,
				Inputs: []slog.Attr{slog.Int("requested", req.Capacity), slog.Int("instances", len(insts))}}
			rest := fresh[:0]
			for _, inst := range fresh {
				if inst.Type != g.Type || inst.Zone != g.Zone || inst.Market != g.Market {
					rest = append(rest, inst)
					continue
				}
				e.Instances = append(e.Instances, inst.ID)
				e.Capacity += p.weight(inst.Type)
			}
			fresh = rest
			ev(e)
		}
		if worst := worstFill(req.Capacity, req.Offerings); got > worst {
			ev(Event{Kind: EventAtMax, Capacity: got, Market: req.Market,
				Reason: fmt.Sprintf("EC2 filled %d units where at most %d could be: the excess over max is wound down", got, worst)})
		}
		if err != nil {
			p.markUnavailable(pl.Now, req, err)
			ev(Event{Kind: EventLaunchFailed, Capacity: max(0, req.Capacity-got), Market: req.Market, Err: err,
				Reason: launchFailure(err)})
		}
	}
	p.publish(st)
	for _, ch := range pl.Changes {
		id := ch.Instance.ID
		if err, failed := out.ChangeErr[id]; failed {
			ev(Event{Kind: EventCloudError, Instance: id, Err: err, Reason: "tag change failed; retried next pass"})
			continue
		}
		if len(ch.Set) > 0 || len(ch.Remove) > 0 {
			p.expectTags(pl.Now, id, ch)
		}
		if ch.Hook != 0 {
			timeout := p.cfg.HookTimeout
			if ch.Hook == HookProvision || ch.Hook == HookRestore {
				// A restore puts a server back to work, which may mean
				// waiting for it to read healthy again: as long as a
				// provisioning.
				timeout = p.cfg.ProvisionTimeout
			}
			p.hooks.start(ctx, pl.Now, ch.Hook, ch.Instance, timeout)
		}
		for _, n := range pl.notices[id] {
			notify(n)
		}
		delete(pl.notices, id)
	}
	// Notices of servers with no change to make (a grant whose tag is
	// already there) go out too.
	for id, ns := range pl.notices {
		if _, failed := out.ChangeErr[id]; failed {
			continue
		}
		for _, n := range ns {
			notify(n)
		}
	}
	for _, n := range pl.lost {
		notify(n)
	}
	accepted := make(map[string]bool, len(out.Terminated))
	for _, id := range out.Terminated {
		accepted[id] = true
		p.terminating[id] = pl.Now
		for _, n := range pl.termNotes[id] {
			notify(n)
		}
		if m, ok := p.mem[id]; ok {
			m.grantedTo = nil // reported as terminated, not lost
		}
	}
	if out.TerminateErr != nil {
		for _, id := range pl.Terminate {
			if !accepted[id] {
				ev(Event{Kind: EventCloudError, Instance: id, Err: out.TerminateErr, Reason: "terminate failed; retried next pass"})
			}
		}
	}
	return events
}

// notify calls a manager's Notify, containing a panic: host code must not
// take the scaler down, and the pass has already changed the cloud.
func notify(n notice) {
	defer func() { _ = recover() }()
	n.m.Notify(n.n)
}

func (p *Pool) expectTags(now time.Time, id string, ch Change) {
	ov, ok := p.overlay[id]
	if !ok {
		ov = overlay{tags: map[string]*string{}}
	}
	ov.at = now
	for k, v := range ch.Set {
		v := v
		ov.tags[k] = &v
	}
	for _, k := range ch.Remove {
		ov.tags[k] = nil
	}
	p.overlay[id] = ov
	if m, ok := p.mem[id]; ok {
		m.overlay = true
		for _, k := range ch.Remove {
			if k == TagWindDownStart {
				// The wind-down is over: forget its progress.
				m.windDownSent, m.woundDown, m.tornDown, m.restored, m.restoreFree = false, false, false, false, false
			}
		}
		if _, ok := ch.Set[TagWindDownStart]; ok {
			// A new wind-down starts from the beginning.
			m.windDownSent, m.woundDown, m.tornDown, m.restored = false, false, false, false
		}
	}
}

// markUnavailable remembers the offerings that had no capacity, so the next
// launches fall back to other zones, types or markets until the entry
// expires. A quota (vCPUs of an instance family's bucket in one market, or
// the spot instance count) takes the whole family out of that market, in
// every zone: other families and the other market have quotas of their own.
func (p *Pool) markUnavailable(now time.Time, req awsctl.LaunchRequest, err error) {
	if !errors.Is(err, awsctl.ErrInsufficientCapacity) && !errors.Is(err, awsctl.ErrQuotaExceeded) {
		return
	}
	mark := func(o awsctl.Offering, mk awsctl.Market, e error) {
		if !errors.Is(e, awsctl.ErrQuotaExceeded) {
			p.cfg.Unavailable.Mark(now, o.InstanceType, o.Zone, mk)
			return
		}
		fam := family(o.InstanceType)
		for _, t := range p.cfg.Types {
			if family(t.Name) == fam {
				for _, z := range p.cfg.Zones {
					p.cfg.Unavailable.Mark(now, t.Name, z, mk)
				}
			}
		}
	}
	per := launchErrors(err)
	for _, le := range per {
		if errors.Is(le, awsctl.ErrInsufficientCapacity) || errors.Is(le, awsctl.ErrQuotaExceeded) {
			mark(le.Offering, le.Market, le.Err)
		}
	}
	if len(per) == 0 {
		// The whole call failed: every offering it named is out.
		for _, o := range req.Offerings {
			mark(o, req.Market, err)
		}
	}
}

// family is an instance type's family ("c5" of "c5.xlarge"), which EC2's
// vCPU quotas group by.
func family(instanceType string) string {
	if i := strings.IndexByte(instanceType, '.'); i > 0 {
		return instanceType[:i]
	}
	return instanceType
}

// launchErrors finds every *awsctl.LaunchError in an error tree.
func launchErrors(err error) []*awsctl.LaunchError {
	if le, ok := err.(*awsctl.LaunchError); ok {
		return []*awsctl.LaunchError{le}
	}
	var out []*awsctl.LaunchError
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, launchErrors(e)...)
		}
	case interface{ Unwrap() error }:
		out = launchErrors(u.Unwrap())
	}
	return out
}

func launchFailure(err error) string {
	switch {
	case errors.Is(err, awsctl.ErrInsufficientCapacity):
		return "insufficient capacity"
	case errors.Is(err, awsctl.ErrLimitExceeded):
		return "account limit"
	case errors.Is(err, awsctl.ErrQuotaExceeded):
		return "quota"
	case errors.Is(err, awsctl.ErrThrottled):
		return "throttled"
	case errors.Is(err, awsctl.ErrInvalidRequest):
		return "invalid request"
	}
	return "launch failed"
}
