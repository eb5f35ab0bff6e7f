package elbrole_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
	"github.com/ec2autoscale/ec2autoscale/role"
)

func TestWindDownOfADeletedTargetGroupCompletes(t *testing.T) {
	// Someone deleted the target group: the server receives nothing and has
	// nothing to drain, so its wind-down must end rather than fail forever.
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, elbrole.Config{}, elbsim.Config{})
		ctx := context.Background()
		require.NoError(t, f.role.Provision(ctx, inst))
		f.lb.DeleteTargetGroup(f.arn)

		require.NoError(t, f.role.WindDown(ctx, inst))
		assert.Contains(t, f.app.called(), "wind-down i-0a", "the app is told too")
		st, err := f.role.Check(ctx, inst)
		require.NoError(t, err)
		assert.Equal(t, role.Status{Idle: true, WoundDown: true}, st)
	})
}
