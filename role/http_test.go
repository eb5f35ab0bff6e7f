package role_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/internal/pipehttp"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// request is what a test server saw.
type request struct {
	Method, Path, Token string
	BodyLen             int
}

// recorder is a test server that records requests and answers each path
// from a table (200 with no body by default).
type recorder struct {
	mu      sync.Mutex
	seen    []request
	answers map[string]func(w http.ResponseWriter)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, request{r.Method, r.URL.Path, r.Header.Get("Authorization"), len(body)})
	answer := rec.answers[r.URL.Path]
	rec.mu.Unlock()
	if answer != nil {
		answer(w)
	}
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.seen...)
}

func statusAnswer(body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

func code(c int) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		http.Error(w, "server says no", c)
	}
}

// serve starts rec and returns an HTTP role whose Address points at it.
func serve(t *testing.T, rec *recorder, cfg role.HTTPConfig) *role.HTTP {
	t.Helper()
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	cfg.Address = func(awsctl.Instance) string { return srv.Listener.Addr().String() }
	r, err := role.NewHTTP("web", awsctl.LaunchSpec{ImageID: "ami-1"}, cfg)
	require.NoError(t, err)
	return r
}

var web = awsctl.Instance{ID: "i-0web", PrivateIP: "10.0.0.7"}

func TestHTTPCallsEachEndpoint(t *testing.T) {
	rec := &recorder{answers: map[string]func(http.ResponseWriter){
		role.DefaultStatusPath: statusAnswer(`{"idle": true, "wound_down": false, "jobs": 0}`),
	}}
	r := serve(t, rec, role.HTTPConfig{Headers: http.Header{"Authorization": {"Bearer s3cret"}}})
	ctx := context.Background()

	require.NoError(t, r.Provision(ctx, web))
	require.NoError(t, r.WindDown(ctx, web))
	require.NoError(t, r.Restore(ctx, web))
	require.NoError(t, r.Teardown(ctx, web))
	st, err := r.Check(ctx, web)
	require.NoError(t, err)

	assert.Equal(t, role.Status{Idle: true, WoundDown: false}, st)
	tok := "Bearer s3cret"
	assert.Equal(t, []request{
		{http.MethodPost, "/autoscale/provision", tok, 0},
		{http.MethodPost, "/autoscale/wind-down", tok, 0},
		{http.MethodPost, "/autoscale/restore", tok, 0},
		{http.MethodPost, "/autoscale/teardown", tok, 0},
		{http.MethodGet, "/autoscale/status", tok, 0},
	}, rec.requests())
}

func TestHTTPCustomPathsAndSkips(t *testing.T) {
	rec := &recorder{answers: map[string]func(http.ResponseWriter){
		"/health/drained": statusAnswer(`{"idle": false, "wound_down": true}`),
	}}
	r := serve(t, rec, role.HTTPConfig{
		SkipProvision: true, SkipTeardown: true,
		WindDownPath: "/drain", RestorePath: "/undrain", StatusPath: "/health/drained",
	})
	ctx := context.Background()
	require.NoError(t, r.Provision(ctx, web))
	require.NoError(t, r.WindDown(ctx, web))
	require.NoError(t, r.Restore(ctx, web))
	require.NoError(t, r.Teardown(ctx, web))
	st, err := r.Check(ctx, web)
	require.NoError(t, err)
	assert.Equal(t, role.Status{Idle: false, WoundDown: true}, st)
	assert.Equal(t, []request{
		{Method: http.MethodPost, Path: "/drain"},
		{Method: http.MethodPost, Path: "/undrain"},
		{Method: http.MethodGet, Path: "/health/drained"},
	}, rec.requests())
}

func TestHTTPDefaultAddressIsPrivateIPAndPort(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	r, err := role.NewHTTP("web", anImage, role.HTTPConfig{Port: p})
	require.NoError(t, err)

	require.NoError(t, r.WindDown(context.Background(), awsctl.Instance{ID: "i-1", PrivateIP: host}))
	assert.Len(t, rec.requests(), 1)

	err = r.WindDown(context.Background(), awsctl.Instance{ID: "i-2"})
	assert.ErrorIs(t, err, role.ErrNoAddress, "an instance without a private IP yet")
	assert.ErrorContains(t, err, "i-2")
}

func TestHTTPErrorAnswers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		desc   string
		answer func(http.ResponseWriter)
		call   func(*role.HTTP) error
		code   int
		want   string
	}{
		{"5xx on wind-down", code(http.StatusServiceUnavailable), func(r *role.HTTP) error { return r.WindDown(ctx, web) }, 503, "wind-down"},
		{"4xx on provision", code(http.StatusNotFound), func(r *role.HTTP) error { return r.Provision(ctx, web) }, 404, "provision"},
		{"5xx on status", code(http.StatusInternalServerError), func(r *role.HTTP) error { _, err := r.Check(ctx, web); return err }, 500, "status"},
		{"redirect is not followed", func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://elsewhere.invalid/")
			w.WriteHeader(http.StatusFound)
		}, func(r *role.HTTP) error { return r.Restore(ctx, web) }, 302, "restore"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rec := &recorder{answers: map[string]func(http.ResponseWriter){}}
			for _, p := range []string{role.DefaultProvisionPath, role.DefaultWindDownPath, role.DefaultRestorePath, role.DefaultStatusPath} {
				rec.answers[p] = tc.answer
			}
			r := serve(t, rec, role.HTTPConfig{Headers: http.Header{"X-Token": {"s3cret"}}})
			err := tc.call(r)
			var he *role.HTTPError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tc.code, he.StatusCode)
			assert.Equal(t, tc.want, he.Endpoint)
			assert.Equal(t, web.ID, he.Instance)
			msg := err.Error()
			for _, s := range []string{tc.want, web.ID, strconv.Itoa(tc.code)} {
				assert.Contains(t, msg, s)
			}
			assert.NotContains(t, msg, "s3cret", "headers never appear in errors")
		})
	}
}

func TestHTTPStatusWithoutIdle(t *testing.T) {
	// The pool reads only wound_down, so a server need not report idle.
	for body, want := range map[string]role.Status{
		`{"wound_down": true}`:  {WoundDown: true},
		`{"wound_down": false}`: {},
	} {
		rec := &recorder{answers: map[string]func(http.ResponseWriter){role.DefaultStatusPath: statusAnswer(body)}}
		st, err := serve(t, rec, role.HTTPConfig{}).Check(context.Background(), web)
		require.NoError(t, err, body)
		assert.Equal(t, want, st, body)
	}
}

func TestHTTPBadStatusAnswers(t *testing.T) {
	for _, tc := range []struct{ desc, body string }{
		{"not JSON", `idle`},
		{"truncated", `{"idle": true`},
		{"wrong types", `{"idle": "yes", "wound_down": "no"}`},
		{"missing wound_down", `{"idle": true}`},
		{"null wound_down", `{"idle": true, "wound_down": null}`},
		{"empty", ``},
		{"too long", `{"idle": true, "wound_down": true, "pad": "` + strings.Repeat("x", role.MaxHTTPResponse) + `"}`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rec := &recorder{answers: map[string]func(http.ResponseWriter){role.DefaultStatusPath: statusAnswer(tc.body)}}
			r := serve(t, rec, role.HTTPConfig{})
			_, err := r.Check(context.Background(), web)
			require.Error(t, err)
			assert.Contains(t, err.Error(), web.ID)
		})
	}
}

func TestHTTPCancelledContextEndsHangingRequest(t *testing.T) {
	arrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // hangs until the client gives up
	}))
	defer srv.Close()
	r, err := role.NewHTTP("web", anImage, role.HTTPConfig{
		Timeout: time.Hour,
		Address: func(awsctl.Instance) string { return srv.Listener.Addr().String() },
	})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.WindDown(ctx, web) }()
	<-arrived
	cancel()
	err = <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), web.ID)
}

func TestHTTPTimeoutCutsOffHangingServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, stop := pipehttp.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer stop()
		r, err := role.NewHTTP("web", anImage, role.HTTPConfig{Client: client, Timeout: 3 * time.Second})
		require.NoError(t, err)

		start := time.Now()
		_, err = r.Check(context.Background(), web)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 3*time.Second, time.Since(start), "the request is cut off at its timeout")

		// The hook's own context ends it sooner.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		err = r.WindDown(ctx, web)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestHTTPOverPipeAnswers(t *testing.T) {
	// The in-memory server above is a faithful HTTP server: the same role
	// talks to it as to a real one.
	synctest.Test(t, func(t *testing.T) {
		client, stop := pipehttp.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]bool{"idle": true, "wound_down": true})
		}))
		defer stop()
		r, err := role.NewHTTP("web", anImage, role.HTTPConfig{Client: client})
		require.NoError(t, err)
		st, err := r.Check(context.Background(), web)
		require.NoError(t, err)
		assert.Equal(t, role.Status{Idle: true, WoundDown: true}, st)
	})
}

func TestNewHTTPValidates(t *testing.T) {
	for _, tc := range []struct {
		field string
		cfg   role.HTTPConfig
	}{
		{"HTTPConfig.Port", role.HTTPConfig{Port: -1}},
		{"HTTPConfig.Port", role.HTTPConfig{Port: 65536}},
		{"HTTPConfig.Scheme", role.HTTPConfig{Scheme: "ftp"}},
		{"HTTPConfig.Timeout", role.HTTPConfig{Timeout: -time.Second}},
		{"HTTPConfig.StatusPath", role.HTTPConfig{StatusPath: "status"}},
		{"HTTPConfig.WindDownPath", role.HTTPConfig{WindDownPath: "http://x/drain"}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, err := role.NewHTTP("web", anImage, tc.cfg)
			require.ErrorIs(t, err, role.ErrInvalidConfig)
			var ce *role.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.Equal(t, "web", ce.Role)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	_, err := role.NewHTTP("", anImage, role.HTTPConfig{})
	assert.ErrorIs(t, err, role.ErrInvalidConfig)
}

func TestHTTPHeadersAreCopied(t *testing.T) {
	rec := &recorder{}
	h := http.Header{"Authorization": {"Bearer one"}}
	r := serve(t, rec, role.HTTPConfig{Headers: h})
	h.Set("Authorization", "Bearer two")
	require.NoError(t, r.WindDown(context.Background(), web))
	assert.Equal(t, "Bearer one", rec.requests()[0].Token)
}
