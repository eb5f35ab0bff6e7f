package ec2sim

import (
	"context"
	"fmt"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

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

	// Walk the shortest posting among the filter's tags; ties go to the
	// smallest key so that the order of results does not depend on map
	// iteration.
	candidates := &s.all
	for k, v := range filter.Tags {
		p := s.byTag[tagPair{k, v}]
		if p == nil {
			s.calls[OpListInstances]++
			return nil, nil
		}
		if candidates.all || len(p.items) < len(candidates.items) ||
			(len(p.items) == len(candidates.items) && k < candidates.pair.key) {
			candidates = p
		}
	}
	// Membership of candidates checks its own tag; the rest are checked
	// from a slice, which is cheaper per instance than ranging over a map.
	var rest []tagPair
	for k, v := range filter.Tags {
		if candidates.all || k != candidates.pair.key {
			rest = append(rest, tagPair{k, v})
		}
	}
	var out []awsctl.Instance
	for _, r := range candidates.items {
		if !candidates.member(r) || now.Before(r.visibleAt) {
			continue
		}
		state := r.state(now)
		if state == awsctl.StateTerminated && !filter.IncludeTerminated {
			continue
		}
		if !hasPairs(r.view.Tags, rest) {
			continue
		}
		if out == nil {
			out = make([]awsctl.Instance, 0, len(candidates.items)-candidates.stale)
		}
		v := r.view
		v.State = state
		out = append(out, v)
	}
	s.calls[OpListInstances] += max(1, (len(out)+ListPageSize-1)/ListPageSize)
	return out, nil
}

func hasPairs(tags map[string]string, want []tagPair) bool {
	for _, p := range want {
		if got, ok := tags[p.key]; !ok || got != p.value {
			return false
		}
	}
	return true
}
