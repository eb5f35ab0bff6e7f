package ec2client

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/ec2filter"
)

// InstanceHealth implements awsctl.HealthReader: it reports, of the
// instances ids, those with an upcoming scheduled event and those running
// with a status check other than ok, from filtered, paginated
// DescribeInstanceStatus calls of up to 100 ids each (the most the call
// takes, per the EC2 API reference), one call per page and never one per
// instance. Ids EC2 does not know are left out, as are instances shutting
// down or terminated. An empty id fails with awsctl.ErrInvalidRequest
// before any call.
//
// Events whose description starts with "[Completed]" or "[Canceled]" are
// over and left out: EC2 keeps describing a completed event for up to a
// week with that prefix (InstanceStatusEvent in the EC2 API reference, and
// "View scheduled events" in the EC2 user guide's "Scheduled events for
// Amazon EC2 instances", which names both prefixes).
func (c *Client) InstanceHealth(ctx context.Context, ids []string) ([]awsctl.InstanceHealth, error) {
	const op = "DescribeInstanceStatus"
	ids, err := distinctIDs(ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var out []awsctl.InstanceHealth
	for batch := range slices.Chunk(ids, maxStatusBatch) {
		values := make([]string, len(batch))
		for i, id := range batch {
			values[i] = ec2filter.Escape(id) // an id is matched literally, never as a pattern
		}
		// The ids go in a filter, with MaxResults, rather than in
		// InstanceIds, for two reasons. EC2's "Request throttling" guide
		// counts describes made with neither filters nor pagination in a
		// bucket of their own, half the size of the other describes' (50
		// requests, then 10 a second), which the client's describe bucket
		// does not model; filtered and paginated, the call counts as any
		// other describe. And InstanceIds fails the whole call with
		// InvalidInstanceID.NotFound if one id is unknown (a server
		// terminated an hour ago), where a filter just matches nothing.
		// IncludeAllInstances describes instances in every state, so that
		// the events of an instance not running are not missed.
		in := &ec2.DescribeInstanceStatusInput{
			Filters:             []types.Filter{{Name: aws.String("instance-id"), Values: values}},
			MaxResults:          aws.Int32(pageSize),
			IncludeAllInstances: aws.Bool(true),
		}
		pages := ec2.NewDescribeInstanceStatusPaginator(c.api, in)
		for pages.HasMorePages() {
			if err := wait(ctx, op, c.limits.describe, 1); err != nil {
				return nil, err
			}
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, classify(op, err)
			}
			for _, st := range page.InstanceStatuses {
				if h, ok := toHealth(st); ok {
					out = append(out, h)
				}
			}
		}
	}
	return out, nil
}

// distinctIDs returns ids without duplicates, in order, or an error of
// kind awsctl.ErrInvalidRequest naming an empty id.
func distinctIDs(ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("instance id %d of %d is empty: %w", i+1, len(ids), awsctl.ErrInvalidRequest)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// toHealth reads one instance's status, and reports whether it needs
// attention: an upcoming event, or a running instance with a check that
// is not ok.
func toHealth(st types.InstanceStatus) (awsctl.InstanceHealth, bool) {
	var state types.InstanceStateName
	if st.InstanceState != nil {
		state = st.InstanceState.Name
	}
	if state == types.InstanceStateNameShuttingDown || state == types.InstanceStateNameTerminated {
		return awsctl.InstanceHealth{}, false
	}
	running := state == types.InstanceStateNameRunning
	h := awsctl.InstanceHealth{
		ID:       aws.ToString(st.InstanceId),
		System:   checkStatus(st.SystemStatus, running),
		Instance: checkStatus(st.InstanceStatus, running),
	}
	for _, sum := range []*types.InstanceStatusSummary{st.SystemStatus, st.InstanceStatus} {
		if sum == nil || sum.Status != types.SummaryStatusImpaired {
			continue
		}
		for _, d := range sum.Details {
			if d.Status == types.StatusTypeFailed && d.ImpairedSince != nil &&
				(h.ImpairedSince.IsZero() || d.ImpairedSince.Before(h.ImpairedSince)) {
				h.ImpairedSince = *d.ImpairedSince
			}
		}
	}
	for _, ev := range st.Events {
		desc := aws.ToString(ev.Description)
		if strings.HasPrefix(desc, "[Completed]") || strings.HasPrefix(desc, "[Canceled]") {
			continue
		}
		h.Events = append(h.Events, awsctl.ScheduledEvent{
			ID:          aws.ToString(ev.InstanceEventId),
			Code:        awsctl.EventCode(ev.Code),
			Description: desc,
			NotBefore:   aws.ToTime(ev.NotBefore),
			NotAfter:    aws.ToTime(ev.NotAfter),
		})
	}
	slices.SortStableFunc(h.Events, func(a, b awsctl.ScheduledEvent) int { return a.NotBefore.Compare(b.NotBefore) })
	checksOK := h.System == awsctl.CheckOK && h.Instance == awsctl.CheckOK
	return h, len(h.Events) > 0 || (running && !checksOK)
}

// checkStatus reads a status check summary. A summary EC2 left out reads as
// insufficient-data on a running instance and not-applicable on others.
func checkStatus(sum *types.InstanceStatusSummary, running bool) awsctl.CheckStatus {
	switch {
	case sum != nil && sum.Status != "":
		return awsctl.CheckStatus(sum.Status)
	case running:
		return awsctl.CheckInsufficientData
	}
	return awsctl.CheckNotApplicable
}
