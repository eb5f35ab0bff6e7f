// Package awsctl is the boundary between the scaler and EC2: the
// [CloudClient] interface and the vocabulary it speaks ([Instance],
// [LaunchRequest], [LaunchSpec], error kinds such as
// [ErrInsufficientCapacity]).
//
// This package imports no AWS SDK, so the core packages that use it build
// fast. Implementations live below it: package ec2sim is a simulated EC2 for
// tests, examples and simulations, and package ec2client talks to the real
// EC2 API through aws-sdk-go-v2.
//
// Optional abilities are separate small interfaces a client may also
// implement, such as [SpotPriceSource], [ReservationSource] and
// [HealthReader] (status checks and scheduled events); callers discover
// them with a type assertion.
package awsctl
