package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// The shipped price traces: subsets of real spot price history (see
// testdata/README.md for their sources).
//
//go:embed testdata/spot_us-east-1_2021-03.csv testdata/spot_eu-west-1_2021-08.csv
var shipped embed.FS

var shippedTraces = map[string]string{
	"us-east-1": "testdata/spot_us-east-1_2021-03.csv",
	"eu-west-1": "testdata/spot_eu-west-1_2021-08.csv",
}

// instanceType is one type of the simulated pool.
type instanceType struct {
	name   string
	weight int
}

// defaultTypes are interchangeable general-purpose types, weighted by
// vCPUs (a large is one unit).
const defaultTypes = "c5.large,c5.xlarge:2,m5.large,m5.xlarge:2,m5a.large,r5.large"

func parseTypes(s string) ([]instanceType, error) {
	var out []instanceType
	for _, part := range strings.Split(s, ",") {
		name, w, hasW := strings.Cut(strings.TrimSpace(part), ":")
		t := instanceType{name: name, weight: 1}
		if hasW {
			n, err := strconv.Atoi(w)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("-types: %q: weight must be a whole number >= 1", part)
			}
			t.weight = n
		}
		if name == "" || slices.ContainsFunc(out, func(o instanceType) bool { return o.name == name }) {
			return nil, fmt.Errorf("-types: %q: empty or repeated type", part)
		}
		out = append(out, t)
	}
	return out, nil
}

// priceTrace is the spot price history of the pool's offerings.
type priceTrace struct {
	name    string
	region  string
	zones   []string
	records []awsctl.SpotPrice // of the pool's offerings, by time
	// start is when every offering of the pool has a price; end is the
	// last record.
	start, end time.Time
}

// loadPrices reads a shipped trace by region name or a CSV file by path,
// keeping the records of types in zones (every zone of the trace when
// zones is empty).
func loadPrices(spec string, types []instanceType, zones []string) (*priceTrace, error) {
	var data []byte
	var err error
	if path, ok := shippedTraces[spec]; ok {
		data, err = shipped.ReadFile(path)
	} else {
		data, err = os.ReadFile(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("-prices: %w", err)
	}
	all, err := ec2sim.ReadSpotCSV(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("-prices %s: %w", spec, err)
	}
	pt := &priceTrace{name: spec}
	if len(all) > 0 {
		pt.region = regionOf(all[0].Zone)
	}
	wantType := map[string]bool{}
	for _, t := range types {
		wantType[t.name] = true
	}
	for _, r := range all {
		if regionOf(r.Zone) != pt.region {
			return nil, fmt.Errorf("-prices %s: records of two regions (%s and %s)", spec, pt.region, regionOf(r.Zone))
		}
		if !wantType[r.InstanceType] || (len(zones) > 0 && !slices.Contains(zones, r.Zone)) {
			continue
		}
		pt.records = append(pt.records, r)
		if !slices.Contains(pt.zones, r.Zone) {
			pt.zones = append(pt.zones, r.Zone)
		}
	}
	for _, z := range zones {
		if !slices.Contains(pt.zones, z) {
			return nil, fmt.Errorf("-zones: %s has no prices of the pool's types in %s", z, spec)
		}
	}
	if len(pt.records) == 0 {
		return nil, fmt.Errorf("-prices %s: no records of the pool's types %v", spec, typeNames(types))
	}
	slices.Sort(pt.zones)
	slices.SortStableFunc(pt.records, func(a, b awsctl.SpotPrice) int { return a.Time.Compare(b.Time) })
	first := map[[2]string]time.Time{}
	for _, r := range pt.records {
		k := [2]string{r.InstanceType, r.Zone}
		if _, ok := first[k]; !ok {
			first[k] = r.Time
		}
	}
	for _, t := range types {
		for _, z := range pt.zones {
			at, ok := first[[2]string{t.name, z}]
			if !ok {
				return nil, fmt.Errorf("-prices %s: no spot price for %s in %s; leave it out with -types or -zones", spec, t.name, z)
			}
			if at.After(pt.start) {
				pt.start = at
			}
		}
		if _, ok := spotprice.OnDemandPrice(pt.region, t.name); !ok {
			return nil, fmt.Errorf("-types: no on-demand price for %s in %s in the compiled-in table", t.name, pt.region)
		}
	}
	// Start on the next whole minute, so that passes fall on round times.
	pt.start = pt.start.Truncate(time.Minute).Add(time.Minute)
	pt.end = pt.records[len(pt.records)-1].Time
	return pt, nil
}

// regionOf turns a zone name ("us-east-1a") into its region.
func regionOf(zone string) string {
	return strings.TrimRight(zone, "abcdefghijklmnopqrstuvwxyz")
}

func typeNames(types []instanceType) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = t.name
	}
	return out
}

// outage is a window in which EC2 has no spot capacity for some offerings.
type outage struct {
	zone     string
	from, to time.Time
}

// pricePoint is a price per capacity unit per hour from at on.
type pricePoint struct {
	at    time.Time
	price float64
}

// cheapestPerUnit returns, over time, the cheapest spot price per capacity
// unit among the pool's offerings. Capacity outages do not raise it: spot
// instances launched before an outage keep running at spot prices.
func (pt *priceTrace) cheapestPerUnit(types []instanceType) []pricePoint {
	weight := map[string]int{}
	for _, t := range types {
		weight[t.name] = t.weight
	}
	current := map[[2]string]float64{}
	var out []pricePoint
	for i, r := range pt.records {
		current[[2]string{r.InstanceType, r.Zone}] = r.PricePerHour
		if i+1 < len(pt.records) && pt.records[i+1].Time.Equal(r.Time) {
			continue // the rest of this instant's records first
		}
		best := 0.0
		for k, p := range current {
			if u := p / float64(weight[k[0]]); best == 0 || u < best {
				best = u
			}
		}
		if len(out) == 0 || out[len(out)-1].price != best {
			out = append(out, pricePoint{at: r.Time, price: best})
		}
	}
	return out
}

// priceAt returns the price of the step function at t.
func priceAt(points []pricePoint, t time.Time) float64 {
	i, found := slices.BinarySearchFunc(points, t, func(p pricePoint, t time.Time) int { return p.at.Compare(t) })
	if !found {
		i--
	}
	if i < 0 {
		return 0
	}
	return points[i].price
}
