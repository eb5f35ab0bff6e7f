package pool

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/role"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// Defaults for Config fields left zero.
const (
	DefaultWindDownTimeout  = 15 * time.Minute
	DefaultProvisionTimeout = 10 * time.Minute
	DefaultHookTimeout      = 30 * time.Second
	// DefaultHealthInterval is how often the pool asks the role (Check)
	// about each granted server.
	DefaultHealthInterval = time.Minute
	// DefaultHealthGrace is how long after a server is ready its bad
	// health readings do not count.
	DefaultHealthGrace = 5 * time.Minute
	// DefaultUnhealthyAfter is how many bad readings in a row make a
	// granted server replaced.
	DefaultUnhealthyAfter = 3
	// DefaultDemandTimeout bounds one call of a manager's Demand: a
	// manager that has not answered by then keeps its previous target.
	DefaultDemandTimeout = 5 * time.Second
	DefaultLaunchBatch   = 100
	// DefaultLaunchGrace is how long a launched instance that the listing
	// does not show yet still counts as on its way. EC2's listing can lag
	// a launch by a few seconds; anything much longer means it is gone.
	DefaultLaunchGrace = 5 * time.Minute
	// DefaultListingLag is how long EC2's listing is taken to lag a
	// launch. The EC2 developer guide's "Eventual consistency in the Amazon
	// EC2 API" says a new instance may not be visible to DescribeInstances
	// at once and advises backing off from seconds up to a few minutes; a
	// minute covers what is usually seen, not that worst case: a host whose
	// region lags more raises Config.ListingLag.
	DefaultListingLag = time.Minute
	// MinimumCharge is EC2's minimum per-second charge for a Linux
	// instance: a server younger than this is already paid for.
	MinimumCharge = time.Minute
	// DefaultWorkKeep is Config.WorkKeep's default, the Queue's default
	// scale-down delay (manager.DefaultScaleDownDelay), for the same
	// reason: EC2 bills per second, so an idle on-demand server kept a
	// minute costs about what a new one costs until it is ready, and
	// keeping it longer pays only if the next long job comes after a
	// longer gap. It also covers the Queue's own delay: a target that
	// falls and rises again within it finds the servers there.
	DefaultWorkKeep = manager.DefaultScaleDownDelay
	// HourlyMargin is how long before a paid hour ends an hourly pool
	// wants a server terminated, so termination never spills over.
	HourlyMargin = time.Minute
)

// InstanceType is one interchangeable instance type of a pool.
type InstanceType struct {
	Name string
	// Weight is the capacity units one instance provides; 0 means 1.
	Weight int
}

// Billing says how the pool's instances are charged, which decides when
// removing a server saves money.
type Billing int

const (
	// PerSecond billing with a 60-second minimum (EC2 Linux today).
	PerSecond Billing = iota
	// Hourly billing: every started hour is paid in full. Servers are wound
	// down only near the end of a paid hour, and a wind-down that would
	// cross into the next hour is cancelled instead.
	Hourly
)

// TimeoutAction is what happens to a server whose wind-down outlasts its
// deadline.
type TimeoutAction int

const (
	// Wait (the default) keeps waiting for a server whose role answers that
	// it is still busy, however long its jobs run: no work is cut short
	// unless the host asks for it. A server whose WindDown or Check hook
	// fails past the deadline is terminated: it cannot be asked.
	Wait TimeoutAction = iota
	// Terminate the server at its deadline, busy or not.
	Terminate
	// Restore puts the server back to work; it may be picked again later.
	Restore
)

// Config describes one pool. The zero value of every optional field has a
// documented default.
type Config struct {
	// Name identifies the pool; it is written to the pool tag of its
	// instances, so it must stay stable across restarts.
	Name string
	// Role says what the instances are and holds their lifecycle hooks.
	Role role.Role
	// Managers are the consumers sharing the pool; at least one.
	Managers []manager.Manager
	// Types the pool may launch, at least one. Without Prices they are an
	// order of preference, not a mix: each launch lists them in this order
	// and EC2 moves to the next only when it cannot fill the first
	// (capacity, quota); with Prices, the cheapest acceptable type per
	// capacity unit goes first.
	Types []InstanceType
	// Zones the pool may launch in. Empty means the zones of the role's
	// subnets; one of the two is required.
	Zones []string
	// Min is capacity kept even with no demand; Max caps the capacity of
	// all live instances of the pool (0 means DefaultMax).
	Min, Max int
	// Billing model; default PerSecond.
	Billing Billing
	// WindDownTimeout is a wind-down's deadline (DefaultWindDownTimeout):
	// what happens past it is OnWindDownTimeout's choice. With Hourly
	// billing a wind-down also ends before the paid hour does.
	WindDownTimeout time.Duration
	// OnWindDownTimeout is what happens when a wind-down outlasts its
	// deadline; default Wait (busy servers are never cut short). Hourly
	// pools always restore.
	OnWindDownTimeout TimeoutAction
	// ProvisionTimeout bounds Role.Provision and Role.Restore, which may
	// both wait for a server to be ready (DefaultProvisionTimeout).
	ProvisionTimeout time.Duration
	// HookTimeout bounds every other role hook (DefaultHookTimeout).
	HookTimeout time.Duration
	// HealthInterval is how often a granted server's role Check runs, for
	// a role that is a role.HealthReporter (DefaultHealthInterval); a
	// negative value turns health polling off.
	// HealthGrace (DefaultHealthGrace) and UnhealthyAfter
	// (DefaultUnhealthyAfter) say when readings of role.Status.Unhealthy
	// make the server replaced. The readings are memory: a restarted
	// scaler counts them afresh. A server read sick while it winds down is
	// retired (TagRetire), so that no restart puts it back to work.
	HealthInterval time.Duration
	HealthGrace    time.Duration
	UnhealthyAfter int
	// DemandTimeout bounds each call of a manager's Demand
	// (DefaultDemandTimeout). A manager that does not answer in time keeps
	// its previous target, and is not called again until the late call
	// returns; the other managers and the pass go on.
	DemandTimeout time.Duration
	// LaunchBatch caps the capacity requested by one launch call
	// (DefaultLaunchBatch), so a burst arrives as a few calls.
	LaunchBatch int
	// LaunchGrace: see DefaultLaunchGrace.
	LaunchGrace time.Duration
	// ListingLag is how long EC2's listing may lag a launch
	// (DefaultListingLag). A scaler that starts and finds instances of the
	// pool launched within LaunchGrace (a predecessor was launching) holds
	// its own launches for ListingLag, since launches its predecessor made
	// just before it stopped may not be listed yet; an identical request
	// would get them back through its token, but another one would launch
	// again, above Max. A pool with no recent launch starts at once.
	// Replacements (spot swaps, refreshes) wait ListingLag after every
	// start: one a predecessor launched as it stopped, with no other launch
	// of the pool recent enough to show, is listed by then, and its server
	// is not replaced twice.
	ListingLag time.Duration
	// Market chooses spot or on-demand for launches; default OnDemand.
	// Spot and FastStart need Prices.
	Market MarketStrategy
	// Prices answers on-demand and spot prices, reservations and
	// interruption risk (usually a *spotprice.Book). With Prices set,
	// launches go to the cheapest acceptable offerings and nothing is
	// launched at an unknown price; without it, on-demand launches are
	// spread over the zones in type order.
	Prices spotprice.Prices
	// Policy decides between spot, on-demand and reserved capacity; the
	// zero value takes spotprice's defaults (spot at most 0.8 of
	// on-demand).
	Policy spotprice.Policy
	// Unavailable remembers offerings that just failed for lack of
	// capacity, so the next launches fall back to another zone, type or
	// market. Nil means a cache of the pool's own with
	// spotprice.DefaultUnavailableTTL; share one between pools that use
	// the same offerings.
	Unavailable *spotprice.Unavailable
	// MaxSpotShare caps the share of the pool's capacity in any one spot
	// (type, zone) so one capacity event cannot take most of the pool at
	// once. In (0, 1]; 0 means no cap.
	MaxSpotShare float64
	// SpotShareMargin is how much dearer per unit than the cheapest
	// acceptable offering another offering may be to take capacity that
	// MaxSpotShare keeps off the cheapest ones (DefaultSpotShareMargin,
	// 5%). Past it, the pool launches over the cap rather than pay more for
	// diversification. Negative means no margin: only equally cheap
	// offerings.
	SpotShareMargin float64
	// Replace tunes the replacement of on-demand servers by spot ones
	// (strategies Spot and FastStart).
	Replace ReplaceConfig
	// SpotHold is how long spot servers are kept over target while the
	// pool cannot buy spot (every spot offering short of capacity or priced
	// out): scale-down takes on-demand servers first, and spot ones only
	// once the hold has lasted SpotHold, since a spot server shed now would
	// be bought back on-demand when demand returns. Default
	// DefaultSpotHold; negative for none.
	SpotHold time.Duration
	// WorkKeep is how long on-demand servers that ran work costing less
	// on demand (manager.Request.Work) are kept once that work ends:
	// neither swapped for spot nor wound down, so the next such job finds
	// them instead of waiting for a new launch. Default DefaultWorkKeep;
	// negative for none. Without Work it changes nothing. Keep it equal
	// to the manager's scale-down delay: kept longer, the servers outlast
	// the target's fall, spot ones are wound down in their place, and the
	// kept ones are swapped for spot when the keep ends; kept for less,
	// they are swapped for spot while the target waits to fall, swaps its
	// fall then makes useless.
	WorkKeep time.Duration
	// MaxLifetime, if set, is how old a server may grow: older ones are
	// replaced, make-before-break, within the Disruption budget (long-lived
	// hosts accumulate drift the launch spec does not show).
	MaxLifetime time.Duration
	// Disruption is the budget every voluntary replacement draws from:
	// drift, refreshes, lifetimes and spot swaps. The zero value allows
	// DefaultDisruptionPercent of the pool's servers at once, at any time.
	Disruption Disruption
	// ImpairedGrace is how long an EC2 status check (system or instance)
	// may stay impaired before the server is replaced
	// (DefaultImpairedGrace). It needs a cloud that reports health
	// (awsctl.HealthReader).
	ImpairedGrace time.Duration
	// MinimumSpot keeps extra spot capacity for one manager while spot is
	// very cheap; nil for none.
	MinimumSpot *MinimumSpot
	// Price returns the hourly price of a running instance, used to wind
	// down the most expensive servers first. Nil ranks on-demand above
	// spot.
	Price func(awsctl.Instance) float64
}

// checkSpecTags keeps a role's extra tags within what EC2 accepts once the
// scaler's own tags are added, so launches cannot fail on tag limits.
func checkSpecTags(tags map[string]string) error {
	if n := len(tags); n > maxTags-len(ownTags) {
		return fmt.Errorf("%d tags: at most %d leave room for the scaler's own %d (EC2 allows %d)", n, maxTags-len(ownTags), len(ownTags), maxTags)
	}
	for k, v := range tags {
		switch {
		case k == "" || len(k) > maxTagKey:
			return fmt.Errorf("key %q: must be 1 to %d characters", k, maxTagKey)
		case len(v) > maxTagValue:
			return fmt.Errorf("value of %q: longer than %d characters", k, maxTagValue)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return fmt.Errorf("key %q: the aws: prefix is reserved by AWS", k)
		case strings.HasPrefix(k, tagPrefix):
			return fmt.Errorf("key %q: the %s prefix is reserved for the scaler's own tags", k, tagPrefix)
		}
	}
	return nil
}

// DefaultMax is the pool size cap when Config.Max is 0, a guard against a
// runaway demand signal.
const DefaultMax = 100

// MarketStrategy chooses the purchasing option of new servers.
type MarketStrategy int

const (
	// OnDemand launches on-demand only (unless a manager asks for spot
	// only).
	OnDemand MarketStrategy = iota
	// Spot launches spot at start whenever the policy accepts its price,
	// on-demand otherwise (when spot is too dear or has no capacity), and
	// later replaces such on-demand servers by spot when that pays off.
	Spot
	// FastStart launches on-demand for the fastest, surest boot, then
	// replaces each server by spot, make-before-break, when the saving over
	// its expected remaining life exceeds the cost of the swap.
	FastStart
)

// Defaults of ReplaceConfig and MinimumSpot.
const (
	DefaultExpectedLife = time.Hour
	// DefaultSwapOverlap is ReplaceConfig.Overlap while the pool has not
	// learned a boot time.
	DefaultSwapOverlap     = 5 * time.Minute
	DefaultReplacePerPass  = 10
	DefaultMinimumSpotAdd  = 0.28
	DefaultMinimumSpotKeep = 0.38
	// DefaultSpotShareMargin: see Config.SpotShareMargin.
	DefaultSpotShareMargin = 0.05
)

// ReplaceConfig tunes on-demand-to-spot replacement. A swap runs both
// servers for a while (the spot one boots and is provisioned, then the
// on-demand one winds down), so it pays off only if the hourly saving over
// the server's expected remaining life exceeds that overlap's cost.
type ReplaceConfig struct {
	// ExpectedLife is how long a server is expected to keep working
	// (DefaultExpectedLife).
	ExpectedLife time.Duration
	// Overlap is how long both servers run during a swap: the spot
	// server's time from launch to ready. It prices the swap (the spot
	// server is charged at least MinimumCharge) and, with Hourly billing,
	// says how far ahead of the paid hour's end the spot server is
	// launched. Zero (the default) means the boot time the pool learned
	// for the spot server's offering (see "Boot times" in the package
	// documentation), and DefaultSwapOverlap until it has learned one; a
	// value set here is used as it is.
	Overlap time.Duration
	// MaxPerPass caps replacements started per pass
	// (DefaultReplacePerPass).
	MaxPerPass int
	// Disabled turns replacement off.
	Disabled bool
}

// MinimumSpot keeps Capacity units of spot capacity for Manager on top of
// its own target while spot is very cheap: it is added when the cheapest
// acceptable spot price is at most AddBelow times on-demand and kept while it
// stays at most KeepBelow times on-demand (hysteresis, so a price hovering
// at one threshold does not make servers come and go).
type MinimumSpot struct {
	Manager   string
	Capacity  int
	AddBelow  float64 // DefaultMinimumSpotAdd when 0
	KeepBelow float64 // DefaultMinimumSpotKeep when 0
}

// ErrInvalidConfig is wrapped by every validation error of New.
var ErrInvalidConfig = errors.New("invalid pool config")

func (c *Config) fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: pool %q: %s: %s", ErrInvalidConfig, c.Name, field, fmt.Sprintf(format, args...))
}

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		return c, c.fieldErr("Name", "must not be empty")
	}
	if len(c.Name) > maxTagValue {
		return c, c.fieldErr("Name", "longer than %d characters", maxTagValue)
	}
	if c.Role == nil {
		return c, c.fieldErr("Role", "must not be nil")
	}
	if err := checkSpecTags(c.Role.LaunchSpec().Tags); err != nil {
		return c, c.fieldErr("Role.LaunchSpec().Tags", "%v", err)
	}
	if len(c.Managers) == 0 {
		return c, c.fieldErr("Managers", "at least one manager is required")
	}
	seen := map[string]bool{}
	for i, m := range c.Managers {
		if m == nil {
			return c, c.fieldErr(fmt.Sprintf("Managers[%d]", i), "must not be nil")
		}
		name := m.Name()
		if name == "" || len(name) > maxTagValue {
			return c, c.fieldErr(fmt.Sprintf("Managers[%d]", i), "name must be 1 to %d characters", maxTagValue)
		}
		if seen[name] {
			return c, c.fieldErr(fmt.Sprintf("Managers[%d]", i), "duplicate manager name %q", name)
		}
		seen[name] = true
	}
	if len(c.Types) == 0 {
		return c, c.fieldErr("Types", "at least one instance type is required")
	}
	c.Types = slices.Clone(c.Types)
	types := map[string]bool{}
	for i := range c.Types {
		t := &c.Types[i]
		if t.Name == "" {
			return c, c.fieldErr(fmt.Sprintf("Types[%d].Name", i), "must not be empty")
		}
		if types[t.Name] {
			return c, c.fieldErr(fmt.Sprintf("Types[%d]", i), "duplicate instance type %q", t.Name)
		}
		types[t.Name] = true
		if t.Weight < 0 {
			return c, c.fieldErr(fmt.Sprintf("Types[%d].Weight", i), "must be positive, got %d", t.Weight)
		}
		if t.Weight == 0 {
			t.Weight = 1
		}
	}
	if len(c.Zones) == 0 {
		for _, s := range c.Role.LaunchSpec().Subnets {
			if s.Zone != "" && !slices.Contains(c.Zones, s.Zone) {
				c.Zones = append(c.Zones, s.Zone)
			}
		}
		if len(c.Zones) == 0 {
			return c, c.fieldErr("Zones", "no zones: set Zones or give the role's launch spec subnets")
		}
	} else {
		c.Zones = slices.Clone(c.Zones)
	}
	if c.Min < 0 {
		return c, c.fieldErr("Min", "must not be negative, got %d", c.Min)
	}
	if c.Max < 0 {
		return c, c.fieldErr("Max", "must not be negative, got %d", c.Max)
	}
	if c.Max == 0 {
		c.Max = max(DefaultMax, c.Min)
	}
	if c.Min > c.Max {
		return c, c.fieldErr("Min", "%d is above Max %d", c.Min, c.Max)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"WindDownTimeout", &c.WindDownTimeout, DefaultWindDownTimeout},
		{"ProvisionTimeout", &c.ProvisionTimeout, DefaultProvisionTimeout},
		{"HookTimeout", &c.HookTimeout, DefaultHookTimeout},
		{"DemandTimeout", &c.DemandTimeout, DefaultDemandTimeout},
		{"HealthGrace", &c.HealthGrace, DefaultHealthGrace},
		{"LaunchGrace", &c.LaunchGrace, DefaultLaunchGrace},
		{"ListingLag", &c.ListingLag, DefaultListingLag},
	} {
		if *d.v < 0 {
			return c, c.fieldErr(d.name, "must not be negative, got %v", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthInterval
	}
	if c.UnhealthyAfter < 0 {
		return c, c.fieldErr("UnhealthyAfter", "must not be negative, got %d", c.UnhealthyAfter)
	}
	if c.UnhealthyAfter == 0 {
		c.UnhealthyAfter = DefaultUnhealthyAfter
	}
	if c.WorkKeep == 0 {
		c.WorkKeep = DefaultWorkKeep
	}
	if c.SpotHold == 0 {
		c.SpotHold = DefaultSpotHold
	}
	if c.MaxLifetime < 0 {
		return c, c.fieldErr("MaxLifetime", "must not be negative, got %v", c.MaxLifetime)
	}
	if c.ImpairedGrace < 0 {
		return c, c.fieldErr("ImpairedGrace", "must not be negative, got %v", c.ImpairedGrace)
	}
	c.ImpairedGrace = cmp.Or(c.ImpairedGrace, DefaultImpairedGrace)
	if err := c.Disruption.validate(); err != nil {
		return c, c.fieldErr("Disruption", "%v", err)
	}
	c.Disruption.Windows = slices.Clone(c.Disruption.Windows)
	if c.LaunchBatch < 0 {
		return c, c.fieldErr("LaunchBatch", "must not be negative, got %d", c.LaunchBatch)
	}
	if c.LaunchBatch == 0 {
		c.LaunchBatch = DefaultLaunchBatch
	}
	if c.Billing != PerSecond && c.Billing != Hourly {
		return c, c.fieldErr("Billing", "unknown billing model %d", c.Billing)
	}
	if c.OnWindDownTimeout != Wait && c.OnWindDownTimeout != Terminate && c.OnWindDownTimeout != Restore {
		return c, c.fieldErr("OnWindDownTimeout", "unknown action %d", c.OnWindDownTimeout)
	}
	if c.Market != OnDemand && c.Market != Spot && c.Market != FastStart {
		return c, c.fieldErr("Market", "unknown strategy %d", c.Market)
	}
	if c.Market != OnDemand && c.Prices == nil {
		return c, c.fieldErr("Prices", "spot strategies need a price book: nothing is launched at an unknown price")
	}
	if err := c.Policy.Validate(); err != nil {
		return c, c.fieldErr("Policy", "%v", err)
	}
	if c.Unavailable == nil {
		c.Unavailable = spotprice.NewUnavailable(spotprice.DefaultUnavailableTTL)
	}
	switch {
	case c.SpotShareMargin == 0:
		c.SpotShareMargin = DefaultSpotShareMargin
	case c.SpotShareMargin < 0:
		c.SpotShareMargin = 0
	}
	if c.MaxSpotShare < 0 || c.MaxSpotShare > 1 {
		return c, c.fieldErr("MaxSpotShare", "must be in (0, 1] or 0 for no cap, got %v", c.MaxSpotShare)
	}
	r := &c.Replace
	if r.ExpectedLife < 0 || r.Overlap < 0 || r.MaxPerPass < 0 {
		return c, c.fieldErr("Replace", "durations and MaxPerPass must not be negative")
	}
	r.ExpectedLife = cmp.Or(r.ExpectedLife, DefaultExpectedLife)
	r.MaxPerPass = cmp.Or(r.MaxPerPass, DefaultReplacePerPass)
	if ms := c.MinimumSpot; ms != nil {
		cp := *ms
		if !seen[cp.Manager] {
			return c, c.fieldErr("MinimumSpot.Manager", "no manager named %q in the pool", cp.Manager)
		}
		if cp.Capacity < 0 {
			return c, c.fieldErr("MinimumSpot.Capacity", "must not be negative, got %d", cp.Capacity)
		}
		cp.AddBelow = cmp.Or(cp.AddBelow, DefaultMinimumSpotAdd)
		cp.KeepBelow = cmp.Or(cp.KeepBelow, DefaultMinimumSpotKeep)
		if cp.AddBelow <= 0 || cp.AddBelow > cp.KeepBelow || cp.KeepBelow > 1 {
			return c, c.fieldErr("MinimumSpot", "need 0 < AddBelow <= KeepBelow <= 1, got %v and %v", cp.AddBelow, cp.KeepBelow)
		}
		if c.Prices == nil {
			return c, c.fieldErr("Prices", "MinimumSpot needs a price book")
		}
		c.MinimumSpot = &cp
	}
	return c, nil
}
