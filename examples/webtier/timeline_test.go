package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// timelineRow is one printed row: its time and the requests it says were
// refused.
type timelineRow struct {
	at      string
	refused float64
}

// timeline reads the rows back from the example's output.
func timeline(t *testing.T, out string) []timelineRow {
	t.Helper()
	lines := strings.Split(out, "\n")
	header := strings.Split(lines[0], "|")
	col := -1
	for i, h := range header {
		if strings.TrimSpace(h) == "refused" {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("no refused column in the header %q", lines[0])
	}
	var rows []timelineRow
	for _, line := range lines[1:] {
		if line == "" {
			break // the summary follows
		}
		fields := strings.Split(line, "|")
		if len(fields) != len(header) {
			t.Fatalf("row %q does not match the header %q", line, lines[0])
		}
		refused, err := strconv.ParseFloat(strings.TrimSpace(fields[col]), 64)
		if err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		rows = append(rows, timelineRow{at: strings.Fields(fields[0])[0], refused: refused})
	}
	return rows
}

// Each timeline row says how many requests were refused since the one
// before, so a reader sees when refusals happen; the rows, closed by one at
// the end of the run, add up to the summary's total.
func TestTimelineShowsWhenRequestsAreRefused(t *testing.T) {
	cfg, err := parseFlags([]string{"-length", "24h", "-every", "1h", "-fail", "0.3", "-alb-checks", "-capacity", "115"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := run(context.Background(), &out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := timeline(t, out.String())
	if len(rows) != 25 || rows[0].at != "00:00" || rows[24].at != "24:00" {
		t.Fatalf("want rows from 00:00 to 24:00 an hour apart, got %v", rows)
	}
	sum, refusing, quietAfter := 0.0, 0, false
	for i, r := range rows {
		sum += r.refused
		if r.refused > 0 {
			refusing++
		} else if i > 0 && rows[i-1].refused > 0 {
			quietAfter = true
		}
	}
	if res.refused == 0 {
		t.Fatal("the run refused nothing: nothing to show")
	}
	// Each printed figure is rounded to a request.
	if math.Abs(sum-res.refused) > float64(len(rows))/2 {
		t.Errorf("rows add up to %.0f refused, the summary says %.0f:\n%s", sum, res.refused, out.String())
	}
	if refusing == 0 || refusing == len(rows) || !quietAfter {
		t.Errorf("refusals are not shown per interval (%d rows of %d refuse):\n%s", refusing, len(rows), out.String())
	}
}
