package ec2sim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// DefaultStart is where the manual clock starts when Config.Start is zero.
var DefaultStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Defaults for the zero values of [Config].
const (
	// DefaultBootDelay is the pending phase, from launch to running, a
	// typical figure for a Linux instance from a current AMI.
	DefaultBootDelay = 40 * time.Second
	// DefaultReadyDelay is the time from running to ready (see
	// Config.ReadyDelay): zero, an instance is ready as soon as it runs.
	DefaultReadyDelay time.Duration = 0
	// DefaultShutdownDelay is the time from a termination request to the
	// terminated state.
	DefaultShutdownDelay = 20 * time.Second
	// DefaultListDelay is zero: new instances are listed at once.
	DefaultListDelay time.Duration = 0
	// DefaultRegion is the simulated region.
	DefaultRegion = "us-east-1"
	// DefaultTerminatedVisibleFor is how long EC2 keeps listing a
	// terminated instance.
	DefaultTerminatedVisibleFor = time.Hour
	// DefaultOnDemandPrice is the hourly price billed for instance types
	// found neither in Config.OnDemandPrices nor in the built-in table.
	// The sim launches no such type; the price is only billed for
	// reservations of one.
	DefaultOnDemandPrice = 0.10
	// DefaultRebalanceShare is the share of interruption notices preceded
	// by a rebalance recommendation. AWS publishes no figure; recommendations
	// often, not always, come first, and half keeps both paths exercised.
	DefaultRebalanceShare = 0.5
	// DefaultStatusInitDelay is how long the status checks of an instance
	// that has just started running report initializing. AWS publishes no
	// figure: "Status checks for Amazon EC2 instances" (EC2 user guide)
	// says the checks run every minute on running instances, and the EC2
	// API reference lists initializing among their results
	// (InstanceStatusSummary); two minutes, two rounds of checks, is our
	// pick.
	DefaultStatusInitDelay = 2 * time.Minute
	// DefaultReservedPriceRatio is the hourly fee of a reserved instance as
	// a share of the on-demand price: about what a standard 1-year,
	// no-upfront reservation of a current general-purpose type costs.
	DefaultReservedPriceRatio = 0.6
)

// TypeDelays are the boot phases of one instance type (see
// Config.TypeDelays): Pending replaces Config.BootDelay and Ready
// Config.ReadyDelay for it, each when not nil.
type TypeDelays struct {
	Pending, Ready Delay
}

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("ec2sim: invalid config")

// ErrExternalClock is returned by Advance when the sim reads time from
// Config.Clock, which only its owner can move.
var ErrExternalClock = errors.New("ec2sim: clock is external; Advance needs the manual clock")

// Config configures a [Sim]. The zero value is a usable us-east-1 with
// three zones, a manual clock at [DefaultStart], no faults and no limits.
type Config struct {
	// Start is where the manual clock starts; zero means DefaultStart.
	// Ignored when Clock is set.
	Start time.Time
	// Clock, if set, is the sim's time source (for example time.Now inside
	// a testing/synctest bubble); Advance then returns ErrExternalClock.
	// It must not go backwards.
	Clock func() time.Time
	// Region names the simulated region; empty means DefaultRegion.
	Region string
	// Zones are the region's availability zones, each the region name
	// followed by a suffix ("us-east-1a"); empty means Region plus "a",
	// "b" and "c".
	Zones []string
	// BootDelay is the pending phase: the time from launch to the running
	// state, which EC2 does not bill. Nil means Fixed(DefaultBootDelay).
	BootDelay Delay
	// ReadyDelay is the time from running until the instance is ready for
	// work: its operating system's boot and whatever start-up it does of
	// its own. EC2 reports the instance running, and bills it, all along
	// (see [Sim.Bill]); [Sim.ReadyAt] tells when it is ready, for a role's
	// Provision hook to wait for. Nil means Fixed(DefaultReadyDelay).
	ReadyDelay Delay
	// TypeDelays overrides BootDelay and ReadyDelay per instance type;
	// a nil Delay in it keeps the general one.
	TypeDelays map[string]TypeDelays
	// ShutdownDelay is the time from a termination request to terminated;
	// nil means Fixed(DefaultShutdownDelay).
	ShutdownDelay Delay
	// TerminatedVisibleFor is how long a terminated instance stays listable
	// with IncludeTerminated, after which the sim forgets it as EC2 does
	// (Instance and Instances still report it); zero means
	// DefaultTerminatedVisibleFor.
	TerminatedVisibleFor time.Duration
	// ListDelay models eventual consistency: a new instance is invisible to
	// ListInstances and InstanceHealth for this long after its launch (it
	// can still be tagged and terminated). Nil means
	// Fixed(DefaultListDelay).
	ListDelay Delay
	// StatusInitDelay is how long, once an instance is running, its status
	// checks report initializing before ok (see [Sim.InstanceHealth]); nil
	// means Fixed(DefaultStatusInitDelay).
	StatusInitDelay Delay
	// OnDemandPrices are hourly prices in US dollars per instance type,
	// used for billing. Types missing here use the built-in us-east-1 list
	// prices (see [BuiltinOnDemandPrice]). Together the two are the
	// instance types that exist: a launch of any other type fails with
	// InvalidParameterValue, as EC2 fails a misspelt type, so add a real
	// type missing from the built-in table here.
	OnDemandPrices map[string]float64
	// MaxInstances is the account's limit of live (pending or running)
	// instances; a launch beyond it fails with ErrLimitExceeded
	// ("InstanceLimitExceeded"). Zero means unlimited.
	MaxInstances int
	// Seed makes every random choice (delays, fault injection, instance
	// ids) repeat exactly for the same seed and the same calls.
	Seed int64
	// Logger receives a debug record per mutation; nil discards.
	Logger *slog.Logger

	// SpotPrices is a spot price history (as [ReadSpotCSV] reads it)
	// replayed on the sim's clock. Each record is a price change: the spot
	// price of (InstanceType, Zone) at t is that of the latest record at or
	// before t, and unknown before the first. Records may come in any
	// order; of two for the same series and time, the later one wins.
	// Records of zones of Region that the sim does not have are ignored;
	// zones of another region are an error.
	//
	// Any record turns on the spot market: a spot launch of an offering
	// without a known price fails with InsufficientInstanceCapacity, one
	// whose price is above the request's MaxPrice (or, when MaxPrice is
	// zero, above the on-demand price) fails with SpotMaxPriceTooLow, and
	// spot instances are billed at the price in effect, as it changes.
	// Without records, spot launches succeed wherever on-demand ones
	// would, and are billed at the on-demand price.
	SpotPrices []awsctl.SpotPrice
	// InterruptionRates is, per instance type, the probability that EC2
	// interrupts a spot instance within a 30-day month: 0.05 for the Spot
	// Instance Advisor's "<5%" bucket, 0.10 for "5-10%", and so on. Each
	// spot instance's time to interruption is drawn at launch from the
	// exponential distribution with that monthly probability. Types
	// missing here are never interrupted (but see [Sim.Interrupt]).
	// Rates must lie in [0, 1).
	//
	// With InterruptionShare set, interruptions come as events of a pool
	// instead (see there); the monthly probability per instance stays the
	// same.
	InterruptionRates map[string]float64
	// InterruptionShare correlates interruptions within a spot pool (an
	// instance type in a zone), as EC2 reclaims a pool's capacity: each
	// pool with an interruption rate has interruption events, and each
	// event sends interruption notices to every spot instance of the pool
	// that is running then with probability InterruptionShare (so, on
	// average, that share of them at once). Events come at a rate that
	// keeps each instance's monthly interruption probability at
	// InterruptionRates: -ln(1-rate)/(InterruptionShare*30 days). Zero
	// means independent interruptions, each instance drawing its own
	// time at launch. It must lie in [0, 1].
	InterruptionShare float64
	// RebalanceShare is the probability that an interruption notice is
	// preceded by a rebalance recommendation, 5 to 30 minutes (uniformly)
	// earlier. Zero means DefaultRebalanceShare; a negative value means
	// never.
	RebalanceShare float64
	// Reservations are reserved instances, active from New until their End
	// (a zero End never ends). Billing applies them to running on-demand
	// instances of their type, zonal ones in their zone first, then
	// regional ones in any zone, as EC2 does; whatever they cover costs
	// nothing. Their fees accrue whether they are used or not.
	Reservations []awsctl.Reservation
	// ReservedPriceRatio is the hourly fee of one reserved instance as a
	// share of its type's on-demand price, in (0, 1]; zero means
	// DefaultReservedPriceRatio.
	ReservedPriceRatio float64

	// VcpuQuotas are per-bucket, per-market vCPU quotas: a launch that would
	// take a bucket's live instances beyond its quota fails for that
	// offering with VcpuLimitExceeded (on-demand) or
	// MaxSpotInstanceCountExceeded (spot), both awsctl.ErrQuotaExceeded,
	// and the launch moves on to the next offering. Buckets without a quota
	// are unlimited.
	VcpuQuotas []VcpuQuota
	// VCPUs gives the vCPUs of instance types, for VcpuQuotas; types missing
	// here count 2 for large, 4 per xlarge, 96 for metal and 2 for
	// the smaller sizes.
	VCPUs map[string]int
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// zoneSuffixPattern accepts the letter of a regular zone ("a") and the
// suffix of a Local Zone ("-bos-1a").
var zoneSuffixPattern = regexp.MustCompile(`^(-[a-z]+-[0-9]+)?[a-z]$`)

// withDefaults validates c and fills in defaults, returning the config the
// sim runs with.
func (c Config) withDefaults() (Config, error) {
	bad := func(field, format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if !regionPattern.MatchString(c.Region) {
		return bad("Region", "%q is not a region name like %q", c.Region, DefaultRegion)
	}
	if len(c.Zones) == 0 {
		c.Zones = []string{c.Region + "a", c.Region + "b", c.Region + "c"}
	} else {
		c.Zones = append([]string(nil), c.Zones...)
	}
	seen := make(map[string]bool, len(c.Zones))
	for _, z := range c.Zones {
		suffix, ok := strings.CutPrefix(z, c.Region)
		if !ok || !zoneSuffixPattern.MatchString(suffix) {
			return bad("Zones", "%q is not a zone of region %s (like %q)", z, c.Region, c.Region+"a")
		}
		if seen[z] {
			return bad("Zones", "%q listed twice", z)
		}
		seen[z] = true
	}
	delays := []struct {
		field string
		d     *Delay
		def   Delay
	}{
		{"BootDelay", &c.BootDelay, Fixed(DefaultBootDelay)},
		{"ShutdownDelay", &c.ShutdownDelay, Fixed(DefaultShutdownDelay)},
		{"ListDelay", &c.ListDelay, Fixed(DefaultListDelay)},
		{"StatusInitDelay", &c.StatusInitDelay, Fixed(DefaultStatusInitDelay)},
		{"ReadyDelay", &c.ReadyDelay, Fixed(DefaultReadyDelay)},
	}
	for _, d := range delays {
		if *d.d == nil {
			*d.d = d.def
		}
		if v, ok := (*d.d).(validator); ok {
			if err := v.validate(); err != nil {
				return bad(d.field, "%v", err)
			}
		}
	}
	if len(c.TypeDelays) > 0 {
		typed := make(map[string]TypeDelays, len(c.TypeDelays))
		for typ, td := range c.TypeDelays {
			if typ == "" {
				return bad("TypeDelays", "empty instance type")
			}
			for _, d := range []struct {
				name string
				d    Delay
			}{{"Pending", td.Pending}, {"Ready", td.Ready}} {
				if v, ok := d.d.(validator); ok {
					if err := v.validate(); err != nil {
						return bad("TypeDelays", "%s: %s: %v", typ, d.name, err)
					}
				}
			}
			typed[typ] = td
		}
		c.TypeDelays = typed
	}
	switch {
	case c.TerminatedVisibleFor < 0:
		return bad("TerminatedVisibleFor", "negative duration %v", c.TerminatedVisibleFor)
	case c.TerminatedVisibleFor == 0:
		c.TerminatedVisibleFor = DefaultTerminatedVisibleFor
	}
	if c.MaxInstances < 0 {
		return bad("MaxInstances", "negative limit %d", c.MaxInstances)
	}
	if len(c.OnDemandPrices) > 0 {
		prices := make(map[string]float64, len(c.OnDemandPrices))
		for typ, p := range c.OnDemandPrices {
			if typ == "" {
				return bad("OnDemandPrices", "empty instance type")
			}
			if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
				return bad("OnDemandPrices", "price of %s is %v, want a finite number >= 0", typ, p)
			}
			prices[typ] = p
		}
		c.OnDemandPrices = prices
	}
	if err := c.validateSpot(); err != nil {
		return Config{}, err
	}
	if err := c.validateQuotas(); err != nil {
		return Config{}, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// validateSpot checks and fills in the spot market and reservation fields.
// c.Region and c.Zones are already valid.
func (c *Config) validateSpot() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	for i, p := range c.SpotPrices {
		field := fmt.Sprintf("SpotPrices[%d]", i)
		suffix, inRegion := strings.CutPrefix(p.Zone, c.Region)
		switch {
		case p.InstanceType == "":
			return bad(field, "empty instance type")
		case !inRegion || !zoneSuffixPattern.MatchString(suffix):
			return bad(field, "zone %q is not a zone of region %s", p.Zone, c.Region)
		case !(p.PricePerHour > 0) || math.IsInf(p.PricePerHour, 0):
			return bad(field, "price %v, want a finite number > 0", p.PricePerHour)
		case p.Time.IsZero():
			return bad(field, "zero time")
		}
	}
	if len(c.InterruptionRates) > 0 {
		rates := make(map[string]float64, len(c.InterruptionRates))
		for typ, p := range c.InterruptionRates {
			if typ == "" {
				return bad("InterruptionRates", "empty instance type")
			}
			if !(p >= 0 && p < 1) {
				return bad("InterruptionRates", "rate of %s is %v, want a probability in [0, 1)", typ, p)
			}
			rates[typ] = p
		}
		c.InterruptionRates = rates
	}
	if !(c.InterruptionShare >= 0 && c.InterruptionShare <= 1) {
		return bad("InterruptionShare", "%v is not a share in [0, 1]", c.InterruptionShare)
	}
	switch {
	case math.IsNaN(c.RebalanceShare) || c.RebalanceShare > 1:
		return bad("RebalanceShare", "%v is not a share in [0, 1] (or negative for none)", c.RebalanceShare)
	case c.RebalanceShare == 0:
		c.RebalanceShare = DefaultRebalanceShare
	case c.RebalanceShare < 0:
		c.RebalanceShare = 0
	}
	zones := make(map[string]bool, len(c.Zones))
	for _, z := range c.Zones {
		zones[z] = true
	}
	for i, r := range c.Reservations {
		field := fmt.Sprintf("Reservations[%d]", i)
		switch {
		case r.InstanceType == "":
			return bad(field, "empty instance type")
		case r.Zone != "" && !zones[r.Zone]:
			return bad(field, "zone %q is not a zone of the sim (empty means regional)", r.Zone)
		case r.Count < 1:
			return bad(field, "count %d is below 1", r.Count)
		}
	}
	c.Reservations = slices.Clone(c.Reservations)
	switch {
	case c.ReservedPriceRatio == 0:
		c.ReservedPriceRatio = DefaultReservedPriceRatio
	case !(c.ReservedPriceRatio > 0 && c.ReservedPriceRatio <= 1):
		return bad("ReservedPriceRatio", "%v is not a share in (0, 1]", c.ReservedPriceRatio)
	}
	return nil
}
