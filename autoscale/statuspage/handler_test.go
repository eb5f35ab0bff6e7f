package statuspage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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

// fleet is a Scaler on ec2sim with its status page served in process.
type fleet struct {
	t      *testing.T
	sim    *ec2sim.Sim
	scaler *autoscale.Scaler
	rec    *statuspage.Recorder
	srv    *httptest.Server
}

type poolSpec struct {
	name     string
	managers []manager.Manager
	hooks    role.Hooks
}

func newFleet(t *testing.T, rails autoscale.Rails, specs ...poolSpec) *fleet {
	t.Helper()
	sim, err := ec2sim.New(ec2sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []pool.Config
	for _, s := range specs {
		r, err := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, s.hooks)
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, pool.Config{Name: s.name, Role: r, Managers: s.managers,
			Types: []pool.InstanceType{{Name: "c5.large"}, {Name: "m5.large"}}, Zones: []string{"us-east-1a", "us-east-1b"}})
	}
	rec := statuspage.NewRecorder(0, nil)
	scaler, err := autoscale.New(sim, cfgs, autoscale.Options{
		Identity: "statuspage-test", Clock: sim.Now, HookWait: time.Second, Observer: rec, Rails: rails,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{}) })
	srv := httptest.NewServer(statuspage.Handler(scaler, rec))
	t.Cleanup(srv.Close)
	return &fleet{t: t, sim: sim, scaler: scaler, rec: rec, srv: srv}
}

func (f *fleet) passes(n int) {
	f.t.Helper()
	for range n {
		if err := f.scaler.Step(f.t.Context()); err != nil {
			f.t.Fatal(err)
		}
		if err := f.sim.Advance(30 * time.Second); err != nil {
			f.t.Fatal(err)
		}
	}
}

// get fetches url and returns the answer's body and headers, failing
// unless the status is want.
func get(t *testing.T, method, url string, want int) (string, http.Header) {
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
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, body)
	}
	return string(body), resp.Header
}

func (f *fleet) json() statuspage.Snapshot {
	f.t.Helper()
	body, hdr := get(f.t, http.MethodGet, f.srv.URL+"/?format=json", http.StatusOK)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.t.Errorf("JSON served as %q", ct)
	}
	var snap statuspage.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		f.t.Fatalf("%v\n%s", err, body)
	}
	return snap
}

func (f *fleet) html() string {
	f.t.Helper()
	body, hdr := get(f.t, http.MethodGet, f.srv.URL+"/", http.StatusOK)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		f.t.Errorf("HTML served as %q", ct)
	}
	return body
}

func fixed(t *testing.T, name string, n int) *manager.Fixed {
	t.Helper()
	m, err := manager.NewFixed(name, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestJSONMatchesTheScaler(t *testing.T) {
	// Pools named against alphabetical order: the page keeps config order.
	f := newFleet(t, autoscale.Rails{},
		poolSpec{name: "zeta", managers: []manager.Manager{fixed(t, "web", 2), fixed(t, "api", 1)}},
		poolSpec{name: "alpha", managers: []manager.Manager{fixed(t, "batch", 2)}})

	first := f.json()
	if len(first.Pools) != 2 || first.Pools[0].Observed || !first.Pools[0].ServersPending || !first.Time.IsZero() {
		t.Fatalf("before any pass, want two unobserved pools with their server lists pending: %+v", first.Pools)
	}
	f.passes(6)
	snap := f.json()

	if got := []string{snap.Pools[0].Name, snap.Pools[1].Name}; !slices.Equal(got, []string{"zeta", "alpha"}) {
		t.Errorf("pools in order %v, want config order", got)
	}
	for _, p := range snap.Pools {
		st := f.scaler.Pool(p.Name).Status()
		got := []int{p.Target, p.Booting, p.Provisioning, p.Free, p.Granted, p.WindingDown, p.Replacing, p.Due, p.Interrupted, p.MaxUsed, p.Max}
		want := []int{st.Target, st.Booting, st.Provisioning, st.Free, st.Granted, st.WindingDown, st.Replacing, st.Due, st.Interrupted, st.MaxUsed, st.Max}
		if !slices.Equal(got, want) {
			t.Errorf("pool %s: counts %v, Status says %v", p.Name, got, want)
		}
		if !p.Observed || !p.Time.Equal(st.Time) || p.Granted == 0 {
			t.Errorf("pool %s: observed %v at %v (Status %v), granted %d", p.Name, p.Observed, p.Time, st.Time, p.Granted)
		}
		for i, m := range p.Managers {
			if ms := st.Managers[m.Name]; m.Target != ms.Target || m.Held != ms.Held {
				t.Errorf("pool %s manager %s: %+v, Status says %+v", p.Name, m.Name, m, ms)
			}
			if want := f.scaler.Pool(p.Name).Managers()[i].Name(); m.Name != want {
				t.Errorf("pool %s: manager %d is %s, config says %s", p.Name, i, m.Name, want)
			}
		}

		servers, asOf := f.scaler.Pool(p.Name).Servers()
		if p.ServersPending || !p.ServersAsOf.Equal(asOf) || len(p.Servers) != len(servers) || len(servers) == 0 {
			t.Fatalf("pool %s: %d servers as of %v (pending %v), the pool lists %d as of %v",
				p.Name, len(p.Servers), p.ServersAsOf, p.ServersPending, len(servers), asOf)
		}
		byState := map[string]int{}
		for i, s := range p.Servers {
			want := servers[i]
			if s.ID != want.ID || s.State != want.State || s.Manager != want.Manager || s.Type != want.Type ||
				s.Zone != want.Zone || s.Market != string(want.Market) || !s.Launched.Equal(want.Launched) {
				t.Errorf("pool %s server %d: %+v, the pool says %+v", p.Name, i, s, want)
			}
			if wantAge := int64(asOf.Sub(want.Launched) / time.Second); s.AgeSeconds != wantAge || wantAge <= 0 {
				t.Errorf("server %s: age %ds, want %ds", s.ID, s.AgeSeconds, wantAge)
			}
			byState[s.State]++
		}
		counted := 0
		for _, sc := range p.States {
			counted += sc.Count
			if byState[sc.State] != sc.Count {
				t.Errorf("pool %s: %d %s, the list has %d", p.Name, sc.Count, sc.State, byState[sc.State])
			}
		}
		if counted != len(p.Servers) || byState["granted"] != st.Granted {
			t.Errorf("pool %s: states %v count %d of %d servers; %d granted, Status says %d",
				p.Name, p.States, counted, len(p.Servers), byState["granted"], st.Granted)
		}
	}

	if !snap.Recording || len(snap.Events) == 0 || snap.EventsSeen != uint64(len(snap.Events)) {
		t.Fatalf("events: recording %v, %d kept of %d", snap.Recording, len(snap.Events), snap.EventsSeen)
	}
	if !slices.IsSortedFunc(snap.Events, func(a, b statuspage.Event) int { return b.Time.Compare(a.Time) }) {
		t.Error("events not newest first")
	}
	launch := snap.Events[len(snap.Events)-1]
	if launch.Kind != "launch" || launch.Reason == "" || launch.Capacity == 0 || len(launch.Instances) == 0 || launch.Inputs["requested"] == "" {
		t.Errorf("the oldest event is not the first launch with its reason and inputs: %+v", launch)
	}
	if !slices.ContainsFunc(snap.Events, func(e statuspage.Event) bool { return e.Kind == "grant" && e.Manager == "web" }) {
		t.Error("no grant to web among the events")
	}
	if !snap.Time.Equal(f.scaler.Pool("zeta").Status().Time) {
		t.Errorf("snapshot time %v, latest pass %v", snap.Time, f.scaler.Pool("zeta").Status().Time)
	}
}

func TestHTMLShowsPoolsServersAndEvents(t *testing.T) {
	f := newFleet(t, autoscale.Rails{}, poolSpec{name: "workers", managers: []manager.Manager{fixed(t, "jobs", 3)}})

	page := f.html()
	for _, want := range []string{"Pool workers", "Not seen yet", "The server list builds from the next pass.", "None yet."} {
		if !strings.Contains(page, want) {
			t.Errorf("before any pass, the page does not say %q:\n%s", want, page)
		}
	}
	f.passes(6)
	page = f.html()
	snap := f.json()
	p := snap.Pools[0]
	if strings.Contains(page, "builds from the next pass") {
		t.Errorf("the page still waits for its server list:\n%s", page)
	}
	for _, want := range []string{
		"<td>jobs</td><td class=\"n\">3</td><td class=\"n\">3</td>", // manager target and held
		"granted 3.",
		"Not paused.",
		`<a href="?format=json">JSON</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q:\n%s", want, page)
		}
	}
	for _, s := range p.Servers {
		row := "<tr><td>" + s.ID + "</td><td>granted</td><td class=\"n\">" + (time.Duration(s.AgeSeconds) * time.Second).String() +
			"</td><td>on-demand</td><td>" + s.Type + "</td><td>" + s.Zone + "</td><td>jobs</td>"
		if !strings.Contains(page, row) {
			t.Errorf("no row %q for server %s:\n%s", row, s.ID, page)
		}
	}
	launch := snap.Events[len(snap.Events)-1]
	if !strings.Contains(page, launch.Reason) {
		t.Errorf("the page does not give the launch's reason %q:\n%s", launch.Reason, page)
	}
}

func TestAlarmsAndPauseAreShown(t *testing.T) {
	failing := role.Hooks{Provision: func(context.Context, awsctl.Instance) error { return errors.New("disk full") }}
	f := newFleet(t, autoscale.Rails{NotReadyLimit: 1}, poolSpec{name: "workers", managers: []manager.Manager{fixed(t, "jobs", 1)}, hooks: failing})
	f.passes(6)
	alarms := f.scaler.Alarms()
	if len(alarms) == 0 {
		t.Fatal("the scenario raised no alarm")
	}
	f.scaler.Pause(autoscale.PauseOptions{StopTerminating: true})

	snap := f.json()
	if len(snap.Alarms) != len(alarms) {
		t.Fatalf("%d alarms shown, the scaler has %d", len(snap.Alarms), len(alarms))
	}
	for i, a := range snap.Alarms {
		if a.Kind != string(alarms[i].Kind) || a.Pool != alarms[i].Pool || a.Reason != alarms[i].Reason || !a.Since.Equal(alarms[i].Since) {
			t.Errorf("alarm %d: %+v, the scaler says %+v", i, a, alarms[i])
		}
	}
	if !snap.Paused.Launches || !snap.Paused.Terminations {
		t.Errorf("paused %+v, want launches and terminations", snap.Paused)
	}
	if !slices.ContainsFunc(snap.Events, func(e statuspage.Event) bool {
		return e.Kind == "provision-failed" && strings.Contains(e.Error, "disk full")
	}) {
		t.Error("no provision-failed event with its error")
	}

	page := f.html()
	for _, want := range []string{
		"<tr class=\"alarm\"><td>" + string(alarms[0].Kind) + "</td><td>workers</td>",
		alarms[0].Reason,
		"Paused: no launches, no terminations.",
		"(error: disk full)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q:\n%s", want, page)
		}
	}
}

func TestHTMLEscapesHostileNames(t *testing.T) {
	const pool, mgr = `<script>alert("pool")</script>`, `<img src=x onerror=alert('m')>&`
	f := newFleet(t, autoscale.Rails{}, poolSpec{name: pool, managers: []manager.Manager{fixed(t, mgr, 1)}})
	f.html() // start the server list
	f.passes(4)
	page := f.html()
	for _, raw := range []string{"<script>", "<img"} {
		if strings.Contains(page, raw) {
			t.Errorf("the page carries %q unescaped:\n%s", raw, page)
		}
	}
	for _, want := range []string{"Pool &lt;script&gt;alert(&#34;pool&#34;)&lt;/script&gt;", "&lt;img src=x onerror=alert(&#39;m&#39;)&gt;&amp;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show the escaped name %q:\n%s", want, page)
		}
	}
	snap := f.json()
	if snap.Pools[0].Name != pool || snap.Pools[0].Managers[0].Name != mgr {
		t.Errorf("JSON names %q, %q: want them verbatim", snap.Pools[0].Name, snap.Pools[0].Managers[0].Name)
	}
	if len(snap.Pools[0].Servers) == 0 || snap.Pools[0].Servers[0].Manager != mgr {
		t.Errorf("no server granted to the hostile manager: %+v", snap.Pools[0].Servers)
	}
	body, _ := get(t, http.MethodGet, f.srv.URL+"?format=json", http.StatusOK)
	if strings.Contains(body, "<script>") {
		t.Error("the JSON carries <script> unescaped: a browser sniffing it could run it")
	}
}

func TestRequestsOutsideThePageAreRefused(t *testing.T) {
	f := newFleet(t, autoscale.Rails{}, poolSpec{name: "workers", managers: []manager.Manager{fixed(t, "jobs", 1)}})
	_, hdr := get(t, http.MethodPost, f.srv.URL, http.StatusMethodNotAllowed)
	if hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow: %q", hdr.Get("Allow"))
	}
	get(t, http.MethodGet, f.srv.URL+"?format=xml", http.StatusBadRequest)
	get(t, http.MethodGet, f.srv.URL+"?refresh=0", http.StatusBadRequest)
	get(t, http.MethodGet, f.srv.URL+"?refresh=soon", http.StatusBadRequest)
	body, hdr := get(t, http.MethodHead, f.srv.URL, http.StatusOK)
	if body != "" || hdr.Get("Content-Length") == "" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("HEAD: body %q, headers %v", body, hdr)
	}
	page, _ := get(t, http.MethodGet, f.srv.URL+"?refresh=5", http.StatusOK)
	if !strings.Contains(page, `<meta http-equiv="refresh" content="5">`) {
		t.Errorf("no refresh in the page:\n%s", page)
	}
	if page := f.html(); strings.Contains(page, "http-equiv") {
		t.Errorf("a page that was not asked to refresh does:\n%s", page)
	}

	nilScaler := httptest.NewServer(statuspage.Handler(nil, nil))
	defer nilScaler.Close()
	get(t, http.MethodGet, nilScaler.URL, http.StatusInternalServerError)
	if snap := statuspage.Read(nil, nil); snap.Pools == nil || len(snap.Pools) != 0 {
		t.Errorf("Read(nil, nil) = %+v", snap)
	}
}

func TestWithoutARecorderThePageSaysEventsAreNotKept(t *testing.T) {
	f := newFleet(t, autoscale.Rails{}, poolSpec{name: "workers", managers: []manager.Manager{fixed(t, "jobs", 1)}})
	f.passes(2)
	srv := httptest.NewServer(statuspage.Handler(f.scaler, nil))
	defer srv.Close()
	page, _ := get(t, http.MethodGet, srv.URL, http.StatusOK)
	if !strings.Contains(page, "Events are not recorded") {
		t.Errorf("the page does not say events are not recorded:\n%s", page)
	}
	body, _ := get(t, http.MethodGet, srv.URL+"?format=json", http.StatusOK)
	if !strings.Contains(body, `"recording": false`) || !strings.Contains(body, `"events": []`) {
		t.Errorf("JSON without a recorder:\n%s", body)
	}
}

func TestPageReadsWhilePassesRun(t *testing.T) {
	f := newFleet(t, autoscale.Rails{}, poolSpec{name: "workers", managers: []manager.Manager{fixed(t, "jobs", 2)}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			_ = f.scaler.Step(context.Background())
			_ = f.sim.Advance(30 * time.Second)
		}
	}()
	for range 10 {
		f.html()
		f.json()
	}
	<-done
	if p := f.json().Pools[0]; p.Granted != 2 {
		t.Errorf("granted %d after the passes, want 2", p.Granted)
	}
}
