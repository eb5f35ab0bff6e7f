package etcdleader_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	etcdleader "github.com/ec2autoscale/ec2autoscale/leader/etcd"
)

// ttl is the session TTL of these tests: short, so that a takeover after a
// crash takes seconds, yet long enough for renewals to arrive well within
// it on a loaded machine.
const ttl = 2 * time.Second

func TestNewRejectsBadOptions(t *testing.T) {
	client := newClient(t, "127.0.0.1:1") // never dialled: New does not call etcd
	valid := etcdleader.Options{Prefix: "/election", Identity: "a"}
	tests := []struct {
		name  string
		edit  func(*etcdleader.Options)
		field string
	}{
		{"no prefix", func(o *etcdleader.Options) { o.Prefix = "" }, "Prefix"},
		{"no identity", func(o *etcdleader.Options) { o.Identity = "" }, "Identity"},
		{"negative TTL", func(o *etcdleader.Options) { o.TTL = -time.Second }, "TTL"},
		{"TTL under a second", func(o *etcdleader.Options) { o.TTL = 500 * time.Millisecond }, "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.edit(&opts)
			_, err := etcdleader.New(client, opts)
			require.ErrorIs(t, err, etcdleader.ErrInvalidOptions)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
	_, err := etcdleader.New(nil, valid)
	require.ErrorIs(t, err, etcdleader.ErrInvalidOptions)
	assert.Contains(t, err.Error(), "client")

	e, err := etcdleader.New(client, valid)
	require.NoError(t, err)
	assert.False(t, e.IsLeader(context.Background()), "leader before Run")
}

func TestExactlyOneLeader(t *testing.T) {
	client := newClient(t, startEtcd(t))
	a := newCandidate(t, client, "/one", "a", ttl)
	b := newCandidate(t, client, "/one", "b", ttl)
	a.start(t)
	b.start(t)
	awaitCandidates(t, client, "/one", 2)

	var won, lost *candidate
	select {
	case <-a.changes:
		won, lost = a, b
	case <-b.changes:
		won, lost = b, a
	case <-time.After(10 * time.Second):
		t.Fatal("nobody won the election")
	}
	ctx := context.Background()
	assert.True(t, won.IsLeader(ctx))
	assert.False(t, lost.IsLeader(ctx))
	leader, err := lost.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, won.Identity(), leader)
	// Run again while running is refused rather than campaigning twice.
	assert.ErrorIs(t, won.Run(ctx), etcdleader.ErrRunning)
}

func TestLeaderReportsNoLeader(t *testing.T) {
	client := newClient(t, startEtcd(t))
	e, err := etcdleader.New(client, etcdleader.Options{Prefix: "/empty", Identity: "a"})
	require.NoError(t, err)
	_, err = e.Leader(context.Background())
	assert.ErrorIs(t, err, etcdleader.ErrNoLeader)
}

// A leader that dies without a word (its process, hence its client, gone)
// is replaced once its lease expires, about the TTL later.
func TestTakeoverAfterLeaderCrash(t *testing.T) {
	endpoint := startEtcd(t)
	crashing := newClient(t, endpoint)
	a := newCandidate(t, crashing, "/crash", "a", ttl)
	b := newCandidate(t, newClient(t, endpoint), "/crash", "b", ttl)
	a.start(t)
	a.await(t, true, 10*time.Second)
	b.start(t)
	awaitCandidates(t, crashing, "/crash", 2)
	require.True(t, a.IsLeader(context.Background()))

	crashed := time.Now()
	require.NoError(t, crashing.Close())
	assert.False(t, a.IsLeader(context.Background()), "still leader after its client closed")
	select {
	case err := <-a.done:
		assert.ErrorIs(t, err, etcdleader.ErrClientClosed)
		a.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going without a client")
	}

	b.await(t, true, ttl+5*time.Second)
	took := time.Since(crashed)
	t.Logf("takeover %v after the crash (TTL %v)", took.Round(time.Millisecond), ttl)
	// Not before the lease could expire: nothing revoked it.
	assert.Greater(t, took, ttl/2)
	leader, err := b.Leader(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "b", leader)
}

// A revoked lease (an operator's etcdctl lease revoke, or an expiry) deletes
// the leader's key: the leader steps down, the next takes over, and the old
// leader queues up again with a new session.
func TestLeaseRevokedLeaderStepsDown(t *testing.T) {
	endpoint := startEtcd(t)
	admin := newClient(t, endpoint)
	a := newCandidate(t, newClient(t, endpoint), "/revoke", "a", ttl)
	b := newCandidate(t, newClient(t, endpoint), "/revoke", "b", ttl)
	a.start(t)
	a.await(t, true, 10*time.Second)
	b.start(t)
	awaitCandidates(t, admin, "/revoke", 2)

	require.Equal(t, "a", revokeLeader(t, admin, "/revoke"))
	a.await(t, false, time.Second)
	assert.False(t, a.IsLeader(context.Background()))
	b.await(t, true, time.Second)

	awaitCandidates(t, admin, "/revoke", 2) // a campaigns again, behind b
	assert.False(t, a.IsLeader(context.Background()))
	assert.True(t, b.IsLeader(context.Background()))
}

func TestResignHandsOver(t *testing.T) {
	endpoint := startEtcd(t)
	a := newCandidate(t, newClient(t, endpoint), "/resign", "a", ttl)
	b := newCandidate(t, newClient(t, endpoint), "/resign", "b", ttl)
	a.start(t)
	a.await(t, true, 10*time.Second)
	b.start(t)
	admin := newClient(t, endpoint)
	awaitCandidates(t, admin, "/resign", 2)

	ctx := context.Background()
	require.NoError(t, a.Resign(ctx))
	assert.False(t, a.IsLeader(ctx), "still leader right after Resign")
	b.await(t, true, time.Second)
	a.await(t, false, time.Second)
	awaitCandidates(t, admin, "/resign", 2) // a queues up again, behind b
	require.NoError(t, b.Resign(ctx))
	a.await(t, true, time.Second)
	require.NoError(t, b.Resign(ctx), "resigning while following is a no-op")
}

// Ending Run's context gives the lease up at once: the next replica takes
// over well before the TTL would have run out.
func TestStopHandsOverWithoutWaitingForTTL(t *testing.T) {
	const longTTL = 10 * time.Second
	endpoint := startEtcd(t)
	a := newCandidate(t, newClient(t, endpoint), "/stop", "a", longTTL)
	b := newCandidate(t, newClient(t, endpoint), "/stop", "b", longTTL)
	a.start(t)
	a.await(t, true, 10*time.Second)
	b.start(t)
	awaitCandidates(t, newClient(t, endpoint), "/stop", 2)

	stopped := time.Now()
	a.cancel()
	select {
	case err := <-a.done:
		require.NoError(t, err)
		a.done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	assert.False(t, a.IsLeader(context.Background()))
	b.await(t, true, longTTL/2)
	t.Logf("takeover %v after stop (TTL %v)", time.Since(stopped).Round(time.Millisecond), longTTL)
}

// A leader cut off from etcd stops acting before etcd expires its lease and
// elects another replica: at no moment do two replicas both lead.
func TestPartitionedLeaderStopsBeforeTakeover(t *testing.T) {
	endpoint := startEtcd(t)
	admin := newClient(t, endpoint)
	link := startProxy(t, endpoint)
	partitioned := newClient(t, link.addr())
	a := newCandidate(t, partitioned, "/partition", "a", ttl)
	b := newCandidate(t, newClient(t, endpoint), "/partition", "b", ttl)
	var aLedAtTakeover atomic.Bool
	b.onChange = func(leading bool) {
		if leading {
			aLedAtTakeover.Store(a.IsLeader(context.Background()))
		}
	}
	a.start(t)
	a.await(t, true, 10*time.Second)
	b.start(t)
	awaitCandidates(t, admin, "/partition", 2)

	// Cut the link just after a renewal reached a, so that a's last
	// renewal is known to the test.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := admin.Get(ctx, "/partition/", clientv3.WithFirstCreate()...)
	require.NoError(t, err)
	renewals, err := partitioned.KeepAlive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	select {
	case <-renewals:
	case <-time.After(ttl):
		t.Fatal("no renewal of the leader's lease")
	}
	link.block()
	cut := time.Now()
	require.True(t, a.IsLeader(ctx))

	// a stops a fifth of the TTL before its lease can expire; the client's
	// own keep-alive deadline would only tell it at the full TTL.
	time.Sleep(time.Until(cut.Add(ttl - ttl/5 + 100*time.Millisecond)))
	assert.False(t, a.IsLeader(ctx), "still leader %v after the partition (TTL %v)", time.Since(cut), ttl)

	b.await(t, true, ttl+5*time.Second)
	assert.False(t, aLedAtTakeover.Load(), "the partitioned leader still claimed the lease when b won it")
}
