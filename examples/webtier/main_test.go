package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestWebTierDayCutsNoRequest(t *testing.T) {
	var out bytes.Buffer
	cfg, err := parseFlags([]string{"-length", "24h", "-every", "6h"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := run(context.Background(), &out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if res.cut != 0 {
		t.Errorf("%.0f requests cut off by a scale-in", res.cut)
	}
	if total := res.served + res.refused; res.served < 1e7 || res.refused > 0.001*total {
		t.Errorf("served %.0f, refused %.0f: the tier did not keep up", res.served, res.refused)
	}
	if res.meanLatency > 120*time.Millisecond || res.worstLatency > 300*time.Millisecond {
		t.Errorf("latency mean %v, worst %v: out of bounds", res.meanLatency, res.worstLatency)
	}
	// The evening peak needs about 19 servers at 100 requests per second
	// each; the night needs the minimum.
	if res.peak < 15 || res.peak > 25 {
		t.Errorf("peak of %d servers for a peak load of about 1900 requests per second", res.peak)
	}
	if res.final >= res.peak/2 {
		t.Errorf("%d servers in service at the end of the day: no scale-in", res.final)
	}
	if reg := res.lbCalls["RegisterTargets"]; reg == 0 || reg > res.launched+10 {
		t.Errorf("%d registrations for %d servers launched", reg, res.launched)
	}
	for _, want := range []string{"requests served", "cut off by a scale-in", "peak", "cost"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the summary", want)
		}
	}
}

func TestAWSModeRefusesWithoutConfirm(t *testing.T) {
	const arn = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/web/0123456789abcdef"
	cfg, err := parseFlags([]string{"-aws", "-target-group", arn, "-region", "eu-west-1", "-image", "ami-0123456789abcdef0",
		"-subnets", "subnet-0a:eu-west-1a,subnet-0b:eu-west-1b", "-max", "6", "-length", "30m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := runAWS(context.Background(), context.Background(), &out, cfg); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	for _, want := range []string{"eu-west-1", "between 2 and 6 on-demand t3.micro", "ami-0123456789abcdef0",
		"subnet-0b (eu-west-1b)", arn, "terminate every one", "Nothing was launched", "-confirm"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the plan does not say %q:\n%s", want, out.String())
		}
	}
}

func TestAWSModeNeedsItsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-aws"}, "-aws needs -target-group, -region, -image, -subnets"},
		{[]string{"-aws", "-target-group", "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/y", "-region", "us-east-1",
			"-image", "ami-1", "-subnets", "subnet-1:us-east-1a"}, "not a target group ARN"},
		{[]string{"-aws", "-target-group", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y", "-region", "us-east-1",
			"-image", "ami-1", "-subnets", "subnet-1"}, "not id:zone"},
	} {
		cfg, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if code := runAWS(context.Background(), context.Background(), &out, cfg); code != 2 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%q: exit %d, output %q; want 2 and %q", tc.args, code, out.String(), tc.want)
		}
	}
}

func TestFlagsValidate(t *testing.T) {
	for _, args := range [][]string{{"-max", "1"}, {"-target", "0"}, {"-interval", "0s"}, {"extra"}, {"-fail", "1.5"}, {"-capacity", "0"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// The flags that show what the default run hides: servers that turn
// unhealthy, ALB's slower checks and little headroom refuse requests, and
// the summary says how many.
func TestWebTierHardFlagsShowRefusals(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		refuses bool
	}{
		{[]string{"-length", "24h", "-every", "6h"}, false},
		{[]string{"-length", "24h", "-every", "6h", "-fail", "0.3", "-alb-checks", "-capacity", "115"}, true},
	} {
		cfg, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		res, err := run(context.Background(), &out, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "refused, overloaded") {
			t.Errorf("%q: no refused line in the summary:\n%s", tc.args, out.String())
		}
		if got := res.refused > 0; got != tc.refuses {
			t.Errorf("%q: refused %.0f requests, want refusals %v", tc.args, res.refused, tc.refuses)
		}
	}
}
