package demand

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReadCSV reads a demand trace in one of two formats, told apart by the
// header:
//
//   - time_s,servers: the capacity units wanted from time_s (seconds from
//     the start, non-decreasing) on. The trace lasts until the last row's
//     time, or one hour past it when that row is the first.
//   - submit_s,wait_s,run_s,procs: one batch job per row, as in the
//     Parallel Workloads Archive's logs. Demand is the units busy if every
//     job started at its submit time (wait_s, the queueing of the site's own
//     fixed-size machine, is ignored).
//
// Lines starting with '#' are comments. A malformed line stops the read with
// an error naming it.
func ReadCSV(name string, r io.Reader) (*Trace, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("demand: %s: header: %w", name, err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	col := func(c string) int { return slices.Index(header, c) }
	switch {
	case col("time_s") >= 0 && col("servers") >= 0:
		return readLevels(name, cr, col("time_s"), col("servers"))
	case col("submit_s") >= 0 && col("run_s") >= 0 && col("procs") >= 0:
		return readJobs(name, cr, col("submit_s"), col("run_s"), col("procs"))
	}
	return nil, fmt.Errorf("demand: %s: header %q: want time_s,servers or submit_s,wait_s,run_s,procs", name, strings.Join(header, ","))
}

type lineError struct {
	name string
	line int
	err  error
}

func (e *lineError) Error() string {
	return fmt.Sprintf("demand: %s: line %d: %v", e.name, e.line, e.err)
}
func (e *lineError) Unwrap() error { return e.err }

func field(rec []string, i int, what string) (float64, error) {
	if i >= len(rec) {
		return 0, fmt.Errorf("no %s column", what)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s %q: not a number", what, rec[i])
	}
	return v, nil
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

func readLevels(name string, cr *csv.Reader, ti, si int) (*Trace, error) {
	var steps []Step
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, &lineError{name, line, err}
		}
		at, err := field(rec, ti, "time_s")
		if err != nil {
			return nil, &lineError{name, line, err}
		}
		n, err := field(rec, si, "servers")
		if err != nil {
			return nil, &lineError{name, line, err}
		}
		switch {
		case at < 0 || n < 0 || n != math.Trunc(n):
			return nil, &lineError{name, line, fmt.Errorf("need time_s >= 0 and a whole servers >= 0, got %v and %v", at, n)}
		case len(steps) > 0 && seconds(at) < steps[len(steps)-1].At:
			return nil, &lineError{name, line, fmt.Errorf("time_s %v goes back", at)}
		}
		steps = append(steps, Step{At: seconds(at), Units: int(n)})
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("demand: %s: no rows", name)
	}
	length := steps[len(steps)-1].At
	if len(steps) == 1 || length == 0 {
		length += time.Hour
	}
	return FromSteps(name, steps, length)
}

func readJobs(name string, cr *csv.Reader, si, ri, pi int) (*Trace, error) {
	var jobs []Job
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, &lineError{name, line, err}
		}
		var v [3]float64
		for k, c := range []struct {
			i    int
			what string
		}{{si, "submit_s"}, {ri, "run_s"}, {pi, "procs"}} {
			if v[k], err = field(rec, c.i, c.what); err != nil {
				return nil, &lineError{name, line, err}
			}
		}
		if v[0] < 0 || v[1] <= 0 || v[2] < 1 || v[2] != math.Trunc(v[2]) {
			return nil, &lineError{name, line, fmt.Errorf("need submit_s >= 0, run_s > 0 and a whole procs >= 1, got %v, %v, %v", v[0], v[1], v[2])}
		}
		jobs = append(jobs, Job{Submit: seconds(v[0]), Run: seconds(v[1]), Procs: int(v[2])})
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("demand: %s: no jobs", name)
	}
	return FromJobs(name, jobs)
}
