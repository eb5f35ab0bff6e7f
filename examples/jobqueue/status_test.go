package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/autoscale/statuspage"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

func fetch(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestStatusHandlerRoutesThePage(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	worker, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := manager.NewFixed("jobs", 2)
	if err != nil {
		t.Fatal(err)
	}
	rec := statuspage.NewRecorder(0, nil)
	scaler, err := autoscale.New(sim, []pool.Config{{Name: "workers", Role: worker, Managers: []manager.Manager{jobs},
		Types: []pool.InstanceType{{Name: "c5.large"}}, Zones: []string{"us-east-1a"}}},
		autoscale.Options{Identity: "jobqueue-test", Clock: sim.Now, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{})
	if err := scaler.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(statusHandler(scaler, rec))
	defer srv.Close()

	for _, path := range []string{"/", "/status"} {
		code, body := fetch(t, http.MethodGet, srv.URL+path)
		if code != http.StatusOK || !strings.Contains(body, "<h2>Pool workers</h2>") || !strings.Contains(body, "launch") {
			t.Errorf("GET %s: %d\n%s", path, code, body)
		}
		code, body = fetch(t, http.MethodGet, srv.URL+path+"?format=json")
		var snap statuspage.Snapshot
		if err := json.Unmarshal([]byte(body), &snap); code != http.StatusOK || err != nil || len(snap.Pools) != 1 || len(snap.Events) == 0 {
			t.Errorf("GET %s?format=json: %d, %v\n%s", path, code, err, body)
		}
	}
	if code, _ := fetch(t, http.MethodGet, srv.URL+"/elsewhere"); code != http.StatusNotFound {
		t.Errorf("GET /elsewhere: %d, want not found", code)
	}
	if code, _ := fetch(t, http.MethodPost, srv.URL+"/status"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %d, want method not allowed", code)
	}
}

// watchedOutput is the example's output, safe to read while it runs, with
// a signal when a line containing want is written.
type watchedOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (o *watchedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.buf.Write(p)
	if o.seen != nil && strings.Contains(o.buf.String(), o.want) {
		close(o.seen)
		o.seen = nil
	}
	return n, err
}

func (o *watchedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func TestHTTPFlagServesThePageUntilInterrupted(t *testing.T) {
	seen := make(chan struct{})
	out := &watchedOutput{want: "The status page stays up", seen: seen}
	interrupts := make(chan os.Signal, 1)
	done := make(chan error, 1)
	// A speed far above the default keeps the test short; the pacing still runs.
	args := []string{"-http", "127.0.0.1:0", "-speed", "1e6", "-length", "1h", "-seed", "2"}
	go func() { done <- run(t.Context(), args, out, interrupts) }()

	select {
	case <-seen:
	case err := <-done:
		t.Fatalf("returned before holding the page up: %v\n%s", err, out)
	case <-time.After(time.Minute): // a bound for a hung run, not a wait
		t.Fatalf("the run did not end:\n%s", out)
	}
	m := regexp.MustCompile(`Status page: (http://127\.0\.0\.1:\d+/) \(JSON: http://127\.0\.0\.1:\d+/status\?format=json\)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no address of the page in the output:\n%s", out)
	}
	url := m[1]
	if !strings.Contains(out.String(), "jobs finished") {
		t.Errorf("no summary before holding the page:\n%s", out)
	}

	code, body := fetch(t, http.MethodGet, url+"status?format=json")
	var snap statuspage.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); code != http.StatusOK || err != nil {
		t.Fatalf("GET status?format=json: %d, %v\n%s", code, err, body)
	}
	if len(snap.Pools) != 1 || snap.Pools[0].Name != "workers" || !snap.Pools[0].Observed {
		t.Fatalf("pools %+v", snap.Pools)
	}
	p := snap.Pools[0]
	if p.ServersPending || len(p.Servers) == 0 || len(snap.Events) == 0 {
		t.Errorf("opened after the run, the page shows %d servers (pending %v) and %d events", len(p.Servers), p.ServersPending, len(snap.Events))
	}
	code, page := fetch(t, http.MethodGet, url)
	if code != http.StatusOK || !strings.Contains(page, "<h2>Pool workers</h2>") || !strings.Contains(page, "<td>batch</td>") {
		t.Errorf("GET /: %d\n%s", code, page)
	}

	interrupts <- os.Interrupt
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("an interrupt did not take the page down:\n%s", out)
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Error("the page is still served after run returned")
	}
}

func TestSpeedMustBePositive(t *testing.T) {
	for _, speed := range []string{"0", "-2", "NaN", "+Inf"} {
		if _, err := parseFlags([]string{"-http", ":0", "-speed", speed}, io.Discard); err == nil {
			t.Errorf("-speed %s accepted", speed)
		}
	}
	cfg, err := parseFlags([]string{"-http", ":8080"}, io.Discard)
	if err != nil || cfg.speed != defaultSpeed || cfg.http != ":8080" {
		t.Errorf("-http :8080: %+v, %v", cfg, err)
	}
}
