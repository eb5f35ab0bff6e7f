package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
)

func TestJobQueueExampleRunsAndCutsNoJobShort(t *testing.T) {
	var out bytes.Buffer
	args := []string{"-length", "3h", "-interval", "30s", "-every", "1h", "-seed", "2", "-max", "30"}
	if err := run(context.Background(), args, &out, nil); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`jobs finished\s+(\d+) \((\d+) still queued, (\d+) cut short`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no summary in output:\n%s", out.String())
	}
	done, _ := strconv.Atoi(m[1])
	if done == 0 {
		t.Errorf("no job finished:\n%s", out.String())
	}
	if m[3] != "0" {
		t.Errorf("%s jobs cut short by a scale-down:\n%s", m[3], out.String())
	}
}
