package elbtest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/awstest"
)

// APIVersion is the Elastic Load Balancing v2 API version the server speaks.
const APIVersion = "2015-12-01"

// Namespace is the XML namespace of the answers.
const Namespace = "http://elasticloadbalancing.amazonaws.com/doc/" + APIVersion + "/"

// Region is the region of the configs the server hands out.
const Region = "us-east-1"

// Request is one call the server received.
type Request struct {
	Action string
	Params url.Values
}

// Fault is an error answer.
type Fault struct {
	Code    string
	Message string
	// Status is the HTTP status; 0 means the one ELB sends with Code (see
	// StatusFor).
	Status int
}

func (f *Fault) Error() string { return f.Code + ": " + f.Message }

// StatusFor returns the HTTP status ELB answers error code with: 500 for
// internal failures, 503 when unavailable, 403 for a missing or refused
// signature, 400 otherwise (throttling included).
func StatusFor(code string) int {
	switch code {
	case "InternalFailure", "InternalError", "HealthUnavailable":
		return http.StatusInternalServerError
	case "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "MissingAuthenticationToken", "AccessDenied", "InvalidClientTokenId", "SignatureDoesNotMatch":
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// Server answers the Elastic Load Balancing v2 Query API for the calls of
// package elbrole (RegisterTargets, DeregisterTargets and
// DescribeTargetHealth): form-encoded POSTs naming an Action, answered in
// XML as the ELB API reference shows. The calls are carried out by a backend
// (usually an *elbsim.LB); the server only translates, records the requests
// and injects faults. It is safe for concurrent use.
type Server struct {
	backend elbrole.API

	mu       sync.Mutex
	seq      int
	requests []Request
	faults   map[string][]Fault

	listenOnce sync.Once
	listener   *httptest.Server
}

// New returns a server that carries calls out on backend. It does not
// listen until Start or AWSConfig; InProcessAWSConfig never listens.
func New(backend elbrole.API) (*Server, error) {
	if backend == nil {
		return nil, errors.New("elbtest: backend is nil")
	}
	return &Server{backend: backend, faults: map[string][]Fault{}}, nil
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

// AWSConfig returns an SDK config that sends calls to the server over
// loopback HTTP: region us-east-1, static fake credentials, BaseEndpoint the
// server's URL. It starts the server if needed.
func (s *Server) AWSConfig() aws.Config { return awstest.Config(Region, s.Start(), "elbtest", nil) }

// InProcessAWSConfig returns an SDK config whose HTTP client hands each
// request straight to the server, with no socket; the SDK still encodes and
// decodes real HTTP requests and answers. Tests inside a testing/synctest
// bubble need it, since a goroutine waiting on a socket is not durably
// blocked.
func (s *Server) InProcessAWSConfig() aws.Config {
	return awstest.Config(Region, "http://elbtest.invalid", "elbtest", awstest.InProcess(s))
}

// FailNext makes the next calls of action fail with faults, one call each,
// before the backend sees them.
func (s *Server) FailNext(action string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[action] = append(s.faults[action], faults...)
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

// ServeHTTP answers one Query API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seq++
	requestID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		writeFault(w, requestID, &Fault{Code: "InvalidAction", Message: "The Query API takes POST requests", Status: http.StatusMethodNotAllowed})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeFault(w, requestID, &Fault{Code: "MalformedQueryString", Message: err.Error()})
		return
	}
	action := r.PostForm.Get("Action")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Action: action, Params: r.PostForm})
	var fault *Fault
	if q := s.faults[action]; len(q) > 0 {
		fault, s.faults[action] = &q[0], q[1:]
	}
	s.mu.Unlock()
	switch {
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		fault = &Fault{Code: "MissingAuthenticationToken", Message: "Request is missing Authentication Token"}
	case r.PostForm.Get("Version") != APIVersion:
		fault = &Fault{Code: "InvalidAction", Message: fmt.Sprintf("Version %q is not %s", r.PostForm.Get("Version"), APIVersion)}
	}
	if fault != nil {
		writeFault(w, requestID, fault)
		return
	}
	var body any
	var err error
	switch action {
	case "RegisterTargets":
		body, err = s.register(r.Context(), r.PostForm)
	case "DeregisterTargets":
		body, err = s.deregister(r.Context(), r.PostForm)
	case "DescribeTargetHealth":
		body, err = s.describe(r.Context(), r.PostForm)
	default:
		err = &Fault{Code: "InvalidAction", Message: fmt.Sprintf("Could not find operation %s for version %s", action, APIVersion)}
	}
	if err != nil {
		writeFault(w, requestID, faultOf(err))
		return
	}
	switch b := body.(type) {
	case *registerResponse:
		b.Metadata.RequestID = requestID
	case *deregisterResponse:
		b.Metadata.RequestID = requestID
	case *describeResponse:
		b.Metadata.RequestID = requestID
	}
	writeXML(w, http.StatusOK, body, requestID)
}

var memberPattern = regexp.MustCompile(`^Targets\.member\.(\d+)\.(Id|Port|AvailabilityZone)$`)

// targets parses Targets.member.N.{Id,Port,AvailabilityZone}.
func targets(params url.Values) ([]types.TargetDescription, error) {
	byIndex := map[int]*types.TargetDescription{}
	for key, vals := range params {
		m := memberPattern.FindStringSubmatch(key)
		if m == nil || len(vals) == 0 {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		if i < 1 {
			return nil, &Fault{Code: "ValidationError", Message: fmt.Sprintf("%s: list members count from 1", key)}
		}
		t := byIndex[i]
		if t == nil {
			t = &types.TargetDescription{}
			byIndex[i] = t
		}
		switch m[2] {
		case "Id":
			t.Id = aws.String(vals[0])
		case "Port":
			p, err := strconv.ParseInt(vals[0], 10, 32)
			if err != nil {
				return nil, &Fault{Code: "ValidationError", Message: fmt.Sprintf("%s: %q is not an integer", key, vals[0])}
			}
			t.Port = aws.Int32(int32(p))
		case "AvailabilityZone":
			t.AvailabilityZone = aws.String(vals[0])
		}
	}
	indexes := make([]int, 0, len(byIndex))
	for i := range byIndex {
		indexes = append(indexes, i)
	}
	sort.Ints(indexes)
	out := make([]types.TargetDescription, len(indexes))
	for n, i := range indexes {
		out[n] = *byIndex[i]
	}
	return out, nil
}

func arnOf(params url.Values) *string {
	if v := params.Get("TargetGroupArn"); v != "" {
		return aws.String(v)
	}
	return nil
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type registerResponse struct {
	XMLName  xml.Name         `xml:"RegisterTargetsResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   struct{}         `xml:"RegisterTargetsResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type deregisterResponse struct {
	XMLName  xml.Name         `xml:"DeregisterTargetsResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   struct{}         `xml:"DeregisterTargetsResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type describeResponse struct {
	XMLName xml.Name `xml:"DescribeTargetHealthResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Descriptions []xmlDescription `xml:"TargetHealthDescriptions>member"`
	} `xml:"DescribeTargetHealthResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type xmlDescription struct {
	Target          xmlTarget `xml:"Target"`
	HealthCheckPort string    `xml:"HealthCheckPort,omitempty"`
	TargetHealth    xmlHealth `xml:"TargetHealth"`
}

type xmlTarget struct {
	ID               string `xml:"Id"`
	Port             *int32 `xml:"Port,omitempty"`
	AvailabilityZone string `xml:"AvailabilityZone,omitempty"`
}

type xmlHealth struct {
	State       string `xml:"State"`
	Reason      string `xml:"Reason,omitempty"`
	Description string `xml:"Description,omitempty"`
}

func (s *Server) register(ctx context.Context, params url.Values) (any, error) {
	ts, err := targets(params)
	if err != nil {
		return nil, err
	}
	if _, err := s.backend.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: arnOf(params), Targets: ts}); err != nil {
		return nil, err
	}
	return &registerResponse{Xmlns: Namespace}, nil
}

func (s *Server) deregister(ctx context.Context, params url.Values) (any, error) {
	ts, err := targets(params)
	if err != nil {
		return nil, err
	}
	if _, err := s.backend.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: arnOf(params), Targets: ts}); err != nil {
		return nil, err
	}
	return &deregisterResponse{Xmlns: Namespace}, nil
}

func (s *Server) describe(ctx context.Context, params url.Values) (any, error) {
	ts, err := targets(params)
	if err != nil {
		return nil, err
	}
	out, err := s.backend.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: arnOf(params), Targets: ts})
	if err != nil {
		return nil, err
	}
	resp := &describeResponse{Xmlns: Namespace}
	for _, d := range out.TargetHealthDescriptions {
		x := xmlDescription{HealthCheckPort: aws.ToString(d.HealthCheckPort)}
		if d.Target != nil {
			x.Target = xmlTarget{ID: aws.ToString(d.Target.Id), Port: d.Target.Port, AvailabilityZone: aws.ToString(d.Target.AvailabilityZone)}
		}
		if d.TargetHealth != nil {
			x.TargetHealth = xmlHealth{State: string(d.TargetHealth.State), Reason: string(d.TargetHealth.Reason),
				Description: aws.ToString(d.TargetHealth.Description)}
		}
		resp.Result.Descriptions = append(resp.Result.Descriptions, x)
	}
	return resp, nil
}

// faultOf turns a backend error into the answer ELB would give: its API
// error code and message, or an internal failure.
func faultOf(err error) *Fault {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return &Fault{Code: apiErr.ErrorCode(), Message: apiErr.ErrorMessage()}
	}
	return &Fault{Code: "InternalFailure", Message: err.Error()}
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func writeFault(w http.ResponseWriter, requestID string, f *Fault) {
	status := f.Status
	if status == 0 {
		status = StatusFor(f.Code)
	}
	resp := errorResponse{Xmlns: Namespace, RequestID: requestID}
	resp.Error.Type = "Sender"
	if status >= 500 {
		resp.Error.Type = "Receiver"
	}
	resp.Error.Code, resp.Error.Message = f.Code, f.Message
	writeXML(w, status, resp, requestID)
}

func writeXML(w http.ResponseWriter, status int, body any, requestID string) {
	out, err := xml.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}
