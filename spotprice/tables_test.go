package spotprice

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompiledTablesParse(t *testing.T) {
	tb, err := compiledTables()
	require.NoError(t, err)
	// 22 instance types in each of us-east-1 and eu-west-1.
	assert.Len(t, tb.onDemand, 44)
	assert.Len(t, tb.buckets, 44)
}

func TestOnDemandPrice(t *testing.T) {
	tests := []struct {
		region, instanceType string
		want                 float64
		ok                   bool
	}{
		{"us-east-1", "m5.large", 0.096, true},
		{"us-east-1", "p3.2xlarge", 3.06, true},
		{"eu-west-1", "c6i.large", 0.0912, true},
		{"eu-west-1", "g5.xlarge", 1.123, true},
		{"us-west-2", "m5.large", 0, false},
		{"us-east-1", "m5.24xlarge", 0, false},
	}
	for _, tt := range tests {
		got, ok := OnDemandPrice(tt.region, tt.instanceType)
		assert.Equal(t, tt.ok, ok, "%s %s", tt.region, tt.instanceType)
		assert.Equal(t, tt.want, got, "%s %s", tt.region, tt.instanceType)
	}
}

func TestInterruptionBucketIsLatestSnapshot(t *testing.T) {
	// us-east-1 m5.large was "<5%" in 2021 and "10-15%" in 2024; the
	// compiled table holds the 2025-06-28 snapshot.
	b, ok := InterruptionBucket("us-east-1", "m5.large")
	require.True(t, ok)
	assert.Equal(t, Bucket15To20, b)
	b, ok = InterruptionBucket("eu-west-1", "p3.2xlarge")
	require.True(t, ok)
	assert.Equal(t, BucketOver20, b)
	_, ok = InterruptionBucket("us-west-2", "m5.large")
	assert.False(t, ok)

	risk, ok := Risk("us-east-1", "c5.large")
	require.True(t, ok)
	assert.Equal(t, 0.025, risk)
	_, ok = Risk("us-east-1", "nope")
	assert.False(t, ok)
}

func TestBucket(t *testing.T) {
	tests := []struct {
		b     Bucket
		name  string
		month float64
	}{
		{BucketUnder5, "<5%", 0.025},
		{Bucket5To10, "5-10%", 0.075},
		{Bucket10To15, "10-15%", 0.125},
		{Bucket15To20, "15-20%", 0.175},
		{BucketOver20, ">20%", 0.25},
		{Bucket(5), "Bucket(5)", 0},
		{Bucket(-1), "Bucket(-1)", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.name, tt.b.String())
		assert.Equal(t, tt.month, tt.b.MonthlyInterruptionProbability(), tt.name)
	}
}

func TestParseAdvisorKeepsLatestSnapshotAndReportsBadRows(t *testing.T) {
	data := `# comment
snapshot_date,region,instance_type,interruption_bucket,interruption_range
2025-06-28,us-east-1,m5.large,3,15-20%
2021-02-10,us-east-1,m5.large,0,<5%
2021-02-10,us-east-1,c5.large,7,?
2021-02-10,us-east-1,r5.large,x,?
`
	got, err := parseAdvisor(data)
	assert.ErrorContains(t, err, "c5.large")
	assert.ErrorContains(t, err, "r5.large")
	assert.Equal(t, map[regionType]Bucket{{"us-east-1", "m5.large"}: Bucket15To20}, got)
}

func TestParseOnDemandReportsBadRows(t *testing.T) {
	data := `region,instance_type,vcpu,memory_gib,ondemand_usd_per_hour
us-east-1,m5.large,2,8,0.096
us-east-1,c5.large,2,4,0
us-east-1,r5.large,2,16,abc
`
	got, err := parseOnDemand(data)
	assert.ErrorContains(t, err, "c5.large")
	assert.ErrorContains(t, err, "r5.large")
	assert.Equal(t, map[regionType]float64{{"us-east-1", "m5.large"}: 0.096}, got)

	_, err = parseOnDemand("region,instance_type\nus-east-1,m5.large\n")
	assert.ErrorContains(t, err, "ondemand_usd_per_hour")
}
