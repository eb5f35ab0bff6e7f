// Package elbsim is a simulated Elastic Load Balancing v2 API for tests,
// examples and simulations of web tiers: target groups whose targets are
// registered, pass or fail health checks and drain when deregistered, on a
// clock of the caller's choosing and with no network.
//
// [LB] implements [github.com/ec2autoscale/ec2autoscale/awsctl/elbrole.API],
// so an elbrole.Role can run against it exactly as against the real
// service. Give it the simulated EC2's clock and instances, and its targets
// follow the instances' lives:
//
//	lb, err := elbsim.New(elbsim.Config{Clock: sim.Now, Instances: sim.Instance})
//	arn, err := lb.CreateTargetGroup("web", 8080)
//	web, err := elbrole.New(inner, lb, elbrole.Config{TargetGroups: []elbrole.TargetGroup{{ARN: arn}}})
//
// A new target is initial until HealthyThreshold health checks have passed,
// then healthy; [LB.SetFailing] makes an instance's checks fail, and after
// UnhealthyThreshold of them it is unhealthy. A deregistered target is
// reported draining for the whole deregistration delay, idle or not, as
// Application and Network Load Balancers report it, and is then forgotten. Errors are the SDK's own error types
// with ELB's codes (TargetGroupNotFound, InvalidTarget, ValidationError), and
// [LB.FailNext] injects others such as [Throttling].
//
// [LB.Targets] shows every target's state, for a simulation that routes
// requests to the healthy ones; [LB.Calls] counts calls per operation.
package elbsim
