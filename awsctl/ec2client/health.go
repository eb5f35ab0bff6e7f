package ec2client

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ScheduledEvent is maintenance EC2 has scheduled for an instance: a
// reboot, a stop or a retirement the host should drain the instance for.
type ScheduledEvent struct {
	InstanceID string
	Zone       string
	// Code is EC2's event code: instance-reboot, system-reboot,
	// system-maintenance, instance-retirement or instance-stop.
	Code        string
	Description string
	// NotBefore is the earliest time the event may start; NotAfter, when
	// set, the latest time it ends.
	NotBefore, NotAfter time.Time
}

// ScheduledEvents returns the upcoming scheduled events of the instances
// ids, from filtered, paginated DescribeInstanceStatus calls of up to 100
// ids each. Events EC2 marks as completed or cancelled are left out; ids
// EC2 does not know are left out too.
func (c *Client) ScheduledEvents(ctx context.Context, ids []string) ([]ScheduledEvent, error) {
	var out []ScheduledEvent
	for batch := range slices.Chunk(slices.Clone(ids), maxStatusBatch) {
		// The ids go in a filter, with MaxResults, rather than in
		// InstanceIds: EC2's "Request throttling" guide counts describes
		// made with neither filters nor pagination in a bucket of their
		// own, half the size of the other describes' (50 requests, then 10
		// a second), which the client's describe bucket does not model.
		// Filtered and paginated, the call counts as any other describe.
		in := &ec2.DescribeInstanceStatusInput{
			Filters:             []types.Filter{{Name: aws.String("instance-id"), Values: batch}},
			MaxResults:          aws.Int32(pageSize),
			IncludeAllInstances: aws.Bool(true),
		}
		pages := ec2.NewDescribeInstanceStatusPaginator(c.api, in)
		for pages.HasMorePages() {
			if err := wait(ctx, "DescribeInstanceStatus", c.limits.describe, 1); err != nil {
				return nil, err
			}
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, classify("DescribeInstanceStatus", err)
			}
			for _, st := range page.InstanceStatuses {
				for _, ev := range st.Events {
					desc := aws.ToString(ev.Description)
					if strings.HasPrefix(desc, "[Completed]") || strings.HasPrefix(desc, "[Canceled]") {
						continue
					}
					out = append(out, ScheduledEvent{
						InstanceID:  aws.ToString(st.InstanceId),
						Zone:        aws.ToString(st.AvailabilityZone),
						Code:        string(ev.Code),
						Description: desc,
						NotBefore:   aws.ToTime(ev.NotBefore),
						NotAfter:    aws.ToTime(ev.NotAfter),
					})
				}
			}
		}
	}
	return out, nil
}
