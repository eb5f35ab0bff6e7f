package ec2autoscaleprom

import (
	"context"
	"errors"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// The label values this package derives from events. Events carry the
// reason for a decision as text with figures and instance ids in it, which
// must never become a label value: every function here maps an event to a
// value from a fixed list, with "other" for text it does not recognise (a
// reason added to the library after this adapter). Values are lower case
// with dashes, as the library's own event kinds, alarm kinds and server
// states are.
const (
	other   = "other"
	unknown = "unknown"
)

// rule maps reasons with text in them (at the start, for classify) to
// label.
type rule struct{ text, label string }

// classify returns the label of the first rule whose text s starts with.
func classify(s string, rules []rule) string {
	for _, r := range rules {
		if strings.HasPrefix(s, r.text) {
			return r.label
		}
	}
	return other
}

// Why a server is due for replacement (issue 13's day-two replacements:
// drift, lifetimes, EC2 scheduled events). The pool writes this text inside
// other reasons ("replaced by spot i-... (launched from an earlier launch
// spec)"), so it is looked for anywhere, and before the prefixes.
var dueRules = []rule{
	{"EC2 scheduled ", "scheduled-event"},
	{"is no longer in the pool", "type-removed"},
	{"earlier launch spec", "drift"},
	{"refresh requested", "refresh"},
	{"MaxLifetime", "lifetime"},
}

// due returns the label of the due reason in reason, or "".
func due(reason string) string {
	for _, r := range dueRules {
		if strings.Contains(reason, r.text) {
			return r.label
		}
	}
	return ""
}

// Wind-down reasons (pool.Event.Reason of EventWindDown), which
// terminations inherit.
var windDownRules = []rule{
	{"manager holds ", "scale-in"},        // a manager wants less
	{"spare capacity", "spare"},           // above the pool's Min, nobody's
	{"pool holds ", "over-max"},           // above Max
	{"spot interruption", "interruption"}, // EC2 reclaims it
	{"replaced by ", "replaced"},          // a spot replacement took over its work
	{"released by its manager", "released"},
	{"unhealthy", "unhealthy"},
	{"EC2 status checks impaired", "unhealthy"},
	{"provisioning failed", "provision-failed"},
}

func windDownReason(reason string) string {
	if d := due(reason); d != "" {
		return d
	}
	return classify(reason, windDownRules)
}

// Why a server is replaced (EventReplace, EventReplaceSkipped, and the
// wind-down that completes a swap): the due reasons, or "spot" for a swap
// of on-demand for spot.
var replaceRules = []rule{
	{"spot saves ", "spot"},  // a swap started
	{"saving $", "spot"},     // a swap that would not pay
	{"replaced by ", "spot"}, // a swap completed, nothing due
}

func replaceReason(reason string) string {
	if d := due(reason); d != "" {
		return d
	}
	return classify(reason, replaceRules)
}

// overdue is the reason of an EventWindDown that is not a new wind-down
// but one past its deadline that is waited for.
const overdue = "wind-down passed its deadline"

// Reasons a wind-down is cancelled (EventRestore).
var restoreRules = []rule{
	{"demand returned", "demand-returned"},
	{"capacity needed", "capacity-needed"},
	{overdue, "deadline-passed"},
	{"wound down; handed back", "handed-back"},
}

func restoreReason(reason string) string { return classify(reason, restoreRules) }

// Reasons a server is taken from its manager outside a wind-down it asked
// for (EventRevoke).
var revokeRules = []rule{
	{"terminated outside the scaler", "lost"},
	{"instance ", "stopped"}, // "instance stopped outside the scaler; ..."
	{"unhealthy", "unhealthy"},
	{"EC2 status checks impaired", "unhealthy"},
}

func revokeReason(reason string) string { return classify(reason, revokeRules) }

// Why a launch the pool decided was held back (EventLaunchCapped); the
// values match the alarm kinds the caps raise.
var cappedRules = []rule{
	{"paused", "paused"},
	{"spend ", string(autoscale.AlarmSpend)},
}

func cappedReason(reason string) string {
	switch {
	case strings.HasPrefix(reason, "more than ") && strings.Contains(reason, "launch calls"):
		return string(autoscale.AlarmLaunchCalls)
	case strings.HasPrefix(reason, "more than ") && strings.Contains(reason, "a minute"):
		return string(autoscale.AlarmLaunchRate)
	}
	return classify(reason, cappedRules)
}

// Why nothing could be launched (EventNoCapacity).
var noCapacityRules = []rule{
	{"nothing can launch", "no-offering"},
	{"every spot offering holds its share cap", "spot-share-cap"},
}

func noCapacityReason(reason string) string { return classify(reason, noCapacityRules) }

// What an EventLaunch was for.
func launchReason(reason string) string {
	if strings.HasPrefix(reason, "replaces ") {
		return "replacement"
	}
	return "capacity"
}

// Which cloud operation an EventCloudError reports.
var cloudOpRules = []rule{
	{"listing instances failed", "list"},
	{"tag change failed", "tag"},
	{"terminate failed", "terminate"},
	{"reading spot notices failed", "spot-notices"},
	{"price refresh failed", "prices"},
	{"refused: ", "refused"}, // an action on an instance not owned, dropped
	{"terminations paused", "paused"},
	{"lifecycle transition outside the table", "internal"},
}

func cloudOperation(reason string) string { return classify(reason, cloudOpRules) }

// errorClass maps an error to the kind the cloud client says it is
// (awsctl's error values), never to its text. A launch over several
// offerings joins one error per offering: the first kind in this order
// wins, capacity first, since that is what the fallback acts on.
func errorClass(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, autoscale.ErrNotLeader):
		return "not-leader"
	case errors.Is(err, awsctl.ErrInsufficientCapacity):
		return "insufficient-capacity"
	case errors.Is(err, awsctl.ErrThrottled):
		return "throttled"
	case errors.Is(err, awsctl.ErrQuotaExceeded):
		return "quota-exceeded"
	case errors.Is(err, awsctl.ErrLimitExceeded):
		return "limit-exceeded"
	case errors.Is(err, awsctl.ErrInvalidRequest):
		return "invalid-request"
	case errors.Is(err, awsctl.ErrTokenMismatch):
		return "token-mismatch"
	case errors.Is(err, awsctl.ErrNotFound):
		return "not-found"
	case errors.Is(err, awsctl.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return other
}

// market is the label value of a market: the two markets as the library
// names them, "" for none (a pool-wide event), "other" for anything else.
func market(m awsctl.Market) string {
	if m == "" || m.Valid() {
		return string(m)
	}
	return other
}

// eventKind is an event kind's name; a kind this version of the library
// does not name (it prints as "event(N)") is "unknown".
func eventKind(e autoscale.Event) string {
	s := e.Kind.String()
	if strings.HasPrefix(s, "event(") {
		return unknown
	}
	return s
}

// passResult is the result label of a timed Step.
func passResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, autoscale.ErrNotLeader):
		return "not-leader"
	}
	return "error"
}
