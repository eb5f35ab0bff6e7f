package manager

import (
	"context"
	"fmt"
	"maps"
	"sync/atomic"
)

// Fixed is a manager that wants a set number of capacity units, changed only
// by calling [Fixed.Set]. It suits a steady service, or a host that computes
// its demand elsewhere. It is safe for concurrent use: the host calls Set
// and Target from any goroutine while the pool calls Demand and Notify from
// its pass.
type Fixed struct {
	name         string
	target       atomic.Int64
	market       MarketPreference
	zoneMinimums map[string]int
	wake         atomic.Pointer[func()]
}

var _ Manager = (*Fixed)(nil)

// FixedOption configures a [Fixed] manager in [NewFixed].
type FixedOption func(*Fixed)

// WithMarket restricts the markets of the manager's servers; the default is
// AnyMarket.
func WithMarket(p MarketPreference) FixedOption {
	return func(f *Fixed) { f.market = p }
}

// WithZoneMinimums asks for at least this much of the target in each zone
// (see [Request].ZoneMinimums); the default is none. The map is copied.
func WithZoneMinimums(m map[string]int) FixedOption {
	return func(f *Fixed) { f.zoneMinimums = maps.Clone(m) }
}

// NewFixed returns a manager named name that wants n capacity units. The
// name must be 1 to [MaxNameLength] bytes of UTF-8 and stay the same across
// restarts; n must not be negative.
func NewFixed(name string, n int, opts ...FixedOption) (*Fixed, error) {
	if err := validateName("fixed", name); err != nil {
		return nil, err
	}
	f := &Fixed{name: name}
	if err := f.Set(n); err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(f)
	}
	if err := validateRequestParts("fixed", name, f.market, f.zoneMinimums); err != nil {
		return nil, err
	}
	return f, nil
}

// Name returns the manager's name.
func (f *Fixed) Name() string { return f.name }

// Set changes the target to n capacity units, from the next pass on. A
// negative n is an error and leaves the target as it was.
func (f *Fixed) Set(n int) error {
	if n < 0 {
		return &ConfigError{Kind: "fixed", Name: f.name, Field: "Target", Problem: fmt.Sprintf("must not be negative, got %d", n)}
	}
	if old := f.target.Swap(int64(n)); int64(n) > old {
		if w := f.wake.Load(); w != nil {
			(*w)()
		}
	}
	return nil
}

// SetWake registers the scaler's wake-up, called when Set raises the
// target. It implements [Waker].
func (f *Fixed) SetWake(wake func()) { f.wake.Store(&wake) }

// Target returns the capacity units the manager wants.
func (f *Fixed) Target() int { return int(f.target.Load()) }

// Demand asks for the target, whatever the manager holds.
func (f *Fixed) Demand(context.Context, State) (Request, error) {
	return Request{Target: f.Target(), Market: f.market, ZoneMinimums: maps.Clone(f.zoneMinimums)}, nil
}

// DemandIsInstant reports true: a fixed demand is read from memory.
func (f *Fixed) DemandIsInstant() bool { return true }

// Notify does nothing: a fixed demand does not depend on what happens to
// the servers.
func (f *Fixed) Notify(Notice) {}
