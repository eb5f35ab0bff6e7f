package pricing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/pricing/types"
	"github.com/aws/smithy-go"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/spotprice"
)

// GetProductsAPI is the part of the Price List API client that [Source]
// uses; *pricing.Client implements it.
type GetProductsAPI interface {
	GetProducts(ctx context.Context, params *pricing.GetProductsInput, optFns ...func(*pricing.Options)) (*pricing.GetProductsOutput, error)
}

var (
	_ GetProductsAPI           = (*pricing.Client)(nil)
	_ spotprice.OnDemandSource = (*Source)(nil)
)

// ErrMalformedPriceList is wrapped by the errors about Price List entries
// that cannot be read, such as a price that is not a positive number.
var ErrMalformedPriceList = errors.New("malformed price list entry")

// maxPages bounds the pages read for one instance type. A filtered query
// for one type returns one or two products; the bound only stops a server
// that keeps handing out new tokens.
const maxPages = 20

// Source reads on-demand prices from the AWS Price List API. It implements
// [spotprice.OnDemandSource]. It is safe for concurrent use if its clients
// are.
type Source struct {
	api   GetProductsAPI // for the regions outside China
	china GetProductsAPI // for the China regions
	log   *slog.Logger
}

// Option configures a [Source].
type Option func(*Source)

// WithChinaAPI sets the client for the China regions (cn-north-1,
// cn-northwest-1). The Price List API lists their prices, in CNY, only at
// its endpoint in cn-northwest-1 and to China-partition credentials, so
// they need a client of their own: build it for cn-northwest-1.
func WithChinaAPI(api GetProductsAPI) Option {
	return func(s *Source) { s.china = api }
}

// NewSource returns a Source calling api. The Price List API is served
// from a few regions only (us-east-1 among them) whatever region is being
// priced, so build the client for one of those. A *pricing.Client built
// for a China region serves the China regions instead, as if passed with
// [WithChinaAPI]. A nil logger discards.
func NewSource(api GetProductsAPI, logger *slog.Logger, opts ...Option) (*Source, error) {
	if api == nil {
		return nil, errors.New("pricing: NewSource: api is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{api: api, log: logger}
	if c, ok := api.(*pricing.Client); ok && isChina(c.Options().Region) {
		s.api, s.china = nil, api
	}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// isChina reports whether region is in the aws-cn partition, whose prices
// the Price List API keeps apart and quotes in CNY.
func isChina(region string) bool { return strings.HasPrefix(region, "cn-") }

// isMetal reports whether instanceType is a bare-metal size (c5.metal,
// c7i.metal-24xl).
func isMetal(instanceType string) bool {
	_, size, _ := strings.Cut(instanceType, ".")
	return strings.HasPrefix(size, "metal")
}

// OnDemandPrices returns the hourly on-demand price of each instance type
// in region, for Linux without pre-installed software, on shared tenancy
// (bare-metal types, which the Price List lists as dedicated, at their
// bare-metal price). Prices are in the currency the Price List quotes the
// region in: US dollars, or CNY in the China regions.
//
// Types the Price List does not list for the region are left out (and
// logged). Entries that cannot be read are left out and reported in the
// returned error, wrapping ErrMalformedPriceList; API failures are
// reported as *awsctl.APIError. Prices read before an error are returned
// with it.
func (s *Source) OnDemandPrices(ctx context.Context, region string, instanceTypes []string) (map[string]float64, error) {
	if region == "" {
		return nil, fmt.Errorf("pricing: OnDemandPrices: %w: region is required", awsctl.ErrInvalidRequest)
	}
	api, currency := s.api, "USD"
	if isChina(region) {
		api, currency = s.china, "CNY"
	}
	if api == nil {
		return nil, fmt.Errorf("pricing: OnDemandPrices: %w: no Price List client for %s: China regions need one built for cn-northwest-1 (WithChinaAPI), the others one built for us-east-1",
			awsctl.ErrInvalidRequest, region)
	}
	prices := make(map[string]float64, len(instanceTypes))
	var errs []error
	for _, t := range slices.Compact(slices.Sorted(slices.Values(instanceTypes))) {
		if t == "" {
			continue
		}
		p, err := s.price(ctx, api, region, t, currency)
		if err != nil {
			errs = append(errs, err)
		}
		if p > 0 {
			prices[t] = p
		} else if err == nil {
			s.log.Warn("no on-demand price listed", "region", region, "instance_type", t)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return prices, errors.Join(errs...)
}

// price returns the on-demand price of one instance type, 0 if none is
// listed.
func (s *Source) price(ctx context.Context, api GetProductsAPI, region, instanceType, currency string) (float64, error) {
	// The Price List lists bare-metal sizes under their own product family
	// and as dedicated tenancy (the instance has the host to itself); the
	// others are priced as shared.
	family, tenancy := "Compute Instance", "Shared"
	if isMetal(instanceType) {
		family, tenancy = "Compute Instance (bare metal)", "Dedicated"
	}
	in := &pricing.GetProductsInput{
		ServiceCode:   aws.String("AmazonEC2"),
		FormatVersion: aws.String("aws_v1"),
		MaxResults:    aws.Int32(100),
		Filters: []types.Filter{
			termMatch("regionCode", region),
			termMatch("instanceType", instanceType),
			termMatch("productFamily", family),
			termMatch("tenancy", tenancy),
			termMatch("operatingSystem", "Linux"),
			termMatch("preInstalledSw", "NA"),
			// "Used" is the price of a running instance, as opposed to
			// unused capacity reservations.
			termMatch("capacitystatus", "Used"),
			// Without it, Capacity Blocks for ML, listed with the same
			// attributes, would price the type too.
			termMatch("marketoption", "OnDemand"),
		},
	}
	pager := pricing.NewGetProductsPaginator(api, in, func(o *pricing.GetProductsPaginatorOptions) {
		o.StopOnDuplicateToken = true
	})
	var found []float64
	var errs []error
	for page := 0; pager.HasMorePages(); page++ {
		if page == maxPages {
			errs = append(errs, fmt.Errorf("pricing: %s %s: stopped after %d pages", region, instanceType, maxPages))
			break
		}
		out, err := pager.NextPage(ctx)
		if err != nil {
			errs = append(errs, apiError(fmt.Sprintf("%s %s", region, instanceType), err))
			break
		}
		for _, item := range out.PriceList {
			p, err := parseOnDemand(item, instanceType, currency)
			if err != nil {
				errs = append(errs, fmt.Errorf("pricing: %s %s: %w", region, instanceType, err))
				continue
			}
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return 0, errors.Join(errs...)
	}
	// The filters should leave a single product; should several remain,
	// the highest price is the one that cannot make on-demand look cheaper
	// than it is.
	p := slices.Max(found)
	if slices.Min(found) != p {
		s.log.Warn("several on-demand prices listed; using the highest", "region", region, "instance_type", instanceType, "prices", found)
	}
	return p, errors.Join(errs...)
}

func termMatch(field, value string) types.Filter {
	return types.Filter{Type: types.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
}

// priceListItem is the part of a Price List product (format aws_v1) that
// carries the on-demand price.
type priceListItem struct {
	Product struct {
		SKU        string            `json:"sku"`
		Attributes map[string]string `json:"attributes"`
	} `json:"product"`
	Terms struct {
		OnDemand map[string]struct {
			PriceDimensions map[string]struct {
				Unit         string            `json:"unit"`
				PricePerUnit map[string]string `json:"pricePerUnit"`
			} `json:"priceDimensions"`
		} `json:"OnDemand"`
	} `json:"terms"`
}

// parseOnDemand reads the hourly on-demand price in currency of one Price
// List entry, which must describe instanceType.
func parseOnDemand(item, instanceType, currency string) (float64, error) {
	var pl priceListItem
	if err := json.Unmarshal([]byte(item), &pl); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformedPriceList, err)
	}
	sku := pl.Product.SKU
	if got := pl.Product.Attributes["instanceType"]; got != instanceType {
		return 0, fmt.Errorf("%w: sku %s: instance type %q, asked for %q", ErrMalformedPriceList, sku, got, instanceType)
	}
	price := 0.0
	for _, term := range pl.Terms.OnDemand {
		for _, dim := range term.PriceDimensions {
			if dim.Unit != "Hrs" {
				continue
			}
			text, ok := dim.PricePerUnit[currency]
			if !ok {
				return 0, fmt.Errorf("%w: sku %s: no %s price", ErrMalformedPriceList, sku, currency)
			}
			p, err := strconv.ParseFloat(text, 64)
			if err != nil || p <= 0 || math.IsInf(p, 0) || math.IsNaN(p) {
				return 0, fmt.Errorf("%w: sku %s: price %q is not a positive number", ErrMalformedPriceList, sku, text)
			}
			price = max(price, p)
		}
	}
	if price == 0 {
		return 0, fmt.Errorf("%w: sku %s: no hourly on-demand price", ErrMalformedPriceList, sku)
	}
	return price, nil
}

// apiError turns an SDK error into an *awsctl.APIError with the matching
// error kind; other errors (transport, context) are wrapped as they are.
func apiError(what string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("pricing: GetProducts %s: %w", what, err)
	}
	kind := awsctl.ErrUnavailable
	switch ae.ErrorCode() {
	case "ThrottlingException", "Throttling", "TooManyRequestsException":
		kind = awsctl.ErrThrottled
	case "NotFoundException", "ResourceNotFoundException":
		kind = awsctl.ErrNotFound
	case "InvalidParameterException", "InvalidNextTokenException", "ExpiredNextTokenException", "AccessDeniedException":
		kind = awsctl.ErrInvalidRequest
	}
	return fmt.Errorf("pricing: %s: %w", what, &awsctl.APIError{Op: "GetProducts", Code: ae.ErrorCode(), Message: ae.ErrorMessage(), Kind: kind})
}
