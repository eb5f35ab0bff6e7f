// Package cloudtest is a conformance suite for implementations of
// [awsctl.CloudClient]: it checks the behaviour the scaler relies on, such
// as tag filtering, idempotent launches and terminations, partial success
// and error kinds, so that every client (the simulator, the EC2 client
// against a test server, a user's own) behaves alike.
//
// Call [Run] from a test with a function that builds a fresh [Harness]:
//
//	func TestConformance(t *testing.T) {
//		cloudtest.Run(t, func(t *testing.T) cloudtest.Harness {
//			return cloudtest.Harness{Client: newClient(t), Spec: spec, Offerings: offerings}
//		})
//	}
//
// The suite checks behaviour, not timing: it expects new instances to be
// listed at once and never waits for boots or shutdowns. Errors are
// checked with errors.Is against the awsctl error kinds, never against
// provider codes. Every subtest tags its instances with [OwnerTag] and a
// value of its own and terminates them when it ends.
package cloudtest
