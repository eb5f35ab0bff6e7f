package pool_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// tagged is a role whose launch spec carries the given extra tags.
type tagged struct {
	stub
	tags map[string]string
}

func (r tagged) LaunchSpec() awsctl.LaunchSpec {
	return awsctl.LaunchSpec{ImageID: "ami-1", Tags: r.tags}
}

func TestNewNamesEveryBadField(t *testing.T) {
	good := func() pool.Config {
		return pool.Config{Name: "p", Role: stub{}, Managers: []manager.Manager{&want{name: "m"}},
			Types: []pool.InstanceType{{Name: "m5.large"}}, Zones: []string{"z1"}}
	}
	b, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	require.NoError(t, err)
	cases := []struct {
		field  string
		mutate func(*pool.Config)
	}{
		{"Name", func(c *pool.Config) { c.Name = "" }},
		{"Name", func(c *pool.Config) { c.Name = string(make([]byte, 257)) }},
		{"Role", func(c *pool.Config) { c.Role = nil }},
		{"Role.LaunchSpec().Tags", func(c *pool.Config) { c.Role = tagged{tags: map[string]string{"ec2autoscale:x": "1"}} }},
		{"Role.LaunchSpec().Tags", func(c *pool.Config) { c.Role = tagged{tags: map[string]string{string(make([]byte, 129)): "1"}} }},
		{"Managers", func(c *pool.Config) { c.Managers = nil }},
		{"Managers[0]", func(c *pool.Config) { c.Managers = []manager.Manager{nil} }},
		{"Managers[1]", func(c *pool.Config) { c.Managers = append(c.Managers, &want{name: "m"}) }},
		{"Managers[0]", func(c *pool.Config) { c.Managers = []manager.Manager{&want{name: ""}} }},
		{"Types", func(c *pool.Config) { c.Types = nil }},
		{"Types[0].Name", func(c *pool.Config) { c.Types = []pool.InstanceType{{}} }},
		{"Types[1]", func(c *pool.Config) { c.Types = append(c.Types, pool.InstanceType{Name: "m5.large"}) }},
		{"Types[0].Weight", func(c *pool.Config) { c.Types[0].Weight = -2 }},
		{"Zones", func(c *pool.Config) { c.Zones = nil }},
		{"Min", func(c *pool.Config) { c.Min = -1 }},
		{"Max", func(c *pool.Config) { c.Max = -1 }},
		{"Min", func(c *pool.Config) { c.Min, c.Max = 3, 2 }},
		{"WindDownTimeout", func(c *pool.Config) { c.WindDownTimeout = -time.Second }},
		{"ProvisionTimeout", func(c *pool.Config) { c.ProvisionTimeout = -time.Second }},
		{"HookTimeout", func(c *pool.Config) { c.HookTimeout = -time.Second }},
		{"LaunchGrace", func(c *pool.Config) { c.LaunchGrace = -time.Second }},
		{"LaunchBatch", func(c *pool.Config) { c.LaunchBatch = -1 }},
		{"Billing", func(c *pool.Config) { c.Billing = 7 }},
		{"OnWindDownTimeout", func(c *pool.Config) { c.OnWindDownTimeout = 7 }},
		{"Market", func(c *pool.Config) { c.Market = 7 }},
		{"Prices", func(c *pool.Config) { c.Market = pool.FastStart }},
		{"Policy", func(c *pool.Config) { c.Policy.SpotRatio = 2 }},
		{"MaxSpotShare", func(c *pool.Config) { c.MaxSpotShare = 1.5 }},
		{"Replace", func(c *pool.Config) { c.Replace.Overlap = -time.Minute }},
		{"MinimumSpot.Manager", func(c *pool.Config) { c.Prices = b; c.MinimumSpot = &pool.MinimumSpot{Manager: "nobody"} }},
		{"MinimumSpot.Capacity", func(c *pool.Config) { c.Prices = b; c.MinimumSpot = &pool.MinimumSpot{Manager: "m", Capacity: -1} }},
		{"MinimumSpot", func(c *pool.Config) {
			c.Prices = b
			c.MinimumSpot = &pool.MinimumSpot{Manager: "m", AddBelow: 0.5, KeepBelow: 0.4}
		}},
		{"Prices", func(c *pool.Config) { c.MinimumSpot = &pool.MinimumSpot{Manager: "m"} }},
	}
	for _, tc := range cases {
		cfg := good()
		tc.mutate(&cfg)
		_, err := pool.New(cfg)
		if assert.Error(t, err, tc.field) {
			assert.True(t, errors.Is(err, pool.ErrInvalidConfig), "%v", err)
			assert.Contains(t, err.Error(), tc.field+":", "error names the field")
		}
	}
	_, err = pool.New(good())
	require.NoError(t, err, "the good config is good")
}
