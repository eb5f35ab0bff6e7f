package ec2sim_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

const (
	usEast1Trace = "spot_us-east-1_2021-03-02_2021-03-08.csv"
	euWest1Trace = "spot_eu-west-1_2021-07-30_2021-08-02.csv"
)

func readTrace(t testing.TB, name string) []awsctl.SpotPrice {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	prices, err := ec2sim.ReadSpotCSV(f)
	require.NoError(t, err)
	return prices
}

func TestReadSpotCSVTestdata(t *testing.T) {
	us := readTrace(t, usEast1Trace)
	require.Len(t, us, 61)
	assert.Equal(t, awsctl.SpotPrice{InstanceType: "c5.large", Zone: "us-east-1b", PricePerHour: 0.0325,
		Time: time.Date(2021, 3, 2, 3, 19, 33, 0, time.UTC)}, us[0])
	assert.Equal(t, awsctl.SpotPrice{InstanceType: "c5.large", Zone: "us-east-1c", PricePerHour: 0.0364,
		Time: time.Date(2021, 3, 8, 21, 56, 40, 0, time.UTC)}, us[60])
	series := map[string]int{}
	for _, p := range us {
		series[p.InstanceType+" "+p.Zone]++
	}
	assert.Len(t, series, 6, "c5.large and m5.large in three zones")

	eu := readTrace(t, euWest1Trace)
	require.Len(t, eu, 222)
	assert.Equal(t, awsctl.SpotPrice{InstanceType: "g4dn.xlarge", Zone: "eu-west-1a", PricePerHour: 0.1761,
		Time: time.Date(2021, 7, 30, 7, 7, 0, 0, time.UTC)}, eu[0])
	for _, prices := range [][]awsctl.SpotPrice{us, eu} {
		for i, p := range prices {
			assert.Equal(t, time.UTC, p.Time.Location())
			if i > 0 {
				assert.False(t, p.Time.Before(prices[i-1].Time), "rows are in time order")
			}
		}
	}
}

func TestReadSpotCSVRejectsMalformedRows(t *testing.T) {
	const header = "timestamp,region,availability_zone,instance_type,product_description,price_usd_per_hour\n"
	const good = "2021-03-02T01:56:13Z,us-east-1,us-east-1b,m5a.xlarge,Linux/UNIX,0.091700\n"
	cases := []struct {
		name   string
		input  string
		line   int
		column string
	}{
		{"empty", "", 1, ""},
		{"renamed column", strings.Replace(header, "timestamp", "time", 1) + good, 1, "timestamp"},
		{"missing column", strings.Replace(header, ",price_usd_per_hour", "", 1) + good, 1, "price_usd_per_hour"},
		{"extra column", strings.Replace(header, "\n", ",note\n", 1) + good, 1, ""},
		{"short row", header + good + "2021-03-02T01:56:13Z,us-east-1,us-east-1b,m5a.xlarge,0.0917\n", 3, ""},
		{"bad time", header + good + good + strings.Replace(good, "2021-03-02T01:56:13Z", "2021-03-02 01:56", 1), 4, "timestamp"},
		{"bad region", header + strings.Replace(good, ",us-east-1,", ",US East,", 1), 2, "region"},
		{"zone of another region", header + strings.Replace(good, "us-east-1b", "eu-west-1b", 1), 2, "availability_zone"},
		{"no instance type", header + strings.Replace(good, "m5a.xlarge", "", 1), 2, "instance_type"},
		{"no product", header + strings.Replace(good, "Linux/UNIX", " ", 1), 2, "product_description"},
		{"price not a number", header + strings.Replace(good, "0.091700", "cheap", 1), 2, "price_usd_per_hour"},
		{"zero price", header + strings.Replace(good, "0.091700", "0", 1), 2, "price_usd_per_hour"},
		{"negative price", header + strings.Replace(good, "0.091700", "-0.09", 1), 2, "price_usd_per_hour"},
		{"NaN price", header + strings.Replace(good, "0.091700", "NaN", 1), 2, "price_usd_per_hour"},
		{"infinite price", header + strings.Replace(good, "0.091700", "+Inf", 1), 2, "price_usd_per_hour"},
		{"broken quote", header + good + `2021-03-02T01:56:13Z,"us-east-1,us-east-1b` + "\n", 3, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prices, err := ec2sim.ReadSpotCSV(strings.NewReader(c.input))
			assert.Nil(t, prices)
			var ce *ec2sim.CSVError
			require.True(t, errors.As(err, &ce), "error %v is not a *CSVError", err)
			assert.Equal(t, c.line, ce.Line, err.Error())
			assert.Equal(t, c.column, ce.Column, err.Error())
			assert.Contains(t, err.Error(), "line ")
		})
	}

	// A byte order mark and a header alone are fine.
	prices, err := ec2sim.ReadSpotCSV(strings.NewReader("\ufeff" + header))
	require.NoError(t, err)
	assert.Empty(t, prices)
}
