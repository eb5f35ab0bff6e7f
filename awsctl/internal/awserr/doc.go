// Package awserr is where the SDK-backed packages of awsctl (ec2client,
// elbrole, sqsnotice) turn aws-sdk-go-v2 errors into *awsctl.APIError
// values: start at [Classify], given the service's own [KindFunc].
package awserr
