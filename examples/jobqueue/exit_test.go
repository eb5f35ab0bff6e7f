//go:build aws

package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

const subnet = "subnet-0aaaaaaaaaaaaaaaa"

// startEC2 serves a simulated EC2 on the bubble's clock through the in-repo
// EC2 endpoint, with no socket, and points the example's real-AWS mode at
// it.
func startEC2(t *testing.T) *ec2sim.Sim {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ec2test.New(sim, ec2test.Options{Subnets: []awsctl.Subnet{{ID: subnet, Zone: "us-east-1a"}}})
	if err != nil {
		t.Fatal(err)
	}
	prev := loadAWSConfig
	loadAWSConfig = func(context.Context, string) (aws.Config, error) { return srv.InProcessAWSConfig(), nil }
	t.Cleanup(func() { loadAWSConfig = prev })
	return sim
}

func awsArgs(length string) []string {
	return []string{"-aws", "-region", "us-east-1", "-image", "ami-0123456789abcdef0", "-subnet", subnet + "=us-east-1a",
		"-max", "5", "-length", length, "-every", "10m", "-seed", "1"}
}

// stampedOutput is the example's output, with the time each line came.
type stampedOutput struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	times map[string]time.Time // by line
}

func (o *stampedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.times == nil {
		o.times = map[string]time.Time{}
	}
	for _, line := range strings.Split(string(p), "\n") {
		if _, ok := o.times[line]; !ok {
			o.times[line] = time.Now()
		}
	}
	return o.buf.Write(p)
}

func (o *stampedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

var windingDown = regexp.MustCompile(`Winding every server down: no new job starts; (\d+) still running, the last due in (\S+)\.`)

// windDownStart returns when the exit wind-down began and when the last
// running job ends.
func (o *stampedOutput) windDownStart(t *testing.T) (at, lastJob time.Time) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for line, at := range o.times {
		if m := windingDown.FindStringSubmatch(line); m != nil {
			due, err := time.ParseDuration(m[2])
			if err != nil {
				t.Fatal(err)
			}
			return at, at.Add(due)
		}
	}
	t.Fatalf("no wind-down with jobs running (pick another -seed or -length):\n%s", o.buf.String())
	return
}

func liveInstances(sim *ec2sim.Sim) []string {
	var ids []string
	for _, inst := range sim.Instances() {
		if inst.State.Live() {
			ids = append(ids, inst.ID)
		}
	}
	return ids
}

func TestAWSModeExitTerminatesEveryServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := startEC2(t)
		out := &stampedOutput{}
		if err := run(t.Context(), awsArgs("30m"), out, nil); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		end := time.Now()
		_, lastJob := out.windDownStart(t)
		if end.Before(lastJob) {
			t.Errorf("exited %v before its last job ended", lastJob.Sub(end))
		}
		if after := end.Sub(lastJob); after > 2*time.Minute {
			t.Errorf("exited %v after its last job ended", after)
		}
		if len(sim.Instances()) == 0 {
			t.Fatal("no instance launched")
		}
		if live := liveInstances(sim); len(live) > 0 {
			t.Errorf("left running: %v\n%s", live, out)
		}
		if !strings.Contains(out.String(), "Every server is terminated.") {
			t.Errorf("no word of the termination:\n%s", out)
		}
	})
}

func TestAWSModeSecondInterruptStopsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := startEC2(t)
		out := &stampedOutput{}
		interrupts := make(chan os.Signal, 1)
		done := make(chan error, 1)
		go func() { done <- run(t.Context(), awsArgs("8h"), out, interrupts) }()

		time.Sleep(30 * time.Minute)
		interrupts <- os.Interrupt
		synctest.Wait()
		_, lastJob := out.windDownStart(t)
		if time.Until(lastJob) < 2*time.Minute {
			t.Fatalf("the last job ends in %v: too soon to interrupt the wait", time.Until(lastJob))
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("returned during its jobs: %v\n%s", err, out)
		default:
		}
		live := liveInstances(sim)
		if len(live) == 0 {
			t.Fatal("nothing left running to name")
		}

		interrupts <- os.Interrupt
		synctest.Wait()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("no error for servers left running:\n%s", out)
			}
			for _, want := range append([]string{"interrupted again", "left running", "ec2autoscale:owner=jobqueue-example"}, live...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		default:
			t.Fatalf("a second interrupt did not stop the wait:\n%s", out)
		}
	})
}
