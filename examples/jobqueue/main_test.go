package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"
)

func TestJobQueueExampleRunsAndCutsNoJobShort(t *testing.T) {
	var out bytes.Buffer
	cfg := config{length: 3 * time.Hour, interval: 30 * time.Second, every: time.Hour, seed: 2, max: 30}
	if err := run(context.Background(), &out, cfg); err != nil {
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

func TestAWSModeRefusesWithoutItsBuild(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), &out, config{aws: awsFlags{enabled: true}})
	if err == nil || !regexp.MustCompile(`-tags aws`).MatchString(err.Error()) {
		t.Fatalf("want a refusal naming the aws build tag, got %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed before refusing: %q", out.String())
	}
}
