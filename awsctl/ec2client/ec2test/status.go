package ec2test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// DescribeInstanceStatus, as the EC2 API reference describes it: the
// status checks and scheduled events of instances, running ones only unless
// IncludeAllInstances.
//
// The health of the instances comes from the backing cloud when it is an
// awsctl.HealthReader (ec2sim.Sim is: its ScheduleEvent and Impair show
// here), from AddScheduledEvent and SetStatusChecks, and otherwise is ok:
// the checks of a running instance pass, those of an instance not running
// are not-applicable ("Status checks for Amazon EC2 instances", EC2 user
// guide: EC2 checks running instances).

// AddScheduledEvent adds ev to the events DescribeInstanceStatus reports
// for instance id, after those of the backing cloud. An empty ev.ID gets
// one. Give ev.Description the prefix "[Completed]" or "[Canceled]" for an
// event that is over, which EC2 keeps describing for up to a week
// (InstanceStatusEvent in the EC2 API reference). The code is not checked,
// so that tests can send codes EC2 may add later.
func (s *Server) AddScheduledEvent(id string, ev awsctl.ScheduledEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.ID == "" {
		s.seq++
		ev.ID = fmt.Sprintf("instance-event-%017x", s.seq)
	}
	s.events[id] = append(s.events[id], ev)
}

// SetStatusChecks makes DescribeInstanceStatus report the system and
// instance checks of instance id as given while it runs, whatever the
// backing cloud says; an impaired check reports impairedSince the time of
// the call, on the cloud's clock. Empty statuses remove the override. The
// statuses are not checked, so that tests can send statuses EC2 may add
// later.
func (s *Server) SetStatusChecks(id string, system, instance awsctl.CheckStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if system == "" && instance == "" {
		delete(s.checks, id)
		return
	}
	s.checks[id] = statusOverride{system: system, instance: instance, at: formatTime(s.now())}
}

type xmlEvent struct {
	ID          string `xml:"instanceEventId"`
	Code        string `xml:"code"`
	Description string `xml:"description"`
	NotBefore   string `xml:"notBefore,omitempty"`
	NotAfter    string `xml:"notAfter,omitempty"`
}

type xmlStatusDetail struct {
	Name          string `xml:"name"`
	Status        string `xml:"status"`
	ImpairedSince string `xml:"impairedSince,omitempty"`
}

type xmlStatusSummary struct {
	Status  string            `xml:"status"`
	Details []xmlStatusDetail `xml:"details>item,omitempty"`
}

type xmlInstanceStatus struct {
	InstanceID       string           `xml:"instanceId"`
	AvailabilityZone string           `xml:"availabilityZone"`
	State            xmlState         `xml:"instanceState"`
	Events           []xmlEvent       `xml:"eventsSet>item"`
	SystemStatus     xmlStatusSummary `xml:"systemStatus"`
	InstanceStatus   xmlStatusSummary `xml:"instanceStatus"`
}

type describeInstanceStatusResponse struct {
	answer
	Statuses  []xmlInstanceStatus `xml:"instanceStatusSet>item"`
	NextToken string              `xml:"nextToken,omitempty"`
}

// statusFilters are the DescribeInstanceStatus filters on the answer
// itself, matched after the instance filters.
var statusFilters = map[string]bool{
	"event.code": true, "event.description": true, "event.instance-event-id": true,
	"system-status.status": true, "instance-status.status": true,
	"system-status.reachability": true, "instance-status.reachability": true,
}

// describeInstanceStatus reports the instances ids (all instances without
// ids; unknown ids fail the call as EC2 fails them) that pass the filters
// (instance-id, availability-zone, instance-state-name, and the status
// filters above), terminated ones never, non-running ones only with
// IncludeAllInstances.
func (s *Server) describeInstanceStatus(ctx context.Context, p params) (response, *Fault) {
	ids := p.strings("InstanceId")
	if len(ids) > 0 && p.get("MaxResults") != "" {
		return nil, &Fault{Code: "InvalidParameterCombination", Message: "The parameter instancesSet cannot be used with the parameter maxResults"}
	}
	var instFilters, answerFilters []filter
	for _, f := range p.filters() {
		switch {
		case f.name == "instance-id", f.name == "availability-zone", f.name == "instance-state-name":
			instFilters = append(instFilters, f)
		case statusFilters[f.name]:
			answerFilters = append(answerFilters, f)
		default:
			return nil, invalidValue("The filter '%s' is invalid", f.name)
		}
	}
	includeAll := p.bool("IncludeAllInstances")
	statuses, next, fault := paginate(s, p, 5, 1000, func() ([]xmlInstanceStatus, *Fault) {
		insts, fault := s.matchingInstances(ctx, ids, instFilters)
		if fault != nil {
			return nil, fault
		}
		insts = slices.DeleteFunc(insts, func(in awsctl.Instance) bool {
			return in.State == awsctl.StateTerminated || (!includeAll && in.State != awsctl.StateRunning)
		})
		health, fault := s.cloudHealth(ctx, insts)
		if fault != nil {
			return nil, fault
		}
		var out []xmlInstanceStatus
		for _, in := range insts {
			st := s.instanceStatus(in, health[in.ID])
			if matchStatus(st, answerFilters) {
				out = append(out, st)
			}
		}
		return out, nil
	})
	if fault != nil {
		return nil, fault
	}
	return &describeInstanceStatusResponse{Statuses: statuses, NextToken: next}, nil
}

// cloudHealth asks the backing cloud, if it is an awsctl.HealthReader, for
// the health of insts, by id.
func (s *Server) cloudHealth(ctx context.Context, insts []awsctl.Instance) (map[string]awsctl.InstanceHealth, *Fault) {
	hr, ok := s.cloud.(awsctl.HealthReader)
	if !ok || len(insts) == 0 {
		return nil, nil
	}
	hs, err := hr.InstanceHealth(ctx, idsOf(insts))
	if err != nil {
		return nil, faultOf(err)
	}
	out := make(map[string]awsctl.InstanceHealth, len(hs))
	for _, h := range hs {
		out[h.ID] = h
	}
	return out, nil
}

type statusOverride struct {
	system, instance awsctl.CheckStatus
	at               string // impairedSince of an impaired override
}

// instanceStatus is the answer for in, given what the cloud reported of
// its health (zero if nothing).
func (s *Server) instanceStatus(in awsctl.Instance, h awsctl.InstanceHealth) xmlInstanceStatus {
	system, instance, since := awsctl.CheckNotApplicable, awsctl.CheckNotApplicable, formatTime(h.ImpairedSince)
	if in.State == awsctl.StateRunning {
		system, instance = cmp.Or(h.System, awsctl.CheckOK), cmp.Or(h.Instance, awsctl.CheckOK)
		if o, ok := s.checks[in.ID]; ok {
			system, instance, since = cmp.Or(o.system, system), cmp.Or(o.instance, instance), o.at
		}
	}
	st := xmlInstanceStatus{
		InstanceID: in.ID, AvailabilityZone: in.Zone, State: toXMLState(in.State),
		SystemStatus: summary(system, since), InstanceStatus: summary(instance, since),
	}
	for _, ev := range append(slices.Clone(h.Events), s.events[in.ID]...) {
		st.Events = append(st.Events, xmlEvent{
			ID: ev.ID, Code: string(ev.Code), Description: ev.Description,
			NotBefore: formatTime(ev.NotBefore), NotAfter: formatTime(ev.NotAfter),
		})
	}
	return st
}

// summary is one status check as EC2 answers it: an overall status and,
// for a running instance, its reachability detail (InstanceStatusSummary
// and InstanceStatusDetails in the EC2 API reference).
func summary(status awsctl.CheckStatus, impairedSince string) xmlStatusSummary {
	out := xmlStatusSummary{Status: string(status)}
	detail := string(status) // initializing, insufficient-data, and what EC2 may add
	switch status {
	case awsctl.CheckNotApplicable:
		return out
	case awsctl.CheckOK:
		detail = "passed"
	case awsctl.CheckImpaired:
		detail = "failed"
	}
	if status != awsctl.CheckImpaired {
		impairedSince = ""
	}
	out.Details = []xmlStatusDetail{{Name: "reachability", Status: detail, ImpairedSince: impairedSince}}
	return out
}

// matchStatus reports whether st passes every filter on the answer.
func matchStatus(st xmlInstanceStatus, filters []filter) bool {
	for _, f := range filters {
		var ok bool
		switch f.name {
		case "event.code":
			ok = slices.ContainsFunc(st.Events, func(ev xmlEvent) bool { return f.match(ev.Code) })
		case "event.description":
			ok = slices.ContainsFunc(st.Events, func(ev xmlEvent) bool { return f.match(ev.Description) })
		case "event.instance-event-id":
			ok = slices.ContainsFunc(st.Events, func(ev xmlEvent) bool { return f.match(ev.ID) })
		default:
			sum := st.SystemStatus
			if strings.HasPrefix(f.name, "instance-status.") {
				sum = st.InstanceStatus
			}
			if strings.HasSuffix(f.name, ".status") {
				ok = f.match(sum.Status)
			} else {
				ok = slices.ContainsFunc(sum.Details, func(d xmlStatusDetail) bool { return f.match(d.Status) })
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
