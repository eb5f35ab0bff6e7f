package spotprice_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// fakeSpot is a spot price source that counts its calls.
type fakeSpot struct {
	mu     sync.Mutex
	prices []awsctl.SpotPrice
	err    error
	calls  int
	asked  [][]string
}

func (f *fakeSpot) SpotPrices(_ context.Context, types []string) ([]awsctl.SpotPrice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.asked = append(f.asked, slices.Clone(types))
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.prices), nil
}

func (f *fakeSpot) set(prices []awsctl.SpotPrice, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prices, f.err = prices, err
}

func (f *fakeSpot) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestNewBookValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   spotprice.BookConfig
		field string
	}{
		{"missing region", spotprice.BookConfig{}, "BookConfig.Region"},
		{"zero override", spotprice.BookConfig{Region: "us-east-1", OnDemand: map[string]float64{"m5.large": 0}}, `BookConfig.OnDemand["m5.large"]`},
		{"negative override", spotprice.BookConfig{Region: "us-east-1", OnDemand: map[string]float64{"m5.large": -1}}, `BookConfig.OnDemand["m5.large"]`},
		{"NaN override", spotprice.BookConfig{Region: "us-east-1", OnDemand: map[string]float64{"m5.large": math.NaN()}}, `BookConfig.OnDemand["m5.large"]`},
		{"empty type override", spotprice.BookConfig{Region: "us-east-1", OnDemand: map[string]float64{"": 1}}, `BookConfig.OnDemand[""]`},
		{"negative spot TTL", spotprice.BookConfig{Region: "us-east-1", SpotTTL: -time.Second}, "BookConfig.SpotTTL"},
		{"negative max spot age", spotprice.BookConfig{Region: "us-east-1", MaxSpotAge: -time.Second}, "BookConfig.MaxSpotAge"},
		{"negative reservation TTL", spotprice.BookConfig{Region: "us-east-1", ReservationTTL: -time.Second}, "BookConfig.ReservationTTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			book, err := spotprice.NewBook(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, book)
			assert.ErrorIs(t, err, spotprice.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestBookOnDemandPrecedence(t *testing.T) {
	book, err := spotprice.NewBook(spotprice.BookConfig{
		Region:   "us-east-1",
		OnDemand: map[string]float64{"m5.large": 0.09, "x9.huge": 2},
	})
	require.NoError(t, err)

	check := func(instanceType string, want float64, wantOK bool) {
		t.Helper()
		got, ok := book.OnDemand(instanceType)
		assert.Equal(t, wantOK, ok, instanceType)
		assert.Equal(t, want, got, instanceType)
	}
	check("m5.large", 0.09, true)  // override beats compiled 0.096
	check("c5.large", 0.085, true) // compiled
	check("x9.huge", 2, true)      // addition
	check("nope.small", 0, false)

	src := fakeOnDemand{prices: map[string]float64{"m5.large": 0.1, "c5.large": 0.087}}
	require.NoError(t, book.RefreshOnDemand(t.Context(), src, []string{"m5.large", "c5.large"}))
	check("m5.large", 0.09, true)  // the configured override still wins
	check("c5.large", 0.087, true) // refreshed beats compiled
}

func TestBookRegionSelectsCompiledPrices(t *testing.T) {
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "eu-west-1"})
	require.NoError(t, err)
	p, ok := book.OnDemand("m5.large")
	assert.True(t, ok)
	assert.Equal(t, 0.107, p)

	book, err = spotprice.NewBook(spotprice.BookConfig{Region: "ap-south-1"})
	require.NoError(t, err)
	_, ok = book.OnDemand("m5.large")
	assert.False(t, ok, "no compiled prices outside us-east-1 and eu-west-1")
}

type fakeOnDemand struct {
	prices map[string]float64
	err    error
}

func (f fakeOnDemand) OnDemandPrices(context.Context, string, []string) (map[string]float64, error) {
	return f.prices, f.err
}

func TestBookRefreshOnDemandKeepsLastGoodData(t *testing.T) {
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	require.NoError(t, err)
	types := []string{"m5.large", "c5.large", "x9.huge"}

	require.NoError(t, book.RefreshOnDemand(t.Context(), fakeOnDemand{prices: map[string]float64{"m5.large": 0.1, "x9.huge": 3}}, types))

	boom := errors.New("price list unavailable")
	err = book.RefreshOnDemand(t.Context(), fakeOnDemand{err: boom}, types)
	require.ErrorIs(t, err, boom)
	p, _ := book.OnDemand("m5.large")
	assert.Equal(t, 0.1, p, "failed refresh keeps the last good price")

	// Partial answer: good prices are taken, bad ones reported and ignored.
	err = book.RefreshOnDemand(t.Context(), fakeOnDemand{
		prices: map[string]float64{"c5.large": 0.09, "x9.huge": 0, "m5.large": math.Inf(1)},
		err:    boom,
	}, types)
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "x9.huge")
	p, _ = book.OnDemand("c5.large")
	assert.Equal(t, 0.09, p)
	p, _ = book.OnDemand("x9.huge")
	assert.Equal(t, 3.0, p, "zero price ignored, last good one kept")
	p, _ = book.OnDemand("m5.large")
	assert.Equal(t, 0.1, p, "infinite price ignored, last good one kept")

	assert.Error(t, book.RefreshOnDemand(t.Context(), nil, types))
}

func TestBookRefreshSpotHonoursTTL(t *testing.T) {
	src := &fakeSpot{prices: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0)}}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: src})
	require.NoError(t, err)
	types := []string{"m5.large", "m5.large"}

	require.NoError(t, book.Refresh(t.Context(), t0, types))
	assert.Equal(t, 1, src.callCount())
	assert.Equal(t, []string{"m5.large"}, src.asked[0], "types are asked once each")
	p, ok := book.Spot("m5.large", "us-east-1a", t0)
	require.True(t, ok)
	assert.Equal(t, 0.031, p)

	require.NoError(t, book.Refresh(t.Context(), t0.Add(spotprice.DefaultSpotTTL-time.Second), types))
	assert.Equal(t, 1, src.callCount(), "no call within the TTL")

	// A type not fetched yet cannot wait for the TTL.
	require.NoError(t, book.Refresh(t.Context(), t0.Add(time.Minute), []string{"m5.large", "c5.large"}))
	assert.Equal(t, 2, src.callCount())
	assert.Equal(t, []string{"c5.large", "m5.large"}, src.asked[1])

	// m5.large was fetched again at t0+1m, so the TTL runs from there.
	require.NoError(t, book.Refresh(t.Context(), t0.Add(spotprice.DefaultSpotTTL), types))
	assert.Equal(t, 2, src.callCount())
	require.NoError(t, book.Refresh(t.Context(), t0.Add(time.Minute+spotprice.DefaultSpotTTL), types))
	assert.Equal(t, 3, src.callCount())

	// The source fails: the error is returned wrapped, the old price stays,
	// and the next Refresh tries again.
	boom := &awsctl.APIError{Op: "DescribeSpotPriceHistory", Code: "RequestLimitExceeded", Kind: awsctl.ErrThrottled}
	src.set(nil, boom)
	now := t0.Add(20 * time.Minute)
	err = book.Refresh(t.Context(), now, types)
	require.Error(t, err)
	assert.ErrorIs(t, err, awsctl.ErrThrottled)
	var apiErr *awsctl.APIError
	assert.ErrorAs(t, err, &apiErr)
	p, ok = book.Spot("m5.large", "us-east-1a", now)
	assert.True(t, ok)
	assert.Equal(t, 0.031, p)

	src.set([]awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.04, now)}, nil)
	require.NoError(t, book.Refresh(t.Context(), now.Add(time.Second), types))
	assert.Equal(t, 5, src.callCount(), "a failed fetch is retried on the next Refresh")
	p, _ = book.Spot("m5.large", "us-east-1a", now)
	assert.Equal(t, 0.04, p)
}

func TestBookRefreshCustomTTLs(t *testing.T) {
	src := &fakeSpot{}
	res := &fakeReservations{res: []awsctl.Reservation{{InstanceType: "m5.large", Count: 1}}}
	book, err := spotprice.NewBook(spotprice.BookConfig{
		Region: "us-east-1", Spot: src, SpotTTL: time.Minute,
		Reservations: res, ReservationTTL: 10 * time.Minute,
	})
	require.NoError(t, err)
	types := []string{"m5.large"}
	for _, step := range []struct {
		at                time.Duration
		spotCalls, rCalls int
	}{
		{0, 1, 1},
		{59 * time.Second, 1, 1},
		{time.Minute, 2, 1},
		{9 * time.Minute, 3, 1},
		{10 * time.Minute, 4, 2},
	} {
		require.NoError(t, book.Refresh(t.Context(), t0.Add(step.at), types))
		assert.Equal(t, step.spotCalls, src.callCount(), "spot calls at %v", step.at)
		assert.Equal(t, step.rCalls, res.calls, "reservation calls at %v", step.at)
	}
}

func TestBookRefreshReservationsKeepsLastGoodData(t *testing.T) {
	res := &fakeReservations{res: []awsctl.Reservation{{InstanceType: "m5.large", Count: 2}}}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Reservations: res})
	require.NoError(t, err)

	require.NoError(t, book.Refresh(t.Context(), t0, nil))
	assert.Equal(t, res.res, book.Reservations())

	require.NoError(t, book.Refresh(t.Context(), t0.Add(30*time.Minute), nil))
	assert.Equal(t, 1, res.calls, "no call within the TTL")

	boom := errors.New("boom")
	res.err = boom
	err = book.Refresh(t.Context(), t0.Add(spotprice.DefaultReservationTTL), nil)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 2, res.calls)
	assert.Equal(t, []awsctl.Reservation{{InstanceType: "m5.large", Count: 2}}, book.Reservations())

	// Callers cannot change the book through the returned slice.
	book.Reservations()[0].Count = 99
	assert.Equal(t, 2, book.Reservations()[0].Count)
}

func TestBookRefreshReportsBothFailures(t *testing.T) {
	spotErr, resErr := errors.New("spot down"), errors.New("reservations down")
	book, err := spotprice.NewBook(spotprice.BookConfig{
		Region:       "us-east-1",
		Spot:         &fakeSpot{err: spotErr},
		Reservations: &fakeReservations{err: resErr},
	})
	require.NoError(t, err)
	err = book.Refresh(t.Context(), t0, []string{"m5.large"})
	assert.ErrorIs(t, err, spotErr)
	assert.ErrorIs(t, err, resErr)
}

func TestBookWithoutSourcesKnowsNoSpot(t *testing.T) {
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	require.NoError(t, err)
	require.NoError(t, book.Refresh(t.Context(), t0, []string{"m5.large"}))
	_, status := book.SpotStatus("m5.large", "us-east-1a", t0)
	assert.Equal(t, spotprice.PriceMissing, status)
	assert.Empty(t, book.Reservations())
}

func TestBookSpotStatus(t *testing.T) {
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", MaxSpotAge: time.Hour})
	require.NoError(t, err)
	book.SetSpot([]awsctl.SpotPrice{
		spotAt("m5.large", "fresh", 0.031, t0.Add(-time.Hour)),
		spotAt("m5.large", "stale", 0.031, t0.Add(-time.Hour-time.Second)),
		spotAt("m5.large", "untimed", 0.031, time.Time{}),
		spotAt("m5.large", "zero", 0, t0),
		spotAt("m5.large", "negative", -0.031, t0),
		spotAt("m5.large", "nan", math.NaN(), t0),
		spotAt("m5.large", "future", 0.031, t0.Add(time.Minute)),
	})
	for zone, want := range map[string]spotprice.PriceStatus{
		"fresh":    spotprice.PriceOK,
		"future":   spotprice.PriceOK,
		"stale":    spotprice.PriceStale,
		"untimed":  spotprice.PriceStale,
		"zero":     spotprice.PriceInvalid,
		"negative": spotprice.PriceInvalid,
		"nan":      spotprice.PriceInvalid,
		"missing":  spotprice.PriceMissing,
	} {
		_, status := book.SpotStatus("m5.large", zone, t0)
		assert.Equal(t, want, status, zone)
		_, ok := book.Spot("m5.large", zone, t0)
		assert.Equal(t, want == spotprice.PriceOK, ok, zone)
	}
}

func TestBookSetSpotKeepsNewest(t *testing.T) {
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	require.NoError(t, err)
	book.SetSpot([]awsctl.SpotPrice{
		spotAt("m5.large", "us-east-1a", 0.031, t0),
		spotAt("m5.large", "us-east-1a", 0.029, t0.Add(-time.Hour)), // older, same batch
	})
	book.SetSpot([]awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.05, t0.Add(-time.Minute))}) // older, later batch
	p, _ := book.Spot("m5.large", "us-east-1a", t0)
	assert.Equal(t, 0.031, p)

	book.SetSpot([]awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.033, t0.Add(time.Minute))})
	p, _ = book.Spot("m5.large", "us-east-1a", t0.Add(time.Minute))
	assert.Equal(t, 0.033, p)
}

func TestBookConcurrentUse(t *testing.T) {
	src := &fakeSpot{prices: []awsctl.SpotPrice{spotAt("m5.large", "us-east-1a", 0.031, t0)}}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1", Spot: src, SpotTTL: time.Second})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				now := t0.Add(time.Duration(i*50+j) * time.Second)
				assert.NoError(t, book.Refresh(t.Context(), now, []string{"m5.large"}))
				book.SetSpot([]awsctl.SpotPrice{spotAt("m5.large", "us-east-1b", 0.03, now)})
				book.Spot("m5.large", "us-east-1a", now)
				book.OnDemand("m5.large")
				spotprice.Policy{}.Rank(spotprice.Input{Now: now, Prices: book, AllowSpot: true,
					Offerings: []awsctl.Offering{offering("m5.large", "us-east-1a", 1)}})
			}
		})
	}
	wg.Wait()
	assert.Positive(t, src.callCount())
}
