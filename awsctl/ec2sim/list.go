package ec2sim

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/ec2filter"
)

var _ awsctl.InstanceAppender = (*Sim)(nil)

// ListInstances returns the instances carrying every tag of filter.Tags,
// shutting-down ones included, terminated ones only with
// filter.IncludeTerminated (and only for TerminatedVisibleFor). Instances
// still inside their list delay are left out, as EC2's eventually
// consistent DescribeInstances does.
//
// The result is the caller's; its Tags maps are shared with the sim, which
// never modifies them (a tag change installs a new map), and must not be
// modified. Instances come in the order they acquired the most selective
// filter tag, which is launch order for tags set at launch.
//
// The cost is proportional to the instances carrying that tag, not to the
// sim's size. Each page of ListPageSize results counts as one call.
func (s *Sim) ListInstances(ctx context.Context, filter awsctl.ListFilter) ([]awsctl.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: %s: %w", OpListInstances, err)
	}
	now := s.begin()
	defer s.mu.Unlock()
	if f := s.fault(OpListInstances); f.err != nil {
		s.calls[OpListInstances]++
		return nil, f.err
	}

	out := s.list(nil, now, filter.Tags, filter.IncludeTerminated, nil)
	s.calls[OpListInstances] += max(1, (len(out)+ListPageSize-1)/ListPageSize)
	return out, nil
}

// AppendInstances is ListInstances appending to buf (see
// awsctl.InstanceAppender): the same instances, faults and call counts.
func (s *Sim) AppendInstances(ctx context.Context, buf []awsctl.Instance, filter awsctl.ListFilter) ([]awsctl.Instance, error) {
	if err := ctx.Err(); err != nil {
		return buf, fmt.Errorf("ec2sim: %s: %w", OpListInstances, err)
	}
	now := s.begin()
	defer s.mu.Unlock()
	if f := s.fault(OpListInstances); f.err != nil {
		s.calls[OpListInstances]++
		return buf, f.err
	}
	out := s.list(buf, now, filter.Tags, filter.IncludeTerminated, nil)
	s.calls[OpListInstances] += max(1, (len(out)-len(buf)+ListPageSize-1)/ListPageSize)
	return out, nil
}

// TagFilter selects instances by one tag as a DescribeInstances filter
// named "tag:<Key>" does: the instance carries Key with a value matching one
// of Values (joined with OR), where "*" matches any run of characters, "?"
// exactly one, and "\" makes the next character literal, as the EC2 API
// reference documents for filter values.
type TagFilter struct {
	Key    string
	Values []string
}

// FilterInstances is ListInstances with EC2's filter semantics: it returns
// the instances that pass every filter (joined with AND). Filters with one
// value and no wildcard use the tag index; the others are checked on what
// that leaves. It counts as OpListInstances calls, one per page.
func (s *Sim) FilterInstances(ctx context.Context, filters []TagFilter, includeTerminated bool) ([]awsctl.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: %s: %w", OpListInstances, err)
	}
	now := s.begin()
	defer s.mu.Unlock()
	if f := s.fault(OpListInstances); f.err != nil {
		s.calls[OpListInstances]++
		return nil, f.err
	}
	exact := map[string]string{}
	var patterns []TagFilter
	for _, f := range filters {
		if len(f.Values) == 1 {
			if v, ok := ec2filter.Literal(f.Values[0]); ok {
				if old, seen := exact[f.Key]; seen && old != v {
					s.calls[OpListInstances]++
					return nil, nil // two exact values for one key: nothing has both
				}
				exact[f.Key] = v
				continue
			}
		}
		patterns = append(patterns, f)
	}
	out := s.list(nil, now, exact, includeTerminated, func(tags map[string]string) bool {
		for _, f := range patterns {
			v, ok := tags[f.Key]
			if !ok || !ec2filter.MatchAny(f.Values, v) {
				return false
			}
		}
		return true
	})
	s.calls[OpListInstances] += max(1, (len(out)+ListPageSize-1)/ListPageSize)
	return out, nil
}

// list appends to out the visible instances carrying every tag of exact
// and, if keep is set, whose tags keep accepts. The caller holds s.mu.
func (s *Sim) list(out []awsctl.Instance, now time.Time, exact map[string]string, includeTerminated bool, keep func(map[string]string) bool) []awsctl.Instance {
	// Walk the shortest posting among the filter's tags; ties go to the
	// smallest key so that the order of results does not depend on map
	// iteration.
	candidates := &s.all
	for k, v := range exact {
		p := s.byTag[tagPair{k, v}]
		if p == nil {
			return out
		}
		if candidates.all || len(p.items) < len(candidates.items) ||
			(len(p.items) == len(candidates.items) && k < candidates.pair.key) {
			candidates = p
		}
	}
	// Membership of candidates checks its own tag; the rest are checked
	// from a slice, which is cheaper per instance than ranging over a map.
	var rest []tagPair
	for k, v := range exact {
		if candidates.all || k != candidates.pair.key {
			rest = append(rest, tagPair{k, v})
		}
	}
	for i := range candidates.items {
		e := &candidates.items[i]
		r := e.r
		if !candidates.member(e) || now.Before(r.visibleAt) {
			continue
		}
		state := r.state(now)
		if state == awsctl.StateTerminated && !includeTerminated {
			continue
		}
		if !hasPairs(r.view.Tags, rest) || (keep != nil && !keep(r.view.Tags)) {
			continue
		}
		if out == nil {
			out = make([]awsctl.Instance, 0, len(candidates.items)-candidates.stale)
		}
		out = append(out, r.view)
		out[len(out)-1].State = state
	}
	return out
}

func hasPairs(tags map[string]string, want []tagPair) bool {
	for _, p := range want {
		if got, ok := tags[p.key]; !ok || got != p.value {
			return false
		}
	}
	return true
}
