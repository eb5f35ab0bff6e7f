package elbrole

import (
	"context"

	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// API is the part of the Elastic Load Balancing v2 API the role uses, in the
// SDK's signatures. *elasticloadbalancingv2.Client implements it; so do the
// simulated load balancer of package elbsim and any wrapper that records or
// restricts calls.
type API interface {
	RegisterTargets(context.Context, *elbv2.RegisterTargetsInput, ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error)
	DeregisterTargets(context.Context, *elbv2.DeregisterTargetsInput, ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error)
	DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
}

var _ API = (*elbv2.Client)(nil)

// Operation names, as the API and the errors of this package spell them.
const (
	OpRegisterTargets      = "RegisterTargets"
	OpDeregisterTargets    = "DeregisterTargets"
	OpDescribeTargetHealth = "DescribeTargetHealth"
)
