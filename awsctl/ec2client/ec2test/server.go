package ec2test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/awstest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ratelimit"
)

// APIVersion is the EC2 API version the server speaks.
const APIVersion = "2016-11-15"

// Namespace is the XML namespace of EC2's answers.
const Namespace = "http://ec2.amazonaws.com/doc/" + APIVersion + "/"

// Region is the region of the configs the server hands out.
const Region = "us-east-1"

// DefaultPageSize is the largest page the server returns, EC2's own
// maximum for the describes it serves.
const DefaultPageSize = 1000

// Options configure a [Server].
type Options struct {
	// Subnets the server knows, with their zones; launches into other
	// subnets fail with InvalidSubnetID.NotFound. The zones must be zones
	// of the backing cloud.
	Subnets []awsctl.Subnet
	// PageSize caps every page of a paginated describe, below what the
	// request's MaxResults allows, so that tests can see several pages
	// without thousands of items; 0 means DefaultPageSize.
	PageSize int
	// UnfilteredDescribeLimit, when set, makes the server throttle as EC2
	// does the DescribeInstances and DescribeInstanceStatus requests that
	// carry neither a filter nor pagination (no Filter, no MaxResults, no
	// NextToken): EC2's "Request throttling" guide gives such requests a
	// token bucket of their own, smaller than that of other describes
	// (see UnfilteredDescribeDefault). Past it they fail with
	// RequestLimitExceeded. The bucket refills on the backing cloud's clock
	// when it has one (ec2sim's moves only when advanced), else on real
	// time. The zero value throttles nothing.
	UnfilteredDescribeLimit ratelimit.Limit
}

// UnfilteredDescribeDefault is EC2's default bucket for unfiltered and
// unpaginated describes, for Options.UnfilteredDescribeLimit: 50 requests
// at once, then 10 a second.
var UnfilteredDescribeDefault = ratelimit.Limit{Burst: 50, PerSecond: 10}

// Request is one call the server received.
type Request struct {
	Action string
	Params url.Values
}

// Server answers the EC2 Query API: form-encoded POSTs naming an Action,
// answered in XML as the EC2 API reference shows. Instances live in the
// backing awsctl.CloudClient (usually an ec2sim.Sim); the server keeps what
// that interface lacks: launch templates, spot price history, reserved
// instances, spot requests and scheduled events, which tests set up with
// the Add methods. It is safe for concurrent use; it handles one request at
// a time.
type Server struct {
	cloud   awsctl.CloudClient
	lookup  instanceLookup // cloud, if it can look up one instance
	subnets map[string]string
	page    int

	mu        sync.Mutex
	seq       int
	requests  []Request
	faults    map[string][]*Fault
	snapshots map[string]any // the rest of a paginated answer, by NextToken
	fleets    map[string]string
	templates map[string]*LaunchTemplate
	prices    []spotPriceEntry
	reserved  []ReservedInstances
	spotReqs  []*SpotRequest
	events    map[string][]awsctl.ScheduledEvent // added by AddScheduledEvent
	checks    map[string]statusOverride          // set by SetStatusChecks
	protected map[string]bool                    // instances under termination protection
	// unfiltered throttles unfiltered, unpaginated describes; nil when
	// Options.UnfilteredDescribeLimit is zero.
	unfiltered *serverBucket

	listenOnce sync.Once
	listener   *httptest.Server
}

// instanceLookup is the optional ability of a cloud to report one
// instance, as ec2sim.Sim.Instance does.
type instanceLookup interface {
	Instance(id string) (awsctl.Instance, bool)
}

// New returns a server backed by cloud. It does not listen until Start or
// AWSConfig; InProcessAWSConfig never listens.
func New(cloud awsctl.CloudClient, opts Options) (*Server, error) {
	if cloud == nil {
		return nil, fmt.Errorf("ec2test: cloud is nil")
	}
	if opts.PageSize < 0 {
		return nil, fmt.Errorf("ec2test: Options.PageSize must not be negative, got %d", opts.PageSize)
	}
	s := &Server{
		cloud:     cloud,
		subnets:   map[string]string{},
		page:      opts.PageSize,
		faults:    map[string][]*Fault{},
		snapshots: map[string]any{},
		fleets:    map[string]string{},
		templates: map[string]*LaunchTemplate{},
		events:    map[string][]awsctl.ScheduledEvent{},
		checks:    map[string]statusOverride{},
		protected: map[string]bool{},
	}
	if s.page == 0 {
		s.page = DefaultPageSize
	}
	s.lookup, _ = cloud.(instanceLookup)
	if opts.UnfilteredDescribeLimit != (ratelimit.Limit{}) {
		if err := opts.UnfilteredDescribeLimit.Validate(); err != nil {
			return nil, fmt.Errorf("ec2test: Options.UnfilteredDescribeLimit: %w", err)
		}
		s.unfiltered = &serverBucket{limit: opts.UnfilteredDescribeLimit, tokens: float64(opts.UnfilteredDescribeLimit.Burst), at: s.now()}
	}
	for i, sn := range opts.Subnets {
		if sn.ID == "" || sn.Zone == "" {
			return nil, fmt.Errorf("ec2test: Options.Subnets[%d] needs an ID and a Zone", i)
		}
		s.subnets[sn.ID] = sn.Zone
	}
	return s, nil
}

// Start makes the server listen on a loopback port and returns its URL.
// Later calls return the same URL.
func (s *Server) Start() string {
	s.listenOnce.Do(func() { s.listener = httptest.NewServer(s) })
	return s.listener.URL
}

// Close stops listening, if the server was started.
func (s *Server) Close() {
	if s.listener != nil {
		s.listener.Close()
	}
}

// AWSConfig returns an SDK config that sends EC2 calls to the server over
// loopback HTTP: region us-east-1, static fake credentials, BaseEndpoint
// the server's URL. It starts the server if needed.
func (s *Server) AWSConfig() aws.Config {
	return awstest.Config(Region, s.Start(), "ec2test", nil)
}

// InProcessAWSConfig returns an SDK config whose HTTP client hands each
// request straight to the server, with no socket. The SDK still encodes
// and decodes real HTTP requests and answers. Tests inside a
// testing/synctest bubble need it: a goroutine waiting on a socket is not
// durably blocked, and would keep the bubble's clock from moving.
func (s *Server) InProcessAWSConfig() aws.Config {
	return awstest.Config(Region, "http://ec2test.invalid", "ec2test", awstest.InProcess(s))
}

// FailNext makes the next calls of action fail with the faults, one call
// each, before anything else happens: the call has no effect.
func (s *Server) FailNext(action string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		s.faults[action] = append(s.faults[action], &f)
	}
}

// Requests returns the calls received for action, or every call for "".
func (s *Server) Requests(action string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if action == "" || r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the calls received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// response is the body of a successful answer: a struct embedding answer,
// encoded inside the root element <ActionResponse>.
type response interface{ setRequestID(string) }

// answer carries the requestId every EC2 answer starts with.
type answer struct {
	RequestID string `xml:"requestId"`
}

func (a *answer) setRequestID(id string) { a.RequestID = id }

type handlerFunc func(*Server, context.Context, params) (response, *Fault)

// handler returns the handler of action, which runs with s.mu held.
func handler(action string) handlerFunc {
	switch action {
	case "DescribeInstances":
		return (*Server).describeInstances
	case "RunInstances":
		return (*Server).runInstances
	case "CreateFleet":
		return (*Server).createFleet
	case "CreateLaunchTemplate":
		return (*Server).createLaunchTemplate
	case "TerminateInstances":
		return (*Server).terminateInstances
	case "CreateTags":
		return (*Server).createTags
	case "DeleteTags":
		return (*Server).deleteTags
	case "DescribeInstanceStatus":
		return (*Server).describeInstanceStatus
	case "DescribeSpotPriceHistory":
		return (*Server).describeSpotPriceHistory
	case "DescribeReservedInstances":
		return (*Server).describeReservedInstances
	case "DescribeSpotInstanceRequests":
		return (*Server).describeSpotInstanceRequests
	case "CancelSpotInstanceRequests":
		return (*Server).cancelSpotInstanceRequests
	}
	return nil
}

// Actions returns the EC2 actions the server serves.
func Actions() []string {
	return []string{
		"CancelSpotInstanceRequests", "CreateFleet", "CreateLaunchTemplate", "CreateTags", "DeleteTags",
		"DescribeInstanceStatus", "DescribeInstances", "DescribeReservedInstances",
		"DescribeSpotInstanceRequests", "DescribeSpotPriceHistory", "RunInstances", "TerminateInstances",
	}
}

// ServeHTTP answers one EC2 Query API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	requestID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
	if r.Method != http.MethodPost {
		writeFault(w, requestID, &Fault{Code: "InvalidAction", Message: "EC2 accepts POST requests", Status: http.StatusMethodNotAllowed})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeFault(w, requestID, invalidValue("unreadable form: %v", err))
		return
	}
	action := r.PostForm.Get("Action")
	s.requests = append(s.requests, Request{Action: action, Params: r.PostForm})
	if v := r.PostForm.Get("Version"); v != APIVersion {
		writeFault(w, requestID, &Fault{Code: "InvalidParameterValue", Message: fmt.Sprintf("API version %q is not %s", v, APIVersion)})
		return
	}
	handle := handler(action)
	if handle == nil {
		writeFault(w, requestID, &Fault{Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", action)})
		return
	}
	if s.throttled(action, r.PostForm) {
		writeFault(w, requestID, &Fault{Code: "RequestLimitExceeded", Message: "Request limit exceeded."})
		return
	}
	if q := s.faults[action]; len(q) > 0 {
		s.faults[action] = q[1:]
		writeFault(w, requestID, q[0])
		return
	}
	body, fault := handle(s, r.Context(), newParams(r.PostForm))
	if fault != nil {
		writeFault(w, requestID, fault)
		return
	}
	body.setRequestID(requestID)
	var out bytes.Buffer
	out.WriteString(xml.Header)
	root := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: Namespace}},
	}
	if err := xml.NewEncoder(&out).EncodeElement(body, root); err != nil {
		writeFault(w, requestID, &Fault{Code: "InternalError", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write(out.Bytes())
}

// paginate returns one page of the items all computes, and the NextToken
// of the rest. all runs for the first page only; later pages come from the
// snapshot stored under their token, as a paginated EC2 answer does not
// shift when the state changes between pages.
func paginate[T any](s *Server, p params, lo, hi int, all func() ([]T, *Fault)) ([]T, string, *Fault) {
	limit, fault := p.maxResults(lo, hi)
	if fault != nil {
		return nil, "", fault
	}
	if limit == 0 || limit > s.page {
		limit = s.page
	}
	var items []T
	if token := p.get("NextToken"); token != "" {
		rest, ok := s.snapshots[token].([]T)
		if !ok {
			return nil, "", &Fault{Code: "InvalidPaginationToken", Message: fmt.Sprintf("The pagination token %q is invalid.", token)}
		}
		delete(s.snapshots, token)
		items = rest
	} else {
		items, fault = all()
		if fault != nil {
			return nil, "", fault
		}
	}
	if len(items) <= limit {
		return items, "", nil
	}
	s.seq++
	token := fmt.Sprintf("page-%d", s.seq)
	s.snapshots[token] = items[limit:]
	return items[:limit], token, nil
}

// now is the time of the backing cloud if it has a clock, else real time.
func (s *Server) now() time.Time {
	if c, ok := s.cloud.(interface{ Now() time.Time }); ok {
		return c.Now()
	}
	return time.Now()
}

// serverBucket is a token bucket on the server's clock that never waits: a
// request that finds it empty is refused.
type serverBucket struct {
	limit  ratelimit.Limit
	tokens float64
	at     time.Time
}

// take takes one token at now, or reports that there is none.
func (b *serverBucket) take(now time.Time) bool {
	if now.After(b.at) {
		b.tokens = min(float64(b.limit.Burst), b.tokens+now.Sub(b.at).Seconds()*b.limit.PerSecond)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// unfilteredActions are the served describes that EC2 counts in the
// unfiltered and unpaginated bucket when called without filters or
// pagination.
var unfilteredActions = map[string]bool{"DescribeInstances": true, "DescribeInstanceStatus": true}

// throttled reports whether a request of action is refused by the
// unfiltered-describe bucket. A request with instance ids but neither a
// filter nor MaxResults still counts as unfiltered and unpaginated.
func (s *Server) throttled(action string, form url.Values) bool {
	if s.unfiltered == nil || !unfilteredActions[action] {
		return false
	}
	if form.Get("MaxResults") != "" || form.Get("NextToken") != "" {
		return false
	}
	for k := range form {
		if strings.HasPrefix(k, "Filter.") {
			return false
		}
	}
	return !s.unfiltered.take(s.now())
}
