package statuspage

import (
	"cmp"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// Snapshot is what the page shows, and the document its JSON form
// serves. Times are on the scaler's clock (autoscale.Options.Clock).
type Snapshot struct {
	// Time is the time of the latest pass of any pool; zero before the
	// first pass.
	Time   time.Time `json:"time,omitzero"`
	Paused Paused    `json:"paused"`
	// Alarms are the runaway situations active after the latest pass
	// (autoscale.Scaler.Alarms), oldest first.
	Alarms []Alarm `json:"alarms"`
	// Pools are in the order the scaler was configured with.
	Pools []Pool `json:"pools"`
	// Recording is false when no Recorder was given: Events is then empty
	// because nothing keeps them, not because nothing happened.
	Recording bool `json:"recording"`
	// Events are the latest events the Recorder kept, newest first.
	Events []Event `json:"events"`
	// EventsSeen counts every event the Recorder observed, including
	// those it no longer keeps.
	EventsSeen uint64 `json:"events_seen"`
}

// Paused is the scaler's pause switch (autoscale.Scaler.Paused).
type Paused struct {
	Launches     bool `json:"launches"`
	Terminations bool `json:"terminations"`
}

// Alarm is one active alarm (autoscale.Alarm).
type Alarm struct {
	Kind    string    `json:"kind"`
	Pool    string    `json:"pool,omitempty"`
	Manager string    `json:"manager,omitempty"`
	Since   time.Time `json:"since"`
	Reason  string    `json:"reason"`
}

// Pool is one pool: its counts (pool.Status) and its servers.
type Pool struct {
	Name string `json:"name"`
	// Observed is false until the pool's first pass: zero counts then
	// mean "not seen yet", not an empty pool.
	Observed     bool      `json:"observed"`
	Time         time.Time `json:"time,omitzero"`
	Target       int       `json:"target"`
	Booting      int       `json:"booting"`
	Provisioning int       `json:"provisioning"`
	Free         int       `json:"free"`
	Granted      int       `json:"granted"`
	WindingDown  int       `json:"winding_down"`
	Replacing    int       `json:"replacing"`
	Due          int       `json:"due"` // due for replacement, waiting: a roll's progress
	Interrupted  int       `json:"interrupted"`
	MaxUsed      int       `json:"max_used"`
	Max          int       `json:"max"`
	// HourlySpend is in US dollars, as far as the pool knows prices.
	HourlySpend float64 `json:"hourly_spend"`
	// Managers are in the pool's configuration order.
	Managers []Manager `json:"managers"`
	// ServersPending is set while the per-server list is not built: a
	// pool builds it only while someone reads it, from the pass after the
	// first read (see pool.Pool.Servers). Servers and States are then
	// empty, which says nothing about the fleet.
	ServersPending bool `json:"servers_pending"`
	// ServersAsOf is the time of the pass the servers are from.
	ServersAsOf time.Time `json:"servers_as_of,omitzero"`
	// States counts the servers by state, in lifecycle order.
	States []StateCount `json:"states"`
	// Servers are ordered by launch time.
	Servers []Server `json:"servers"`
}

// Manager is one manager's position after the latest pass.
type Manager struct {
	Name   string `json:"name"`
	Target int    `json:"target"`
	Held   int    `json:"held"`
}

// StateCount is how many servers of a pool are in one state.
type StateCount struct {
	State string `json:"state"`
	Count int    `json:"count"`
}

// Server is one server as the latest pass saw it (pool.Server).
type Server struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Market   string `json:"market"`
	Type     string `json:"type"`
	Zone     string `json:"zone"`
	Manager  string `json:"manager,omitempty"`
	Capacity int    `json:"capacity"`
	Reserved bool   `json:"reserved,omitempty"`
	// Launched is zero for a launch EC2 does not list yet.
	Launched time.Time `json:"launched,omitzero"`
	// AgeSeconds is the time from Launched to the pass the list is from.
	AgeSeconds       int64     `json:"age_seconds"`
	WindDownDeadline time.Time `json:"wind_down_deadline,omitzero"`
	Interruption     time.Time `json:"interruption,omitzero"`
	Replaces         string    `json:"replaces,omitempty"`
	Retire           string    `json:"retire,omitempty"`
}

// Event is one decision or outcome with its reason (pool.Event, with the
// error and inputs as text).
type Event struct {
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"`
	Pool         string    `json:"pool,omitempty"`
	Instance     string    `json:"instance,omitempty"`
	Manager      string    `json:"manager,omitempty"`
	Capacity     int       `json:"capacity,omitempty"`
	Market       string    `json:"market,omitempty"`
	InstanceType string    `json:"instance_type,omitempty"`
	Zone         string    `json:"zone,omitempty"`
	Instances    []string  `json:"instances,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Error        string    `json:"error,omitempty"`
	// Inputs are the figures that decided (pool.Event.Inputs), as text.
	Inputs map[string]string `json:"inputs,omitempty"`
	DryRun bool              `json:"dry_run,omitempty"`
}

// stateOrder is the lifecycle order of the states pool.Server.State
// names; a state the pool adds later sorts after them by name.
var stateOrder = []string{"launching", "booting", "provisioning", "free", "granted", "restoring",
	"winding-down", "interrupted", "stopped", "retiring"}

// Read returns the scaler's status now, with the events r keeps (r may be
// nil). It never waits for a pass, and it keeps each pool building its
// server list (see pool.Pool.Servers). A nil scaler reads as no pools.
func Read(s *autoscale.Scaler, r *Recorder) Snapshot {
	snap := Snapshot{Alarms: []Alarm{}, Pools: []Pool{}, Events: []Event{}, Recording: r != nil}
	if s != nil {
		snap.Paused.Launches, snap.Paused.Terminations = s.Paused()
		for _, a := range s.Alarms() {
			snap.Alarms = append(snap.Alarms, Alarm{Kind: string(a.Kind), Pool: a.Pool, Manager: a.Manager, Since: a.Since, Reason: a.Reason})
		}
		for _, p := range s.Pools() {
			ps := readPool(p)
			if ps.Time.After(snap.Time) {
				snap.Time = ps.Time
			}
			snap.Pools = append(snap.Pools, ps)
		}
	}
	events, seen := r.read()
	snap.EventsSeen = seen
	for _, e := range slices.Backward(events) {
		snap.Events = append(snap.Events, event(e))
	}
	return snap
}

func readPool(p *pool.Pool) Pool {
	st := p.Status()
	out := Pool{
		Name: p.Name(), Observed: st.Observed, Time: st.Time, Target: st.Target,
		Booting: st.Booting, Provisioning: st.Provisioning, Free: st.Free, Granted: st.Granted,
		WindingDown: st.WindingDown, Replacing: st.Replacing, Due: st.Due, Interrupted: st.Interrupted,
		MaxUsed: st.MaxUsed, Max: st.Max, HourlySpend: finite(st.HourlySpend),
		Managers: []Manager{}, States: []StateCount{}, Servers: []Server{},
	}
	named := map[string]bool{}
	for _, m := range p.Managers() {
		ms := st.Managers[m.Name()]
		out.Managers = append(out.Managers, Manager{Name: m.Name(), Target: ms.Target, Held: ms.Held})
		named[m.Name()] = true
	}
	// A status naming a manager the configuration does not (none today)
	// is still shown, after the configured ones.
	var extra []Manager
	for name, ms := range st.Managers {
		if !named[name] {
			extra = append(extra, Manager{Name: name, Target: ms.Target, Held: ms.Held})
		}
	}
	slices.SortFunc(extra, func(a, b Manager) int { return cmp.Compare(a.Name, b.Name) })
	out.Managers = append(out.Managers, extra...)

	servers, asOf := p.Servers()
	if asOf.IsZero() {
		out.ServersPending = true
		return out
	}
	out.ServersAsOf = asOf
	counts := map[string]int{}
	for _, sv := range servers {
		counts[sv.State]++
		age := int64(0)
		if !sv.Launched.IsZero() && asOf.After(sv.Launched) {
			age = int64(asOf.Sub(sv.Launched) / time.Second)
		}
		out.Servers = append(out.Servers, Server{
			ID: sv.ID, State: sv.State, Market: string(sv.Market), Type: sv.Type, Zone: sv.Zone,
			Manager: sv.Manager, Capacity: sv.Capacity, Reserved: sv.Reserved, Launched: sv.Launched,
			AgeSeconds: age, WindDownDeadline: sv.WindDownDeadline, Interruption: sv.Interruption,
			Replaces: sv.Replaces, Retire: sv.Retire,
		})
	}
	for _, state := range stateOrder {
		if n := counts[state]; n > 0 {
			out.States = append(out.States, StateCount{State: state, Count: n})
			delete(counts, state)
		}
	}
	var rest []StateCount
	for state, n := range counts {
		rest = append(rest, StateCount{State: state, Count: n})
	}
	slices.SortFunc(rest, func(a, b StateCount) int { return cmp.Compare(a.State, b.State) })
	out.States = append(out.States, rest...)
	return out
}

func event(e autoscale.Event) Event {
	out := Event{
		Time: e.Time, Kind: e.Kind.String(), Pool: e.Pool, Instance: e.Instance, Manager: e.Manager,
		Capacity: e.Capacity, Market: string(e.Market), InstanceType: e.InstanceType, Zone: e.Zone,
		Instances: slices.Clone(e.Instances), Reason: e.Reason, DryRun: e.DryRun,
	}
	if e.Err != nil {
		out.Error = e.Err.Error()
	}
	if len(e.Inputs) > 0 {
		out.Inputs = make(map[string]string, len(e.Inputs))
		for _, a := range e.Inputs {
			addInput(out.Inputs, "", a)
		}
	}
	return out
}

// addInput flattens a (possibly grouped) attribute into key=value text.
func addInput(into map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	key := prefix + a.Key
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			key += "."
		}
		for _, g := range v.Group() {
			addInput(into, key, g)
		}
		return
	}
	if key != "" {
		into[key] = v.String()
	}
}

// finite keeps a price the pool could not compute from breaking the JSON
// encoding, which refuses NaN and infinities.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
