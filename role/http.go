package role

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Defaults of HTTPConfig fields left zero.
const (
	DefaultHTTPPort    = 8080
	DefaultHTTPScheme  = "http"
	DefaultHTTPTimeout = 10 * time.Second

	DefaultProvisionPath = "/autoscale/provision"
	DefaultWindDownPath  = "/autoscale/wind-down"
	DefaultRestorePath   = "/autoscale/restore"
	DefaultTeardownPath  = "/autoscale/teardown"
	DefaultStatusPath    = "/autoscale/status"
)

// MaxHTTPResponse is the most of a response body the HTTP role reads; a
// status answer longer than this is an error, other bodies are cut off.
const MaxHTTPResponse = 64 << 10

// HTTPConfig says how an [HTTP] role reaches its servers. The zero value of
// every field has a documented default. NewHTTP copies it, but shares Client
// and Address with the role, which calls them from several goroutines at
// once: they must be safe for concurrent use.
type HTTPConfig struct {
	// Port the endpoints listen on; default DefaultHTTPPort.
	Port int
	// Scheme is "http" (DefaultHTTPScheme) or "https".
	Scheme string
	// Client sends the requests. Default: a client that connects straight
	// to the server (no proxy from the environment), with short connect and
	// TLS handshake timeouts, and that never follows redirects, so headers
	// are only ever sent to the server itself.
	Client *http.Client
	// Timeout bounds each request, on top of the hook's context; default
	// DefaultHTTPTimeout.
	Timeout time.Duration

	// Paths of the endpoints. Provision, wind-down, restore and teardown
	// are POST requests with an empty body; any 2xx answer is success.
	// Status is a GET that must answer 2xx with a JSON object holding
	// "wound_down": bool; "idle": bool is optional (see [Status]). Each
	// defaults to its Default*Path.
	ProvisionPath, WindDownPath, RestorePath, TeardownPath, StatusPath string
	// SkipProvision and SkipTeardown leave out those calls, for servers
	// that need no preparation or no last step: the hook then succeeds at
	// once.
	SkipProvision, SkipTeardown bool

	// Address returns the host:port to call for inst. Default: the
	// instance's private IP and Port.
	Address func(inst awsctl.Instance) string
	// Headers are sent with every request, for example an authorization
	// token. They are never logged nor put in errors.
	Headers http.Header
}

// HTTP is a [Role] that drives each server through HTTP endpoints the
// server itself serves, called at its private address. All its methods are
// safe for concurrent use, as long as HTTPConfig.Client and Address are
// (the default client is).
type HTTP struct {
	name string
	spec awsctl.LaunchSpec
	cfg  HTTPConfig
}

var _ Role = (*HTTP)(nil)

// NewHTTP returns a role named name whose instances launch from spec and
// whose hooks call the endpoints described by cfg. See [New] for the rules
// on name and spec and how spec is copied.
func NewHTTP(name string, spec awsctl.LaunchSpec, cfg HTTPConfig) (*HTTP, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	if err := validateSpec(name, spec); err != nil {
		return nil, err
	}
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Role: name, Field: "HTTPConfig." + field, Problem: fmt.Sprintf(format, args...)}
	}
	switch {
	case cfg.Port == 0:
		cfg.Port = DefaultHTTPPort
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, bad("Port", "must be in 1..65535, got %d", cfg.Port)
	}
	switch cfg.Scheme {
	case "":
		cfg.Scheme = DefaultHTTPScheme
	case "http", "https":
	default:
		return nil, bad("Scheme", `must be "http" or "https", got %q`, cfg.Scheme)
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultHTTPTimeout
	case cfg.Timeout < 0:
		return nil, bad("Timeout", "must not be negative, got %v", cfg.Timeout)
	}
	if cfg.Client == nil {
		cfg.Client = defaultHTTPClient()
	}
	for _, p := range []struct {
		field string
		path  *string
		def   string
	}{
		{"ProvisionPath", &cfg.ProvisionPath, DefaultProvisionPath},
		{"WindDownPath", &cfg.WindDownPath, DefaultWindDownPath},
		{"RestorePath", &cfg.RestorePath, DefaultRestorePath},
		{"TeardownPath", &cfg.TeardownPath, DefaultTeardownPath},
		{"StatusPath", &cfg.StatusPath, DefaultStatusPath},
	} {
		if *p.path == "" {
			*p.path = p.def
		}
		if !strings.HasPrefix(*p.path, "/") {
			return nil, bad(p.field, "must start with /, got %q", *p.path)
		}
	}
	cfg.Headers = cfg.Headers.Clone()
	return &HTTP{name: name, spec: cloneSpec(spec), cfg: cfg}, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// Servers are called at private addresses: an environment proxy
			// would be wrong for them.
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Name returns the role's name.
func (h *HTTP) Name() string { return h.name }

// LaunchSpec returns a copy of the role's launch spec.
func (h *HTTP) LaunchSpec() awsctl.LaunchSpec { return cloneSpec(h.spec) }

// Provision POSTs to ProvisionPath, unless SkipProvision is set.
func (h *HTTP) Provision(ctx context.Context, inst awsctl.Instance) error {
	if h.cfg.SkipProvision {
		return nil
	}
	_, err := h.do(ctx, inst, "provision", http.MethodPost, h.cfg.ProvisionPath)
	return err
}

// WindDown POSTs to WindDownPath.
func (h *HTTP) WindDown(ctx context.Context, inst awsctl.Instance) error {
	_, err := h.do(ctx, inst, "wind-down", http.MethodPost, h.cfg.WindDownPath)
	return err
}

// Restore POSTs to RestorePath.
func (h *HTTP) Restore(ctx context.Context, inst awsctl.Instance) error {
	_, err := h.do(ctx, inst, "restore", http.MethodPost, h.cfg.RestorePath)
	return err
}

// Teardown POSTs to TeardownPath, unless SkipTeardown is set.
func (h *HTTP) Teardown(ctx context.Context, inst awsctl.Instance) error {
	if h.cfg.SkipTeardown {
		return nil
	}
	_, err := h.do(ctx, inst, "teardown", http.MethodPost, h.cfg.TeardownPath)
	return err
}

// Check GETs StatusPath and decodes the server's status from it.
func (h *HTTP) Check(ctx context.Context, inst awsctl.Instance) (Status, error) {
	body, err := h.do(ctx, inst, "status", http.MethodGet, h.cfg.StatusPath)
	if err != nil {
		return Status{}, err
	}
	var answer struct {
		Idle      *bool `json:"idle"`
		WoundDown *bool `json:"wound_down"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return Status{}, fmt.Errorf("role %q: status of %s: decoding answer: %w", h.name, inst.ID, err)
	}
	// A missing wound_down would silently read as false and keep the
	// server from ever winding down: say so instead. Idle is only
	// informational, so it may be left out.
	if answer.WoundDown == nil {
		return Status{}, fmt.Errorf("role %q: status of %s: answer lacks \"wound_down\"", h.name, inst.ID)
	}
	st := Status{WoundDown: *answer.WoundDown}
	if answer.Idle != nil {
		st.Idle = *answer.Idle
	}
	return st, nil
}

// HTTPError is an endpoint's answer outside 2xx.
type HTTPError struct {
	Role       string
	Endpoint   string // "provision", "wind-down", "restore", "teardown" or "status"
	Instance   string // instance id
	URL        string
	StatusCode int
	// Body is the start of the answer's body, for diagnosis.
	Body string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("role %q: %s of %s: %s answered %d %s", e.Role, e.Endpoint, e.Instance, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// errorBodyLength is how much of an error answer's body an HTTPError keeps.
const errorBodyLength = 256

// do sends one request and returns the 2xx answer's body.
func (h *HTTP) do(ctx context.Context, inst awsctl.Instance, endpoint, method, path string) ([]byte, error) {
	addr, err := h.address(inst)
	if err != nil {
		return nil, fmt.Errorf("role %q: %s of %s: %w", h.name, endpoint, inst.ID, err)
	}
	url := h.cfg.Scheme + "://" + addr + path
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("role %q: %s of %s: %w", h.name, endpoint, inst.ID, err)
	}
	for k, vs := range h.cfg.Headers {
		req.Header[k] = vs
	}
	if method == http.MethodGet {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		// Client errors name the URL but never the headers.
		return nil, fmt.Errorf("role %q: %s of %s: %w", h.name, endpoint, inst.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxHTTPResponse+1))
	if err != nil {
		return nil, fmt.Errorf("role %q: %s of %s: reading answer: %w", h.name, endpoint, inst.ID, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &HTTPError{
			Role: h.name, Endpoint: endpoint, Instance: inst.ID, URL: url, StatusCode: resp.StatusCode,
			Body: snippet(body),
		}
	}
	if len(body) > MaxHTTPResponse {
		return nil, fmt.Errorf("role %q: %s of %s: answer longer than %d bytes", h.name, endpoint, inst.ID, MaxHTTPResponse)
	}
	return body, nil
}

// ErrNoAddress is returned by the hooks of an HTTP role for an instance it
// cannot find an address for (no private IP yet, or Address returned "").
var ErrNoAddress = errors.New("no address for instance")

func (h *HTTP) address(inst awsctl.Instance) (string, error) {
	if h.cfg.Address != nil {
		if a := h.cfg.Address(inst); a != "" {
			return a, nil
		}
		return "", ErrNoAddress
	}
	if inst.PrivateIP == "" {
		return "", ErrNoAddress
	}
	return net.JoinHostPort(inst.PrivateIP, strconv.Itoa(h.cfg.Port)), nil
}

func snippet(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > errorBodyLength {
		body = append(body[:errorBodyLength:errorBodyLength], "..."...)
	}
	return strings.ToValidUTF8(string(body), "?")
}
