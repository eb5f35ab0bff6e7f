// Package ec2test is an in-process EC2 endpoint for tests: an HTTP server
// that speaks the EC2 Query API (form-encoded POSTs naming an Action,
// answered in XML as the EC2 API reference shows, errors included), so that
// the real aws-sdk-go-v2 EC2 client can be exercised end to end without an
// AWS account.
//
// Start with [New], giving it the cloud that holds the instances (usually a
// fresh ec2sim.Sim), then hand [Server.AWSConfig] (loopback HTTP) or
// [Server.InProcessAWSConfig] (no socket, for testing/synctest bubbles) to
// the client under test. The server keeps what the cloud interface lacks:
// launch templates, spot price history, reserved instances and legacy spot
// requests, set up with the Add methods. DescribeInstanceStatus reports the
// status checks and scheduled events of the cloud when it is an
// awsctl.HealthReader (ec2sim.Sim.ScheduleEvent and Impair show through),
// plus those set with [Server.AddScheduledEvent] and
// [Server.SetStatusChecks]. Tests script failures with [Server.FailNext]
// and count calls with [Server.Requests].
//
// Served actions: DescribeInstances, RunInstances, CreateFleet (instant),
// CreateLaunchTemplate, TerminateInstances, CreateTags, DeleteTags,
// DescribeInstanceStatus, DescribeSpotPriceHistory,
// DescribeReservedInstances, DescribeSpotInstanceRequests and
// CancelSpotInstanceRequests: the calls package ec2client makes. Requests
// are not authenticated.
package ec2test
