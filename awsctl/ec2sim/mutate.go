package ec2sim

import (
	"context"
	"fmt"
)

// Terminate starts the shutdown of ids and returns the ids it accepted, in
// the order given, without duplicates. Pending and running instances move to
// shutting-down and, after the shutdown delay, to terminated; ids already
// shutting down or terminated are accepted again. Ids the sim does not know
// (never launched, or terminated longer ago than TerminatedVisibleFor) make
// an InvalidInstanceID.NotFound error (awsctl.ErrNotFound) listing them,
// while the known ids of the same call are still terminated and returned.
func (s *Sim) Terminate(ctx context.Context, ids []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ec2sim: %s: %w", OpTerminate, err)
	}
	now := s.begin()
	defer s.mu.Unlock()
	s.calls[OpTerminate]++
	f := s.fault(OpTerminate)
	if f.err != nil && !f.afterEffect {
		return nil, f.err
	}
	var accepted, missing []string
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		r := s.known(id)
		if r == nil {
			missing = append(missing, id)
			continue
		}
		s.terminate(r, now)
		accepted = append(accepted, id)
	}
	s.log.Debug("ec2sim: terminate", "accepted", len(accepted), "missing", len(missing))
	if f.err != nil {
		return nil, f.err
	}
	if len(missing) > 0 {
		return accepted, instancesNotFound(OpTerminate, missing)
	}
	return accepted, nil
}

// known returns the instance id as the API sees it: nil for ids never
// launched or already forgotten. The caller holds s.mu.
func (s *Sim) known(id string) *instance {
	r := s.byID[id]
	if r == nil || r.forgotten {
		return nil
	}
	return r
}

// resolve returns the instances of ids, without duplicates, or a NotFound
// error listing the unknown ones. The caller holds s.mu.
func (s *Sim) resolve(op string, ids []string) ([]*instance, error) {
	rs := make([]*instance, 0, len(ids))
	var missing []string
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if r := s.known(id); r != nil {
			rs = append(rs, r)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, instancesNotFound(op, missing)
	}
	return rs, nil
}

// Tag sets tags on every instance in ids, in any state. Like EC2's
// CreateTags it is all or nothing: an unknown id (awsctl.ErrNotFound), an
// invalid tag or an instance that would exceed MaxTags
// (awsctl.ErrInvalidRequest) fails the call and changes nothing.
func (s *Sim) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	return s.mutateTags(ctx, OpTag, ids, func(old map[string]string) map[string]string {
		for k, v := range tags {
			if cur, ok := old[k]; !ok || cur != v {
				return mergedTags(old, tags)
			}
		}
		return nil
	}, func() error { return validateTags(OpTag, tags) })
}

// Untag removes the tag keys from every instance in ids; keys an instance
// lacks are ignored. An unknown id fails the call with awsctl.ErrNotFound
// and changes nothing. No keys means no change (EC2's DeleteTags would
// remove every tag instead).
func (s *Sim) Untag(ctx context.Context, ids []string, keys []string) error {
	return s.mutateTags(ctx, OpUntag, ids, func(old map[string]string) map[string]string {
		var next map[string]string
		for _, k := range keys {
			if _, ok := old[k]; !ok {
				continue
			}
			if next == nil {
				next = mergedTags(old, nil)
			}
			delete(next, k)
		}
		return next
	}, func() error {
		for _, k := range keys {
			if err := validateTagKey(OpUntag, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// tagChange returns an instance's new tags given its current ones, or nil
// when they do not change. It must not modify old.
type tagChange func(old map[string]string) map[string]string

// mutateTags runs a tag change: validate, resolve every id, compute every
// instance's new tags (failing before any change), then apply them and
// update the index.
func (s *Sim) mutateTags(ctx context.Context, op string, ids []string, change tagChange, validate func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ec2sim: %s: %w", op, err)
	}
	s.begin()
	defer s.mu.Unlock()
	s.calls[op]++
	f := s.fault(op)
	if f.err != nil && !f.afterEffect {
		return f.err
	}
	if err := s.applyTags(op, ids, change, validate); err != nil {
		return err
	}
	return f.err
}

func (s *Sim) applyTags(op string, ids []string, change tagChange, validate func() error) error {
	if err := validate(); err != nil {
		return err
	}
	rs, err := s.resolve(op, ids)
	if err != nil {
		return err
	}
	next := make([]map[string]string, len(rs))
	for i, r := range rs {
		next[i] = change(r.view.Tags)
		if len(next[i]) > MaxTags {
			return tagLimitExceeded(op, r.view.ID, len(next[i]))
		}
	}
	for i, r := range rs {
		if next[i] != nil {
			s.retag(r, next[i])
		}
	}
	s.log.Debug("ec2sim: "+op, "instances", len(rs))
	return nil
}

// retag replaces r's tags with tags and updates the index. The old map is
// left intact for callers still holding it.
func (s *Sim) retag(r *instance, tags map[string]string) {
	old := r.view.Tags
	r.view.Tags = tags
	// Joins first: a sweep triggered by a leave then sees r's bookkeeping
	// complete.
	for k, v := range tags {
		if ov, ok := old[k]; !ok || ov != v {
			s.join(r, tagPair{k, v})
		}
	}
	for k, v := range old {
		if nv, ok := tags[k]; !ok || nv != v {
			s.leave(tagPair{k, v})
		}
	}
}
