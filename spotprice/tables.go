package spotprice

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// The compiled-in tables; data/README.md cites their sources and dates.
var (
	//go:embed data/ondemand.csv
	onDemandCSV string
	//go:embed data/advisor.csv
	advisorCSV string
)

// Bucket is a Spot Instance Advisor interruption bucket: the share of an
// instance type's spot instances in a region that AWS interrupted over the
// trailing month.
type Bucket int

// Interruption buckets, in the Advisor's numbering.
const (
	BucketUnder5 Bucket = iota // <5%
	Bucket5To10                // 5-10%
	Bucket10To15               // 10-15%
	Bucket15To20               // 15-20%
	BucketOver20               // >20%
)

var bucketNames = [...]string{"<5%", "5-10%", "10-15%", "15-20%", ">20%"}

// Midpoints of the bucket ranges; ">20%" has no upper end, so 25% stands in.
var bucketProbabilities = [...]float64{0.025, 0.075, 0.125, 0.175, 0.25}

// Valid reports whether b is one of the five Advisor buckets.
func (b Bucket) Valid() bool { return b >= BucketUnder5 && b <= BucketOver20 }

// String returns the Advisor's label, such as "5-10%".
func (b Bucket) String() string {
	if !b.Valid() {
		return fmt.Sprintf("Bucket(%d)", int(b))
	}
	return bucketNames[b]
}

// MonthlyInterruptionProbability estimates the chance that a spot instance
// of this bucket is interrupted within a month: the midpoint of the bucket's
// range (0.25 for ">20%"). It returns 0 for an invalid bucket.
func (b Bucket) MonthlyInterruptionProbability() float64 {
	if !b.Valid() {
		return 0
	}
	return bucketProbabilities[b]
}

type regionType struct{ region, instanceType string }

type tables struct {
	onDemand map[regionType]float64
	buckets  map[regionType]Bucket
}

// compiledTables parses the embedded files on first use. The files are part
// of the source tree and a test checks that they parse cleanly; rows that do
// not parse are left out rather than failing every lookup.
var compiledTables = sync.OnceValues(func() (tables, error) {
	od, odErr := parseOnDemand(onDemandCSV)
	bk, bkErr := parseAdvisor(advisorCSV)
	return tables{onDemand: od, buckets: bk}, errors.Join(odErr, bkErr)
})

// OnDemandPrice returns the compiled-in on-demand list price, in US dollars
// per hour (Linux, shared tenancy), of instanceType in region. The table
// covers common types in us-east-1 and eu-west-1 only; see data/README.md.
func OnDemandPrice(region, instanceType string) (float64, bool) {
	t, _ := compiledTables()
	p, ok := t.onDemand[regionType{region, instanceType}]
	return p, ok
}

// InterruptionBucket returns the compiled-in Spot Instance Advisor bucket of
// instanceType in region (Linux, snapshot of 2025-06-28).
func InterruptionBucket(region, instanceType string) (Bucket, bool) {
	t, _ := compiledTables()
	b, ok := t.buckets[regionType{region, instanceType}]
	return b, ok
}

// Risk estimates the monthly probability that a spot instance of
// instanceType in region is interrupted, from its Advisor bucket. It is a
// coarse, dated estimate: [Policy.Rank] uses it only to break ties between
// choices of equal cost.
func Risk(region, instanceType string) (float64, bool) {
	b, ok := InterruptionBucket(region, instanceType)
	if !ok {
		return 0, false
	}
	return b.MonthlyInterruptionProbability(), true
}

// readTable reads a CSV with '#' comments and a header row and returns the
// rows as maps from column name to value.
func readTable(name, data string, columns ...string) ([]map[string]string, error) {
	r := csv.NewReader(strings.NewReader(data))
	r.Comment = '#'
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	index := make(map[string]int, len(header))
	for i, h := range header {
		index[h] = i
	}
	for _, c := range columns {
		if _, ok := index[c]; !ok {
			return nil, fmt.Errorf("%s: missing column %q", name, c)
		}
	}
	var rows []map[string]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("%s: %w", name, err)
		}
		row := make(map[string]string, len(columns))
		for _, c := range columns {
			row[c] = rec[index[c]]
		}
		rows = append(rows, row)
	}
}

func parseOnDemand(data string) (map[regionType]float64, error) {
	rows, err := readTable("ondemand.csv", data, "region", "instance_type", "ondemand_usd_per_hour")
	prices := make(map[regionType]float64, len(rows))
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, row := range rows {
		p, err := strconv.ParseFloat(row["ondemand_usd_per_hour"], 64)
		if err != nil || !validPrice(p) {
			errs = append(errs, fmt.Errorf("ondemand.csv: %s %s: bad price %q", row["region"], row["instance_type"], row["ondemand_usd_per_hour"]))
			continue
		}
		prices[regionType{row["region"], row["instance_type"]}] = p
	}
	return prices, errors.Join(errs...)
}

func parseAdvisor(data string) (map[regionType]Bucket, error) {
	rows, err := readTable("advisor.csv", data, "snapshot_date", "region", "instance_type", "interruption_bucket")
	buckets := make(map[regionType]Bucket, len(rows))
	snapshots := make(map[regionType]string, len(rows))
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, row := range rows {
		n, err := strconv.Atoi(row["interruption_bucket"])
		if err != nil || !Bucket(n).Valid() {
			errs = append(errs, fmt.Errorf("advisor.csv: %s %s: bad bucket %q", row["region"], row["instance_type"], row["interruption_bucket"]))
			continue
		}
		k := regionType{row["region"], row["instance_type"]}
		// ISO dates compare as strings; the latest snapshot wins.
		if prev, ok := snapshots[k]; ok && prev > row["snapshot_date"] {
			continue
		}
		snapshots[k] = row["snapshot_date"]
		buckets[k] = Bucket(n)
	}
	return buckets, errors.Join(errs...)
}

// validPrice reports whether p can be used as a price: positive and finite.
func validPrice(p float64) bool {
	return p > 0 && !math.IsInf(p, 0) && !math.IsNaN(p)
}
