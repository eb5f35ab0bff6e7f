package autoscale

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// The last line of defence: whatever a plan holds, only instances the
// listing showed with the scaler's owner tag are tagged or terminated.
func TestKeepOwnedDropsActionsOnInstancesNotListedAsOwn(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Config{Seed: 1})
	require.NoError(t, err)
	r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-12345678"}, role.Hooks{})
	require.NoError(t, err)
	m, err := manager.NewFixed("jobs", 0)
	require.NoError(t, err)
	var refused []string
	s, err := New(sim, []pool.Config{{Name: "workers", Role: r, Managers: []manager.Manager{m},
		Types: []pool.InstanceType{{Name: "m5.large"}}, Zones: []string{"us-east-1a"}, Max: 5}},
		Options{Identity: "me", Clock: sim.Now, Observer: ObserverFunc(func(e Event) {
			if e.Kind == pool.EventCloudError {
				refused = append(refused, e.Instance)
			}
		})})
	require.NoError(t, err)
	insts := []awsctl.Instance{
		{ID: "i-mine", Tags: map[string]string{pool.TagOwner: "me"}},
		{ID: "i-theirs", Tags: map[string]string{pool.TagOwner: "them"}},
		{ID: "i-other", Tags: map[string]string{pool.TagOwner: "me"}},
	}
	change := func(id string) pool.Change { return pool.Change{Instance: awsctl.Instance{ID: id}} }
	pl := &pool.Plan{Pool: "workers",
		Changes:   []pool.Change{change("i-mine"), change("i-theirs"), change("i-unlisted")},
		Terminate: []string{"i-theirs", "i-unlisted", "i-mine"}}
	s.keepOwned(context.Background(), time.Time{}, []*pool.Plan{pl}, insts)
	assert.Equal(t, []pool.Change{change("i-mine")}, pl.Changes)
	assert.Equal(t, []string{"i-mine"}, pl.Terminate)
	assert.Equal(t, []string{"i-theirs", "i-unlisted", "i-theirs", "i-unlisted"}, refused)
}
