// Package sqsnotice feeds the scaler the spot notices that EC2 publishes as
// EventBridge events, "EC2 Spot Instance Interruption Warning" and "EC2
// Instance Rebalance Recommendation", delivered to an SQS queue. Unlike
// package imdsnotice, which runs on each instance, it runs on the host
// next to the [github.com/ec2autoscale/ec2autoscale/autoscale.Scaler] and
// needs nothing from the workers.
//
// Setting up the queue (once per region): create an SQS queue whose access
// policy lets events.amazonaws.com send messages to it, and an EventBridge
// rule on the default bus with the pattern
//
//	{"source": ["aws.ec2"],
//	 "detail-type": ["EC2 Spot Instance Interruption Warning",
//	                 "EC2 Instance Rebalance Recommendation"]}
//
// and the queue as its target, without an input transformer. The host
// needs sqs:ReceiveMessage and sqs:DeleteMessage on the queue. Events that
// reach the queue through an SNS topic are read too.
//
// Start with [New], passing sqs.NewFromConfig(cfg) and the queue's URL.
// Then either
//
//   - call [Consumer.Start] with the scaler's context and set
//     autoscale.Options.SpotNotices to the [Consumer]: a goroutine
//     long-polls the queue, and the scaler's passes collect what it
//     received through [Consumer.SpotNotices] without waiting on SQS;
//   - or run [Consumer.Run] in a goroutine with scaler.HandleSpotNotice as
//     its function: it long-polls and hands each notice over as it
//     arrives, which can be sooner than the next pass.
//
// A Consumer set as Options.SpotNotices without Start reads the queue in
// each pass, which then waits up to a second on an empty queue.
//
// The queue carries the notices of every spot instance in the account and
// region, and the consumer does not know which are the scaler's: the
// scaler ignores notices for instances it does not own. Several scalers
// must therefore not share one queue, since each message is delivered to
// only one of them; give each its own queue and rule.
//
// Messages are deleted once read, whether they held a notice, an unrelated
// event or an unreadable body (the last two are logged). [ParseEvent] reads
// a single event, for hosts that receive them some other way, such as a
// Lambda function.
package sqsnotice
