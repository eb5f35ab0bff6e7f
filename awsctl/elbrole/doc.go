// Package elbrole puts a pool's servers behind an Elastic Load Balancing
// target group (Application, Network or Gateway Load Balancer): a
// [role.Role] that wraps any other role and adds the load balancer's side of
// each lifecycle step.
//
// A server is granted to its manager only once the load balancer reports it
// healthy; a server being wound down is deregistered first and terminated
// only once the load balancer has drained it, so no request in flight is cut
// off; a wind-down cancelled because demand came back registers the server
// again instead of launching a new one. See [Role] for each hook.
//
// Start with [New], an inner role (what the servers are and how the
// application on them starts and stops) and the SDK's client:
//
//	inner, _ := role.New("web", spec, role.Hooks{})  // or role.NewHTTP, or your own
//	api := elasticloadbalancingv2.NewFromConfig(awsCfg)
//	web, err := elbrole.New(inner, api, elbrole.Config{
//		TargetGroups: []elbrole.TargetGroup{{ARN: targetGroupARN}},
//	})
//
// and use web as the pool's role, typically with a
// [github.com/ec2autoscale/ec2autoscale/manager.TargetTracking] manager fed
// from the load balancer's request rate. Give the pool a WindDownTimeout
// longer than the target group's deregistration delay, and a
// ProvisionTimeout longer than Config.HealthyTimeout.
//
// # Calls
//
// Hooks run per instance, but calls are shared: registrations and
// deregistrations arriving within Config.BatchWindow go out as one call per
// target group, and one DescribeTargetHealth per target group and
// Config.PollInterval answers every hook waiting on it, so a hundred servers
// provisioning at once make a handful of calls, not hundreds. A batched
// registration or deregistration keeps its hook's context: one whose
// context has ended (the hook timed out, or the pool's replica lost the
// leader lease) is dropped from the batch, checked again right before the
// call goes out, and a call runs only while one of its hooks still waits
// for it. A deposed leader's deregistration therefore does not land after
// the new leader restored the server, unless it was already on the wire:
// ELB takes no precondition with the call to refuse it by. Client-side
// token buckets ([Limits]) keep the calls under ELB's request rate limits,
// and errors are classified into awsctl's kinds (awsctl.ErrThrottled,
// awsctl.ErrNotFound, awsctl.ErrInvalidRequest, ...) as *awsctl.APIError
// values carrying ELB's error code.
//
// The SDK client's own retryer (the standard one, unless the client is built
// with another) retries throttling and server errors before the role sees
// them.
//
// # Testing
//
// Package elbsim is a simulated load balancer that implements [API] on a
// virtual clock, for tests and simulations with ec2sim; package elbtest
// serves ELB's Query protocol over HTTP for wire-level tests of the real SDK
// client. The required IAM permissions are in docs/webtier.md.
package elbrole
