package etcdleader_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	etcdleader "github.com/ec2autoscale/ec2autoscale/leader/etcd"
)

// startEtcd starts a single-member etcd server on loopback with ephemeral
// ports and a temporary data directory, and returns its client address.
func startEtcd(t testing.TB) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	loopback := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{loopback}
	cfg.AdvertiseClientUrls = []url.URL{loopback}
	cfg.ListenPeerUrls = []url.URL{loopback}
	cfg.AdvertisePeerUrls = []url.URL{loopback}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Short raft ticks let leases as short as a second be granted as asked.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	srv, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("embedded etcd did not become ready")
	}
	return srv.Clients[0].Addr().String()
}

func newClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// candidate is an Elector running in the background, with its wins and
// losses as a channel.
type candidate struct {
	*etcdleader.Elector
	changes chan bool
	// onChange, if set before start, runs first in OnChange.
	onChange func(bool)
	cancel   context.CancelFunc
	done     chan error
}

func newCandidate(t testing.TB, client *clientv3.Client, prefix, identity string, ttl time.Duration) *candidate {
	t.Helper()
	c := &candidate{changes: make(chan bool, 64), done: make(chan error, 1)}
	e, err := etcdleader.New(client, etcdleader.Options{
		Prefix:   prefix,
		Identity: identity,
		TTL:      ttl,
		OnChange: func(leading bool) {
			if c.onChange != nil {
				c.onChange(leading)
			}
			select {
			case c.changes <- leading:
			default:
				panic("test candidate: changes channel full")
			}
		},
	})
	require.NoError(t, err)
	c.Elector = e
	return c
}

// start runs the candidate until the test ends (or stop is called).
func (c *candidate) start(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// await waits until the candidate reports leading == want.
func (c *candidate) await(t testing.TB, want bool, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case got := <-c.changes:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("%s: not leading=%v within %v", c.Identity(), want, within)
		}
	}
}

// awaitCandidates waits until n keys are queued under the election prefix.
func awaitCandidates(t testing.TB, client *clientv3.Client, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Get(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	count := resp.Count
	changes := client.Watch(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for count < int64(n) {
		wr, ok := <-changes
		require.True(t, ok, "watch closed with %d of %d candidates queued", count, n)
		for _, ev := range wr.Events {
			if ev.IsCreate() {
				count++
			} else if ev.Type == clientv3.EventTypeDelete {
				count--
			}
		}
	}
}

// revokeLeader revokes the lease of the current leader's session, as a lost
// lease or an operator would, and returns the identity that held it.
func revokeLeader(t testing.TB, client *clientv3.Client, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Get(ctx, prefix+"/", clientv3.WithFirstCreate()...)
	require.NoError(t, err)
	require.NotEmpty(t, resp.Kvs, "no leader to revoke")
	_, err = client.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	return string(resp.Kvs[0].Value)
}

// proxy forwards TCP connections to target until blocked, after which it
// drops every byte both ways, as a network partition does.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	blocked bool
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) block() {
	p.mu.Lock()
	p.blocked = true
	p.mu.Unlock()
}

func (p *proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = down.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, down) })
		p.wg.Go(func() { p.pipe(down, up) })
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		drop := p.blocked
		p.mu.Unlock()
		if n > 0 && !drop {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
