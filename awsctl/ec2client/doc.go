// Package ec2client implements awsctl.CloudClient on the real EC2 API with
// aws-sdk-go-v2, along with awsctl.SpotPriceSource,
// awsctl.ReservationSource and awsctl.HealthReader.
//
// Start with [New]: give it an aws.Config (usually from
// config.LoadDefaultConfig, which reads the region and the default
// credential chain) and [Options] (zero is fine). One [Client] should serve
// a whole scaler, since its client-side rate limits ([Limits], EC2's
// documented defaults) only work when every call goes through them.
//
// What it does on EC2:
//   - ListInstances: one paginated DescribeInstances filtered on tags and
//     instance states.
//   - Launch: RunInstances for a single offering, an instant CreateFleet
//     for several (with a launch template made from the spec when the spec
//     names none). Instances carry their tags from creation, and every
//     launch carries a ClientToken derived from LaunchRequest.Token, so that
//     a launch retried after a crash or a timeout launches nothing twice.
//   - Terminate, Tag and Untag: in batches of at most 1,000 ids.
//   - SpotPrices and Reservations.
//   - InstanceHealth: status checks and upcoming scheduled events, from
//     DescribeInstanceStatus filtered on up to 100 instance ids a call.
//   - The extras [Client.OpenSpotRequests] and [Client.CancelSpotRequests].
//
// Errors are *awsctl.APIError values carrying EC2's code and message and
// unwrapping to an awsctl kind (awsctl.ErrInsufficientCapacity and so on);
// classify.go is the one place that knows EC2's codes. Calls are retried by
// the SDK's retryer only (standard or adaptive mode), except for the
// eventual-consistency wait of Tag and Untag on instances launched a moment
// ago, which the SDK does not cover.
//
// The instances the scaler owns carry [OwnerTagKey]; docs/iam-policy.json in
// the repository is a least-privilege IAM policy for exactly these calls,
// restricted to instances carrying that tag. Package ec2test is an
// in-process EC2 endpoint for testing code that uses this client without an
// AWS account.
package ec2client
