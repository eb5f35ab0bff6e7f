// Package pipehttp serves HTTP over in-memory connections, for tests that
// run inside a testing/synctest bubble: real sockets do not block durably,
// so a request over loopback would stall the bubble's fake clock, while
// net.Pipe connections let virtual time pass while a server hangs.
package pipehttp

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// listener hands the server the far ends of net.Pipe connections.
type listener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *listener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

// Serve serves h and returns a client whose every connection, whatever
// address it dials, reaches h. stop shuts both down, so that a bubble can
// end with no goroutine left.
func Serve(h http.Handler) (client *http.Client, stop func()) {
	l := &listener{conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, s := net.Pipe()
		select {
		case l.conns <- s:
			return c, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}}
	return &http.Client{Transport: tr}, func() {
		tr.CloseIdleConnections()
		_ = srv.Close()
	}
}
