package ec2client

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// ProductDescription is the platform whose spot prices SpotPrices reports
// and whose reservations Reservations lists: the scaler launches Linux.
const ProductDescription = "Linux/UNIX"

// SpotPrices returns the current spot price of each (instance type, zone)
// of instanceTypes, from a paginated DescribeSpotPriceHistory starting now
// (which EC2 answers with the latest price of each pool). No instance types
// means no prices.
func (c *Client) SpotPrices(ctx context.Context, instanceTypes []string) ([]awsctl.SpotPrice, error) {
	if len(instanceTypes) == 0 {
		return nil, nil
	}
	wanted := make([]types.InstanceType, len(instanceTypes))
	for i, t := range instanceTypes {
		wanted[i] = types.InstanceType(t)
	}
	in := &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       wanted,
		ProductDescriptions: []string{ProductDescription},
		StartTime:           aws.Time(time.Now()),
		MaxResults:          aws.Int32(pageSize),
	}
	latest := map[offeringKey]awsctl.SpotPrice{}
	var order []offeringKey
	pages := ec2.NewDescribeSpotPriceHistoryPaginator(c.api, in)
	for pages.HasMorePages() {
		if err := wait(ctx, "DescribeSpotPriceHistory", c.limits.describe, 1); err != nil {
			return nil, err
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("DescribeSpotPriceHistory", err)
		}
		for _, sp := range page.SpotPriceHistory {
			price, err := strconv.ParseFloat(aws.ToString(sp.SpotPrice), 64)
			if err != nil || price < 0 {
				c.log.Warn("DescribeSpotPriceHistory: skipping an unreadable price",
					"type", sp.InstanceType, "zone", aws.ToString(sp.AvailabilityZone), "price", aws.ToString(sp.SpotPrice))
				continue
			}
			p := awsctl.SpotPrice{
				InstanceType: string(sp.InstanceType), Zone: aws.ToString(sp.AvailabilityZone),
				PricePerHour: price, Time: aws.ToTime(sp.Timestamp),
			}
			k := offeringKey{p.InstanceType, p.Zone}
			old, seen := latest[k]
			if !seen {
				order = append(order, k)
			}
			if !seen || p.Time.After(old.Time) {
				latest[k] = p
			}
		}
	}
	out := make([]awsctl.SpotPrice, len(order))
	for i, k := range order {
		out[i] = latest[k]
	}
	return out, nil
}

// Reservations returns the account's active Linux reserved instances in
// the client's region. A regional reservation has no Zone.
func (c *Client) Reservations(ctx context.Context) ([]awsctl.Reservation, error) {
	if err := wait(ctx, "DescribeReservedInstances", c.limits.describe, 1); err != nil {
		return nil, err
	}
	out, err := c.api.DescribeReservedInstances(ctx, &ec2.DescribeReservedInstancesInput{
		Filters: []types.Filter{
			{Name: aws.String("state"), Values: []string{string(types.ReservedInstanceStateActive)}},
			{Name: aws.String("product-description"), Values: []string{ProductDescription, ProductDescription + " (Amazon VPC)"}},
		},
	})
	if err != nil {
		return nil, classify("DescribeReservedInstances", err)
	}
	res := make([]awsctl.Reservation, 0, len(out.ReservedInstances))
	for _, ri := range out.ReservedInstances {
		r := awsctl.Reservation{
			InstanceType: string(ri.InstanceType),
			Count:        int(aws.ToInt32(ri.InstanceCount)),
			End:          aws.ToTime(ri.End),
		}
		if ri.Scope != types.ScopeRegional {
			r.Zone = aws.ToString(ri.AvailabilityZone)
		}
		res = append(res, r)
	}
	return res, nil
}
