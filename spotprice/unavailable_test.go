package spotprice

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

var unavailableT0 = time.Date(2021, 3, 2, 12, 0, 0, 0, time.UTC)

func TestUnavailable(t *testing.T) {
	t0 := unavailableT0
	u := NewUnavailable(0)
	u.Mark(t0, "m5.large", "us-east-1a", awsctl.MarketSpot)

	until, ok := u.IsUnavailable(t0.Add(time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot)
	assert.True(t, ok)
	assert.Equal(t, t0.Add(DefaultUnavailableTTL), until)

	// Other markets, zones and types are unaffected.
	_, ok = u.IsUnavailable(t0, "m5.large", "us-east-1a", awsctl.MarketOnDemand)
	assert.False(t, ok)
	_, ok = u.IsUnavailable(t0, "m5.large", "us-east-1b", awsctl.MarketSpot)
	assert.False(t, ok)
	_, ok = u.IsUnavailable(t0, "c5.large", "us-east-1a", awsctl.MarketSpot)
	assert.False(t, ok)

	// The entry expires after the TTL.
	_, ok = u.IsUnavailable(t0.Add(DefaultUnavailableTTL), "m5.large", "us-east-1a", awsctl.MarketSpot)
	assert.False(t, ok)
}

func TestUnavailableMarkUntilKeepsLaterExpiry(t *testing.T) {
	t0 := unavailableT0
	u := NewUnavailable(time.Minute)
	u.MarkUntil(t0, t0.Add(10*time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot)
	u.Mark(t0.Add(time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot) // would end at t0+2m
	until, ok := u.IsUnavailable(t0.Add(5*time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot)
	assert.True(t, ok)
	assert.Equal(t, t0.Add(10*time.Minute), until)

	// A later Mark extends.
	u.Mark(t0.Add(10*time.Minute), "m5.large", "us-east-1a", awsctl.MarketSpot)
	_, ok = u.IsUnavailable(t0.Add(10*time.Minute+30*time.Second), "m5.large", "us-east-1a", awsctl.MarketSpot)
	assert.True(t, ok)
}

func TestUnavailableDropsExpiredEntries(t *testing.T) {
	t0 := unavailableT0
	u := NewUnavailable(time.Minute)
	for _, zone := range []string{"a", "b", "c"} {
		u.Mark(t0, "m5.large", zone, awsctl.MarketSpot)
	}
	u.MarkUntil(t0, t0, "m5.large", "d", awsctl.MarketSpot) // already over: not stored
	assert.Len(t, u.until, 3)
	u.Mark(t0.Add(time.Minute), "m5.large", "a", awsctl.MarketOnDemand)
	assert.Len(t, u.until, 1, "expired entries are dropped when marking")
}

func TestNilUnavailable(t *testing.T) {
	var u *Unavailable
	u.Mark(unavailableT0, "m5.large", "us-east-1a", awsctl.MarketSpot)
	_, ok := u.IsUnavailable(unavailableT0, "m5.large", "us-east-1a", awsctl.MarketSpot)
	assert.False(t, ok)
}

func TestUnavailableConcurrentUse(t *testing.T) {
	u := NewUnavailable(time.Hour)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			zone := string(rune('a' + i))
			for j := range 100 {
				now := unavailableT0.Add(time.Duration(j) * time.Second)
				u.Mark(now, "m5.large", zone, awsctl.MarketSpot)
				_, ok := u.IsUnavailable(now, "m5.large", zone, awsctl.MarketSpot)
				assert.True(t, ok)
			}
		})
	}
	wg.Wait()
}
