package ratelimit

// EC2Limits are EC2's API rate limits for one account in one region, by
// category: request limits count calls, resource limits count the
// instances the calls launch or terminate. EC2 gives every API a request
// bucket of its own, of its category's size (Request throttling for the
// Amazon EC2 API, "Request rate limiting"); package awsctl/ec2client paces
// each category's APIs through one bucket, which never sends more than EC2
// allows, and awsctl/ec2sim/ec2limits keeps one per API, as EC2 does.
type EC2Limits struct {
	// RunInstances counts RunInstances requests; RunInstancesInstances
	// counts the instances they launch.
	RunInstances          Limit
	RunInstancesInstances Limit
	// TerminateInstances counts TerminateInstances requests;
	// TerminatedInstances counts the instances they terminate.
	TerminateInstances  Limit
	TerminatedInstances Limit
	// Mutating counts the other calls that change something, such as
	// CreateFleet, CreateLaunchTemplate and CancelSpotInstanceRequests.
	Mutating Limit
	// Tags counts CreateTags and DeleteTags requests.
	Tags Limit
	// Describe counts Describe* requests, one per page.
	Describe Limit
}

// EC2Defaults returns EC2's documented default limits (Amazon EC2 API
// request throttling: request and resource token buckets).
func EC2Defaults() EC2Limits {
	return EC2Limits{
		RunInstances:          Limit{Burst: 5, PerSecond: 2},
		RunInstancesInstances: Limit{Burst: 1000, PerSecond: 2},
		TerminateInstances:    Limit{Burst: 100, PerSecond: 5},
		TerminatedInstances:   Limit{Burst: 1000, PerSecond: 20},
		Mutating:              Limit{Burst: 50, PerSecond: 5},
		Tags:                  Limit{Burst: 100, PerSecond: 10},
		Describe:              Limit{Burst: 100, PerSecond: 20},
	}
}
