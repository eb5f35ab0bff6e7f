package awsctl

import (
	"context"
	"time"
)

// CloudClient is everything the scaler needs from EC2. Implementations must be
// safe for concurrent use.
//
// Batch mutations report partial success: they return what took effect
// alongside an error describing what did not, because with EC2 a batch that
// half-succeeds is normal and the caller must not lose track of either half.
//
// An Instance's Tags map, once returned, never changes (see Instance.Tags).
type CloudClient interface {
	// ListInstances returns every instance carrying all of filter.Tags, in
	// any state but terminated unless filter.IncludeTerminated is set. One
	// call covers every pool of a scaler; implementations page internally.
	ListInstances(ctx context.Context, filter ListFilter) ([]Instance, error)

	// Launch starts instances for req. It returns the instances that were
	// launched, even when it also returns an error for the part that was
	// not (typically one *LaunchError per offering that failed, joined).
	// A repeated call with the same req.Token returns the instances of the
	// first call instead of launching again.
	Launch(ctx context.Context, req LaunchRequest) ([]Instance, error)

	// Terminate asks EC2 to terminate ids and returns the ids it accepted.
	// Ids already gone count as accepted: termination is idempotent.
	Terminate(ctx context.Context, ids []string) ([]string, error)

	// Tag sets tags on every instance in ids (creating or overwriting).
	Tag(ctx context.Context, ids []string, tags map[string]string) error

	// Untag removes the tag keys from every instance in ids.
	Untag(ctx context.Context, ids []string, keys []string) error
}

// InstanceAppender is implemented by clouds that can list into a buffer
// the caller keeps: a scaler listing thousands of instances every pass then
// allocates nothing per instance (it hands the previous pass's slice back).
// A type that wraps a client and changes what ListInstances returns must
// change AppendInstances alike, or not have it.
type InstanceAppender interface {
	// AppendInstances appends to buf what ListInstances(ctx, filter) would
	// return, in the same order, and returns the extended slice. It may
	// overwrite buf's elements beyond len(buf). On error it returns buf and
	// the error.
	AppendInstances(ctx context.Context, buf []Instance, filter ListFilter) ([]Instance, error)
}

// SpotPriceSource is implemented by clouds that can report current spot
// prices. Clients that lack it are treated as having no spot price data, so
// the scaler never launches spot at an unknown price.
type SpotPriceSource interface {
	// SpotPrices returns the latest price per (instance type, zone) for the
	// given instance types.
	SpotPrices(ctx context.Context, instanceTypes []string) ([]SpotPrice, error)
}

// ReservationSource is implemented by clouds that can list active reserved
// instances.
type ReservationSource interface {
	Reservations(ctx context.Context) ([]Reservation, error)
}

// ListFilter selects the instances ListInstances returns.
type ListFilter struct {
	// Tags that every returned instance carries, key to exact value.
	Tags map[string]string
	// IncludeTerminated also returns instances in the terminated state,
	// which EC2 keeps visible for about an hour.
	IncludeTerminated bool
}

// Market is the purchasing option an instance runs under.
type Market string

// Markets. Reserved capacity is not a market of its own: a reservation is a
// billing discount applied to matching on-demand instances.
const (
	MarketOnDemand Market = "on-demand"
	MarketSpot     Market = "spot"
)

// Valid reports whether m is a known market.
func (m Market) Valid() bool { return m == MarketOnDemand || m == MarketSpot }

// State is an instance's EC2 lifecycle state.
type State string

// Instance states, as EC2 names them.
const (
	StatePending      State = "pending"
	StateRunning      State = "running"
	StateShuttingDown State = "shutting-down"
	StateTerminated   State = "terminated"
	StateStopping     State = "stopping"
	StateStopped      State = "stopped"
)

// Live reports whether an instance in state s still exists and may cost
// money: anything but shutting-down and terminated.
func (s State) Live() bool {
	return s != StateShuttingDown && s != StateTerminated
}

// Instance is one EC2 instance as the scaler sees it.
type Instance struct {
	ID         string
	Type       string
	Zone       string
	Market     Market
	State      State
	LaunchTime time.Time
	PrivateIP  string
	// Tags holds every tag of the instance. Callers must not modify it,
	// and a client never modifies a map it has returned (from
	// ListInstances or Launch): tags that change show in a new map. So a
	// caller that kept a map may take the same map in a later listing to
	// mean the same tags, as the scaler does to read an instance's tags
	// again only when they changed.
	Tags map[string]string
}

// LaunchTemplate names an EC2 launch template by id or name.
type LaunchTemplate struct {
	ID      string
	Name    string
	Version string // "$Default", "$Latest" or a number; empty means $Default
}

// Subnet is a VPC subnet and the availability zone it lives in.
type Subnet struct {
	ID   string
	Zone string
}

// LaunchSpec is what a role's instances are launched from: either an image
// or a launch template, plus placement and identity.
type LaunchSpec struct {
	ImageID        string
	LaunchTemplate *LaunchTemplate
	// Subnets the instances may be placed in; the zones of a launch are
	// restricted to the zones of these subnets. Empty means the default
	// subnet of each zone (as EC2 does without a subnet).
	Subnets          []Subnet
	SecurityGroupIDs []string
	// InstanceProfile is an IAM instance profile name or ARN.
	InstanceProfile string
	KeyName         string
	// UserData is passed to the instance as is (clients encode it). It is
	// never logged.
	UserData string
	// Tags are extra tags for the role's instances. The scaler's own tags
	// take precedence over these.
	Tags map[string]string
}

// Offering is one (instance type, zone) a launch may use, with the capacity
// units one instance of that type provides.
type Offering struct {
	InstanceType string
	Zone         string
	// Weight is the capacity units one instance provides (at least 1).
	Weight int
}

// LaunchRequest asks for capacity in one market.
type LaunchRequest struct {
	Spec LaunchSpec
	// Offerings allowed for this launch, most preferred first.
	Offerings []Offering
	Market    Market
	// Capacity is the number of capacity units wanted; instances are
	// launched until their weights add up to at least Capacity. With every
	// weight 1 it is the number of instances.
	Capacity int
	// Tags are set on every instance at creation.
	Tags map[string]string
	// Token makes the launch idempotent (EC2's ClientToken): a retry with
	// the same token returns the first call's instances.
	Token string
	// MaxPrice caps the hourly spot price per instance; 0 means the
	// on-demand price, which is EC2's default.
	MaxPrice float64
}

// SpotPrice is the spot price of one (instance type, zone) at a moment.
type SpotPrice struct {
	InstanceType string
	Zone         string
	// PricePerHour in US dollars.
	PricePerHour float64
	Time         time.Time
}

// Reservation is a group of active reserved instances.
type Reservation struct {
	InstanceType string
	// Zone is the zone a zonal reservation applies to; empty for a
	// regional reservation, which applies in every zone.
	Zone  string
	Count int
	End   time.Time
}
