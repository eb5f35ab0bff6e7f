package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

func TestServersListsThePassOnceReadAndStopsWhenNobodyReads(t *testing.T) {
	m := &want{name: "m", req: manager.Request{Target: 2}}
	p := newPool(t, nil, m)
	ctx := context.Background()
	older := granted("i-b", "z2", "m", t0.Add(-time.Hour))
	newer := granted("i-a", "z1", "m", t0.Add(-time.Minute))
	newer.Tags[pool.TagReady] = "1"
	insts := []awsctl.Instance{newer, older}
	pass := func(i int) time.Time {
		now := t0.Add(time.Duration(i) * time.Minute)
		pl := p.Plan(ctx, pool.Snapshot{Now: now, Instances: insts})
		p.Commit(ctx, pl, pool.Outcome{})
		return now
	}

	pass(0)
	list, asOf := p.Servers()
	assert.Empty(t, list, "nobody read the list before this pass: it was not built")
	assert.True(t, asOf.IsZero())

	now := pass(1)
	list, asOf = p.Servers()
	require.Len(t, list, 2)
	assert.Equal(t, now, asOf)
	assert.Equal(t, "i-b", list[0].ID, "ordered by launch time")
	assert.Equal(t, pool.Server{ID: "i-a", Type: "m5.large", Zone: "z1", Market: awsctl.MarketOnDemand,
		State: "granted", Manager: "m", Capacity: 1, Launched: t0.Add(-time.Minute)}, list[1])

	for i := 2; i < 40; i++ {
		pass(i)
	}
	list, asOf = p.Servers()
	assert.Empty(t, list, "unread for many passes: no longer built")
	assert.True(t, asOf.IsZero())
}
