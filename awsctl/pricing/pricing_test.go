package pricing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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

// product is one Price List entry (format aws_v1) as GetProducts returns
// it. Empty fields take the values of a Linux instance on shared tenancy
// sold on demand, priced in USD.
type product struct {
	region, instanceType, sku, price string
	family                           string // productFamily: "Compute Instance"
	tenancy                          string // "Shared"
	market                           string // marketoption: "OnDemand"
	os                               string // operatingSystem: "Linux"
	currency                         string // "USD"
}

// productJSON is an entry for an ordinary on-demand Linux instance.
func productJSON(region, instanceType, sku, usd string) string {
	return product{region: region, instanceType: instanceType, sku: sku, price: usd}.json()
}

// json renders p trimmed of attributes the parser does not read but with
// the Reserved terms, whose hourly prices must not be taken for on-demand.
func (p product) json() string {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	return fmt.Sprintf(`{
  "product": {
    "productFamily": %[5]q,
    "attributes": {
      "capacitystatus": "Used", "instanceFamily": "General purpose", "instanceType": %[2]q,
      "licenseModel": "No License required", "location": "EU (Ireland)", "locationType": "AWS Region",
      "marketoption": %[7]q, "memory": "8 GiB", "operatingSystem": %[8]q, "operation": "RunInstances",
      "preInstalledSw": "NA", "regionCode": %[1]q, "servicecode": "AmazonEC2", "tenancy": %[6]q,
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
            "description": "%[4]s %[9]s per On Demand Linux %[2]s Instance Hour",
            "rateCode": "%[3]s.JRTCKXETXF.6YS6EN2CT7",
            "pricePerUnit": {%[9]q: %[4]q}
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
            "pricePerUnit": {%[9]q: "0.0010000000"}
          }
        },
        "sku": %[3]q, "effectiveDate": "2025-06-01T00:00:00Z", "offerTermCode": "4NA7Y494T4",
        "termAttributes": {"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "No Upfront"}
      }
    }
  },
  "version": "20250601000000",
  "publicationDate": "2025-06-01T00:00:00Z"
}`, p.region, p.instanceType, p.sku, p.price, or(p.family, "Compute Instance"), or(p.tenancy, "Shared"),
		or(p.market, "OnDemand"), or(p.os, "Linux"), or(p.currency, "USD"))
}

type filter struct{ Field, Type, Value string }

type getProductsRequest struct {
	ServiceCode   string
	FormatVersion string
	NextToken     string
	MaxResults    int
	Filters       []filter
}

type page struct {
	items []string
	next  string
}

// priceListServer answers GetProducts from pages keyed by instance type and
// token, and records the requests it saw. Like the Price List API, it
// returns only the entries whose product matches every filter: a
// TERM_MATCH on productFamily tests the product's family, any other field
// the attribute of that name, and an entry without the attribute does not
// match.
//
// The China regions' prices are served by a separate endpoint, in
// cn-northwest-1, in CNY (https://docs.amazonaws.cn/en_us/awsaccountbilling/latest/aboutv2/price-changes.html
// and the aws-cn partition of the SDK's endpoint table): a server with
// china set lists only China regions, any other none of them.
type priceListServer struct {
	t     *testing.T
	key   string // access key id the requests must be signed with; "AKIDTEST" if empty
	china bool
	pages map[string]map[string]page // instance type -> NextToken ("" first) -> page
	mu    sync.Mutex
	seen  []getProductsRequest
}

func (s *priceListServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	assert.Equal(s.t, http.MethodPost, r.Method)
	assert.Equal(s.t, "AWSPriceListService.GetProducts", r.Header.Get("X-Amz-Target"))
	assert.Equal(s.t, "application/x-amz-json-1.1", r.Header.Get("Content-Type"))
	key := s.key
	if key == "" {
		key = "AKIDTEST"
	}
	assert.Contains(s.t, r.Header.Get("Authorization"), key, "requests are signed with this endpoint's credentials")
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
		if f.Type != "TERM_MATCH" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"InvalidParameterException","Message":"unsupported filter type %s"}`, f.Type)
			return
		}
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
	items := []string{}
	for _, item := range p.items {
		if s.matches(item, req.Filters) {
			items = append(items, item)
		}
	}
	resp := map[string]any{"FormatVersion": "aws_v1", "PriceList": items}
	if p.next != "" {
		resp["NextToken"] = p.next
	}
	assert.NoError(s.t, json.NewEncoder(w).Encode(resp))
}

func (s *priceListServer) matches(item string, filters []filter) bool {
	var pl struct {
		Product struct {
			ProductFamily string            `json:"productFamily"`
			Attributes    map[string]string `json:"attributes"`
		} `json:"product"`
	}
	if err := json.Unmarshal([]byte(item), &pl); err != nil {
		return true // served as is: the client must report it
	}
	if strings.HasPrefix(pl.Product.Attributes["regionCode"], "cn-") != s.china {
		return false
	}
	for _, f := range filters {
		got, ok := pl.Product.Attributes[f.Field]
		if f.Field == "productFamily" {
			got, ok = pl.Product.ProductFamily, true
		}
		if !ok || got != f.Value {
			return false
		}
	}
	return true
}

func newClient(t *testing.T, handler http.Handler) *sdkpricing.Client {
	t.Helper()
	return newRegionClient(t, handler, "us-east-1", "AKIDTEST")
}

// newRegionClient returns a client built for region, signing with key.
func newRegionClient(t *testing.T, handler http.Handler, region, key string) *sdkpricing.Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return sdkpricing.New(sdkpricing.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(key, "SECRET", ""),
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
		assert.Equal(t, "Compute Instance", filters["productFamily"])
		assert.Equal(t, "NA", filters["preInstalledSw"])
		assert.Equal(t, "Used", filters["capacitystatus"])
		assert.Equal(t, "OnDemand", filters["marketoption"])
		assert.NotEmpty(t, filters["instanceType"])
	}
	var tokens []string
	for _, req := range srv.seen {
		tokens = append(tokens, req.NextToken)
	}
	assert.Contains(t, tokens, "page-2")
}

// The Price List gives Capacity Blocks for ML the attributes of on-demand
// instances, but marketoption "CapacityBlock": they must not price the
// type.
func TestOnDemandPricesIgnoresCapacityBlocks(t *testing.T) {
	const region = "us-east-2"
	srv := &priceListServer{t: t, pages: map[string]map[string]page{
		"p5.48xlarge": {"": {items: []string{
			product{region: region, instanceType: "p5.48xlarge", sku: "CB5XQ2", price: "98.3200000000", market: "CapacityBlock"}.json(),
			product{region: region, instanceType: "p5.48xlarge", sku: "OD5XQ2", price: "55.0400000000"}.json(),
			product{region: region, instanceType: "p5.48xlarge", sku: "WN5XQ2", price: "64.2700000000", os: "Windows"}.json(),
		}}},
	}}
	src, err := pricing.NewSource(newClient(t, srv), nil)
	require.NoError(t, err)

	prices, err := src.OnDemandPrices(t.Context(), region, []string{"p5.48xlarge"})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"p5.48xlarge": 55.04}, prices)
}

// Bare-metal sizes are listed under the product family "Compute Instance
// (bare metal)" with tenancy "Dedicated" (the instance has the host to
// itself); a query for shared tenancy finds nothing for them, and a query
// for dedicated tenancy alone would also match dedicated instances.
func TestOnDemandPricesBareMetal(t *testing.T) {
	const region = "us-east-1"
	metal := func(instanceType, sku, price, tenancy string) string {
		return product{region: region, instanceType: instanceType, sku: sku, price: price,
			family: "Compute Instance (bare metal)", tenancy: tenancy}.json()
	}
	srv := &priceListServer{t: t, pages: map[string]map[string]page{
		"c5.metal": {"": {items: []string{
			metal("c5.metal", "C5MHOST", "0.0000000000", "Host"), // billed through the Dedicated Host
			metal("c5.metal", "C5MDED", "4.0800000000", "Dedicated"),
		}}},
		"c7i.metal-24xl": {"": {items: []string{metal("c7i.metal-24xl", "C7IM24", "4.2840000000", "Dedicated")}}},
		"m5.large": {"": {items: []string{
			product{region: region, instanceType: "m5.large", sku: "M5LDED", price: "0.1060000000", tenancy: "Dedicated"}.json(),
			product{region: region, instanceType: "m5.large", sku: "M5LSHR", price: "0.0960000000"}.json(),
		}}},
	}}
	src, err := pricing.NewSource(newClient(t, srv), nil)
	require.NoError(t, err)

	prices, err := src.OnDemandPrices(t.Context(), region, []string{"c5.metal", "c7i.metal-24xl", "m5.large"})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"c5.metal": 4.08, "c7i.metal-24xl": 4.284, "m5.large": 0.096}, prices)
}

// A client built for a China region is the Price List of the China
// regions, which quotes prices in CNY only.
func TestOnDemandPricesChinaClient(t *testing.T) {
	const region = "cn-north-1"
	china := &priceListServer{t: t, key: "AKIDCHINA", china: true, pages: map[string]map[string]page{
		"c5.large": {"": {items: []string{
			product{region: region, instanceType: "c5.large", sku: "CNC5L", price: "0.8910000000", currency: "CNY"}.json(),
		}}},
	}}
	src, err := pricing.NewSource(newRegionClient(t, china, "cn-northwest-1", "AKIDCHINA"), nil)
	require.NoError(t, err)

	prices, err := src.OnDemandPrices(t.Context(), region, []string{"c5.large"})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"c5.large": 0.891}, prices)
}

// With both clients, each region is asked of the endpoint that lists it;
// without a China client, China regions are an invalid request rather
// than a silent "not listed".
func TestOnDemandPricesRoutesChinaRegions(t *testing.T) {
	global := &priceListServer{t: t, pages: map[string]map[string]page{
		"c5.large": {"": {items: []string{
			productJSON("eu-west-1", "c5.large", "EUC5L", "0.1070000000"),
			// Never listed by this endpoint.
			product{region: "cn-northwest-1", instanceType: "c5.large", sku: "CNC5L", price: "0.1", currency: "USD"}.json(),
		}}},
	}}
	china := &priceListServer{t: t, key: "AKIDCHINA", china: true, pages: map[string]map[string]page{
		"c5.large": {"": {items: []string{
			product{region: "cn-northwest-1", instanceType: "c5.large", sku: "CNC5L", price: "0.7830000000", currency: "CNY"}.json(),
		}}},
	}}
	chinaClient := newRegionClient(t, china, "cn-northwest-1", "AKIDCHINA")
	src, err := pricing.NewSource(newClient(t, global), nil, pricing.WithChinaAPI(chinaClient))
	require.NoError(t, err)

	prices, err := src.OnDemandPrices(t.Context(), "eu-west-1", []string{"c5.large"})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"c5.large": 0.107}, prices)
	prices, err = src.OnDemandPrices(t.Context(), "cn-northwest-1", []string{"c5.large"})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"c5.large": 0.783}, prices)
	global.mu.Lock()
	assert.Len(t, global.seen, 1)
	global.mu.Unlock()
	china.mu.Lock()
	assert.Len(t, china.seen, 1)
	china.mu.Unlock()

	noChina, err := pricing.NewSource(newClient(t, global), nil)
	require.NoError(t, err)
	_, err = noChina.OnDemandPrices(t.Context(), "cn-north-1", []string{"c5.large"})
	assert.ErrorIs(t, err, awsctl.ErrInvalidRequest)
	assert.ErrorContains(t, err, "WithChinaAPI")
	global.mu.Lock()
	assert.Len(t, global.seen, 1, "not asked")
	global.mu.Unlock()
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
