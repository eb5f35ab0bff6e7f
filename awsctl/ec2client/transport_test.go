package ec2client_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
)

// lateWriter is an HTTP client over loopback whose transport, each time it
// has put the last byte of a request on the wire, is held inside its write
// until the answer's body is first read, and that read waits until the
// write is over. This is the schedule of a transport goroutine that is
// slow to finish its write (a loaded machine, a GC pause): the server has
// answered and the SDK has read the answer's head meanwhile.
type lateWriter struct {
	tr *http.Transport

	mu        sync.Mutex
	cur       *exchange // the request being written and answered
	failed    []error   // writes of a request that failed
	exchanges int
}

// exchange is one request and its answer.
type exchange struct {
	release    chan struct{} // closed at the first read of the answer's body
	written    chan struct{} // closed when the write is over (or the connection closed)
	once, done sync.Once
}

func (x *exchange) letGo()  { x.once.Do(func() { close(x.release) }) }
func (x *exchange) finish() { x.done.Do(func() { close(x.written) }) }

func newLateWriter(t *testing.T) *lateWriter {
	w := &lateWriter{}
	t.Cleanup(func() { w.tr.CloseIdleConnections() })
	d := &net.Dialer{Timeout: 10 * time.Second}
	w.tr = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &heldConn{Conn: c, w: w}, nil
	}}
	return w
}

func (w *lateWriter) current() *exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

func (w *lateWriter) Do(req *http.Request) (*http.Response, error) {
	x := &exchange{release: make(chan struct{}), written: make(chan struct{})}
	w.mu.Lock()
	w.cur = x
	w.exchanges++
	w.mu.Unlock()
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err != nil {
				w.mu.Lock()
				w.failed = append(w.failed, i.Err)
				w.mu.Unlock()
				return // the transport closes the connection next: heldConn.Close finishes x
			}
			x.finish()
		},
	})
	resp, err := w.tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		x.letGo()
		return nil, err
	}
	resp.Body = &heldBody{ReadCloser: resp.Body, x: x}
	return resp, nil
}

// heldBody lets the write go at its first read, and reads once the write
// is over.
type heldBody struct {
	io.ReadCloser
	x    *exchange
	once sync.Once
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		b.x.letGo()
		<-b.x.written
	})
	return b.ReadCloser.Read(p)
}

// heldConn holds the write that completes a request (its head and
// Content-Length bytes of body) until the exchange lets it go.
type heldConn struct {
	net.Conn
	w    *lateWriter
	sent []byte // bytes of the request being written
}

var contentLength = regexp.MustCompile(`(?i)\r\ncontent-length: *(\d+)\r\n`)

func (c *heldConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent = append(c.sent, p[:n]...)
	head := bytes.Index(c.sent, []byte("\r\n\r\n"))
	if err != nil || head < 0 {
		return n, err
	}
	size := head + 4
	if m := contentLength.FindSubmatch(c.sent[:head+2]); m != nil {
		body, _ := strconv.Atoi(string(m[1]))
		size += body
	}
	if len(c.sent) < size {
		return n, err
	}
	c.sent = c.sent[size:]
	if x := c.w.current(); x != nil {
		<-x.release
	}
	return n, err
}

func (c *heldConn) Close() error {
	if x := c.w.current(); x != nil {
		x.finish()
	}
	return c.Conn.Close()
}

// The answer to a request larger than the transport's 4 KiB write buffer
// (here 100 ids) is read in full even when the transport finishes its
// write after the answer has begun to arrive. The SDK closes the request
// body when the answer's head arrives; before the client hid the body's
// WriteTo, net/http then failed the write and closed the connection under
// the answer ("use of closed network connection"), now and then, which
// this schedule makes certain.
func TestALargeRequestsAnswerIsReadInFullWhenTheWriteEndsLate(t *testing.T) {
	lw := newLateWriter(t)
	e := newEnv(t, setup{srv: ec2test.Options{PageSize: 40}, http: lw})
	insts := e.launchInSim(t, 100, awsctl.MarketOnDemand, owned)
	require.NoError(t, e.sim.Advance(5*time.Minute))
	for _, in := range insts {
		require.NoError(t, e.sim.Impair(in.ID, false)) // every status is answered: 40 to a page, well over 4 KiB
	}

	got, err := e.client.InstanceHealth(t.Context(), ids(insts))
	require.NoError(t, err)
	assert.Len(t, got, 100)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	assert.Equal(t, 3, lw.exchanges, "three pages")
	assert.Empty(t, lw.failed, "no request write failed")
}
