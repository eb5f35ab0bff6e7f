package elbsim_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
)

// A target's life in a target group with ALB's default health checks (five
// passing checks 30 s apart) and a two-minute deregistration delay.
func ExampleLB() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	lb, err := elbsim.New(elbsim.Config{
		Clock:               func() time.Time { return now },
		DeregistrationDelay: 2 * time.Minute,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	arn, _ := lb.CreateTargetGroup("web", 8080)
	ctx := context.Background()
	target := []types.TargetDescription{{Id: aws.String("i-0123456789abcdef0")}}
	show := func(what string) {
		for _, t := range lb.Targets(arn) {
			fmt.Println(strings.TrimSpace(fmt.Sprintf("%-22s %s %s", what, t.State, t.Reason)))
		}
		if len(lb.Targets(arn)) == 0 {
			fmt.Printf("%-22s not registered\n", what)
		}
	}

	_, _ = lb.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target})
	show("registered")
	now = now.Add(time.Minute)
	show("after 1m")
	now = now.Add(90 * time.Second)
	show("after 2m30s")
	_, _ = lb.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target})
	show("deregistered")
	now = now.Add(2 * time.Minute)
	show("2m later")
	// Output:
	// registered             initial Elb.RegistrationInProgress
	// after 1m               initial Elb.InitialHealthChecking
	// after 2m30s            healthy
	// deregistered           draining Target.DeregistrationInProgress
	// 2m later               not registered
}
