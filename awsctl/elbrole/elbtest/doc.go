// Package elbtest is an in-repo Elastic Load Balancing v2 endpoint for
// wire-level tests: an HTTP server that speaks the Query protocol the AWS SDK
// uses (form-encoded POSTs naming an Action, XML answers in ELB's namespace)
// for RegisterTargets, DeregisterTargets and DescribeTargetHealth.
//
// The server only translates: a backend carries the calls out, usually an
// *elbsim.LB, so that the real SDK client, through real HTTP, sees targets
// registered, checked and drained:
//
//	lb, _ := elbsim.New(elbsim.Config{Clock: sim.Now})
//	srv, _ := elbtest.New(lb)
//	defer srv.Close()
//	api := elasticloadbalancingv2.NewFromConfig(srv.AWSConfig())
//
// [Server.FailNext] answers the next calls of an action with error codes
// such as Throttling or TargetGroupNotFound, with ELB's HTTP statuses, and
// [Server.Requests] shows the parameters each call carried on the wire.
// [Server.InProcessAWSConfig] skips the socket, for tests in a
// testing/synctest bubble.
package elbtest
