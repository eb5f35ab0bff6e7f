package imdsnotice_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/imdsnotice"
	"github.com/ec2autoscale/ec2autoscale/internal/pipehttp"
)

const instanceID = "i-0b662ef9931388ba0"

var (
	deadline   = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	noticeTime = time.Date(2026, 11, 28, 11, 40, 0, 0, time.UTC)

	terminateDoc = answer{body: `{"action":"terminate","time":"2026-11-28T12:00:00Z"}`}
	rebalanceDoc = answer{body: `{"noticeTime":"2026-11-28T11:40:00Z"}`}

	interruption = awsctl.SpotNotice{
		InstanceID: instanceID, Kind: awsctl.Interruption,
		Time: deadline.Add(-2 * time.Minute), Deadline: deadline, Action: "terminate",
	}
	rebalance = awsctl.SpotNotice{InstanceID: instanceID, Kind: awsctl.Rebalance, Time: noticeTime}
)

// metadataClient is the SDK's client for the service at endpoint. IMDSv1
// fallback is off so that a request without the session token fails, and
// the SDK's retries are off so that every failure reaches the Watcher and
// the tests count requests exactly.
func metadataClient(endpoint string, httpClient imds.HTTPClient) *imds.Client {
	return imds.New(imds.Options{
		Endpoint:       endpoint,
		HTTPClient:     httpClient,
		EnableFallback: aws.FalseTernary,
		Retryer:        aws.NopRetryer{},
	})
}

func TestNewValidates(t *testing.T) {
	_, err := imdsnotice.New(nil, imdsnotice.Options{})
	assert.ErrorContains(t, err, "api")
	_, err = imdsnotice.New(metadataClient("http://127.0.0.1:1", nil), imdsnotice.Options{Interval: -time.Second})
	assert.ErrorContains(t, err, "Interval")
}

func TestCheck(t *testing.T) {
	serverError := answer{status: http.StatusInternalServerError}
	tests := []struct {
		name        string
		docs        map[string]answer
		want        []awsctl.SpotNotice
		wantErr     bool
		malformed   bool
		errMentions string
	}{
		{name: "nothing pending"},
		{
			name: "rebalance only",
			docs: map[string]answer{imdsnotice.RebalancePath: rebalanceDoc},
			want: []awsctl.SpotNotice{rebalance},
		},
		{
			name: "interruption",
			docs: map[string]answer{imdsnotice.InstanceActionPath: terminateDoc},
			want: []awsctl.SpotNotice{interruption},
		},
		{
			name: "stop action",
			docs: map[string]answer{imdsnotice.InstanceActionPath: {body: `{"action": "stop", "time": "2026-11-28T12:00:00Z"}`}},
			want: []awsctl.SpotNotice{{
				InstanceID: instanceID, Kind: awsctl.Interruption,
				Time: deadline.Add(-2 * time.Minute), Deadline: deadline, Action: "stop",
			}},
		},
		{
			name: "both",
			docs: map[string]answer{imdsnotice.InstanceActionPath: terminateDoc, imdsnotice.RebalancePath: rebalanceDoc},
			want: []awsctl.SpotNotice{interruption, rebalance},
		},
		{
			name: "malformed instance-action keeps the rebalance",
			docs: map[string]answer{
				imdsnotice.InstanceActionPath: {body: `{"action":"terminate","time":`},
				imdsnotice.RebalancePath:      rebalanceDoc,
			},
			want:    []awsctl.SpotNotice{rebalance},
			wantErr: true, malformed: true, errMentions: imdsnotice.InstanceActionPath,
		},
		{
			name:    "instance-action without a time",
			docs:    map[string]answer{imdsnotice.InstanceActionPath: {body: `{"action":"terminate"}`}},
			wantErr: true, malformed: true, errMentions: imdsnotice.InstanceActionPath,
		},
		{
			name:    "malformed rebalance",
			docs:    map[string]answer{imdsnotice.RebalancePath: {body: `{"noticeTime":"yesterday"}`}},
			wantErr: true, malformed: true, errMentions: imdsnotice.RebalancePath,
		},
		{
			name: "server error keeps the other notice",
			docs: map[string]answer{
				imdsnotice.InstanceActionPath: serverError,
				imdsnotice.RebalancePath:      rebalanceDoc,
			},
			want:    []awsctl.SpotNotice{rebalance},
			wantErr: true, errMentions: imdsnotice.InstanceActionPath,
		},
		{
			name:    "server error on instance-id",
			docs:    map[string]answer{imdsnotice.InstanceIDPath: serverError, imdsnotice.InstanceActionPath: terminateDoc},
			wantErr: true, errMentions: imdsnotice.InstanceIDPath,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			meta := newMetadataServer(instanceID)
			for path, a := range tc.docs {
				meta.set(path, a)
			}
			srv := httptest.NewServer(meta)
			defer srv.Close()
			w, err := imdsnotice.New(metadataClient(srv.URL, nil), imdsnotice.Options{})
			require.NoError(t, err)

			got, err := w.Check(t.Context())
			assert.Equal(t, tc.want, got)
			if !tc.wantErr {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.ErrorContains(t, err, tc.errMentions)
				assert.Equal(t, tc.malformed, errors.Is(err, imdsnotice.ErrMalformedNotice), "malformed: %v", err)
				if !tc.malformed {
					var status interface{ HTTPStatusCode() int }
					require.ErrorAs(t, err, &status, "the SDK's error stays reachable")
					assert.Equal(t, http.StatusInternalServerError, status.HTTPStatusCode())
				}
			}
			assert.Empty(t, meta.refused(), "every request used IMDSv2")
		})
	}
}

func TestCheckReadsInstanceIDOnce(t *testing.T) {
	meta := newMetadataServer(instanceID)
	meta.set(imdsnotice.RebalancePath, rebalanceDoc)
	srv := httptest.NewServer(meta)
	defer srv.Close()
	w, err := imdsnotice.New(metadataClient(srv.URL, nil), imdsnotice.Options{})
	require.NoError(t, err)

	for range 3 {
		got, err := w.Check(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []awsctl.SpotNotice{rebalance}, got, "Check reports a pending notice every time")
	}
	assert.Equal(t, 1, meta.getCount(imdsnotice.InstanceIDPath))
	assert.Equal(t, 3, meta.getCount(imdsnotice.InstanceActionPath))
	assert.Equal(t, 3, meta.getCount(imdsnotice.RebalancePath))
}

func TestCheckUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	w, err := imdsnotice.New(metadataClient(srv.URL, nil), imdsnotice.Options{})
	require.NoError(t, err)
	got, err := w.Check(t.Context())
	assert.Empty(t, got)
	require.Error(t, err)
	assert.NotErrorIs(t, err, imdsnotice.ErrMalformedNotice)
}

// levelCounter counts log records by level.
type levelCounter struct {
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (c *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *levelCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[r.Level]++
	return nil
}
func (c *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *levelCounter) WithGroup(string) slog.Handler      { return c }
func (c *levelCounter) count(l slog.Level) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[l]
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		meta := newMetadataServer(instanceID)
		httpClient, stop := pipehttp.Serve(meta)
		defer stop()
		logs := &levelCounter{counts: map[slog.Level]int{}}
		w, err := imdsnotice.New(metadataClient("http://169.254.169.254", httpClient), imdsnotice.Options{Logger: slog.New(logs)})
		require.NoError(t, err)

		var mu sync.Mutex
		var got []awsctl.SpotNotice
		reported := func() []awsctl.SpotNotice {
			mu.Lock()
			defer mu.Unlock()
			return append([]awsctl.SpotNotice(nil), got...)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- w.Watch(ctx, func(n awsctl.SpotNotice) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, n)
			})
		}()
		polls := func() int { return meta.getCount(imdsnotice.InstanceActionPath) }
		wait := func(intervals int) {
			time.Sleep(time.Duration(intervals) * imdsnotice.DefaultInterval)
			synctest.Wait()
		}

		synctest.Wait()
		assert.Equal(t, 1, polls(), "the first poll is immediate")
		assert.Empty(t, reported())

		meta.set(imdsnotice.RebalancePath, rebalanceDoc)
		wait(1)
		assert.Equal(t, []awsctl.SpotNotice{rebalance}, reported())

		wait(3)
		assert.Equal(t, 5, polls(), "one poll per interval")
		assert.Equal(t, []awsctl.SpotNotice{rebalance}, reported(), "a notice still posted is reported once")

		meta.set(imdsnotice.InstanceActionPath, terminateDoc)
		wait(1)
		assert.Equal(t, []awsctl.SpotNotice{rebalance, interruption}, reported())

		meta.set(imdsnotice.InstanceActionPath, answer{status: http.StatusServiceUnavailable})
		wait(3)
		assert.Equal(t, 9, polls(), "failed polls are retried at the interval, not in a tight loop")
		assert.Equal(t, 1, logs.count(slog.LevelWarn), "a streak of failures is logged loudly once")
		assert.Equal(t, 2, logs.count(slog.LevelDebug))

		meta.set(imdsnotice.InstanceActionPath, terminateDoc)
		wait(1)
		assert.Equal(t, 1, logs.count(slog.LevelInfo), "the recovery is logged")
		assert.Equal(t, []awsctl.SpotNotice{rebalance, interruption}, reported(), "a failed poll does not make the notice new")

		later := deadline.Add(time.Minute)
		meta.set(imdsnotice.InstanceActionPath, answer{body: `{"action":"terminate","time":"2026-11-28T12:01:00Z"}`})
		meta.clear(imdsnotice.RebalancePath)
		wait(1)
		require.Len(t, reported(), 3, "a changed notice is reported again")
		assert.Equal(t, later, reported()[2].Deadline)

		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		default:
			t.Fatal("Watch did not return when its context ended")
		}
		before := polls()
		wait(3)
		assert.Equal(t, before, polls(), "no polls after Watch returned")
		assert.Empty(t, meta.refused())
	})
}

func TestWatchNeedsFunc(t *testing.T) {
	w, err := imdsnotice.New(metadataClient("http://127.0.0.1:1", nil), imdsnotice.Options{})
	require.NoError(t, err)
	assert.ErrorContains(t, w.Watch(t.Context(), nil), "fn")
}
