package pool

import (
	"time"
)

// Tag keys the scaler writes. All the state the scaler needs to resume after
// a restart lives in these tags.
const (
	// TagOwner holds the scaler's identity; instances without it (or with
	// another value) are never touched.
	TagOwner = "ec2autoscale:owner"
	// TagPool holds the pool name, written at launch.
	TagPool = "ec2autoscale:pool"
	// TagRole holds the role name, written at launch.
	TagRole = "ec2autoscale:role"
	// TagManager holds the name of the manager the server is granted to.
	TagManager = "ec2autoscale:manager"
	// TagWindDownStart and TagWindDownDeadline mark a wind-down in
	// progress (RFC 3339 UTC).
	TagWindDownStart    = "ec2autoscale:wind-down-start"
	TagWindDownDeadline = "ec2autoscale:wind-down-deadline"
	// TagReplaces holds the id of the instance a replacement stands in for.
	TagReplaces = "ec2autoscale:replaces"
	// TagInterrupted holds the time EC2 reclaims a spot instance that got
	// an interruption notice (RFC 3339 UTC), so a restarted scaler does not
	// count it as capacity even if the notice itself is not delivered again.
	TagInterrupted = "ec2autoscale:interrupted"
	// TagReady holds the time the role's Provision hook succeeded (RFC 3339
	// UTC), so a restarted scaler knows the server is ready without running
	// the hook again.
	TagReady = "ec2autoscale:ready"
	// TagRetire marks a server that leaves for good and must never be put
	// back to work: its value says why ("released", "provision-failed",
	// "stopped").
	TagRetire = "ec2autoscale:retire"
	// TagSpec holds a digest of the launch spec the instance was launched
	// from: a server whose digest differs from the role's spec now has
	// drifted and is replaced.
	TagSpec = "ec2autoscale:spec"
	// TagRefresh marks a server a host's Refresh asked to replace (the
	// request's time, RFC 3339 UTC).
	TagRefresh = "ec2autoscale:refresh"
)

// Reasons written in TagRetire.
const (
	RetireReleased        = "released"
	RetireProvisionFailed = "provision-failed"
	RetireStopped         = "stopped"
	RetireUnhealthy       = "unhealthy"
	// RetireReplaced: a replacement took its place (drift, lifetime,
	// refresh, scheduled event).
	RetireReplaced = "replaced"
)

// EC2 tag limits.
const (
	maxTags     = 50
	maxTagKey   = 128
	maxTagValue = 256
)

const tagPrefix = "ec2autoscale:"

// ownTags are every tag key the scaler may write on one instance.
var ownTags = []string{TagOwner, TagPool, TagRole, TagManager, TagWindDownStart, TagWindDownDeadline, TagReplaces,
	TagInterrupted, TagReady, TagRetire, TagSpec, TagRefresh}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}
