// Package statuspage serves a Scaler's status over HTTP, as a plain HTML
// page for people and as JSON for scripts, the way net/http/pprof and
// expvar serve theirs.
//
// Start with [Handler]. The page shows each pool's counts (pool.Status),
// its managers' targets and holdings, its servers by state with their age,
// market, type, zone and manager (pool.Pool.Servers), the scaler's alarms
// and pause switch, and the latest decisions with their reasons. The
// scaler keeps no events, so a [Recorder] keeps the latest ones: set it as
// autoscale.Options.Observer, handing it the host's own observer to pass
// events on to:
//
//	rec := statuspage.NewRecorder(0, hostObserver) // keeps DefaultKeep events
//	scaler, err := autoscale.New(cloud, pools, autoscale.Options{Observer: rec, ...})
//	...
//	mux.Handle("/autoscale/", statuspage.Handler(scaler, rec))
//
// The HTML page is served at the mount point, the JSON document (a
// [Snapshot]) with ?format=json. [Read] returns the same Snapshot for a
// host that shows it its own way.
//
// A pool builds its per-server list only while someone reads it: the first
// view after a quiet spell says the list builds from the next pass, and the
// views that follow show it. Reading never waits for a pass.
//
// The handler has no access control: the page names instances and
// managers, so mount it where only operators reach it.
package statuspage
