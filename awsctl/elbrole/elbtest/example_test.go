package elbtest_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbtest"
)

// The real SDK client, encoding and decoding real HTTP, against a simulated
// load balancer; then a fault injected on the wire.
func ExampleServer() {
	lb, _ := elbsim.New(elbsim.Config{})
	arn, _ := lb.CreateTargetGroup("web", 8080)
	srv, err := elbtest.New(lb)
	if err != nil {
		fmt.Println(err)
		return
	}
	api := elbv2.NewFromConfig(srv.InProcessAWSConfig(), func(o *elbv2.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()

	_, err = api.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(arn),
		Targets:        []types.TargetDescription{{Id: aws.String("i-0123456789abcdef0")}},
	})
	fmt.Println("register:", err)
	fmt.Println("on the wire:", srv.Requests("RegisterTargets")[0].Params.Get("Targets.member.1.Id"))

	out, _ := api.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	for _, d := range out.TargetHealthDescriptions {
		fmt.Println(*d.Target.Id, *d.Target.Port, d.TargetHealth.State)
	}

	srv.FailNext("DescribeTargetHealth", elbtest.Fault{Code: "Throttling", Message: "Rate exceeded"})
	_, err = api.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	fmt.Println(err != nil)
	// Output:
	// register: <nil>
	// on the wire: i-0123456789abcdef0
	// i-0123456789abcdef0 8080 initial
	// true
}
