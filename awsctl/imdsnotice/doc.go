// Package imdsnotice watches, from inside a spot instance, for the notices
// EC2 posts in the instance metadata: the interruption notice
// (spot/instance-action, two minutes before EC2 terminates, stops or
// hibernates the instance) and the rebalance recommendation
// (events/recommendations/rebalance, a sign of elevated interruption
// risk). It reads them with aws-sdk-go-v2's feature/ec2/imds client, which
// uses IMDSv2 session tokens.
//
// It is for the worker programs that run on the instances. The host that
// runs the [github.com/ec2autoscale/ec2autoscale/autoscale.Scaler] cannot
// read another instance's metadata; to learn of notices there instead, use
// package sqsnotice, which consumes the same notices as EventBridge events.
// The two can run side by side: repeating a notice is harmless.
//
// Start with [New], passing imds.NewFromConfig(cfg) or
// imds.New(imds.Options{}), then run [Watcher.Watch] in a goroutine for the
// life of the worker. Watch polls every [DefaultInterval] and calls its
// function once per new notice. The worker forwards each notice to the host
// over whatever channel the two already share (an HTTP endpoint, a message
// queue, the job protocol), and the host hands it to the scaler:
//
//	// On the worker:
//	w, err := imdsnotice.New(imds.NewFromConfig(cfg), imdsnotice.Options{Logger: logger})
//	...
//	go w.Watch(ctx, func(n awsctl.SpotNotice) {
//		stopTakingLongJobs(n)  // the worker's own reaction, if any
//		reportToHost(ctx, n)   // e.g. POST it as JSON to the host
//	})
//
//	// On the host, in the handler that receives it:
//	scaler.HandleSpotNotice(n)
//
// The scaler ignores notices for instances that are not its own, and the
// wind-down it starts reaches the worker through the role's hooks as usual,
// so the worker need not act on a notice itself. [Watcher.Check] polls
// once, for workers that prefer their own loop.
//
// The instance's metadata options must leave the metadata service enabled
// (the default); a hop limit of 1 is enough unless the worker runs in a
// container with bridged networking, which needs 2.
package imdsnotice
