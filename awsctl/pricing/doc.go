// Package pricing reads EC2 on-demand list prices from the AWS Price List
// API (aws-sdk-go-v2 service/pricing), for refreshing a
// [github.com/ec2autoscale/ec2autoscale/spotprice.Book] whose compiled-in
// table is dated or does not cover a region.
//
// Start with [NewSource] and pass the [Source] to
// [github.com/ec2autoscale/ec2autoscale/spotprice.Book.RefreshOnDemand],
// for example at start-up and then daily: list prices change rarely.
//
// The Price List API is served from a few regions only, us-east-1 among
// them, whatever region is priced: build the client for us-east-1 and name
// the priced region in the call. The China regions are the exception:
// their prices, in CNY, are listed only by the endpoint in cn-northwest-1,
// to credentials of the China partition; pass a client built for it with
// [WithChinaAPI]. The caller needs the IAM permission pricing:GetProducts.
package pricing
