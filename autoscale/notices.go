package autoscale

import (
	"context"
	"maps"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// HandleSpotNotice records a spot interruption notice or rebalance
// recommendation for an instance; the next pass acts on it. Feed it from
// the instances' metadata (package awsctl/imdsnotice), from EventBridge
// through SQS (package awsctl/sqsnotice), or from your own workers. It is
// safe to call from any goroutine, and repeating a notice is harmless.
//
// On an interruption the manager is told, the server's wind-down starts with
// the notice's deadline, a replacement is launched in the same pass, and the
// offering is avoided for a while. On a rebalance recommendation the manager
// is told; a replacement comes only if demand asks for it.
func (s *Scaler) HandleSpotNotice(n awsctl.SpotNotice) {
	s.noticeMu.Lock()
	defer s.noticeMu.Unlock()
	switch n.Kind {
	case awsctl.Interruption:
		deadline := n.Deadline
		if deadline.IsZero() {
			deadline = n.Time.Add(awsctl.InterruptionNoticeLead)
		}
		if prev, ok := s.interrupted[n.InstanceID]; !ok || deadline.Before(prev) {
			s.interrupted[n.InstanceID] = deadline
		}
	case awsctl.Rebalance:
		if _, ok := s.rebalance[n.InstanceID]; !ok {
			s.rebalance[n.InstanceID] = n.Time
		}
	}
}

// Interrupt records that EC2 will reclaim instance id at deadline.
func (s *Scaler) Interrupt(id string, deadline time.Time) {
	s.HandleSpotNotice(awsctl.SpotNotice{InstanceID: id, Kind: awsctl.Interruption, Deadline: deadline})
}

// Rebalance records an EC2 rebalance recommendation for instance id.
func (s *Scaler) Rebalance(id string, at time.Time) {
	s.HandleSpotNotice(awsctl.SpotNotice{InstanceID: id, Kind: awsctl.Rebalance, Time: at})
}

func (s *Scaler) pollNotices(ctx context.Context, now time.Time) {
	src := s.opts.SpotNotices
	if src == nil {
		return
	}
	ns, err := src.SpotNotices(ctx)
	if err != nil {
		s.emit(ctx, Event{Time: now, Kind: pool.EventCloudError, Err: err, Reason: "reading spot notices failed"})
	}
	for _, n := range ns {
		s.HandleSpotNotice(n)
	}
}

// notices returns the notices of instances that still exist, forgetting
// the others.
func (s *Scaler) notices(insts []awsctl.Instance) (interrupted, rebalance map[string]time.Time) {
	s.noticeMu.Lock()
	defer s.noticeMu.Unlock()
	if len(s.interrupted) == 0 && len(s.rebalance) == 0 {
		return nil, nil
	}
	live := make(map[string]bool, len(insts))
	for _, inst := range insts {
		if inst.State.Live() {
			live[inst.ID] = true
		}
	}
	prune := func(m map[string]time.Time) {
		for id := range m {
			if !live[id] {
				delete(m, id)
			}
		}
	}
	prune(s.interrupted)
	prune(s.rebalance)
	return maps.Clone(s.interrupted), maps.Clone(s.rebalance)
}

// refresher is implemented by price books that fetch on a TTL, such as
// *spotprice.Book: the scaler calls it every pass and it calls out only when
// its data is due.
type refresher interface {
	Refresh(ctx context.Context, now time.Time, instanceTypes []string) error
}

func (s *Scaler) refreshPrices(ctx context.Context, now time.Time) {
	types := map[refresher][]string{}
	var order []refresher
	for _, p := range s.pools {
		r, ok := p.Config().Prices.(refresher)
		if !ok {
			continue
		}
		if _, seen := types[r]; !seen {
			order = append(order, r)
		}
		for _, t := range p.Config().Types {
			types[r] = append(types[r], t.Name)
		}
	}
	for _, r := range order {
		if err := r.Refresh(ctx, now, types[r]); err != nil {
			s.emit(ctx, Event{Time: now, Kind: pool.EventCloudError, Err: err, Reason: "price refresh failed; using the last good prices"})
		}
	}
}
