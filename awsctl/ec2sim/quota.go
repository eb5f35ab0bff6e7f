package ec2sim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// VcpuQuota caps the vCPUs of the live (pending or running) instances of
// one quota bucket in one market, as EC2's per-account vCPU quotas do:
// "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", "All
// G and VT Spot Instance Requests", and so on. Each market has quotas of
// its own, and so has each bucket.
type VcpuQuota struct {
	Market awsctl.Market
	// Bucket is a bucket as QuotaBucket names it: "standard", "f", "g"
	// (G and VT), "inf", "p", "x", "dl", "trn", "hpc" or "high-memory".
	Bucket string
	// VCPUs is the quota; 0 allows nothing in the bucket.
	VCPUs int
}

// QuotaBucket returns the vCPU quota bucket of instanceType: "standard" for
// the A, C, D, H, I, M, R, T and Z families, "g" for G and VT, "high-memory"
// for the u- types, else the family's letters ("p", "inf", "trn", ...).
func QuotaBucket(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	if strings.HasPrefix(family, "u-") || strings.HasPrefix(family, "u7") {
		return "high-memory"
	}
	letters := family
	if i := strings.IndexFunc(family, func(r rune) bool { return r >= '0' && r <= '9' }); i > 0 {
		letters = family[:i]
	}
	switch letters {
	case "a", "c", "d", "h", "i", "im", "is", "m", "r", "t", "z":
		return "standard"
	case "g", "vt":
		return "g"
	}
	return letters
}

// vcpus returns the vCPUs of instanceType: Config.VCPUs if it lists the
// type, else the usual figure for its size (2 for large, 4 per xlarge, 2
// for the sizes below large, 96 for metal).
func (c Config) vcpus(instanceType string) int {
	if n, ok := c.VCPUs[instanceType]; ok {
		return n
	}
	_, size, _ := strings.Cut(instanceType, ".")
	switch {
	case size == "large":
		return 2
	case size == "xlarge":
		return 4
	case strings.HasSuffix(size, "xlarge"):
		if n, err := strconv.Atoi(strings.TrimSuffix(size, "xlarge")); err == nil && n > 0 {
			return 4 * n
		}
	case strings.HasPrefix(size, "metal"):
		return 96
	}
	return 2
}

func (c *Config) validateQuotas() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	seen := map[[2]string]bool{}
	for i, q := range c.VcpuQuotas {
		field := fmt.Sprintf("VcpuQuotas[%d]", i)
		key := [2]string{string(q.Market), q.Bucket}
		switch {
		case !q.Market.Valid():
			return bad(field, "market %q is neither %q nor %q", q.Market, awsctl.MarketOnDemand, awsctl.MarketSpot)
		case q.Bucket == "":
			return bad(field, "empty bucket")
		case q.VCPUs < 0:
			return bad(field, "negative quota %d", q.VCPUs)
		case seen[key]:
			return bad(field, "a second quota for %s in the %s market", q.Bucket, q.Market)
		}
		seen[key] = true
	}
	for typ, n := range c.VCPUs {
		if typ == "" || n < 1 {
			return bad("VCPUs", "%q has %d vCPUs, want a type with at least 1", typ, n)
		}
	}
	c.VcpuQuotas = slices.Clone(c.VcpuQuotas)
	c.VCPUs = maps.Clone(c.VCPUs)
	return nil
}

// quotaError reports the vCPU quota one more instance of off in market
// would exceed, or nil. On-demand launches get VcpuLimitExceeded, spot ones
// MaxSpotInstanceCountExceeded, as EC2 answers; both are of kind
// awsctl.ErrQuotaExceeded. The caller holds s.mu.
func (s *Sim) quotaError(market awsctl.Market, off awsctl.Offering) error {
	if len(s.cfg.VcpuQuotas) == 0 {
		return nil
	}
	bucket := QuotaBucket(off.InstanceType)
	limit := -1
	for _, q := range s.cfg.VcpuQuotas {
		if q.Market == market && q.Bucket == bucket {
			limit = q.VCPUs
		}
	}
	if limit < 0 {
		return nil
	}
	used := 0
	for key, n := range s.liveBy {
		if key.market == market && QuotaBucket(key.instanceType) == bucket {
			used += n * s.cfg.vcpus(key.instanceType)
		}
	}
	want := s.cfg.vcpus(off.InstanceType)
	if used+want <= limit {
		return nil
	}
	code := "VcpuLimitExceeded"
	if market == awsctl.MarketSpot {
		code = "MaxSpotInstanceCountExceeded"
	}
	return &awsctl.APIError{Op: OpLaunch, Code: code, Kind: awsctl.ErrQuotaExceeded,
		Message: fmt.Sprintf("launching %s needs %d more vCPUs; %d of the %d-vCPU %s quota of the %s market are in use",
			off.InstanceType, want, used, limit, bucket, market)}
}

// SetVcpuQuota sets the vCPU quota of bucket in market to vcpus, or removes
// it if vcpus is negative (see Config.VcpuQuotas). Lowering a quota below
// what is in use terminates nothing.
func (s *Sim) SetVcpuQuota(market awsctl.Market, bucket string, vcpus int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	quotas := slices.DeleteFunc(slices.Clone(s.cfg.VcpuQuotas), func(q VcpuQuota) bool {
		return q.Market == market && q.Bucket == bucket
	})
	if vcpus >= 0 {
		quotas = append(quotas, VcpuQuota{Market: market, Bucket: bucket, VCPUs: vcpus})
	}
	s.cfg.VcpuQuotas = quotas
}
