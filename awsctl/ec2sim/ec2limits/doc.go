// Package ec2limits enforces EC2's API request limits on a simulated cloud,
// so that a simulation can show whether the scaler's calls stay within them.
//
// [New] wraps an awsctl.CloudClient (usually an ec2sim.Sim) in a [Client]
// whose token buckets refill on the simulator's clock. A call that would
// exceed a bucket fails with a RequestLimitExceeded error, as EC2 answers,
// and is counted in [Client.Throttled]. Every API has a request bucket of
// its own, as EC2 evaluates each API on its own. [Default] holds EC2's
// documented default limits.
package ec2limits
