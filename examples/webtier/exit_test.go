//go:build aws

package main

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbtest"
)

// drainDelay is the simulated load balancer's deregistration delay: it
// drains a target for all of it, as ALB and NLB report.
const drainDelay = 5 * time.Minute

// startAWS serves a simulated EC2 and load balancer on the bubble's clock
// through the in-repo EC2 and ELB endpoints, with no socket, and points the
// example's real-AWS mode at them. It returns the target group's ARN.
func startAWS(t *testing.T) (*ec2sim.Sim, string) {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	ec2srv, err := ec2test.New(sim, ec2test.Options{Subnets: []awsctl.Subnet{{ID: "subnet-0a", Zone: "us-east-1a"}}})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := elbsim.New(elbsim.Config{Clock: time.Now, Instances: sim.Instance, DeregistrationDelay: drainDelay,
		Region: "us-east-1", Account: "111122223333"})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := lb.CreateTargetGroup("web", 8080)
	if err != nil {
		t.Fatal(err)
	}
	elbsrv, err := elbtest.New(lb)
	if err != nil {
		t.Fatal(err)
	}
	prev := awsConfigs
	awsConfigs = func(context.Context, string) (aws.Config, aws.Config, error) {
		return ec2srv.InProcessAWSConfig(), elbsrv.InProcessAWSConfig(), nil
	}
	t.Cleanup(func() { awsConfigs = prev })
	return sim, arn
}

func awsArgs(arn, length string) []string {
	return []string{"-aws", "-confirm", "-target-group", arn, "-region", "us-east-1", "-image", "ami-0123456789abcdef0",
		"-subnets", "subnet-0a:us-east-1a", "-max", "4", "-length", length}
}

// syncOutput is the example's output, written from several goroutines.
type syncOutput struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (o *syncOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *syncOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
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
		sim, arn := startAWS(t)
		out := &syncOutput{}
		start := time.Now()
		if code := cli(t.Context(), awsArgs(arn, "20m"), out, io.Discard, nil); code != 0 {
			t.Fatalf("exit status %d:\n%s", code, out)
		}
		// The run ends at 20 minutes; the drain takes drainDelay, the
		// rest a few passes.
		if took := time.Since(start) - 20*time.Minute; took > drainDelay+2*time.Minute {
			t.Errorf("exited %v after the end of the run", took)
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
		sim, arn := startAWS(t)
		out := &syncOutput{}
		interrupts := make(chan os.Signal, 1)
		done := make(chan int, 1)
		var stderr syncOutput
		go func() { done <- cli(t.Context(), awsArgs(arn, "8h"), out, &stderr, interrupts) }()

		time.Sleep(15 * time.Minute)
		interrupts <- os.Interrupt
		time.Sleep(time.Minute) // draining
		synctest.Wait()
		if !strings.Contains(out.String(), "Press Ctrl-C again") {
			t.Fatalf("no wind-down under way:\n%s", out)
		}
		select {
		case code := <-done:
			t.Fatalf("exited (%d) during the drain:\n%s", code, out)
		default:
		}
		live := liveInstances(sim)
		if len(live) == 0 {
			t.Fatal("nothing left running to name")
		}

		interrupts <- os.Interrupt
		synctest.Wait()
		select {
		case code := <-done:
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			for _, want := range append([]string{"interrupted again", "left running", "ec2autoscale:owner=webtier-example"}, live...) {
				if !strings.Contains(out.String(), want) {
					t.Errorf("the output does not say %q:\n%s", want, out)
				}
			}
		default:
			t.Fatalf("a second interrupt did not stop the wait:\n%s", out)
		}
	})
}
