package ec2autoscaleprom

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// The reasons the library writes today (copied from package pool and
// autoscale, figures and ids included) and the label each maps to. A
// reason the library rewords falls to "other"; the scenario tests, which
// fail on "other", catch that for the paths they drive.
func TestReasonsMapToFixedLabels(t *testing.T) {
	cases := []struct {
		f      func(string) string
		reason string
		want   string
	}{
		{windDownReason, "manager holds 3, wants 1", "scale-in"},
		{windDownReason, "spare capacity", "spare"},
		{windDownReason, "pool holds 12, above max 10", "over-max"},
		{windDownReason, "spot interruption", "interruption"},
		{windDownReason, "replaced by spot i-0abc", "replaced"},
		{windDownReason, "released by its manager", "released"},
		{windDownReason, "unhealthy", "unhealthy"},
		{windDownReason, "provisioning failed", "provision-failed"},
		{windDownReason, "something new", "other"},
		// Day-two replacements (issue 13).
		{windDownReason, "replaced by on-demand i-0abc (launched from an earlier launch spec)", "drift"},
		{windDownReason, "older than MaxLifetime 168h0m0s", "lifetime"},
		{windDownReason, "EC2 scheduled instance-retirement not before 2024-01-02T00:00:00Z", "scheduled-event"},
		{windDownReason, "type m4.large is no longer in the pool", "type-removed"},
		{windDownReason, "refresh requested at 2024-01-01T00:00:00Z", "refresh"},
		{windDownReason, "EC2 status checks impaired", "unhealthy"},
		{replaceReason, "spot saves $0.5000 over 24h0m0s, swap costs $0.0100", "spot"},
		{replaceReason, "saving $0.0100 over 5m0s does not pay for the swap ($0.0200)", "spot"},
		{replaceReason, "replaced by spot i-0abc", "spot"},
		{replaceReason, "launched from an earlier launch spec; waiting: no room under Max 10 for a replacement", "drift"},
		{replaceReason, "older than MaxLifetime 1h0m0s; retired", "lifetime"},
		{replaceReason, "something new", "other"},
		{revokeReason, "EC2 status checks impaired since 2024-01-01T00:00:00Z (system impaired, instance ok); replaced", "unhealthy"},
		{restoreReason, "demand returned", "demand-returned"},
		{restoreReason, "capacity needed; cheaper than a launch", "capacity-needed"},
		{restoreReason, "wind-down passed its deadline", "deadline-passed"},
		{restoreReason, "wound down; handed back to the pool", "handed-back"},
		{revokeReason, "terminated outside the scaler", "lost"},
		{revokeReason, "instance stopped outside the scaler; replaced and terminated", "stopped"},
		{revokeReason, "unhealthy in 3 readings in a row; replaced", "unhealthy"},
		{cappedReason, "paused", "paused"},
		{cappedReason, "more than 5 launch calls a pass; the next pass launches it", "launch-calls"},
		{cappedReason, "more than 500 units a minute", "launch-rate"},
		{cappedReason, "spend $12.00/h of cap $10.00/h", "spend"},
		{noCapacityReason, "nothing can launch for any market: spot m5.large/us-east-1a: unavailable", "no-offering"},
		{noCapacityReason, "every spot offering holds its share cap 0.50; launching over the cap", "spot-share-cap"},
		{launchReason, "replaces on-demand i-0abc: cheapest", "replacement"},
		{launchReason, "on-demand in us-east-1a (any market)", "capacity"},
		{cloudOperation, "listing instances failed; nothing decided", "list"},
		{cloudOperation, "tag change failed; retried next pass", "tag"},
		{cloudOperation, "terminate failed; retried next pass", "terminate"},
		{cloudOperation, "reading spot notices failed", "spot-notices"},
		{cloudOperation, "price refresh failed; using the last good prices", "prices"},
		{cloudOperation, "refused: termination of an instance not owned by this scaler", "refused"},
		{cloudOperation, "terminations paused", "paused"},
		{cloudOperation, "lifecycle transition outside the table: free->booting", "internal"},
		{cloudOperation, "", "other"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.f(c.reason), c.reason)
	}
}

func TestErrorClass(t *testing.T) {
	api := func(kind error) error {
		return &awsctl.APIError{Op: "RunInstances", Code: "X", Message: "i-0abc: boom", Kind: kind}
	}
	joined := errors.Join(
		&awsctl.LaunchError{Market: awsctl.MarketSpot, Err: api(awsctl.ErrQuotaExceeded)},
		&awsctl.LaunchError{Market: awsctl.MarketSpot, Err: api(awsctl.ErrInsufficientCapacity)})
	for err, want := range map[error]string{
		nil:                      "none",
		api(awsctl.ErrThrottled): "throttled",
		fmt.Errorf("tag i-0abc: %w", api(awsctl.ErrNotFound)): "not-found",
		joined:                                      "insufficient-capacity",
		api(awsctl.ErrLimitExceeded):                "limit-exceeded",
		api(awsctl.ErrInvalidRequest):               "invalid-request",
		api(awsctl.ErrTokenMismatch):                "token-mismatch",
		api(awsctl.ErrUnavailable):                  "unavailable",
		fmt.Errorf("x: %w", autoscale.ErrNotLeader): "not-leader",
		context.DeadlineExceeded:                    "timeout",
		context.Canceled:                            "canceled",
		errors.New("surprise"):                      "other",
	} {
		assert.Equal(t, want, errorClass(err), "%v", err)
	}
	assert.Equal(t, "ok", passResult(nil))
	assert.Equal(t, "not-leader", passResult(autoscale.ErrNotLeader))
	assert.Equal(t, "error", passResult(errors.New("x")))
	assert.Equal(t, "spot", market(awsctl.MarketSpot))
	assert.Equal(t, "", market(""))
	assert.Equal(t, "other", market("reserved"))
	assert.Equal(t, "unknown", eventKind(autoscale.Event{Kind: pool.EventKind(999)}))
}

// The memory of why servers leave stays bounded, whatever is never
// reported as terminated.
func TestLeavingIsBounded(t *testing.T) {
	o, err := NewObserver(Options{})
	assert.NoError(t, err)
	start := autoscale.Event{}.Time
	for i := range maxLeaving + 10 {
		o.remember(fmt.Sprintf("i-%d", i), "scale-in", start)
	}
	assert.Len(t, o.leaving, maxLeaving, "full: new ones are not remembered")
	later := start.Add(leavingTTL + 1)
	o.remember("i-new", "spare", later)
	assert.Len(t, o.leaving, 1, "past the TTL, the old ones go")
	assert.Equal(t, "spare", o.forget("i-new"))
	assert.Equal(t, "unknown", o.forget("i-new"))
}
