package ec2sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// spotCSVColumns are the columns of a spot price CSV, in order: one
// DescribeSpotPriceHistory record per row.
var spotCSVColumns = []string{"timestamp", "region", "availability_zone", "instance_type", "product_description", "price_usd_per_hour"}

// CSVError reports a malformed line of a spot price CSV.
type CSVError struct {
	Line   int    // 1-based; the header is line 1
	Column string // the column's name in the header; empty when the whole line is wrong
	Err    error
}

func (e *CSVError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("ec2sim: spot CSV line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("ec2sim: spot CSV line %d, column %s: %v", e.Line, e.Column, e.Err)
}

func (e *CSVError) Unwrap() error { return e.Err }

var instanceTypePattern = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)

// ReadSpotCSV reads spot price records in the CSV format of
// DescribeSpotPriceHistory exports: the header
//
//	timestamp,region,availability_zone,instance_type,product_description,price_usd_per_hour
//
// then one row per price change with an RFC 3339 timestamp, a region, a zone of
// that region, an instance type, a product description and a positive
// hourly price in US dollars. Times are returned in UTC, records in the
// order read. The first malformed line stops the read with a *CSVError
// naming the line and column.
func ReadSpotCSV(r io.Reader) ([]awsctl.SpotPrice, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // counted below, to name the line
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &CSVError{Line: 1, Err: errors.New("no header")}
	}
	if err != nil {
		return nil, csvReadError(err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a byte order mark
	}
	for i, col := range spotCSVColumns {
		if i >= len(header) || header[i] != col {
			return nil, &CSVError{Line: 1, Column: col, Err: fmt.Errorf("header has %q in column %d, want %q", at(header, i), i+1, col)}
		}
	}
	if len(header) != len(spotCSVColumns) {
		return nil, &CSVError{Line: 1, Err: fmt.Errorf("header has %d columns, want %d", len(header), len(spotCSVColumns))}
	}

	var out []awsctl.SpotPrice
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, csvReadError(err)
		}
		line, _ := cr.FieldPos(0)
		p, err := parseSpotRecord(rec, line)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
}

func at(fields []string, i int) string {
	if i < len(fields) {
		return fields[i]
	}
	return ""
}

// csvReadError names the line of a syntax error of the CSV itself.
func csvReadError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &CSVError{Line: pe.Line, Err: pe.Err}
	}
	return fmt.Errorf("ec2sim: reading spot CSV: %w", err)
}

func parseSpotRecord(rec []string, line int) (awsctl.SpotPrice, error) {
	if len(rec) != len(spotCSVColumns) {
		return awsctl.SpotPrice{}, &CSVError{Line: line, Err: fmt.Errorf("%d fields, want %d", len(rec), len(spotCSVColumns))}
	}
	bad := func(col int, format string, args ...any) (awsctl.SpotPrice, error) {
		return awsctl.SpotPrice{}, &CSVError{Line: line, Column: spotCSVColumns[col], Err: fmt.Errorf(format, args...)}
	}
	ts, region, zone, typ, product, price := rec[0], rec[1], rec[2], rec[3], rec[4], rec[5]
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return bad(0, "%q is not an RFC 3339 time", ts)
	}
	if !regionPattern.MatchString(region) {
		return bad(1, "%q is not a region name", region)
	}
	if suffix, ok := strings.CutPrefix(zone, region); !ok || !zoneSuffixPattern.MatchString(suffix) {
		return bad(2, "%q is not a zone of region %s", zone, region)
	}
	if !instanceTypePattern.MatchString(typ) {
		return bad(3, "%q is not an instance type", typ)
	}
	if strings.TrimSpace(product) == "" {
		return bad(4, "empty product description")
	}
	p, err := strconv.ParseFloat(price, 64)
	if err != nil || !(p > 0) || math.IsInf(p, 0) {
		return bad(5, "%q is not a price above zero", price)
	}
	return awsctl.SpotPrice{InstanceType: typ, Zone: zone, PricePerHour: p, Time: t.UTC()}, nil
}
