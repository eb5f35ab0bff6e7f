package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/autoscale/statuspage"
)

// defaultSpeed paces the simulation when its status page is served: a
// simulated minute a real second, slow enough to watch servers boot and
// wind down, fast enough that the default eight hours take eight minutes.
const defaultSpeed = 60

// statusHandler routes the status page: HTML at / and /status, JSON with
// ?format=json on either; anything else is not found.
func statusHandler(s *autoscale.Scaler, rec *statuspage.Recorder) http.Handler {
	page := statuspage.Handler(s, rec)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /status", page)
	return mux
}

// serveStatus serves h on addr in the background and says where. The
// returned stop shuts the server down and waits for it.
func serveStatus(out io.Writer, addr string, h http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := pageURL(ln.Addr())
	fmt.Fprintf(out, "Status page: %s (JSON: %sstatus?format=json)\n\n", url, url)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close() // a client holding a connection open does not keep the example up
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(out, "status page:", err)
		}
	}, nil
}

// pageURL is the address a browser on this machine opens: a listener on
// every interface (":8080") is reached at localhost.
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// holdStatus keeps the page up once the run is over, until ctx ends (the
// first Ctrl-C, or at once if one already ended the run).
func holdStatus(ctx context.Context, out io.Writer) {
	if ctx.Err() != nil {
		return
	}
	fmt.Fprintln(out, "\nThe status page stays up; press Ctrl-C to stop.")
	<-ctx.Done()
}

// paced makes a simulated wait also take d/speed of real time, so that a
// person watching the status page sees the run unfold.
func paced(speed float64, wait func(context.Context, time.Duration) error) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(time.Duration(float64(d) / speed))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		return wait(ctx, d)
	}
}
