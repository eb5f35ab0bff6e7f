package sqsnotice_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/sqsnotice"
)

// exampleClient is an SQS client for a local server standing in for SQS.
// With real AWS, the client comes from the shared configuration:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	client := sqs.NewFromConfig(cfg)
func exampleClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, "SECRET", ""),
	})
}

// The scaler polls the consumer at the start of every pass when it is set
// as autoscale.Options.SpotNotices; here it is called directly.
func ExampleConsumer_SpotNotices() {
	queue := newQueueServer()
	srv := httptest.NewServer(queue)
	defer srv.Close()
	queue.send(
		interruptionEvent("i-0b662ef9931388ba0", "terminate", "2026-11-28T11:58:00Z"),
		rebalanceEvent("i-0c1f5a1e2d3b4c5d6", "2026-11-28T11:40:00Z"),
	)

	consumer, err := sqsnotice.New(exampleClient(srv.URL), "https://sqs.us-east-1.amazonaws.com/123456789012/spot-notices", sqsnotice.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	notices, err := consumer.SpotNotices(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range notices {
		if n.Kind == awsctl.Interruption {
			fmt.Println(n.InstanceID, n.Kind, n.Action, "at", n.Deadline.Format("15:04:05"))
		} else {
			fmt.Println(n.InstanceID, n.Kind, "since", n.Time.Format("15:04:05"))
		}
	}
	// Output:
	// i-0b662ef9931388ba0 interruption terminate at 12:00:00
	// i-0c1f5a1e2d3b4c5d6 rebalance since 11:40:00
}

// A host that pushes notices runs the consumer with the scaler's
// HandleSpotNotice:
//
//	go consumer.Run(ctx, scaler.HandleSpotNotice)
func ExampleConsumer_Run() {
	queue := newQueueServer()
	srv := httptest.NewServer(queue)
	defer srv.Close()
	queue.send(interruptionEvent("i-0b662ef9931388ba0", "terminate", "2026-11-28T11:58:00Z"))

	consumer, err := sqsnotice.New(exampleClient(srv.URL), "https://sqs.us-east-1.amazonaws.com/123456789012/spot-notices", sqsnotice.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = consumer.Run(ctx, func(n awsctl.SpotNotice) {
		fmt.Println(n.InstanceID, n.Kind, "deadline", n.Deadline.Format("15:04:05"))
		cancel()
	})
	fmt.Println(err)
	// Output:
	// i-0b662ef9931388ba0 interruption deadline 12:00:00
	// context canceled
}

func ExampleParseEvent() {
	body := `{"version": "0", "id": "9f2f1d3c-6a2c-2b4e-11a6-0c4b2e5d7e81",
		"detail-type": "EC2 Instance Rebalance Recommendation", "source": "aws.ec2",
		"account": "123456789012", "time": "2026-11-28T11:40:00Z", "region": "us-east-1",
		"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0b662ef9931388ba0"],
		"detail": {"instance-id": "i-0b662ef9931388ba0"}}`
	n, ok, err := sqsnotice.ParseEvent([]byte(body))
	fmt.Println(n.InstanceID, n.Kind, ok, err)
	// Output:
	// i-0b662ef9931388ba0 rebalance true <nil>
}
