package sqsnotice_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/sqsnotice"
)

// interruptionEvent is an "EC2 Spot Instance Interruption Warning" as
// EventBridge delivers it to an SQS target.
func interruptionEvent(instanceID, action, at string) string {
	return fmt.Sprintf(`{
  "version": "0",
  "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
  "detail-type": "EC2 Spot Instance Interruption Warning",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": %[3]q,
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1a:instance/%[1]s"],
  "detail": {
    "instance-id": %[1]q,
    "instance-action": %[2]q
  }
}`, instanceID, action, at)
}

// rebalanceEvent is an "EC2 Instance Rebalance Recommendation".
func rebalanceEvent(instanceID, at string) string {
	return fmt.Sprintf(`{
  "version": "0",
  "id": "9f2f1d3c-6a2c-2b4e-11a6-0c4b2e5d7e81",
  "detail-type": "EC2 Instance Rebalance Recommendation",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": %[2]q,
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/%[1]s"],
  "detail": {
    "instance-id": %[1]q
  }
}`, instanceID, at)
}

// stateChangeEvent is an EC2 event the consumer has no use for.
const stateChangeEvent = `{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2026-11-28T11:58:10Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0b662ef9931388ba0"],
  "detail": {"instance-id": "i-0b662ef9931388ba0", "state": "shutting-down"}
}`

// snsWrapped is body as an SNS topic delivers it to a queue without raw
// message delivery.
func snsWrapped(body string) string {
	msg, _ := json.Marshal(body)
	return fmt.Sprintf(`{
  "Type": "Notification",
  "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
  "TopicArn": "arn:aws:sns:us-east-1:123456789012:spot-notices",
  "Message": %s,
  "Timestamp": "2026-11-28T11:58:01.123Z",
  "SignatureVersion": "1",
  "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
  "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
  "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:spot-notices:1"
}`, msg)
}

const instanceID = "i-0b662ef9931388ba0"

var warnedAt = time.Date(2026, 11, 28, 11, 58, 0, 0, time.UTC)

func interruptionNotice(id, action string, deadline time.Time) awsctl.SpotNotice {
	return awsctl.SpotNotice{InstanceID: id, Kind: awsctl.Interruption, Time: warnedAt, Deadline: deadline, Action: action}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      awsctl.SpotNotice
		ok        bool
		malformed bool
	}{
		{
			name: "interruption warning",
			body: interruptionEvent(instanceID, "terminate", "2026-11-28T11:58:00Z"),
			want: interruptionNotice(instanceID, "terminate", warnedAt.Add(2*time.Minute)), ok: true,
		},
		{
			name: "stop",
			body: interruptionEvent(instanceID, "stop", "2026-11-28T11:58:00Z"),
			want: interruptionNotice(instanceID, "stop", warnedAt.Add(2*time.Minute)), ok: true,
		},
		{
			name: "hibernation begins at once",
			body: interruptionEvent(instanceID, "hibernate", "2026-11-28T11:58:00Z"),
			want: interruptionNotice(instanceID, "hibernate", warnedAt), ok: true,
		},
		{
			name: "rebalance recommendation",
			body: rebalanceEvent(instanceID, "2026-11-28T11:40:00Z"),
			want: awsctl.SpotNotice{InstanceID: instanceID, Kind: awsctl.Rebalance, Time: time.Date(2026, 11, 28, 11, 40, 0, 0, time.UTC)},
			ok:   true,
		},
		{
			name: "through SNS",
			body: snsWrapped(interruptionEvent(instanceID, "terminate", "2026-11-28T11:58:00Z")),
			want: interruptionNotice(instanceID, "terminate", warnedAt.Add(2*time.Minute)), ok: true,
		},
		{name: "unrelated EC2 event", body: stateChangeEvent},
		{
			name: "same detail-type from another source",
			body: `{"detail-type":"EC2 Spot Instance Interruption Warning","source":"com.example.drill","time":"2026-11-28T11:58:00Z",
				"detail":{"instance-id":"i-0b662ef9931388ba0","instance-action":"terminate"}}`,
		},
		{name: "unrelated SNS message", body: snsWrapped(`{"alarm":"high cpu"}`)},
		{name: "not JSON", body: "Hello from the SQS console", malformed: true},
		{name: "SNS message not JSON", body: snsWrapped("test"), malformed: true},
		{
			name: "no instance id", malformed: true,
			body: `{"detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2","time":"2026-11-28T11:40:00Z","detail":{}}`,
		},
		{
			name: "no detail", malformed: true,
			body: `{"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":"2026-11-28T11:58:00Z"}`,
		},
		{name: "bad time", body: interruptionEvent(instanceID, "terminate", "yyyy-mm-ddThh:mm:ssZ"), malformed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := sqsnotice.ParseEvent([]byte(tc.body))
			if tc.malformed {
				require.ErrorIs(t, err, sqsnotice.ErrMalformedEvent)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}
