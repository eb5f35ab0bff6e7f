package ec2client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/cenkalti/backoff/v4"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/ec2filter"
)

// listedStates are the instance states ListInstances asks for: every state
// but terminated, unless includeTerminated. Shutting-down instances are
// included because they still count against limits and may still be
// billed.
func listedStates(includeTerminated bool) []string {
	states := []string{
		string(types.InstanceStateNamePending), string(types.InstanceStateNameRunning),
		string(types.InstanceStateNameShuttingDown), string(types.InstanceStateNameStopping),
		string(types.InstanceStateNameStopped),
	}
	if includeTerminated {
		states = append(states, string(types.InstanceStateNameTerminated))
	}
	return states
}

var _ awsctl.InstanceAppender = (*Client)(nil)

// ListInstances returns the instances carrying every tag of filter, in one
// paginated DescribeInstances. The tag values are sent escaped, and each
// instance listed is checked again for exact equality, so that a value with
// wildcard characters ("team-*") never selects other owners' instances,
// even from an EC2-compatible service that matches filters loosely. Every
// call returns new Tags maps, which the client never touches again.
func (c *Client) ListInstances(ctx context.Context, filter awsctl.ListFilter) ([]awsctl.Instance, error) {
	return c.AppendInstances(ctx, nil, filter)
}

// AppendInstances is ListInstances appending to buf (see
// awsctl.InstanceAppender).
func (c *Client) AppendInstances(ctx context.Context, buf []awsctl.Instance, filter awsctl.ListFilter) ([]awsctl.Instance, error) {
	in := &ec2.DescribeInstancesInput{
		Filters: append(tagFilters(filter.Tags),
			types.Filter{Name: aws.String("instance-state-name"), Values: listedStates(filter.IncludeTerminated)}),
		MaxResults: aws.Int32(pageSize),
	}
	out := buf
	dropped := 0
	err := c.describeInstances(ctx, in, func(got awsctl.Instance) {
		if !hasTags(got.Tags, filter.Tags) {
			dropped++
			return
		}
		out = append(out, got)
	})
	if err != nil {
		return buf, err
	}
	if dropped > 0 {
		c.log.Warn("DescribeInstances returned instances whose tags do not equal the filter's; they are left out",
			"dropped", dropped, "tags", filter.Tags)
	}
	c.log.Debug("DescribeInstances", "instances", len(out)-len(buf))
	return out, nil
}

// tagFilters returns one "tag:key" filter per tag, in key order so that
// requests are reproducible. EC2 reads "*" and "?" in filter values as
// wildcards and a backslash as an escape (the Filter data type of the EC2
// API reference), so values are escaped to match only themselves.
func tagFilters(tags map[string]string) []types.Filter {
	var filters []types.Filter
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{ec2filter.Escape(tags[k])}})
	}
	return filters
}

// hasTags reports whether tags holds every tag of want with the same
// value.
func hasTags(tags, want map[string]string) bool {
	for k, v := range want {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func toInstance(in types.Instance) awsctl.Instance {
	out := awsctl.Instance{
		ID:         aws.ToString(in.InstanceId),
		Type:       string(in.InstanceType),
		Market:     awsctl.MarketOnDemand,
		LaunchTime: aws.ToTime(in.LaunchTime),
		PrivateIP:  aws.ToString(in.PrivateIpAddress),
		Tags:       make(map[string]string, len(in.Tags)),
	}
	if in.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
		out.Market = awsctl.MarketSpot
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.State != nil {
		out.State = awsctl.State(in.State.Name)
	}
	for _, t := range in.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// Terminate terminates ids in batches of MaxTerminateBatch and returns the
// ids EC2 accepted. Instances already shutting down or terminated are
// accepted again. EC2 rejects a whole batch when it does not know one of
// its ids; the batch is then sent again without the ids EC2 named, which
// are reported in an InvalidInstanceID.NotFound error (awsctl.ErrNotFound).
// An instance under termination protection fails its batch with
// OperationNotPermitted (see isolateProtected); the rest of the batch is
// still terminated, and the protected instance is reported once, in an
// error naming it.
func (c *Client) Terminate(ctx context.Context, ids []string) ([]string, error) {
	var accepted []string
	var errs []error
	for batch := range slices.Chunk(slices.Clone(ids), MaxTerminateBatch) {
		got, err := c.terminateBatch(ctx, batch)
		accepted = append(accepted, got...)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return accepted, errors.Join(errs...)
}

func (c *Client) terminateBatch(ctx context.Context, ids []string) ([]string, error) {
	accepted, err := c.terminateOnce(ctx, ids)
	if missing := notFoundIDs(err); len(missing) > 0 {
		rest := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(missing, id) })
		if len(rest) == len(ids) || len(rest) == 0 {
			return accepted, err
		}
		// Once only: an id that vanished in between fails this round whole.
		got, again := c.terminateOnce(ctx, rest)
		if isCode(again, codeNotPermitted) {
			got, again = c.isolateProtected(ctx, rest, again)
		}
		return got, errors.Join(err, again)
	}
	if isCode(err, codeNotPermitted) {
		return c.isolateProtected(ctx, ids, err)
	}
	return accepted, err
}

// isolateProtected terminates what it can of ids after EC2 refused them
// with OperationNotPermitted (err) because of termination protection. By
// the TerminateInstances API reference, such a call fails whole, yet the
// instances in zones without a protected instance are terminated anyway,
// and those in the zones of the protected ones are not. So the ids are sent
// again zone by zone (terminating an instance twice is accepted), and the
// zones refused again id by id: every unprotected instance ends up
// terminated and accepted, and each protected one is reported once.
func (c *Client) isolateProtected(ctx context.Context, ids []string, err error) ([]string, error) {
	if len(ids) == 1 {
		return nil, instanceError(ids[0], err)
	}
	zones, zerr := c.zonesOf(ctx, ids)
	var groups [][]string
	if zerr != nil {
		c.log.Warn("TerminateInstances: cannot tell the zones of a refused batch; retrying id by id", "error", zerr)
		groups = [][]string{ids}
	} else {
		byZone := map[string][]string{}
		for _, id := range ids {
			byZone[zones[id]] = append(byZone[zones[id]], id)
		}
		for _, z := range slices.Sorted(maps.Keys(byZone)) {
			groups = append(groups, byZone[z])
		}
	}
	var accepted []string
	var errs []error
	for _, group := range groups {
		if ctx.Err() != nil {
			return accepted, errors.Join(append(errs, fmt.Errorf("TerminateInstances: %w", ctx.Err()))...)
		}
		if len(groups) > 1 && len(group) > 1 {
			got, gerr := c.terminateOnce(ctx, group)
			accepted = append(accepted, got...)
			if !isCode(gerr, codeNotPermitted) {
				if gerr != nil {
					errs = append(errs, gerr)
				}
				continue
			}
		}
		for _, id := range group {
			got, ierr := c.terminateOnce(ctx, []string{id})
			accepted = append(accepted, got...)
			if ierr != nil {
				errs = append(errs, instanceError(id, ierr))
				if ctx.Err() != nil {
					break
				}
			}
		}
	}
	return accepted, errors.Join(errs...)
}

// describeInstances pages through a DescribeInstances, within the describe
// request budget, and hands each instance to each.
func (c *Client) describeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, each func(awsctl.Instance)) error {
	pages := ec2.NewDescribeInstancesPaginator(c.api, in)
	for pages.HasMorePages() {
		if err := wait(ctx, "DescribeInstances", c.limits.describe, 1); err != nil {
			return err
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return classify("DescribeInstances", err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				each(toInstance(inst))
			}
		}
	}
	return nil
}

// instanceError is the error of one instance of a batch call.
func instanceError(id string, err error) error { return fmt.Errorf("instance %s: %w", id, err) }

// zonesOf returns the zone of each of ids that EC2 lists, from a filtered,
// paginated DescribeInstances.
func (c *Client) zonesOf(ctx context.Context, ids []string) (map[string]string, error) {
	zones := make(map[string]string, len(ids))
	for batch := range slices.Chunk(slices.Clone(ids), maxFilterValues) {
		in := &ec2.DescribeInstancesInput{
			Filters:    []types.Filter{{Name: aws.String("instance-id"), Values: batch}},
			MaxResults: aws.Int32(pageSize),
		}
		if err := c.describeInstances(ctx, in, func(got awsctl.Instance) { zones[got.ID] = got.Zone }); err != nil {
			return nil, err
		}
	}
	return zones, nil
}

func (c *Client) terminateOnce(ctx context.Context, ids []string) ([]string, error) {
	if err := wait(ctx, "TerminateInstances", c.limits.terminate, 1); err != nil {
		return nil, err
	}
	if err := wait(ctx, "TerminateInstances", c.limits.terminated, len(ids)); err != nil {
		return nil, err
	}
	out, err := c.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil {
		return nil, classify("TerminateInstances", err)
	}
	accepted := make([]string, 0, len(out.TerminatingInstances))
	for _, st := range out.TerminatingInstances {
		accepted = append(accepted, aws.ToString(st.InstanceId))
	}
	c.log.Debug("TerminateInstances", "requested", len(ids), "accepted", len(accepted))
	return accepted, nil
}

// Tag sets tags on ids, in batches of MaxTagBatch ids.
func (c *Client) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	if len(ids) == 0 || len(tags) == 0 {
		return nil
	}
	ec2Tags := toTags(tags)
	return c.eachTagBatch(ctx, "CreateTags", ids, func(ctx context.Context, batch []string) error {
		_, err := c.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: batch, Tags: ec2Tags})
		return err
	})
}

// Untag removes the tag keys from ids, in batches of MaxTagBatch ids.
func (c *Client) Untag(ctx context.Context, ids []string, keys []string) error {
	if len(ids) == 0 || len(keys) == 0 {
		return nil
	}
	ec2Tags := make([]types.Tag, len(keys))
	for i, k := range keys {
		// No value: the tag goes whatever its value.
		ec2Tags[i] = types.Tag{Key: aws.String(k)}
	}
	return c.eachTagBatch(ctx, "DeleteTags", ids, func(ctx context.Context, batch []string) error {
		_, err := c.api.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: batch, Tags: ec2Tags})
		return err
	})
}

func (c *Client) eachTagBatch(ctx context.Context, op string, ids []string, call func(context.Context, []string) error) error {
	var errs []error
	for batch := range slices.Chunk(slices.Clone(ids), MaxTagBatch) {
		if err := c.tagBatch(ctx, op, batch, call); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// tagBatch sends one batch, waiting out EC2's eventual consistency: an
// instance launched a moment ago may be unknown to CreateTags for a few
// seconds. The SDK does not retry InvalidInstanceID.NotFound, so this is
// the only retry of that answer. Like EC2's own calls, a batch is all or
// nothing: after ConsistencyWait an id still unknown fails the batch.
func (c *Client) tagBatch(ctx context.Context, op string, ids []string, call func(context.Context, []string) error) error {
	send := func() error {
		if err := wait(ctx, op, c.limits.tags, 1); err != nil {
			return err
		}
		return classify(op, call(ctx, ids))
	}
	if c.opts.ConsistencyWait < 0 {
		return send()
	}
	policy := backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(c.opts.ConsistencyWait))
	var last error
	err := backoff.RetryNotify(func() error {
		last = send()
		if last != nil && isCode(last, codeInstanceNotFound) {
			return last
		}
		return backoff.Permanent(last)
	}, backoff.WithContext(policy, ctx), func(_ error, next time.Duration) {
		c.log.Debug(op+": instances not visible yet; waiting", "ids", len(ids), "retry_in", next)
	})
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) && last != nil && !errors.Is(last, cerr) {
		return fmt.Errorf("%s: waiting for instances to become visible: %w (last answer: %w)", op, err, last)
	}
	return err
}

func toTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}
