package spotprice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Defaults for [BookConfig].
const (
	// DefaultSpotTTL is how long fetched spot prices are reused before
	// Refresh asks the source again.
	DefaultSpotTTL = 5 * time.Minute
	// DefaultMaxSpotAge is the age beyond which a spot price counts as
	// unknown. AWS re-publishes unchanged prices about once a day, so a
	// price up to a day old is current; twice that leaves room for a late
	// re-publication.
	DefaultMaxSpotAge = 48 * time.Hour
	// DefaultReservationTTL is how long fetched reservations are reused
	// before Refresh asks the source again.
	DefaultReservationTTL = time.Hour
)

// BookConfig configures a [Book]. Only Region is required.
type BookConfig struct {
	// Region whose prices the book holds, such as "us-east-1".
	Region string
	// OnDemand holds on-demand prices per instance type, in US dollars per
	// hour, that override or add to the compiled-in table and to prices
	// refreshed with [Book.RefreshOnDemand]. Every value must be positive.
	OnDemand map[string]float64
	// Spot reports current spot prices. Nil means no spot price is ever
	// known, so spot is never chosen (unless prices are pushed with
	// [Book.SetSpot]).
	Spot awsctl.SpotPriceSource
	// SpotTTL is how long fetched spot prices are reused; 0 means
	// DefaultSpotTTL.
	SpotTTL time.Duration
	// MaxSpotAge is the age, by the price's own timestamp, beyond which a
	// spot price counts as stale and is not used; 0 means DefaultMaxSpotAge.
	MaxSpotAge time.Duration
	// Reservations lists active reserved instances. Nil means none.
	Reservations awsctl.ReservationSource
	// ReservationTTL is how long fetched reservations are reused; 0 means
	// DefaultReservationTTL.
	ReservationTTL time.Duration
	// Effective, if set, turns a list price into what the account actually
	// pays (Savings Plans, negotiated discounts). It must be safe for
	// concurrent use. A result that is not a positive number makes the
	// price unusable.
	Effective func(instanceType string, market awsctl.Market, listPrice float64) float64
	// Logger receives debug records about fetches; nil discards them.
	Logger *slog.Logger
}

// PriceStatus says whether a price can be used, and if not, why.
type PriceStatus int

// Price statuses.
const (
	// PriceOK: the price is known, positive and fresh.
	PriceOK PriceStatus = iota
	// PriceMissing: no price is known.
	PriceMissing
	// PriceStale: the latest price is older than the book's MaxSpotAge
	// (or has no timestamp).
	PriceStale
	// PriceInvalid: the latest price is zero, negative or not a number.
	PriceInvalid
)

// String returns the status name, such as "stale".
func (s PriceStatus) String() string {
	switch s {
	case PriceOK:
		return "ok"
	case PriceMissing:
		return "missing"
	case PriceStale:
		return "stale"
	case PriceInvalid:
		return "invalid"
	}
	return fmt.Sprintf("PriceStatus(%d)", int(s))
}

// OnDemandSource reports current on-demand list prices, such as the AWS
// Price List API (package awsctl/pricing implements it).
type OnDemandSource interface {
	// OnDemandPrices returns the hourly on-demand price (Linux, shared
	// tenancy) of each instance type it knows in region. It may return
	// prices together with an error about the ones it could not read.
	OnDemandPrices(ctx context.Context, region string, instanceTypes []string) (map[string]float64, error)
}

type zoneType struct{ instanceType, zone string }

// Book is the price book a pool consults: on-demand prices (compiled-in,
// refreshed or configured), spot prices fetched from a source with a TTL or
// pushed by the host, and active reservations.
//
// A price that is missing, zero, negative or stale is never reported as
// usable. All methods are safe for concurrent use.
type Book struct {
	region         string
	overrides      map[string]float64
	spotSrc        awsctl.SpotPriceSource
	spotTTL        time.Duration
	maxSpotAge     time.Duration
	resSrc         awsctl.ReservationSource
	reservationTTL time.Duration
	effective      func(string, awsctl.Market, float64) float64
	log            *slog.Logger

	// refreshMu serialises fetches so that concurrent Refresh calls do not
	// ask the sources twice; mu guards the data and is never held while
	// calling out.
	refreshMu sync.Mutex

	mu        sync.RWMutex
	refreshed map[string]float64 // from RefreshOnDemand
	spot      map[zoneType]awsctl.SpotPrice
	// spotFetched is when each instance type's spot prices were last
	// fetched successfully; pools sharing a book ask for different types.
	spotFetched    map[string]time.Time
	reservations   []awsctl.Reservation
	resFetched     time.Time
	resFetchedOnce bool
}

// NewBook returns a Book for cfg.Region. It makes no calls; the first
// [Book.Refresh] fetches.
func NewBook(cfg BookConfig) (*Book, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("spotprice: %w: BookConfig.Region is required", ErrInvalidConfig)
	}
	for _, t := range slices.Sorted(maps.Keys(cfg.OnDemand)) {
		if p := cfg.OnDemand[t]; t == "" || !validPrice(p) {
			return nil, fmt.Errorf("spotprice: %w: BookConfig.OnDemand[%q] = %v: must be a positive price for a named instance type", ErrInvalidConfig, t, p)
		}
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"SpotTTL", cfg.SpotTTL}, {"MaxSpotAge", cfg.MaxSpotAge}, {"ReservationTTL", cfg.ReservationTTL}} {
		if d.value < 0 {
			return nil, fmt.Errorf("spotprice: %w: BookConfig.%s = %v: must not be negative", ErrInvalidConfig, d.name, d.value)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Book{
		region:         cfg.Region,
		overrides:      maps.Clone(cfg.OnDemand),
		spotSrc:        cfg.Spot,
		spotTTL:        orDefault(cfg.SpotTTL, DefaultSpotTTL),
		maxSpotAge:     orDefault(cfg.MaxSpotAge, DefaultMaxSpotAge),
		resSrc:         cfg.Reservations,
		reservationTTL: orDefault(cfg.ReservationTTL, DefaultReservationTTL),
		effective:      cfg.Effective,
		log:            log,
		spot:           map[zoneType]awsctl.SpotPrice{},
		spotFetched:    map[string]time.Time{},
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Region returns the region the book prices.
func (b *Book) Region() string { return b.region }

// Refresh fetches spot prices for instanceTypes when one of them was last
// fetched more than SpotTTL ago (or never), and reservations when the
// last fetch is older than ReservationTTL; otherwise it makes no call. On
// failure the book keeps its last good data, returns the error wrapped, and
// the next Refresh tries again.
func (b *Book) Refresh(ctx context.Context, now time.Time, instanceTypes []string) error {
	b.refreshMu.Lock()
	defer b.refreshMu.Unlock()
	return errors.Join(b.refreshSpot(ctx, now, instanceTypes), b.refreshReservations(ctx, now))
}

func (b *Book) refreshSpot(ctx context.Context, now time.Time, instanceTypes []string) error {
	if b.spotSrc == nil || len(instanceTypes) == 0 {
		return nil
	}
	due := false
	b.mu.RLock()
	for _, t := range instanceTypes {
		at, ok := b.spotFetched[t]
		due = due || !ok || now.Sub(at) >= b.spotTTL
	}
	b.mu.RUnlock()
	if !due {
		return nil
	}
	types := slices.Compact(slices.Sorted(slices.Values(instanceTypes)))
	prices, err := b.spotSrc.SpotPrices(ctx, types)
	if err != nil {
		return fmt.Errorf("spotprice: refresh spot prices: %w", err)
	}
	b.SetSpot(prices)
	b.mu.Lock()
	for _, t := range types {
		b.spotFetched[t] = now
	}
	b.mu.Unlock()
	b.log.Debug("spot prices refreshed", "region", b.region, "types", len(types), "prices", len(prices))
	return nil
}

func (b *Book) refreshReservations(ctx context.Context, now time.Time) error {
	if b.resSrc == nil {
		return nil
	}
	b.mu.RLock()
	due := !b.resFetchedOnce || now.Sub(b.resFetched) >= b.reservationTTL
	b.mu.RUnlock()
	if !due {
		return nil
	}
	res, err := b.resSrc.Reservations(ctx)
	if err != nil {
		return fmt.Errorf("spotprice: refresh reservations: %w", err)
	}
	res = slices.Clone(res)
	b.mu.Lock()
	b.reservations, b.resFetched, b.resFetchedOnce = res, now, true
	b.mu.Unlock()
	b.log.Debug("reservations refreshed", "region", b.region, "reservations", len(res))
	return nil
}

// SetSpot records spot prices, for hosts and simulations that push prices
// instead of (or besides) configuring a source. For each (type, zone) the
// record with the latest Time is kept. A record must carry its Time: one
// without counts as stale.
func (b *Book) SetSpot(prices []awsctl.SpotPrice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range prices {
		k := zoneType{p.InstanceType, p.Zone}
		if old, ok := b.spot[k]; ok && old.Time.After(p.Time) {
			continue
		}
		b.spot[k] = p
	}
}

// RefreshOnDemand asks src for the on-demand prices of instanceTypes in the
// book's region. Prices it returns replace compiled-in or earlier refreshed
// ones (configured BookConfig.OnDemand values still take precedence); types
// it does not return keep their last good price. Invalid prices are
// ignored and reported in the error.
func (b *Book) RefreshOnDemand(ctx context.Context, src OnDemandSource, instanceTypes []string) error {
	if src == nil {
		return errors.New("spotprice: refresh on-demand prices: nil source")
	}
	prices, err := src.OnDemandPrices(ctx, b.region, instanceTypes)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	good := make(map[string]float64, len(prices))
	for t, p := range prices {
		if !validPrice(p) {
			errs = append(errs, fmt.Errorf("%s: invalid price %v", t, p))
			continue
		}
		good[t] = p
	}
	if len(good) > 0 {
		b.mu.Lock()
		merged := maps.Clone(b.refreshed)
		if merged == nil {
			merged = make(map[string]float64, len(good))
		}
		maps.Copy(merged, good)
		b.refreshed = merged
		b.mu.Unlock()
	}
	b.log.Debug("on-demand prices refreshed", "region", b.region, "prices", len(good))
	if len(errs) > 0 {
		return fmt.Errorf("spotprice: refresh on-demand prices: %w", errors.Join(errs...))
	}
	return nil
}

// OnDemand returns the on-demand list price of instanceType in US dollars
// per hour: the configured override, else the last refreshed price, else
// the compiled-in one.
func (b *Book) OnDemand(instanceType string) (float64, bool) {
	if p, ok := b.overrides[instanceType]; ok {
		return p, true
	}
	b.mu.RLock()
	p, ok := b.refreshed[instanceType]
	b.mu.RUnlock()
	if ok {
		return p, true
	}
	return OnDemandPrice(b.region, instanceType)
}

// Spot returns the spot price of instanceType in zone, in US dollars per
// hour, if it is known, positive and fresh at now.
func (b *Book) Spot(instanceType, zone string, now time.Time) (float64, bool) {
	p, status := b.SpotStatus(instanceType, zone, now)
	if status != PriceOK {
		return 0, false
	}
	return p, true
}

// SpotStatus returns the latest spot price of instanceType in zone and
// whether it can be used at now. The price is returned even when it cannot
// be used, for reporting.
func (b *Book) SpotStatus(instanceType, zone string, now time.Time) (float64, PriceStatus) {
	b.mu.RLock()
	sp, ok := b.spot[zoneType{instanceType, zone}]
	b.mu.RUnlock()
	switch {
	case !ok:
		return 0, PriceMissing
	case !validPrice(sp.PricePerHour):
		return sp.PricePerHour, PriceInvalid
	case sp.Time.IsZero() || now.Sub(sp.Time) > b.maxSpotAge:
		return sp.PricePerHour, PriceStale
	}
	return sp.PricePerHour, PriceOK
}

// Reservations returns the reservations of the last successful fetch,
// including any that have ended since.
func (b *Book) Reservations() []awsctl.Reservation {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Clone(b.reservations)
}

// Effective returns what the account pays for an instance whose list price
// is listPrice, through BookConfig.Effective; without a hook it is the list
// price.
func (b *Book) Effective(instanceType string, market awsctl.Market, listPrice float64) float64 {
	if b.effective == nil {
		return listPrice
	}
	return b.effective(instanceType, market, listPrice)
}

// Risk returns the estimated monthly interruption probability of a spot
// instance of instanceType in the book's region (see [Risk]).
func (b *Book) Risk(instanceType string) (float64, bool) {
	return Risk(b.region, instanceType)
}

// Compile-time check that a Book can feed [Policy.Rank].
var _ Prices = (*Book)(nil)
