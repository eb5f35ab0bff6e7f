package spotprice

import (
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// DefaultUnavailableTTL is how long an offering marked with
// [Unavailable.Mark] is avoided. EC2 capacity shortages usually last
// minutes; a short TTL retries soon without hammering a zone that is out.
const DefaultUnavailableTTL = 3 * time.Minute

type offeringKey struct {
	instanceType, zone string
	market             awsctl.Market
}

// Unavailable remembers offerings (instance type, zone, market) that EC2
// recently could not fill, so that launches avoid them until the entry
// expires. The zero value is not usable; create one with [NewUnavailable].
// A nil *Unavailable holds nothing and ignores marks. It is safe for
// concurrent use.
type Unavailable struct {
	ttl   time.Duration
	mu    sync.Mutex
	until map[offeringKey]time.Time
}

// NewUnavailable returns an empty cache whose entries last ttl; ttl <= 0
// means DefaultUnavailableTTL.
func NewUnavailable(ttl time.Duration) *Unavailable {
	if ttl <= 0 {
		ttl = DefaultUnavailableTTL
	}
	return &Unavailable{ttl: ttl, until: map[offeringKey]time.Time{}}
}

// Mark records that the offering is unavailable from now for the cache's
// TTL.
func (u *Unavailable) Mark(now time.Time, instanceType, zone string, market awsctl.Market) {
	if u == nil {
		return
	}
	u.MarkUntil(now, now.Add(u.ttl), instanceType, zone, market)
}

// MarkUntil records that the offering is unavailable until until, for
// errors that say how long they last. An existing later expiry is kept.
// now is used to drop expired entries.
func (u *Unavailable) MarkUntil(now, until time.Time, instanceType, zone string, market awsctl.Market) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// Expired entries are dropped here, where the map grows, so that it
	// stays as small as the set of offerings currently out.
	for k, t := range u.until {
		if !now.Before(t) {
			delete(u.until, k)
		}
	}
	k := offeringKey{instanceType, zone, market}
	if old, ok := u.until[k]; ok && old.After(until) {
		return
	}
	if now.Before(until) {
		u.until[k] = until
	}
}

// IsUnavailable reports whether the offering is marked unavailable at now,
// and until when.
func (u *Unavailable) IsUnavailable(now time.Time, instanceType, zone string, market awsctl.Market) (time.Time, bool) {
	if u == nil {
		return time.Time{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	until, ok := u.until[offeringKey{instanceType, zone, market}]
	if !ok || !now.Before(until) {
		return time.Time{}, false
	}
	return until, true
}
