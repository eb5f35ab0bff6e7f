package pool

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Server is one server of a pool as a pass saw it: what a status page or a
// metrics exporter shows per server.
type Server struct {
	ID     string
	Type   string
	Zone   string
	Market awsctl.Market
	// Reserved: an on-demand server a reservation covers.
	Reserved bool
	// State is where the server is in its life: launching, booting,
	// provisioning, free, granted, winding-down, restoring, interrupted,
	// stopped or retiring (the diagram is in the package documentation).
	State string
	// Manager is the manager the server works for, or worked for while it
	// winds down; "" for none.
	Manager  string
	Capacity int
	Launched time.Time
	// WindDownDeadline is when a wind-down in progress gives up waiting.
	WindDownDeadline time.Time
	// Interruption is when EC2 reclaims this spot server; zero for none.
	Interruption time.Time
	// Replaces is the server this one was launched to replace, if any.
	Replaces string
	// Retire says why a retiring server leaves for good (TagRetire's value).
	Retire string
}

// serverList is the per-server view, kept only while someone reads it: a
// pass would otherwise copy every server for nobody.
type serverList struct {
	asked atomic.Bool // Servers was called since the last pass
	mu    sync.Mutex
	keep  uint64 // maintain the list up to this pass
	asOf  time.Time
	list  []Server
}

// serversKept is how many passes the list stays maintained after a read:
// long enough for a status page or a scraper polling every few passes.
const serversKept = 30

// Servers returns every server of the pool's latest pass, ordered by
// launch time, and the time of that pass.
//
// The list is built only while it is read: the first call after a quiet
// spell returns nothing and a zero time, and the pass that follows starts
// building it again for the next serversKept (30) passes. It never waits
// for a pass in progress.
func (p *Pool) Servers() ([]Server, time.Time) {
	p.serverList.asked.Store(true)
	p.serverList.mu.Lock()
	defer p.serverList.mu.Unlock()
	if p.serverList.asOf.IsZero() {
		return nil, time.Time{}
	}
	return slices.Clone(p.serverList.list), p.serverList.asOf
}

// recordServers refreshes the per-server list at the end of a pass, if
// anyone reads it.
func (p *Pool) recordServers(ps *pass) {
	sl := &p.serverList
	if sl.asked.Swap(false) {
		sl.keep = p.pass + serversKept
	}
	if p.pass > sl.keep {
		sl.mu.Lock()
		sl.list, sl.asOf = nil, time.Time{}
		sl.mu.Unlock()
		return
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.list = sl.list[:0]
	for _, s := range ps.servers {
		e := Server{ID: s.inst.ID, Type: s.inst.Type, Zone: s.inst.Zone, Market: s.inst.Market,
			Reserved: s.reserved, State: s.state.String(), Manager: s.mgr, Capacity: s.weight,
			Launched: s.inst.LaunchTime, Interruption: s.notice, Replaces: s.tags.replaces, Retire: s.tags.retire}
		if s.state == windingDown || s.state == restoring {
			e.WindDownDeadline = s.deadline
		}
		sl.list = append(sl.list, e)
	}
	slices.SortStableFunc(sl.list, func(a, b Server) int {
		return cmp.Or(a.Launched.Compare(b.Launched), cmp.Compare(a.ID, b.ID))
	})
	sl.asOf = ps.now
}
