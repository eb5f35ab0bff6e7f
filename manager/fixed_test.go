package manager_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

func TestFixedDemandsItsTarget(t *testing.T) {
	f, err := manager.NewFixed("web", 3)
	require.NoError(t, err)
	assert.Equal(t, "web", f.Name())
	held := manager.State{Servers: []manager.Server{{ID: "i-1", Weight: 5}}}
	req, err := f.Demand(context.Background(), held)
	require.NoError(t, err)
	assert.Equal(t, manager.Request{Target: 3}, req, "what it holds does not change what it wants")
}

func TestFixedOptions(t *testing.T) {
	zones := map[string]int{"us-east-1a": 1, "us-east-1b": 1}
	f, err := manager.NewFixed("db", 2, manager.WithMarket(manager.OnDemandOnly), manager.WithZoneMinimums(zones))
	require.NoError(t, err)
	zones["us-east-1a"] = 7 // the manager keeps its own copy

	req, err := f.Demand(context.Background(), manager.State{})
	require.NoError(t, err)
	assert.Equal(t, manager.Request{
		Target:       2,
		Market:       manager.OnDemandOnly,
		ZoneMinimums: map[string]int{"us-east-1a": 1, "us-east-1b": 1},
	}, req)

	req.ZoneMinimums["us-east-1b"] = 9 // nor can the pool change it
	req, err = f.Demand(context.Background(), manager.State{})
	require.NoError(t, err)
	assert.Equal(t, 1, req.ZoneMinimums["us-east-1b"])
}

func TestFixedSetAtRunTime(t *testing.T) {
	f, err := manager.NewFixed("web", 3)
	require.NoError(t, err)
	require.NoError(t, f.Set(7))
	assert.Equal(t, 7, f.Target())
	req, err := f.Demand(context.Background(), manager.State{})
	require.NoError(t, err)
	assert.Equal(t, 7, req.Target)

	require.NoError(t, f.Set(0))
	assert.Equal(t, 0, f.Target())

	err = f.Set(-1)
	require.ErrorIs(t, err, manager.ErrInvalidConfig)
	assert.EqualError(t, err, `manager: fixed "web": Target must not be negative, got -1`)
	assert.Equal(t, 0, f.Target(), "a rejected Set changes nothing")
}

func TestFixedConcurrentUse(t *testing.T) {
	f, err := manager.NewFixed("web", 0)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for n := range 200 {
				_ = f.Set(i*1000 + n)
			}
		})
		wg.Go(func() {
			for range 200 {
				req, err := f.Demand(context.Background(), manager.State{})
				assert.NoError(t, err)
				assert.GreaterOrEqual(t, req.Target, 0)
				f.Notify(manager.Notice{Kind: manager.Granted})
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 199, f.Target()%1000, "the last Set of some writer wins")
}

func TestNewFixedValidates(t *testing.T) {
	for _, tc := range []struct {
		desc, name, field string
		n                 int
		opts              []manager.FixedOption
	}{
		{"empty name", "", "Name", 1, nil},
		{"long name", strings.Repeat("m", 257), "Name", 1, nil},
		{"negative target", "web", "Target", -1, nil},
		{"unknown market", "web", "Market", 1, []manager.FixedOption{manager.WithMarket(manager.SpotOnly + 1)}},
		{"negative zone minimum", "web", "ZoneMinimums", 1, []manager.FixedOption{manager.WithZoneMinimums(map[string]int{"us-east-1a": -1})}},
		{"empty zone", "web", "ZoneMinimums", 1, []manager.FixedOption{manager.WithZoneMinimums(map[string]int{"": 1})}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := manager.NewFixed(tc.name, tc.n, tc.opts...)
			require.ErrorIs(t, err, manager.ErrInvalidConfig)
			var ce *manager.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.Equal(t, "fixed", ce.Kind)
		})
	}
	_, err := manager.NewFixed(strings.Repeat("m", 256), 1)
	assert.NoError(t, err, "a name as long as a tag value allows")
}

func TestFixedWakesTheScalerOnlyWhenItsTargetRises(t *testing.T) {
	f, err := manager.NewFixed("jobs", 2)
	require.NoError(t, err)
	woken := 0
	f.SetWake(func() { woken++ })
	require.NoError(t, f.Set(1))
	require.NoError(t, f.Set(1))
	assert.Zero(t, woken)
	require.NoError(t, f.Set(4))
	assert.Equal(t, 1, woken)
}
