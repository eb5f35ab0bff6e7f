package pool

import (
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// state is where a server is in its life. It is derived in one place,
// [derive], from what a restarted scaler can read back: the instance's EC2
// state, the scaler's tags, the spot notices and the role hooks running or
// finished. The diagram and the transitions are in doc.go.
type state uint8

const (
	// launching: launched by this process, not in the listing yet (EC2's
	// listing lags). Known only in memory; a restarted scaler finds it again
	// through the launch's idempotency token or once it is listed.
	launching state = iota
	// booting: EC2 says pending.
	booting
	// provisioning: running, the role's Provision hook has not succeeded
	// yet (no TagReady).
	provisioning
	// free: ready (TagReady) and granted to no manager.
	free
	// granted: works for the manager its TagManager names.
	granted
	// windingDown: TagWindDownStart is set; the role's WindDown, Check and
	// Teardown hooks move it towards termination.
	windingDown
	// restoring: a wind-down is being cancelled (Restore hook running or
	// done, tags not yet removed).
	restoring
	// interrupted: EC2 reclaims this spot server at its notice's deadline.
	interrupted
	// stopped: stopping or stopped by someone outside the scaler.
	stopped
	// retiring: leaves for good (TagRetire): released by its manager,
	// failed provisioning, or stopped. Never put back to work.
	retiring
	numStates
)

var stateNames = [...]string{"launching", "booting", "provisioning", "free", "granted", "winding-down",
	"restoring", "interrupted", "stopped", "retiring"}

func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// facts are the inputs of derive for one server.
type facts struct {
	ec2        awsctl.State
	listed     bool
	tags       *ownTagValues
	knownMgr   bool      // tags.manager names a manager of the pool
	notice     time.Time // spot interruption time, from a notice or TagInterrupted
	hook       HookKind  // role hook running, 0 for none
	restored   bool      // a Restore hook succeeded and the untag is pending
	provFailed bool      // the Provision hook failed this process
}

// derive is the one place a server's state comes from. Its order is the
// precedence of the facts: a stopped instance is stopped whatever its tags
// say; an interruption overrides a wind-down; a retirement overrides a
// grant.
func derive(f facts) state {
	switch {
	case f.ec2 == awsctl.StateStopping || f.ec2 == awsctl.StateStopped:
		return stopped
	case !f.notice.IsZero():
		return interrupted
	case f.tags.retire != "":
		return retiring
	case f.tags.winding && (f.hook == HookRestore || f.restored):
		return restoring
	case f.tags.winding:
		return windingDown
	case !f.listed:
		return launching
	case f.ec2 == awsctl.StatePending:
		return booting
	case f.provFailed:
		return retiring // the same pass writes TagRetire
	case f.tags.manager != "" && f.knownMgr:
		return granted
	case f.tags.ready == "" && f.tags.manager == "":
		return provisioning
	}
	return free
}

// transitions lists every state change a pass may decide, for the reader
// and for the test that checks decisions against it. Changes made by the
// world (EC2 boots, stops, interrupts or terminates an instance) are not
// decisions and may happen in any state.
var transitions = map[state][]state{
	launching:    {booting, provisioning},
	booting:      {provisioning},
	provisioning: {free, granted, windingDown, retiring},
	free:         {granted, windingDown, retiring},
	granted:      {free, windingDown, retiring},
	windingDown:  {restoring, retiring},
	restoring:    {free, granted, windingDown, retiring},
	interrupted:  {},
	stopped:      {retiring},
	retiring:     {},
}

// allowed reports whether a pass may move a server from one state to
// another.
func allowed(from, to state) bool {
	if from == to {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// supply reports whether s is capacity for new demand that no manager
// holds yet: on its way, free, or being restored to the pool.
func (s *server) supply() bool {
	if s.replaces != nil {
		return false // earmarked for the server it replaces
	}
	switch s.state {
	case launching, booting, provisioning, free:
		return true
	case restoring:
		return s.m.restoreFree
	}
	return false
}
