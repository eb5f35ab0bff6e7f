package pricing_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkpricing "github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/ec2autoscale/ec2autoscale/awsctl/pricing"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// With real AWS, the client comes from the shared configuration:
//
//	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
//	client := sdkpricing.NewFromConfig(cfg)
//
// Here a local server stands in for the Price List API.
func ExampleSource() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprintf(w, `{"FormatVersion":"aws_v1","PriceList":[%q]}`,
			productJSON("eu-west-1", "m5.large", "HQ5BBQ9Q6QZF9EKX", "0.1080000000"))
	}))
	defer srv.Close()
	client := sdkpricing.New(sdkpricing.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "SECRET", ""),
	})

	src, err := pricing.NewSource(client, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "eu-west-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	before, _ := book.OnDemand("m5.large") // compiled-in
	if err := book.RefreshOnDemand(context.Background(), src, []string{"m5.large"}); err != nil {
		fmt.Println(err)
		return
	}
	after, _ := book.OnDemand("m5.large")
	fmt.Println(before, "->", after)
	// Output:
	// 0.107 -> 0.108
}
