package statuspage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/autoscale/statuspage"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// A status page for a Scaler keeping three servers on the simulated EC2, in
// virtual time, read as JSON. Open the same URL without ?format=json in a
// browser for the HTML page.
func Example() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{})
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	jobs, _ := manager.NewFixed("jobs", 3)

	rec := statuspage.NewRecorder(0, nil) // the scaler keeps no events: the recorder does
	scaler, err := autoscale.New(sim, []pool.Config{{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{jobs},
		Types:    []pool.InstanceType{{Name: "c5.large"}},
		Zones:    []string{"us-east-1a"},
	}}, autoscale.Options{Identity: "example", Clock: sim.Now, HookWait: time.Second, Observer: rec})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer scaler.Shutdown(ctx, autoscale.ShutdownOptions{})

	srv := httptest.NewServer(statuspage.Handler(scaler, rec))
	defer srv.Close()
	read := func() statuspage.Snapshot {
		var snap statuspage.Snapshot
		resp, err := http.Get(srv.URL + "?format=json")
		if err != nil {
			fmt.Println(err)
			return snap
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
			fmt.Println(err)
		}
		return snap
	}

	p := read().Pools[0]
	fmt.Printf("before any pass: observed %v, server list pending %v\n", p.Observed, p.ServersPending)

	for range 5 {
		_ = scaler.Step(ctx)
		_ = sim.Advance(30 * time.Second)
	}
	snap := read()
	p = snap.Pools[0]
	fmt.Printf("pool %s: target %d, granted %d, jobs hold %d\n", p.Name, p.Target, p.Granted, p.Managers[0].Held)
	for _, s := range p.Servers {
		fmt.Println(s.State, s.Market, s.Type, s.Zone, s.Manager, s.AgeSeconds >= 60)
	}
	first := snap.Events[len(snap.Events)-1] // newest first
	fmt.Println("first event:", first.Kind, first.Capacity, first.Reason)
	fmt.Println("alarms:", len(snap.Alarms))
	// Output:
	// before any pass: observed false, server list pending true
	// pool workers: target 3, granted 3, jobs hold 3
	// granted on-demand c5.large us-east-1a jobs true
	// granted on-demand c5.large us-east-1a jobs true
	// granted on-demand c5.large us-east-1a jobs true
	// first event: launch 3 on-demand in us-east-1a (any market)
	// alarms: 0
}
