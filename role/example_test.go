package role_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// workers is the host's view of its servers: whether each runs a job and
// whether it still takes new ones.
type workers struct {
	mu       sync.Mutex
	busy     map[string]bool
	draining map[string]bool
}

// A role whose wind-down lets the current job finish: WindDown only stops
// new jobs from being handed to the server, and Check reports the server
// wound down once its job is done.
func ExampleNew() {
	w := &workers{busy: map[string]bool{}, draining: map[string]bool{}}
	worker, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{
		WindDown: func(_ context.Context, inst awsctl.Instance) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.draining[inst.ID] = true
			return nil
		},
		Check: func(_ context.Context, inst awsctl.Instance) (role.Status, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			idle := !w.busy[inst.ID]
			return role.Status{Idle: idle, WoundDown: idle && w.draining[inst.ID]}, nil
		},
		Restore: func(_ context.Context, inst awsctl.Instance) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			delete(w.draining, inst.ID)
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx, inst := context.Background(), awsctl.Instance{ID: "i-0a1"}
	w.busy[inst.ID] = true // a job is running
	_ = worker.WindDown(ctx, inst)
	st, _ := worker.Check(ctx, inst)
	fmt.Printf("job running:  %+v\n", st)

	w.busy[inst.ID] = false // the job ends
	st, _ = worker.Check(ctx, inst)
	fmt.Printf("job finished: %+v\n", st)
	// Output:
	// job running:  {Idle:false WoundDown:false Unhealthy:false}
	// job finished: {Idle:true WoundDown:true Unhealthy:false}
}

// Servers that serve the wind-down protocol over HTTP need no code: the
// role calls their endpoints. Address is set here only to reach a local test
// server; by default the role calls the instance's private IP.
func ExampleNewHTTP() {
	draining := false
	mux := http.NewServeMux()
	mux.HandleFunc("POST /autoscale/wind-down", func(http.ResponseWriter, *http.Request) { draining = true })
	mux.HandleFunc("GET /autoscale/status", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"idle": true, "wound_down": %t}`, draining)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	web, err := role.NewHTTP("web", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.HTTPConfig{
		SkipProvision: true,
		SkipTeardown:  true,
		Headers:       http.Header{"Authorization": {"Bearer example-token"}},
		Address:       func(awsctl.Instance) string { return srv.Listener.Addr().String() },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, inst := context.Background(), awsctl.Instance{ID: "i-0b2", PrivateIP: "10.0.1.5"}
	st, _ := web.Check(ctx, inst)
	fmt.Printf("before: %+v\n", st)
	if err := web.WindDown(ctx, inst); err != nil {
		fmt.Println(err)
	}
	st, _ = web.Check(ctx, inst)
	fmt.Printf("after:  %+v\n", st)
	// Output:
	// before: {Idle:true WoundDown:false Unhealthy:false}
	// after:  {Idle:true WoundDown:true Unhealthy:false}
}
