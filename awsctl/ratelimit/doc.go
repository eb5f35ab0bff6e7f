// Package ratelimit holds the token buckets that keep a client under a
// service's request rate limits, so that a burst of calls is spread out on
// the caller's side instead of being answered with throttling errors.
//
// Start with [NewBucket] and [Bucket.Wait]. A [Limit] is a burst size and a
// refill rate, the way AWS documents its API rate limits; package
// awsctl/ec2client sets one bucket per EC2 API category with EC2's defaults.
//
// The package imports no AWS SDK.
package ratelimit
