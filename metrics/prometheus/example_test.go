package ec2autoscaleprom_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	ec2autoscaleprom "github.com/ec2autoscale/ec2autoscale/metrics/prometheus"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// A scaler keeping three servers on the simulated EC2, its metrics served
// on /metrics. A real host serves the handler on its own listener and calls
// Run, or its own loop of the instrumented Step.
func Example() {
	ctx := context.Background()
	sim, _ := ec2sim.New(ec2sim.Config{Seed: 1})
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	jobs, _ := manager.NewFixed("jobs", 3)

	// The Observer exists before the scaler, which reports to it; the
	// Collector reads the scaler.
	obs, err := ec2autoscaleprom.NewObserver(ec2autoscaleprom.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	scaler, err := autoscale.New(sim, []pool.Config{{
		Name: "workers", Role: worker, Managers: []manager.Manager{jobs},
		Types: []pool.InstanceType{{Name: "c5.large"}}, Zones: []string{"us-east-1a"},
	}}, autoscale.Options{Identity: "example", Clock: sim.Now, HookWait: time.Second, Observer: obs})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer scaler.Shutdown(ctx, autoscale.ShutdownOptions{})
	col, err := ec2autoscaleprom.NewCollector(scaler, ec2autoscaleprom.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(obs, col)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	step := obs.InstrumentStep(scaler.Step)
	for range 5 {
		scrape(srv.URL+"/metrics", nil) // Prometheus scrapes now and then
		_ = step(ctx)
		_ = sim.Advance(30 * time.Second)
	}
	scrape(srv.URL+"/metrics", []string{
		`ec2autoscale_launched_instances_total{`,
		`ec2autoscale_manager_held_capacity_units{`,
		`ec2autoscale_pass_duration_seconds_count{`,
		`ec2autoscale_pool_capacity_units{pool="workers",state="granted"}`,
		`ec2autoscale_servers{`,
	})
	// Output:
	// ec2autoscale_launched_instances_total{market="on-demand",pool="workers",reason="capacity"} 3
	// ec2autoscale_manager_held_capacity_units{manager="jobs",pool="workers"} 3
	// ec2autoscale_pass_duration_seconds_count{result="ok"} 5
	// ec2autoscale_pool_capacity_units{pool="workers",state="granted"} 3
	// ec2autoscale_servers{instance_type="c5.large",market="on-demand",pool="workers",state="granted",zone="us-east-1a"} 3
}

// scrape fetches url and prints the lines starting with one of prefixes.
func scrape(url string, prefixes []string) {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		for _, p := range prefixes {
			if strings.HasPrefix(lines.Text(), p) {
				fmt.Println(lines.Text())
			}
		}
	}
}
