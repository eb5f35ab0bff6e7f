package imdsnotice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// DefaultInterval is how often Watch polls when Options.Interval is zero:
// AWS suggests checking for interruption notices every 5 seconds, which
// leaves most of the two-minute warning for the wind-down.
const DefaultInterval = 5 * time.Second

// InterruptionWarning is how long before its action EC2 posts an
// interruption notice. The instance-action document gives only the time
// of the action; the notice's issue time is taken to be this much earlier.
const InterruptionWarning = awsctl.InterruptionNoticeLead

// Metadata paths the Watcher reads, relative to /latest/meta-data/. The
// two notice paths answer 404 while nothing is pending.
const (
	InstanceActionPath = "spot/instance-action"
	RebalancePath      = "events/recommendations/rebalance"
	InstanceIDPath     = "instance-id"
)

// ErrMalformedNotice is wrapped by the errors about a metadata document
// that cannot be read as a notice.
var ErrMalformedNotice = errors.New("malformed metadata notice")

// maxDocument bounds what is read of a metadata document; the notices are
// a few dozen bytes.
const maxDocument = 64 << 10

// MetadataAPI is the part of the instance metadata client that the Watcher
// uses; *imds.Client implements it.
type MetadataAPI interface {
	GetMetadata(ctx context.Context, params *imds.GetMetadataInput, optFns ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
}

var _ MetadataAPI = (*imds.Client)(nil)

// Options configure a Watcher. The zero value is ready to use.
type Options struct {
	// Interval between polls of Watch; default DefaultInterval.
	Interval time.Duration
	// Logger receives Watch's reports of failed polls; nil discards.
	Logger *slog.Logger
}

// Watcher reads the spot notices of the instance it runs on from the
// instance metadata service. It is safe for concurrent use.
type Watcher struct {
	api      MetadataAPI
	interval time.Duration
	log      *slog.Logger

	mu         sync.Mutex
	instanceID string // read once: it never changes
}

// New returns a Watcher reading metadata through api, normally
// imds.NewFromConfig(cfg) or imds.New(imds.Options{}).
func New(api MetadataAPI, opts Options) (*Watcher, error) {
	if api == nil {
		return nil, errors.New("imdsnotice: New: api is required")
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("imdsnotice: New: Options.Interval %v is negative", opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{api: api, interval: opts.Interval, log: opts.Logger}, nil
}

// Check polls the metadata service once and returns the notices pending
// for this instance: at most one interruption and one rebalance
// recommendation, each reported at every call for as long as EC2 keeps it
// posted. Nothing pending is an empty result, not an error.
//
// A document that cannot be parsed yields an error wrapping
// ErrMalformedNotice; a failed request yields the SDK's error, wrapped.
// Notices read before an error are returned with it.
func (w *Watcher) Check(ctx context.Context) ([]awsctl.SpotNotice, error) {
	id, err := w.readInstanceID(ctx)
	if err != nil {
		return nil, err
	}
	var notices []awsctl.SpotNotice
	var errs []error
	if n, ok, err := w.readInterruption(ctx, id); err != nil {
		errs = append(errs, err)
	} else if ok {
		notices = append(notices, n)
	}
	if n, ok, err := w.readRebalance(ctx, id); err != nil {
		errs = append(errs, err)
	} else if ok {
		notices = append(notices, n)
	}
	return notices, errors.Join(errs...)
}

// Watch polls the metadata service at once and then every interval until
// ctx ends, and calls fn, from its own goroutine, once for each new
// notice: a notice still posted at later polls is not reported again,
// while one that changes (a new deadline or action) is. Failed polls are
// logged and retried at the next interval. Watch returns ctx's error.
func (w *Watcher) Watch(ctx context.Context, fn func(awsctl.SpotNotice)) error {
	if fn == nil {
		return errors.New("imdsnotice: Watch: fn is required")
	}
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	reported := map[awsctl.SpotNoticeKind]awsctl.SpotNotice{}
	failing := false
	for {
		notices, err := w.Check(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err != nil && !failing:
			// Later failures of the same streak are logged quietly: off
			// EC2, or with the metadata service turned off, every poll
			// fails.
			w.log.Warn("reading spot notices from instance metadata failed", "err", err)
		case err != nil:
			w.log.Debug("reading spot notices from instance metadata failed again", "err", err)
		case failing:
			w.log.Info("reading spot notices from instance metadata works again")
		}
		failing = err != nil
		for _, n := range notices {
			if prev, ok := reported[n.Kind]; ok && sameNotice(prev, n) {
				continue
			}
			reported[n.Kind] = n
			fn(n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

func sameNotice(a, b awsctl.SpotNotice) bool {
	return a.InstanceID == b.InstanceID && a.Kind == b.Kind && a.Action == b.Action &&
		a.Time.Equal(b.Time) && a.Deadline.Equal(b.Deadline)
}

func (w *Watcher) readInstanceID(ctx context.Context) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.instanceID != "" {
		return w.instanceID, nil
	}
	doc, ok, err := w.get(ctx, InstanceIDPath)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("imdsnotice: %s: not found in instance metadata", InstanceIDPath)
	}
	id := strings.TrimSpace(string(doc))
	if id == "" {
		return "", malformed(InstanceIDPath, doc, errors.New("empty"))
	}
	w.instanceID = id
	return id, nil
}

// readInterruption reads the pending interruption, if any. The document
// is {"action": "terminate", "time": "2026-11-28T12:00:00Z"}, where time
// is when EC2 acts.
func (w *Watcher) readInterruption(ctx context.Context, instanceID string) (awsctl.SpotNotice, bool, error) {
	doc, ok, err := w.get(ctx, InstanceActionPath)
	if err != nil || !ok {
		return awsctl.SpotNotice{}, false, err
	}
	var v struct {
		Action string `json:"action"`
		Time   string `json:"time"`
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		return awsctl.SpotNotice{}, false, malformed(InstanceActionPath, doc, err)
	}
	deadline, err := time.Parse(time.RFC3339, v.Time)
	if err != nil {
		return awsctl.SpotNotice{}, false, malformed(InstanceActionPath, doc, err)
	}
	return awsctl.SpotNotice{
		InstanceID: instanceID,
		Kind:       awsctl.Interruption,
		Time:       deadline.Add(-InterruptionWarning),
		Deadline:   deadline,
		Action:     v.Action,
	}, true, nil
}

// readRebalance reads the pending rebalance recommendation, if any. The
// document is {"noticeTime": "2026-11-28T11:40:00Z"}.
func (w *Watcher) readRebalance(ctx context.Context, instanceID string) (awsctl.SpotNotice, bool, error) {
	doc, ok, err := w.get(ctx, RebalancePath)
	if err != nil || !ok {
		return awsctl.SpotNotice{}, false, err
	}
	var v struct {
		NoticeTime string `json:"noticeTime"`
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		return awsctl.SpotNotice{}, false, malformed(RebalancePath, doc, err)
	}
	at, err := time.Parse(time.RFC3339, v.NoticeTime)
	if err != nil {
		return awsctl.SpotNotice{}, false, malformed(RebalancePath, doc, err)
	}
	return awsctl.SpotNotice{InstanceID: instanceID, Kind: awsctl.Rebalance, Time: at}, true, nil
}

// get reads a metadata document; found is false when the service answers
// 404.
func (w *Watcher) get(ctx context.Context, path string) (doc []byte, found bool, err error) {
	out, err := w.api.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) && status.HTTPStatusCode() == http.StatusNotFound {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("imdsnotice: reading %s: %w", path, err)
	}
	defer out.Content.Close()
	doc, err = io.ReadAll(io.LimitReader(out.Content, maxDocument))
	if err != nil {
		return nil, false, fmt.Errorf("imdsnotice: reading %s: %w", path, err)
	}
	return doc, true, nil
}

func malformed(path string, doc []byte, err error) error {
	const quoted = 200
	if len(doc) > quoted {
		doc = doc[:quoted]
	}
	return fmt.Errorf("imdsnotice: %s: %w: %v (document %q)", path, ErrMalformedNotice, err, doc)
}
