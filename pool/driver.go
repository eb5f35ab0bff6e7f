package pool

import "github.com/ec2autoscale/ec2autoscale/internal/poolctl"

func init() {
	poolctl.Ops.Plan = (*Pool).plan
	poolctl.Ops.Commit = (*Pool).commit
	poolctl.Ops.SetDraining = (*Pool).setDraining
	poolctl.Ops.OnHookDone = (*Pool).onHookDone
	poolctl.Ops.WaitHooks = (*Pool).waitHooks
	poolctl.Ops.Close = (*Pool).close
	poolctl.Ops.WindingDown = (*Pool).windingDown
	poolctl.Ops.Reset = (*Pool).reset
	poolctl.Ops.Refresh = (*Pool).refresh
}
