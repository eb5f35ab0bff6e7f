package pool_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// A tag change is expected only for LaunchGrace; those of instances the
// listing never shows again (retired and terminated in one pass) must not
// pile up for as long as the pool runs.
func TestExpectedTagChangesOfGoneInstancesAreForgotten(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 1}}
	p := newPool(t, nil, m)
	for i := range 500 {
		p.ExpectTags(t0, fmt.Sprintf("i-gone%03d", i), map[string]string{pool.TagReady: "x"})
	}
	later := t0.Add(pool.DefaultLaunchGrace + time.Minute)
	p.ExpectTags(later, "i-live", map[string]string{pool.TagReady: "x"})
	live := granted("i-live", "z1", "m", t0)
	p.Plan(context.Background(), pool.Snapshot{Now: later.Add(time.Second), Instances: []awsctl.Instance{live}})
	assert.Equal(t, 1, p.Overlays(), "only the change still within LaunchGrace is kept")
}
