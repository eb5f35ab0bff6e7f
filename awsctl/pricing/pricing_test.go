package pricing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkpricing "github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/pricing"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// productJSON is one Price List entry (format aws_v1) as GetProducts
// returns it, trimmed of attributes the parser does not read but with the
// Reserved terms, whose hourly prices must not be taken for on-demand.
func productJSON(region, instanceType, sku, usd string) string {
	return fmt.Sprintf(`{
  "product": {
    "productFamily": "Compute Instance",
    "attributes": {
      "capacitystatus": "Used", "instanceFamily": "General purpose", "instanceType": %[2]q,
      "licenseModel": "No License required", "location": "EU (Ireland)", "locationType": "AWS Region",
      "marketoption": "OnDemand", "memory": "8 GiB", "operatingSystem": "Linux", "operation": "RunInstances",
      "preInstalledSw": "NA", "regionCode": %[1]q, "servicecode": "AmazonEC2", "tenancy": "Shared",
      "usagetype": "EU-BoxUsage:%[2]s", "vcpu": "2"
    },
    "sku": %[3]q
  },
  "serviceCode": "AmazonEC2",
  "terms": {
    "OnDemand": {
      "%[3]s.JRTCKXETXF": {
        "priceDimensions": {
          "%[3]s.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [],
            "description": "$%[4]s per On Demand Linux %[2]s Instance Hour",
            "rateCode": "%[3]s.JRTCKXETXF.6YS6EN2CT7",
            "pricePerUnit": {"USD": %[4]q}
          }
        },
        "sku": %[3]q, "effectiveDate": "2025-06-01T00:00:00Z", "offerTermCode": "JRTCKXETXF", "termAttributes": {}
      }
    },
    "Reserved": {
      "%[3]s.4NA7Y494T4": {
        "priceDimensions": {
          "%[3]s.4NA7Y494T4.6YS6EN2CT7": {
            "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [],
            "description": "Linux/UNIX (Amazon VPC), %[2]s reserved instance applied",
            "rateCode": "%[3]s.4NA7Y494T4.6YS6EN2CT7",
            "pricePerUnit": {"USD": "0.0010000000"}
          }
        },
        "sku": %[3]q, "effectiveDate": "2025-06-01T00:00:00Z", "offerTermCode": "4NA7Y494T4",
        "termAttributes": {"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "No Upfront"}
      }
    }
  },
  "version": "20250601000000",
  "publicationDate": "2025-06-01T00:00:00Z"
}`, region, instanceType, sku, usd)
}

type getProductsRequest struct {
	ServiceCode   string
	FormatVersion string
	NextToken     string
	MaxResults    int
	Filters       []struct{ Field, Type, Value string }
}

type page struct {
	items []string
	next  string
}

// priceListServer answers GetProducts from pages keyed by instance type and
// token, and records the requests it saw.
type priceListServer struct {
	t     *testing.T
	pages map[string]map[string]page // instance type -> NextToken ("" first) -> page
	mu    sync.Mutex
	seen  []getProductsRequest
}

func (s *priceListServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	assert.Equal(s.t, http.MethodPost, r.Method)
	assert.Equal(s.t, "AWSPriceListService.GetProducts", r.Header.Get("X-Amz-Target"))
	assert.Equal(s.t, "application/x-amz-json-1.1", r.Header.Get("Content-Type"))
	assert.Contains(s.t, r.Header.Get("Authorization"), "AKIDTEST", "requests are signed")
	var req getProductsRequest
	if !assert.NoError(s.t, json.NewDecoder(r.Body).Decode(&req)) {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, req)
	pages := s.pages
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	instanceType := ""
	for _, f := range req.Filters {
		if f.Field == "instanceType" {
			instanceType = f.Value
		}
	}
	if instanceType == "bad.token" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"InvalidParameterException","Message":"Input parameters are invalid."}`)
		return
	}
	if instanceType == "throttled.large" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ThrottlingException","Message":"Rate exceeded"}`)
		return
	}
	p := pages[instanceType][req.NextToken]
	resp := map[string]any{"FormatVersion": "aws_v1", "PriceList": append([]string{}, p.items...)}
	if p.next != "" {
		resp["NextToken"] = p.next
	}
	assert.NoError(s.t, json.NewEncoder(w).Encode(resp))
}

func newClient(t *testing.T, handler http.Handler) *sdkpricing.Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return sdkpricing.New(sdkpricing.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRET", ""),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1, // failures are asserted, not retried with real sleeps
	})
}

func TestOnDemandPrices(t *testing.T) {
	const region = "eu-west-1"
	srv := &priceListServer{t: t, pages: map[string]map[string]page{
		// The price is on the second page: pagination must be followed.
		"m5.large": {
			"":       {next: "page-2"},
			"page-2": {items: []string{productJSON(region, "m5.large", "HQ5BBQ9Q6QZF9EKX", "0.1070000000")}},
		},
		"c5.large": {
			"": {items: []string{productJSON(region, "c5.large", "9RRJ3AZK7A3J9MQ8", "0.0960000000")}},
		},
		"r5.large": {
			"": {items: []string{productJSON(region, "r5.large", "ZBTSPT6YJNR4F7YK", "not-a-price")}},
		},
		// x9.huge: not listed at all.
	}}
	src, err := pricing.NewSource(newClient(t, srv), nil)
	require.NoError(t, err)

	prices, err := src.OnDemandPrices(t.Context(), region, []string{"m5.large", "c5.large", "r5.large", "x9.huge", "m5.large"})
	assert.Equal(t, map[string]float64{"m5.large": 0.107, "c5.large": 0.096}, prices)
	require.Error(t, err)
	assert.ErrorIs(t, err, pricing.ErrMalformedPriceList)
	assert.Contains(t, err.Error(), "r5.large")
	assert.Contains(t, err.Error(), "not-a-price")

	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Len(t, srv.seen, 5, "two pages for m5.large, one for each other type, m5.large asked once")
	for _, req := range srv.seen {
		assert.Equal(t, "AmazonEC2", req.ServiceCode)
		assert.Equal(t, "aws_v1", req.FormatVersion)
		filters := map[string]string{}
		for _, f := range req.Filters {
			assert.Equal(t, "TERM_MATCH", f.Type)
			filters[f.Field] = f.Value
		}
		assert.Equal(t, region, filters["regionCode"])
		assert.Equal(t, "Linux", filters["operatingSystem"])
		assert.Equal(t, "Shared", filters["tenancy"])
		assert.Equal(t, "NA", filters["preInstalledSw"])
		assert.Equal(t, "Used", filters["capacitystatus"])
		assert.NotEmpty(t, filters["instanceType"])
	}
	var tokens []string
	for _, req := range srv.seen {
		tokens = append(tokens, req.NextToken)
	}
	assert.Contains(t, tokens, "page-2")
}

func TestOnDemandPricesAPIErrors(t *testing.T) {
	srv := &priceListServer{t: t, pages: map[string]map[string]page{
		"m5.large": {"": {items: []string{productJSON("us-east-1", "m5.large", "SKU1", "0.0960000000")}}},
	}}
	src, err := pricing.NewSource(newClient(t, srv), nil)
	require.NoError(t, err)

	prices, err := src.OnDemandPrices(t.Context(), "us-east-1", []string{"bad.token", "m5.large", "throttled.large"})
	assert.Equal(t, map[string]float64{"m5.large": 0.096}, prices, "one type's failure does not lose the others")
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.ErrorIs(t, err, awsctl.ErrThrottled)
	var apiErr *awsctl.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "GetProducts", apiErr.Op)
}

func TestOnDemandPricesStopsOnCancel(t *testing.T) {
	srv := &priceListServer{t: t, pages: map[string]map[string]page{}}
	src, err := pricing.NewSource(newClient(t, srv), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = src.OnDemandPrices(ctx, "us-east-1", []string{"a.large", "b.large", "c.large"})
	assert.ErrorIs(t, err, context.Canceled)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	assert.Len(t, srv.seen, 0, "no call after the context is done")
}

func TestNewSourceValidation(t *testing.T) {
	_, err := pricing.NewSource(nil, nil)
	assert.ErrorContains(t, err, "api")

	src, err := pricing.NewSource(newClient(t, http.NotFoundHandler()), nil)
	require.NoError(t, err)
	_, err = src.OnDemandPrices(t.Context(), "", []string{"m5.large"})
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.ErrorContains(t, err, "region")
}

// The Source feeds a spotprice.Book, which keeps the last good prices when
// a later refresh fails.
func TestSourceRefreshesBook(t *testing.T) {
	srv := &priceListServer{t: t, pages: map[string]map[string]page{
		"m5.large": {"": {items: []string{productJSON("us-east-1", "m5.large", "SKU1", "0.0990000000")}}},
	}}
	src, err := pricing.NewSource(newClient(t, srv), nil)
	require.NoError(t, err)
	book, err := spotprice.NewBook(spotprice.BookConfig{Region: "us-east-1"})
	require.NoError(t, err)

	require.NoError(t, book.RefreshOnDemand(t.Context(), src, []string{"m5.large"}))
	p, ok := book.OnDemand("m5.large")
	require.True(t, ok)
	assert.Equal(t, 0.099, p)

	srv.mu.Lock()
	srv.pages = map[string]map[string]page{
		"m5.large": {"": {items: []string{productJSON("us-east-1", "m5.large", "SKU1", "-1")}}},
	}
	srv.mu.Unlock()
	assert.ErrorIs(t, book.RefreshOnDemand(t.Context(), src, []string{"m5.large"}), pricing.ErrMalformedPriceList)
	p, _ = book.OnDemand("m5.large")
	assert.Equal(t, 0.099, p)
}
