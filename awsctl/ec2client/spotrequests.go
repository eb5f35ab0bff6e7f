package ec2client

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// SpotRequest is a legacy spot instance request (RequestSpotInstances), as
// left behind by older tools or versions. The scaler launches spot through
// RunInstances and CreateFleet, whose requests close with their launch; an
// open or active request of its own is a leftover that may launch again.
type SpotRequest struct {
	ID string
	// State is "open" (waiting to launch) or "active" (an instance runs;
	// a persistent request relaunches it when it is interrupted).
	State string
	// InstanceID is the instance the request launched, if any.
	InstanceID   string
	InstanceType string
	Zone         string
	CreateTime   time.Time
	Tags         map[string]string
}

// OpenSpotRequests returns the open and active spot instance requests that
// carry every tag of tags (typically the owner tag), from a paginated
// DescribeSpotInstanceRequests.
func (c *Client) OpenSpotRequests(ctx context.Context, tags map[string]string) ([]SpotRequest, error) {
	in := &ec2.DescribeSpotInstanceRequestsInput{
		Filters: append(tagFilters(tags), types.Filter{Name: aws.String("state"),
			Values: []string{string(types.SpotInstanceStateOpen), string(types.SpotInstanceStateActive)}}),
		MaxResults: aws.Int32(pageSize),
	}
	var out []SpotRequest
	pages := ec2.NewDescribeSpotInstanceRequestsPaginator(c.api, in)
	for pages.HasMorePages() {
		if err := wait(ctx, "DescribeSpotInstanceRequests", c.limits.describe, 1); err != nil {
			return nil, err
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("DescribeSpotInstanceRequests", err)
		}
		for _, r := range page.SpotInstanceRequests {
			sr := SpotRequest{
				ID:         aws.ToString(r.SpotInstanceRequestId),
				State:      string(r.State),
				InstanceID: aws.ToString(r.InstanceId),
				Zone:       aws.ToString(r.LaunchedAvailabilityZone),
				CreateTime: aws.ToTime(r.CreateTime),
				Tags:       make(map[string]string, len(r.Tags)),
			}
			if ls := r.LaunchSpecification; ls != nil {
				sr.InstanceType = string(ls.InstanceType)
				if sr.Zone == "" && ls.Placement != nil {
					sr.Zone = aws.ToString(ls.Placement.AvailabilityZone)
				}
			}
			for _, t := range r.Tags {
				sr.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			if !hasTags(sr.Tags, tags) {
				continue // matched loosely (see ListInstances): not ours
			}
			out = append(out, sr)
		}
	}
	return out, nil
}

// CancelSpotRequests cancels the spot instance requests ids and returns
// the ids EC2 cancelled. Cancelling a request does not terminate the
// instance it launched.
func (c *Client) CancelSpotRequests(ctx context.Context, ids []string) ([]string, error) {
	var cancelled []string
	var errs []error
	for batch := range slices.Chunk(slices.Clone(ids), MaxTerminateBatch) {
		if err := wait(ctx, "CancelSpotInstanceRequests", c.limits.mutating, 1); err != nil {
			errs = append(errs, err)
			break
		}
		out, err := c.api.CancelSpotInstanceRequests(ctx, &ec2.CancelSpotInstanceRequestsInput{SpotInstanceRequestIds: batch})
		if err != nil {
			errs = append(errs, classify("CancelSpotInstanceRequests", err))
			continue
		}
		for _, r := range out.CancelledSpotInstanceRequests {
			cancelled = append(cancelled, aws.ToString(r.SpotInstanceRequestId))
		}
	}
	return cancelled, errors.Join(errs...)
}
